// Finds and loads the native addon. Every attempt is recorded, and when none
// works one error lists them all with what to do (sharp's loader does this).
import { existsSync, readFileSync } from 'node:fs';
import { availableParallelism, constants } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import type { NativeBinding } from './binding.js';
// The facts about libtorch folders, flavors and preloading are shared with the
// install and build scripts, which run before TypeScript is compiled: they
// live in plain JavaScript under scripts/ (shipped in the package; from
// lib/native/ and dist/native/ alike it is two levels up).
import {
  cmakePrefixFor,
  explicitLibtorch,
  flavorFix,
  libtorchAt,
  listPrebuilds,
  majorMinor,
  packageRoot,
  preloadLibtorch,
  runtimeMismatch,
} from '../../scripts/libtorch.mjs';

export { packageRoot };

export interface LoadReport {
  /** Path of the .node file that was loaded. */
  path: string;
  /** How it was chosen: env, source build or prebuilt. */
  origin: 'FINETORCH_BINARY' | 'source build' | 'prebuilt';
  /** For a prebuilt binary: its flavor folder, e.g. libtorch-1.13.0-cpu. */
  flavor?: string;
  /** For a source build: what built it (cmake-js, or node-gyp where CMake was missing). */
  builder?: 'cmake-js' | 'node-gyp';
  /**
   * Where the libtorch it was built against came from (source builds record
   * this); libdir when finetorch preloaded libtorch from there (a prebuilt
   * whose rpath does not reach this machine's libtorch).
   */
  libtorch: { source?: string; cmakePrefix?: string; libdir?: string; version: string };
  /** Every candidate tried before this one, with why it failed. */
  attempts: string[];
}

interface Candidate {
  path: string;
  origin: LoadReport['origin'];
  flavor?: string;
  /** libtorch version and CUDA-ness the binary needs (prebuilts say so in prebuild.json or their flavor name). */
  needs?: { version: string; cuda: boolean };
}

function readJson<T>(file: string): T | undefined {
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as T;
  } catch {
    return undefined;
  }
}

function candidates(): Candidate[] {
  const out: Candidate[] = [];
  // resolved against the working directory, as a user who typed a relative path means
  if (process.env.FINETORCH_BINARY) out.push({ path: resolve(process.env.FINETORCH_BINARY), origin: 'FINETORCH_BINARY' });
  out.push({ path: join(packageRoot, 'build', 'Release', 'finetorch.node'), origin: 'source build' });
  // A flavor whose libtorch is not on this machine fails to load and the next one is tried.
  for (const p of listPrebuilds(packageRoot)) {
    out.push({ path: p.file, origin: 'prebuilt', flavor: p.flavor, needs: p.version ? { version: p.version, cuda: p.cuda } : undefined });
  }
  return out;
}

/**
 * Where to preload libtorch from for a prebuilt: the folder install.mjs
 * verified for this flavor (build/prebuilt.json), else FINETORCH_LIBTORCH or
 * LIBTORCH when the libtorch there is the version the binary needs (preloading
 * another version next to the one the binary links would put two libtorch in
 * one process).
 */
function preloadDir(c: Candidate): { libdir: string; source: string } | undefined {
  const record = readJson<{ flavor?: string; libdir?: string; source?: string }>(join(packageRoot, 'build', 'prebuilt.json'));
  if (record?.libdir && record.flavor === c.flavor) return { libdir: record.libdir, source: record.source ?? 'build/prebuilt.json' };
  const explicit = explicitLibtorch();
  const cmakePrefix = explicit && cmakePrefixFor(explicit.dir);
  if (!explicit || !cmakePrefix || !c.needs) return undefined;
  const torch = libtorchAt(cmakePrefix);
  return majorMinor(torch.version) === majorMinor(c.needs.version) ? { libdir: torch.libdir, source: explicit.name } : undefined;
}

/** What to do about one failed attempt. */
function fixFor(c: Candidate): string {
  if (c.origin === 'source build') {
    return (
      'build from source: npm run build:native in a checkout, npm rebuild finetorch in a project ' +
      '(recent npm versions may skip a dependency\'s install script unless package.json "allowScripts" lists it) ' +
      '(needs a libtorch: apt-get install libtorch-dev libopenblas0-pthread, or pip install torch, or FINETORCH_LIBTORCH=/path/to/libtorch)'
    );
  }
  return `this binary ${flavorFix(c.flavor ?? '')}; or, with the libtorch you have, build from source (npm rebuild finetorch)`;
}

/**
 * dlopen the addon with every symbol bound now (require() binds lazily): a
 * binary linked against another libtorch then fails here, as an error this
 * loader reports, instead of killing the process at the first call of a
 * missing symbol ("symbol lookup error").
 */
function loadAddon(path: string): NativeBinding {
  const mod = { exports: {} };
  process.dlopen(mod, path, constants.dlopen.RTLD_NOW);
  return mod.exports as NativeBinding;
}

