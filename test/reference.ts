// Runs the Python reference scripts (Debian's /usr/bin/python3 with
// python3-torch/torchvision) into test/.cache, once per machine.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';

export const root = resolve(__dirname, '..');
export const cacheDir = join(root, 'test', '.cache');

/** Runs scripts/<script> OUTDIR ...args unless every file in `produces` already exists there. */
export function reference(script: string, outDir: string, args: string[], produces: string[]): string {
  const dir = join(cacheDir, outDir);
  if (produces.every((f) => existsSync(join(dir, f)))) return dir;
  mkdirSync(dir, { recursive: true });
  execFileSync('/usr/bin/python3', [join(root, 'scripts', script), dir, ...args], { stdio: ['ignore', 'ignore', 'inherit'], timeout: 600000 });
  return dir;
}

/**
 * A Python for the tests that compare with Hugging Face's own libraries: the
 * first of FINETORCH_TRANSFORMERS_PYTHON, .venv-torch2 (made by
 * scripts/setup.sh) and Debian's python3 that imports `modules`. Null when
 * none does (the caller skips those tests, with a warning), unless
 * FINETORCH_REQUIRE_TRANSFORMERS=1 (CI's libtorch 2.x leg), which makes it an
 * error.
 */
export function transformersPython(modules = 'torch, transformers, safetensors'): string | null {
  const candidates = [process.env.FINETORCH_TRANSFORMERS_PYTHON, join(root, '.venv-torch2', 'bin', 'python'), '/usr/bin/python3'];
  for (const py of candidates) {
    if (!py || (py.startsWith('/') && !existsSync(py))) continue;
    if (spawnSync(py, ['-c', `import ${modules}`], { stdio: 'ignore', timeout: 120000 }).status === 0) return py;
  }
  if (process.env.FINETORCH_REQUIRE_TRANSFORMERS === '1')
    throw new Error(`FINETORCH_REQUIRE_TRANSFORMERS=1 but no Python that imports ${modules} was found (set FINETORCH_TRANSFORMERS_PYTHON)`);
  console.warn(`no Python that imports ${modules}: the comparisons with them are skipped (set FINETORCH_TRANSFORMERS_PYTHON)`);
  return null;
}
