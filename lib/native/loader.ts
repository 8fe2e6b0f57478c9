// Finds and loads the native addon. Every attempt is recorded, and when none
// works one error lists them all with what to do (sharp's loader does this).
import { createRequire } from 'node:module';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { NativeBinding } from './binding.js';

/** The package root: lib/native/ (sources) and dist/native/ (built) are both two levels down. */
export const packageRoot = fileURLToPath(new URL('../../', import.meta.url));

export interface LoadReport {
  /** Path of the .node file that was loaded. */
  path: string;
  /** How it was chosen: env, source build or prebuilt. */
  origin: 'FINETORCH_BINARY' | 'source build' | 'prebuilt';
  /** Where the libtorch it was built against came from (source builds record this). */
  libtorch: { source?: string; cmakePrefix?: string; version: string };
  /** Every candidate tried before this one, with why it failed. */
  attempts: string[];
}

function candidates(): Array<{ path: string; origin: LoadReport['origin'] }> {
  const out: Array<{ path: string; origin: LoadReport['origin'] }> = [];
  if (process.env.FINETORCH_BINARY) out.push({ path: process.env.FINETORCH_BINARY, origin: 'FINETORCH_BINARY' });
  out.push({ path: join(packageRoot, 'build', 'Release', 'finetorch.node'), origin: 'source build' });
  // prebuilds/<platform>-<arch>/<libtorch flavor>/finetorch.node; a flavor whose
  // libtorch is not on this machine fails to load and the next one is tried.
  const dir = join(packageRoot, 'prebuilds', `${process.platform}-${process.arch}`);
  if (existsSync(dir)) {
    for (const flavor of readdirSync(dir).sort()) {
      const file = join(dir, flavor, 'finetorch.node');
      if (existsSync(file)) out.push({ path: file, origin: 'prebuilt' });
    }
  }
  return out;
}

function load(): { binding: NativeBinding; report: LoadReport } {
  const require = createRequire(import.meta.url);
  const attempts: string[] = [];
  for (const c of candidates()) {
    if (!existsSync(c.path)) {
      attempts.push(`${c.origin}: ${c.path} does not exist`);
      continue;
    }
    try {
      const binding = require(c.path) as NativeBinding;
      let recorded: { source?: string; cmakePrefix?: string } = {};
      const meta = join(packageRoot, 'build', 'libtorch.json');
      if (c.origin === 'source build' && existsSync(meta)) recorded = JSON.parse(readFileSync(meta, 'utf8'));
      const version = binding.buildInfo().libtorchVersion;
      return { binding, report: { path: c.path, origin: c.origin, libtorch: { ...recorded, version }, attempts } };
    } catch (err) {
      attempts.push(`${c.origin}: ${c.path} failed to load: ${(err as Error).message.split('\n')[0]}`);
    }
  }
  throw new Error(
    'finetorch: could not load the native addon. Tried:\n  ' + attempts.join('\n  ') +
      '\nTo fix:\n' +
      '  - build from source: npm run build:native (needs a libtorch: apt-get install libtorch-dev libopenblas0-pthread,\n' +
      '    or pip install torch, or FINETORCH_LIBTORCH=/path/to/libtorch)\n' +
      '  - "libtorch*.so: cannot open shared object file": the libtorch the binary was built against is missing;\n' +
      '    reinstall it or rebuild against the one you have',
  );
}

const loaded = load();
export const native: NativeBinding = loaded.binding;
export const loadReport: LoadReport = loaded.report;

// Debian's libtorch starts with one intra-op thread; use every core by default
// (FINETORCH_NUM_THREADS overrides, torch.setNumThreads changes it later).
const requested = Number(process.env.FINETORCH_NUM_THREADS);
native.setNumThreads(Number.isInteger(requested) && requested > 0 ? requested : availableParallelism());