function load(): { binding: NativeBinding; report: LoadReport } {
  const attempts: string[] = [];
  const fixes: string[] = [];
  const fail = (c: Candidate, what: string) => {
    attempts.push(`${c.origin}: ${c.path} ${what}`);
    fixes.push(`${c.origin}${c.flavor ? ` ${c.flavor}` : ''}: ${fixFor(c)}`);
  };
  // FINETORCH_BINARY is an explicit choice: when it does not load, that is the
  // error (falling back would silently run another binary, on another libtorch).
  const explicitFailed = (c: Candidate, what: string) =>
    new Error(
      `finetorch: FINETORCH_BINARY=${c.path} ${what}.\n` +
        'Point FINETORCH_BINARY at a finetorch.node built for a libtorch on this machine ' +
        '(node scripts/build-native.mjs --out DIR builds DIR/Release/finetorch.node), or unset it to use the default binary.',
    );
  for (const c of candidates()) {
    if (!existsSync(c.path)) {
      if (c.origin === 'FINETORCH_BINARY') throw explicitFailed(c, 'does not exist');
      fail(c, 'does not exist');
      continue;
    }
    let pre: { libdir: string; source: string } | undefined;
    let binding: NativeBinding;
    try {
      try {
        binding = loadAddon(c.path);
      } catch (err) {
        pre = c.origin === 'prebuilt' && /cannot open shared object file/.test((err as Error).message) ? preloadDir(c) : undefined;
        if (!pre) throw err;
        preloadLibtorch(pre.libdir, c.needs?.cuda ?? false);
        binding = loadAddon(c.path);
      }
    } catch (err) {
      if (c.origin === 'FINETORCH_BINARY') throw explicitFailed(c, `failed to load: ${(err as Error).message.split('\n')[0]}`);
      fail(c, `failed to load${pre ? ` (libtorch preloaded from ${pre.libdir})` : ''}: ${(err as Error).message.split('\n')[0]}`);
      continue;
    }
    const info = binding.buildInfo();
    // libtorch has no stable C++ ABI: a binary on another libtorch than its own
    // (possible with unversioned libtorch.so files) must not be used. That
    // libtorch is now in the process, so trying further candidates is unsafe.
    const mismatch = runtimeMismatch(info);
    if (mismatch) {
      throw new Error(
        `finetorch: ${c.path} (${c.origin}) was ${mismatch} ` +
          '(LD_LIBRARY_PATH or FINETORCH_LIBTORCH points at another libtorch). Rebuild from source against it: npm run build:native, ' +
          `or use libtorch ${info.libtorchVersion}.` +
          (attempts.length ? '\nEarlier attempts:\n  ' + attempts.join('\n  ') : ''),
      );
    }
    const report: LoadReport = { path: c.path, origin: c.origin, libtorch: { version: info.libtorchVersion }, attempts };
    if (c.flavor) report.flavor = c.flavor;
    if (pre) report.libtorch = { source: pre.source, libdir: pre.libdir, version: info.libtorchVersion };
    if (c.origin === 'source build' || c.origin === 'FINETORCH_BINARY') {
      // written by scripts/build-native.mjs next to DIR/Release/finetorch.node
      const built = readJson<{ source?: string; cmakePrefix?: string; builder?: LoadReport['builder'] }>(join(dirname(c.path), '..', 'libtorch.json'));
      report.libtorch = { source: built?.source, cmakePrefix: built?.cmakePrefix, version: info.libtorchVersion };
      if (built?.builder) report.builder = built.builder;
    }
    return { binding, report };
  }
  throw new Error(
    'finetorch: could not load the native addon. Tried:\n  ' +
      attempts.join('\n  ') +
      '\nTo fix:\n  - ' +
      fixes.join('\n  - ') +
      '\n  - "libtorch*.so: cannot open shared object file": the libtorch the binary was built against is missing;\n' +
      '    reinstall it or rebuild against the one you have (npm run build:native; needs a libtorch:\n' +
      '    apt-get install libtorch-dev libopenblas0-pthread, or pip install torch, or FINETORCH_LIBTORCH=/path/to/libtorch)',
  );
}

// OpenMP's spin-wait (libgomp, read once when libtorch loads it). By default
// an idle team worker spins ~3 ms (300,000 rounds) before sleeping: right
// for a machine that runs nothing else, but the spinning steals the cores
// that sharp's decoders, the event loop and other processes need (a PNG
// epoch ran 132 images/s; ResNet-18 training at 2 threads collapsed from
// 180 to ~25 images/s next to one busy process, as PyTorch's does). Spinning
// 10,000 rounds keeps the quiet-machine speed (176-181 images/s), gives the
// epoch 146 and the busy case ~32; ACTIVE raises libgomp's spin when it has
// more threads than cores (the main thread also ran a parallel op) from 100
// to 1,000 rounds. Measured in bench/ (BENCHMARKS.md). The variables are only
// set for the load and removed after, so child processes do not inherit
// them; setting either yourself keeps libgomp's own defaults and yours.
const OMP_TUNING = { OMP_WAIT_POLICY: 'ACTIVE', GOMP_SPINCOUNT: '10000' };
const ompByUser = Object.keys(OMP_TUNING).some((k) => process.env[k] !== undefined);
if (!ompByUser) Object.assign(process.env, OMP_TUNING);
let loaded: ReturnType<typeof load>;
try {
  loaded = load();
} finally {
  if (!ompByUser) for (const k of Object.keys(OMP_TUNING)) delete process.env[k];
}
export const native: NativeBinding = loaded.binding;
export const loadReport: LoadReport = loaded.report;

// Debian's libtorch starts with one intra-op thread; use every core by default
// (FINETORCH_NUM_THREADS overrides, torch.setNumThreads changes it later).
const requested = Number(process.env.FINETORCH_NUM_THREADS);
native.setNumThreads(Number.isInteger(requested) && requested > 0 ? requested : availableParallelism());
