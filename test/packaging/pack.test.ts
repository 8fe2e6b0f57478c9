// Packaging: `npm pack` gives a package that, installed into an empty project
// on this machine (whose libtorch a prebuilt binary matches), loads the prebuilt
// without running a compiler; without a matching prebuilt the install says it
// builds from source; without libtorch one error lists every attempt and fix.
//
// To stay fast the prebuilt is the binary `npm ci` already built
// (build/Release/finetorch.node), placed by the release script's own code
// (scripts/prebuild.mjs placePrebuild) into a copy of the packed package, which
// is then packed again with the release script's packPackage. The install is
// offline: the temp project gets a lockfile made from this repository's (the
// npm cache that `npm ci` filled holds those tarballs but not the registry
// metadata a lockfile-less `npm install --offline` would need).
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { placePrebuild, platformTag } from '../../scripts/prebuild.mjs';
import { packPackage } from '../../scripts/release.mjs';

const root = resolve(__dirname, '..', '..');
const COMPILERS = ['cc', 'gcc', 'g++', 'c++', 'clang', 'clang++', 'cmake', 'make', 'ninja', 'node-gyp'];

let tmp: string;
let project: string;
let compilerLog: string;
let env: NodeJS.ProcessEnv;
let flavor: string;
let pack: { file: string; size: number; unpackedSize: number; files: string[] };
let install: { how: string; seconds: number; output: string };

const run = (cmd: string, args: string[], extra: NodeJS.ProcessEnv = {}, cwd = project): SpawnSyncReturns<string> =>
  spawnSync(cmd, args, { cwd, encoding: 'utf8', env: { ...env, ...extra }, timeout: 180000 });
const compilerCalls = () => (existsSync(compilerLog) ? readFileSync(compilerLog, 'utf8') : '');

beforeAll(() => {
  tmp = mkdtempSync(join(tmpdir(), 'finetorch-pack-'));
  // 1. The package as npm packs it, then the CI machine's binary placed as its prebuilt.
  mkdirSync(join(tmp, 'first'));
  const first = packPackage(root, join(tmp, 'first'));
  mkdirSync(join(tmp, 'stage'));
  const untar = spawnSync('tar', ['xzf', first.file, '-C', join(tmp, 'stage')], { encoding: 'utf8' });
  if (untar.status !== 0) throw new Error(untar.stderr);
  const staged = join(tmp, 'stage', 'package');
  rmSync(join(staged, 'prebuilds'), { recursive: true, force: true }); // only the one placed below
  const record = join(root, 'build', 'libtorch.json'); // written by the source build, if it ran through build-native.mjs
  const libtorch = existsSync(record) ? JSON.parse(readFileSync(record, 'utf8')) : {};
  flavor = placePrebuild(join(root, 'build', 'Release', 'finetorch.node'), {
    root: staged,
    libtorch: { source: libtorch.source, cmakePrefix: libtorch.cmakePrefix },
  }).flavor;
  pack = packPackage(staged, tmp);

  // 2. Shims that record any compiler or build-tool call and fail it.
  const shims = join(tmp, 'shims');
  mkdirSync(shims);
  compilerLog = join(tmp, 'compiler.log');
  for (const tool of COMPILERS) {
    writeFileSync(join(shims, tool), `#!/bin/sh\necho "${tool} $*" >> '${compilerLog}'\nexit 1\n`);
    chmodSync(join(shims, tool), 0o755);
  }
  // npm runs node-gyp through its own bundled copy, named by npm_config_node_gyp.
  writeFileSync(
    join(shims, 'node-gyp.cjs'),
    `require('fs').appendFileSync(${JSON.stringify(compilerLog)}, 'node-gyp ' + process.argv.slice(2).join(' ') + '\\n'); process.exit(1);\n`,
  );
  // The parent `npm test` exports npm_* settings (npm_config_local_prefix names this repository): drop them,
  // and anything that could pick a binary or a compiler behind the package's back.
  env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^(npm_|FINETORCH_|LIBTORCH$|CC$|CXX$|NODE_OPTIONS$|LD_PRELOAD$)/i.test(k)));
  env.PATH = `${shims}:${process.env.PATH}`;
  env.npm_config_node_gyp = join(shims, 'node-gyp.cjs');
  env.npm_config_update_notifier = 'false';

  // 3. An empty project that depends on the tarball only, with a lockfile for its dependencies.
  project = join(tmp, 'project');
  mkdirSync(project);
  const tgz = 'file:' + pack.file;
  const pkg = JSON.parse(readFileSync(join(staged, 'package.json'), 'utf8'));
  const repoLock = JSON.parse(readFileSync(join(root, 'package-lock.json'), 'utf8'));
  const packages: Record<string, unknown> = {
    '': { name: 'consumer', version: '1.0.0', dependencies: { finetorch: tgz } },
    'node_modules/finetorch': {
      version: pkg.version,
      resolved: tgz,
      hasInstallScript: true,
      license: pkg.license,
      dependencies: pkg.dependencies,
      bin: pkg.bin,
      engines: pkg.engines,
    },
  };
  for (const [path, entry] of Object.entries(repoLock.packages as Record<string, { dev?: boolean; devOptional?: boolean }>)) {
    if (!path || entry.dev) continue; // the runtime dependencies are what the consumer gets
    const { devOptional: _, ...rest } = entry;
    packages[path] = rest;
  }
  // npm 11 runs a dependency's install script only when allowScripts lists it.
  writeFileSync(
    join(project, 'package.json'),
    JSON.stringify(
      { name: 'consumer', version: '1.0.0', private: true, type: 'module', dependencies: { finetorch: tgz }, allowScripts: { finetorch: true } },
      null,
      2,
    ),
  );
  writeFileSync(
    join(project, 'package-lock.json'),
    JSON.stringify({ name: 'consumer', version: '1.0.0', lockfileVersion: 3, requires: true, packages }, null, 2),
  );

  // 4. Install: offline from the lockfile; if the cache lacks something, say so and let npm use the registry.
  const started = Date.now();
  const flags = ['--no-audit', '--no-fund', '--foreground-scripts'];
  let r = run('npm', ['ci', '--offline', ...flags]);
  let how = 'npm ci --offline (lockfile from the repository)';
  if (r.status !== 0) {
    console.warn(`offline install failed, retrying with --prefer-offline:\n${r.stdout}\n${r.stderr}`);
    r = run('npm', ['install', '--prefer-offline', ...flags, pack.file]);
    how = 'npm install --prefer-offline';
  }
  install = { how, seconds: (Date.now() - started) / 1000, output: `${r.stdout}\n${r.stderr}` };
  if (r.status !== 0) throw new Error(`npm install of ${pack.file} failed:\n${install.output}`);
  console.log(`packed ${(pack.size / 1e6).toFixed(2)} MB (${pack.files.length} files); ${how}: ${install.seconds.toFixed(1)} s`);
}, 240000);

