// The source build without CMake: a machine with a compiler, make and python3
// but no CMake builds the addon through node-gyp (binding.gyp), offline, and
// the binary loads and runs. The package is packed as npm would ship it, with
// no prebuilt binary; `cmake` is a shim that fails (and records the call), as
// on a machine without it; node-gyp's header cache is an empty folder, so the
// headers must come from the Node install (--nodedir), not a download.
// Slow: a full compile of native/ (about 3 minutes on 2 cores).
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { packPackage } from '../../scripts/release.mjs';

const root = resolve(__dirname, '..', '..');

let tmp: string;
let pkg: string;
let devdir: string;
let cmakeLog: string;
let install: { status: number | null; output: string; seconds: number };
let env: NodeJS.ProcessEnv;

beforeAll(() => {
  tmp = mkdtempSync(join(tmpdir(), 'finetorch-gyp-'));
  const pack = packPackage(root, tmp);
  const untar = spawnSync('tar', ['xzf', pack.file, '-C', tmp], { encoding: 'utf8' });
  if (untar.status !== 0) throw new Error(untar.stderr);
  pkg = join(tmp, 'package');
  rmSync(join(pkg, 'prebuilds'), { recursive: true, force: true });
  // node-addon-api (a dependency) and the runtime dependencies, as npm would have installed them
  symlinkSync(join(root, 'node_modules'), join(pkg, 'node_modules'));

  const shims = join(tmp, 'shims');
  mkdirSync(shims);
  cmakeLog = join(tmp, 'cmake.log');
  writeFileSync(join(shims, 'cmake'), `#!/bin/sh\necho "cmake $*" >> '${cmakeLog}'\nexit 127\n`);
  chmodSync(join(shims, 'cmake'), 0o755);
  devdir = join(tmp, 'node-gyp-cache');
  mkdirSync(devdir);
  // npm_* settings from a parent `npm test` (a global nodedir among them) must not help the build.
  env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^(npm_|FINETORCH_|LIBTORCH$|NODE_OPTIONS$)/i.test(k)));
  env.PATH = `${shims}:${process.env.PATH}`;
  env.npm_config_devdir = devdir;

  const started = Date.now();
  const r = spawnSync(process.execPath, [join(pkg, 'scripts', 'install.mjs')], { cwd: pkg, encoding: 'utf8', env, timeout: 1200000 });
  install = { status: r.status, output: `${r.stdout}\n${r.stderr}`, seconds: (Date.now() - started) / 1000 };
  console.log(`install (node-gyp source build): ${install.seconds.toFixed(0)} s`);
}, 1300000);

afterAll(() => {
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

describe('source build without CMake', () => {
  it('install builds with node-gyp, offline, and never runs cmake beyond asking its version', () => {
    expect(install.status, install.output).toBe(0);
    expect(install.output).toContain('no prebuilt binary for');
    expect(install.output).toContain('finetorch: building with node-gyp (no working cmake on PATH)');
    expect(readFileSync(cmakeLog, 'utf8')).toBe('cmake --version\n');
    // the headers came from the Node install, nothing was downloaded into node-gyp's cache
    expect(readdirSync(devdir)).toEqual([]);
    expect(existsSync(join(pkg, 'build', 'Release', 'finetorch.node'))).toBe(true);
    const record = JSON.parse(readFileSync(join(pkg, 'build', 'libtorch.json'), 'utf8'));
    expect(record.builder).toBe('node-gyp');
    expect(record.cmakePrefix).toBeTruthy();
  });

  it('the node-gyp binary loads as the source build and runs a forward pass that matches values computed by hand', () => {
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
      join(pkg, 'main.mjs'),
      `
      import { torch, nn, loadReport } from './dist/index.js';
      const m = new nn.Linear(3, 2);
      m.loadStateDict({ weight: torch.tensor(${JSON.stringify(W)}, { dtype: 'float32' }), bias: torch.tensor(${JSON.stringify(b)}, { dtype: 'float32' }) });
      const y = m.forward(torch.tensor(${JSON.stringify(x)}, { dtype: 'float32' }));
      console.log(JSON.stringify({ report: loadReport, y: y.toArray() }));
    `,
    );
    const r = spawnSync(process.execPath, ['main.mjs'], { cwd: pkg, encoding: 'utf8', env });
    expect(r.status, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.report.origin).toBe('source build');
    expect(out.report.builder).toBe('node-gyp');
    expect(out.report.path).toBe(join(pkg, 'build', 'Release', 'finetorch.node'));
    // y = x W^T + b, by hand (every value here is exact in float32)
    const expected = x.map((row) => W.map((w, j) => row.reduce((s, v, k) => s + v * w[k], b[j])));
    expect(expected).toEqual([
      [4.625, -2.25],
      [14.125, -14],
      [1.375, -1.5625],
    ]);
    expect(out.y).toEqual(expected);
  });

  it('build-native refuses a builder it does not know and --out with node-gyp, naming the option', () => {
    const script = join(pkg, 'scripts', 'build-native.mjs');
    const bogus = spawnSync(process.execPath, [script, '--builder', 'bazel'], { cwd: pkg, encoding: 'utf8', env });
    expect(bogus.status).toBe(2);
    expect(bogus.stderr).toContain("--builder must be cmake-js or node-gyp, not 'bazel'");
    const out = spawnSync(process.execPath, [script, '--builder', 'node-gyp', '--out', 'elsewhere'], { cwd: pkg, encoding: 'utf8', env });
    expect(out.status).toBe(2);
    expect(out.stderr).toContain('--out elsewhere needs --builder cmake-js');
  });
});
