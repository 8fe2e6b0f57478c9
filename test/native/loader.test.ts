// Loading the addon: the package imports by name from an installed location,
// reports where its binary and libtorch came from, and when no binary loads
// it fails with every attempt listed and how to fix it.
import { describe, it, expect } from 'vitest';
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, mkdirSync, readFileSync, symlinkSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { loadReport } from 'finetorch';
import {
  cmakePrefixFor,
  cxxStandardFor,
  flavorFix,
  flavorOf,
  libtorchAt,
  listPrebuilds,
  parseFlavor,
  platformTag,
  runtimeMismatch,
} from '../../scripts/libtorch.mjs';
import { findLibtorch } from '../../scripts/find-libtorch.mjs';

const root = resolve(__dirname, '..', '..');

describe('loader', () => {
  it('reports the binary and the libtorch it was built against', () => {
    expect(loadReport.path).toMatch(/finetorch\.node$/);
    expect(loadReport.libtorch.version).toMatch(/^\d+\.\d+\.\d+$/);
    if (loadReport.origin === 'source build') expect(loadReport.libtorch.source).toBeTruthy();
  });

  it('imports by package name from a project that installed it', () => {
    const project = mkdtempSync(join(tmpdir(), 'finetorch-consumer-'));
    try {
      mkdirSync(join(project, 'node_modules'));
      symlinkSync(root, join(project, 'node_modules', 'finetorch'));
      writeFileSync(
        join(project, 'main.mjs'),
        `
        import { torch, nn, optim, cuda } from 'finetorch';
        const m = new nn.Linear(3, 2);
        const opt = new optim.SGD(m.parameters(), { lr: 0.1 });
        console.log(JSON.stringify({ shape: m.forward(torch.ones([4, 3])).shape, groups: opt.paramGroups.length, cuda: cuda.isAvailable() }));
      `,
      );
      const r = spawnSync(process.execPath, ['main.mjs'], { cwd: project, encoding: 'utf8' });
      expect(r.status, r.stderr).toBe(0);
      expect(JSON.parse(r.stdout)).toEqual({ shape: [4, 2], groups: 1, cuda: false });
    } finally {
      rmSync(project, { recursive: true, force: true });
    }
  });

  const loadWith = (binary: string, cwd = root) =>
    spawnSync(process.execPath, ['-e', `import('finetorch').then(f => console.log(JSON.stringify(f.loadReport)))`], {
      cwd,
      encoding: 'utf8',
      env: { ...process.env, FINETORCH_BINARY: binary },
    });

  it('a FINETORCH_BINARY that does not load is an error naming the path and why, not a fall back', () => {
    const dir = mkdtempSync(join(tmpdir(), 'finetorch-bad-'));
    try {
      const bogus = join(dir, 'bogus.node');
      writeFileSync(bogus, 'not a shared object');
      const bad = loadWith(bogus);
      expect(bad.status).not.toBe(0);
      expect(bad.stdout).toBe('');
      // the dynamic linker's own reason for this file (glibc: "invalid ELF header" or "file too short")
      expect(bad.stderr).toMatch(new RegExp(`finetorch: FINETORCH_BINARY=${bogus} failed to load: ${bogus}: (invalid ELF header|file too short)`));
      expect(bad.stderr).toContain('or unset it to use the default binary');
      const missing = join(dir, 'missing.node');
      const gone = loadWith(missing);
      expect(gone.status).not.toBe(0);
      expect(gone.stderr).toContain(`finetorch: FINETORCH_BINARY=${missing} does not exist.`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a FINETORCH_BINARY with a missing library or an unresolved symbol fails to load, naming it', () => {
    // A real shared object whose NEEDED entry names a library that is nowhere.
    const dir = mkdtempSync(join(tmpdir(), 'finetorch-needs-'));
    try {
      writeFileSync(join(dir, 'x.c'), 'int x(void) { return 1; }\n');
      const cc = (args: string[]) => spawnSync('cc', ['-shared', '-fPIC', ...args, join(dir, 'x.c')], { encoding: 'utf8' });
      const lib = cc(['-o', join(dir, 'libmissingtorch.so')]);
      expect(lib.status, lib.stderr).toBe(0);
      const needs = cc(['-o', join(dir, 'needs.node'), `-L${dir}`, '-Wl,--no-as-needed', '-lmissingtorch']);
      expect(needs.status, needs.stderr).toBe(0);
      rmSync(join(dir, 'libmissingtorch.so'));
      const r = loadWith(join(dir, 'needs.node'));
      expect(r.status).not.toBe(0);
      expect(r.stderr).toContain(`finetorch: FINETORCH_BINARY=${join(dir, 'needs.node')} failed to load: libmissingtorch.so: cannot open shared object file`);
      // An unresolved function (a binary built against another libtorch: issue 14's
      // "undefined symbol: ...is_simple_data_ptr...") fails the load instead of
      // killing the process at its first call, as lazy binding would.
      writeFileSync(join(dir, 'y.c'), 'void ftMissingSymbol(void);\nint y(void) { ftMissingSymbol(); return 1; }\n');
      const undef = spawnSync('cc', ['-shared', '-fPIC', '-o', join(dir, 'undef.node'), join(dir, 'y.c')], { encoding: 'utf8' });
      expect(undef.status, undef.stderr).toBe(0);
      const u = loadWith(join(dir, 'undef.node'));
      expect(u.status).not.toBe(0);
      expect(u.stderr).toContain(
        `finetorch: FINETORCH_BINARY=${join(dir, 'undef.node')} failed to load: ${join(dir, 'undef.node')}: undefined symbol: ftMissingSymbol`,
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a relative FINETORCH_BINARY is taken from the working directory and reports the libtorch it was built against', () => {
    // the binary this process runs on, named relative to the repository root
    const r = loadWith(relative(root, loadReport.path));
    expect(r.status, r.stderr).toBe(0);
    const report = JSON.parse(r.stdout);
    expect(report.origin).toBe('FINETORCH_BINARY');
    expect(report.path).toBe(loadReport.path);
    expect(report.attempts).toEqual([]);
    // build-native.mjs writes DIR/libtorch.json next to DIR/Release/finetorch.node
    const record = join(dirname(loadReport.path), '..', 'libtorch.json');
    if (existsSync(record)) expect(report.libtorch.cmakePrefix).toBe(JSON.parse(readFileSync(record, 'utf8')).cmakePrefix);
  });

  it('with no loadable binary, one error lists every attempt and the fixes', () => {
    const copy = mkdtempSync(join(tmpdir(), 'finetorch-nobinary-'));
    try {
      for (const part of ['dist', 'scripts', 'package.json']) cpSync(join(root, part), join(copy, part), { recursive: true });
      symlinkSync(join(root, 'node_modules'), join(copy, 'node_modules'));
      const r = spawnSync(process.execPath, ['-e', `import('./dist/index.js')`], {
        cwd: copy,
        encoding: 'utf8',
        env: { ...process.env, FINETORCH_BINARY: '' },
      });
      expect(r.status).not.toBe(0);
      expect(r.stderr).toContain('finetorch: could not load the native addon. Tried:');
      expect(r.stderr).toMatch(/source build: .*build\/Release\/finetorch\.node does not exist/);
      expect(r.stderr).toContain('npm run build:native');
      expect(r.stderr).toContain('apt-get install libtorch-dev libopenblas0-pthread');
    } finally {
      rmSync(copy, { recursive: true, force: true });
    }
  });

  it('libtorch discovery obeys FINETORCH_LIBTORCH and says what it tried', () => {
    const r = spawnSync(process.execPath, [join(root, 'scripts', 'find-libtorch.mjs')], {
      encoding: 'utf8',
      env: { ...process.env, FINETORCH_LIBTORCH: '/nonexistent/libtorch', LIBTORCH: '' },
    });
    // an explicit setting that holds no libtorch is an error, not a silent fall back
    expect(r.status).toBe(1);
    expect(r.stderr).toContain(
      'finetorch: no libtorch found. Tried:\n  FINETORCH_LIBTORCH=/nonexistent/libtorch: no Torch/TorchConfig.cmake under it\n' +
        '      fix: point FINETORCH_LIBTORCH at a libtorch folder',
    );
    // the other steps are still reported, each with its fix
    expect(r.stderr).toMatch(/python3: .*\n {6}fix: /);
    expect(r.stderr).toMatch(/system: (libtorch at .* not used because FINETORCH_LIBTORCH is set|no Torch\/TorchConfig.cmake in .*)\n {6}fix: /);
    const unset = spawnSync(process.execPath, [join(root, 'scripts', 'find-libtorch.mjs')], {
      encoding: 'utf8',
      env: { ...process.env, FINETORCH_LIBTORCH: '', LIBTORCH: '' },
    });
    expect(unset.status, unset.stderr).toBe(0);
    const found = JSON.parse(unset.stdout);
    expect(found.tried.slice(0, 2)).toEqual(['FINETORCH_LIBTORCH: not set', 'LIBTORCH: not set']);
    expect(found.cmakePrefix).toBeTruthy();
  });

  it('reads the libtorch the addon runs on: its library folder, version, headers and ABI', () => {
    // the libtorch the loaded binary was built against (a FINETORCH_BINARY build
    // records it, as the source build does), else the one discovery finds
    const found = loadReport.libtorch.cmakePrefix
      ? { cmakePrefix: loadReport.libtorch.cmakePrefix }
      : findLibtorch({ ...process.env, FINETORCH_LIBTORCH: '', LIBTORCH: '' });
    const torch = libtorchAt(found.cmakePrefix as string);
    // Reference: the libc10 this process has mapped (the addon was loaded by the import above).
    const maps = readFileSync('/proc/self/maps', 'utf8');
    const c10 = /\s(\/\S+\/libc10\.so[.\d]*)$/m.exec(maps)?.[1];
    expect(c10, 'libc10 is mapped').toBeTruthy();
    expect(resolve(torch.libdir)).toBe(dirname(c10 as string));
    expect(torch.version).toBe(loadReport.libtorch.version);
    expect(existsSync(join(torch.include, 'torch', 'csrc', 'api', 'include', 'torch', 'torch.h'))).toBe(true);
    expect(torch.cuda).toBe(false);
    // _GLIBCXX_USE_CXX11_ABI the libtorch was built with: its std::string symbols say which.
    const cxx11 = spawnSync('sh', ['-c', `nm -D --defined-only ${join(torch.libdir, 'libc10.so')} | grep -c __cxx11`], { encoding: 'utf8' });
    expect(torch.abi).toBe(Number(cxx11.stdout.trim()) > 0 ? '1' : '0');
    // a folder or prefix: both name the same CMake prefix
    expect(cmakePrefixFor(found.cmakePrefix as string)).toBe(found.cmakePrefix);
    expect(cmakePrefixFor('/nonexistent')).toBeNull();
  });

  it('names, parses and lists prebuilt flavors one way', () => {
    expect(flavorOf({ libtorchVersion: '1.13.0', cuda: false, config: '' })).toBe('libtorch-1.13.0-cpu');
    expect(flavorOf({ libtorchVersion: '2.11.0', cuda: true, config: '  - CUDA Runtime 13.0\n' })).toBe('libtorch-2.11.0-cu130');
    // without a GPU there is no "CUDA Runtime" line; the build settings name the CUDA version (torch 2.14.1+cu130's)
    const settings = '  - Build settings: BLAS_INFO=mkl, BUILD_TYPE=Release, CUDA_VERSION=13.0, CUDNN_VERSION=9.24.0, TORCH_VERSION=2.14.1, USE_CUDA=1,\n';
    expect(flavorOf({ libtorchVersion: '2.14.1', cuda: true, config: settings })).toBe('libtorch-2.14.1-cu130');
    expect(flavorOf({ libtorchVersion: '2.14.1', cuda: true, config: '' })).toBe('libtorch-2.14.1-cuda');
    expect([cxxStandardFor('1.13.0'), cxxStandardFor('2.13.0'), cxxStandardFor('2.14.1'), cxxStandardFor('3.0.0')]).toEqual([
      'c++17',
      'c++17',
      'c++20',
      'c++20',
    ]);
    expect(() => flavorOf({ libtorchVersion: '2.11', cuda: false })).toThrow("unexpected libtorch version '2.11'");
    expect(parseFlavor('libtorch-2.11.0-cu130')).toEqual({ version: '2.11.0', variant: 'cu130', cuda: true });
    expect(parseFlavor('libtorch-1.13.0-cpu')).toEqual({ version: '1.13.0', variant: 'cpu', cuda: false });
    expect(parseFlavor('linux-x64')).toBeNull();
    expect(flavorFix('libtorch-1.13.0-cpu')).toContain('apt-get install libtorch1.13');
    expect(flavorFix('libtorch-2.11.0-cu130')).toContain('pip install torch==2.11.0 --index-url https://download.pytorch.org/whl/cu130');
    expect(runtimeMismatch({ libtorchVersion: '2.11.0', config: 'TORCH_VERSION=1.13.0, USE_CUDA=0' })).toBe(
      'built for libtorch 2.11.0, but the libtorch loaded is 1.13',
    );
    expect(runtimeMismatch({ libtorchVersion: '1.13.0', config: 'TORCH_VERSION=1.13.1' })).toBeNull();
    const pkg = mkdtempSync(join(tmpdir(), 'finetorch-prebuilds-'));
    try {
      const dir = join(pkg, 'prebuilds', platformTag);
      for (const f of ['libtorch-2.11.0-cu130', 'libtorch-1.13.0-cpu', 'empty']) mkdirSync(join(dir, f), { recursive: true });
      writeFileSync(join(dir, 'libtorch-2.11.0-cu130', 'finetorch.node'), '');
      writeFileSync(join(dir, 'libtorch-1.13.0-cpu', 'finetorch.node'), '');
      // prebuild.json wins over the folder name
      writeFileSync(join(dir, 'libtorch-1.13.0-cpu', 'prebuild.json'), JSON.stringify({ libtorchVersion: '1.13.1', cuda: false }));
      expect(listPrebuilds(pkg).map(({ flavor, version, cuda }) => ({ flavor, version, cuda }))).toEqual([
        { flavor: 'libtorch-1.13.0-cpu', version: '1.13.1', cuda: false },
        { flavor: 'libtorch-2.11.0-cu130', version: '2.11.0', cuda: true },
      ]);
    } finally {
      rmSync(pkg, { recursive: true, force: true });
    }
  });
});