afterAll(() => {
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

describe('npm package', () => {
  it('holds dist/, the sources for a source build and the prebuilt, and no junk', () => {
    // packPackage already refuses build/, node_modules/, test/, bench/, .cache/ and a missing dist/
    expect(flavor).toMatch(/^libtorch-\d+\.\d+\.\d+-(cpu|cu\d+|cuda)$/);
    expect(pack.files).toContain(`prebuilds/${platformTag}/${flavor}/finetorch.node`);
    expect(pack.files).toContain(`prebuilds/${platformTag}/${flavor}/prebuild.json`);
    for (const f of [
      'dist/index.js',
      'dist/index.d.ts',
      'CMakeLists.txt',
      'binding.gyp',
      'native/addon.cc',
      'scripts/build-native.mjs',
      'scripts/find-libtorch.mjs',
    ]) {
      expect(pack.files).toContain(f);
    }
    expect(pack.files.filter((f) => /^(build|node_modules|test|bench)\/|\.cache\//.test(f))).toEqual([]);
    expect(pack.size).toBeLessThan(20e6);
  });

  it('installs into an empty project using the prebuilt binary, without running a compiler', () => {
    expect(install.output).toContain(`finetorch: using prebuilt binary ${platformTag}/${flavor}`);
    expect(install.output).not.toContain('building from source');
    expect(compilerCalls()).toBe('');
    expect(existsSync(join(project, 'node_modules', 'finetorch', 'build'))).toBe(false);
  });

  it('loads the prebuilt and runs a forward pass that matches values computed by hand', () => {
    const W = [
      [0.5, -1, 2],
      [1.5, 0.25, -0.75],
    ];
    const b = [0.125, -2];
    const x = [
      [1, 2, 3],
      [-4, 0, 8],
      [0.5, -0.5, 0.25],
    ];
    writeFileSync(
      join(project, 'main.mjs'),
      `
      import { torch, nn, loadReport } from 'finetorch';
      const m = new nn.Linear(3, 2);
      m.loadStateDict({ weight: torch.tensor(${JSON.stringify(W)}, { dtype: 'float32' }), bias: torch.tensor(${JSON.stringify(b)}, { dtype: 'float32' }) });
      const y = m.forward(torch.tensor(${JSON.stringify(x)}, { dtype: 'float32' }));
      console.log(JSON.stringify({ report: loadReport, shape: y.shape, y: y.toArray() }));
    `,
    );
    const started = Date.now();
    const r = run(process.execPath, ['main.mjs']);
    expect(r.status, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.report.origin).toBe('prebuilt');
    expect(out.report.flavor).toBe(flavor);
    expect(out.report.path).toBe(join(project, 'node_modules', 'finetorch', 'prebuilds', platformTag, flavor, 'finetorch.node'));
    expect(out.shape).toEqual([3, 2]);
    // y = x W^T + b, by hand (every value here is exact in float32)
    const expected = x.map((row) => W.map((w, j) => row.reduce((s, v, k) => s + v * w[k], b[j])));
    expect(expected).toEqual([
      [4.625, -2.25],
      [14.125, -14],
      [1.375, -1.5625],
    ]);
    expect(out.y).toEqual(expected);
    expect(compilerCalls()).toBe('');
    console.log(`import + forward in the installed project: ${((Date.now() - started) / 1000).toFixed(2)} s`);
  });

  describe('without a matching prebuilt', () => {
    const pkgDir = () => join(project, 'node_modules', 'finetorch');
    const prebuildDir = () => join(pkgDir(), 'prebuilds', platformTag);
    let saved: string;
    beforeAll(() => {
      // The real prebuilt moves away; in its place a flavor this machine cannot load.
      saved = join(tmp, 'saved-prebuild');
      renameSync(join(prebuildDir(), flavor), saved);
      mkdirSync(join(prebuildDir(), 'libtorch-0.0.1-cu999'));
      writeFileSync(join(prebuildDir(), 'libtorch-0.0.1-cu999', 'finetorch.node'), 'not a shared object');
    });
    afterAll(() => {
      rmSync(join(prebuildDir(), 'libtorch-0.0.1-cu999'), { recursive: true, force: true });
      if (saved && existsSync(saved)) renameSync(saved, join(prebuildDir(), flavor));
    });

    it('install says it builds from source, and why (dry run: FINETORCH_INSTALL_DRY_RUN)', () => {
      const r = run('npm', ['rebuild', 'finetorch', '--foreground-scripts'], { FINETORCH_INSTALL_DRY_RUN: '1' });
      const out = `${r.stdout}\n${r.stderr}`;
      expect(r.status, out).toBe(0);
      expect(out).toMatch(new RegExp(`finetorch: no prebuilt binary for ${platformTag} with libtorch \\S+ \\(.+\\) matched; building from source`));
      expect(out).toContain(`prebuilt ${platformTag}/libtorch-0.0.1-cu999: `);
      expect(out).toContain('fix: needs libtorch 0.0.1 (cu999)');
      expect(out).toContain('finetorch: dry run (FINETORCH_INSTALL_DRY_RUN): would build against');
      expect(compilerCalls()).toBe('');
    });

    it('with FINETORCH_LIBTORCH at an empty folder, install fails with one error listing every attempt and its fix', () => {
      const empty = join(tmp, 'empty-libtorch');
      mkdirSync(empty, { recursive: true });
      const r = run('npm', ['rebuild', 'finetorch', '--foreground-scripts'], { FINETORCH_LIBTORCH: empty });
      const out = `${r.stdout}\n${r.stderr}`;
      expect(r.status, out).not.toBe(0);
      expect(out).toContain('finetorch: no prebuilt binary loaded and no libtorch to build against. Tried:');
      expect(out).toContain(`prebuilt ${platformTag}/libtorch-0.0.1-cu999: `);
      expect(out).toContain(`FINETORCH_LIBTORCH=${empty}: no Torch/TorchConfig.cmake under it\n      fix: point FINETORCH_LIBTORCH at a libtorch folder`);
      expect(out).toMatch(/python3: .*\n {6}fix: /);
      expect(out).toMatch(/system: .*\n {6}fix: /);
      expect(out).toContain('apt-get install libtorch-dev libopenblas0-pthread');
      expect(compilerCalls()).toBe('');
    });

    it('importing finetorch fails with one error naming every candidate and its fix', () => {
      const r = run(process.execPath, ['main.mjs']);
      expect(r.status).not.toBe(0);
      expect(r.stderr).toContain('finetorch: could not load the native addon. Tried:');
      expect(r.stderr).toMatch(/source build: \S+build\/Release\/finetorch\.node does not exist/);
      expect(r.stderr).toMatch(new RegExp(`prebuilt: \\S+/prebuilds/${platformTag}/libtorch-0\\.0\\.1-cu999/finetorch\\.node failed to load: `));
      expect(r.stderr).toContain('- source build: build from source: npm run build:native in a checkout, npm rebuild finetorch in a project');
      expect(r.stderr).toContain('- prebuilt libtorch-0.0.1-cu999: this binary needs libtorch 0.0.1 (cu999): pip install torch==0.0.1');
    });
  });
});
