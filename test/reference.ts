// Runs the Python reference scripts (Debian's /usr/bin/python3 with
// python3-torch/torchvision) into test/.cache, once per machine.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
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
    if (importsModules(py, modules)) return py;
  }
  if (process.env.FINETORCH_REQUIRE_TRANSFORMERS === '1')
    throw new Error(`FINETORCH_REQUIRE_TRANSFORMERS=1 but no Python that imports ${modules} was found (set FINETORCH_TRANSFORMERS_PYTHON)`);
  console.warn(`no Python that imports ${modules}: the comparisons with them are skipped (set FINETORCH_TRANSFORMERS_PYTHON)`);
  return null;
}

/**
 * Whether `py` imports `modules`. Importing transformers takes seconds and a
 * dozen test files ask, so a yes is remembered in test/.cache for an hour,
 * keyed by the interpreter and its packages folder's modification time
 * (installing or removing a package changes it).
 */
function importsModules(py: string, modules: string): boolean {
  const file = join(cacheDir, 'python-imports.json');
  let packages = '';
  try {
    const lib = join(py, '..', '..', 'lib');
    const venv = existsSync(join(py, '..', '..', 'pyvenv.cfg'));
    const folder = venv ? join(lib, readdirSync(lib).find((d) => d.startsWith('python3')) ?? '', 'site-packages') : '/usr/lib/python3/dist-packages';
    packages = String(statSync(folder).mtimeMs);
  } catch {}
  const key = `${py} ${packages} ${modules}`;
  let seen: Record<string, number> = {};
  try {
    seen = JSON.parse(readFileSync(file, 'utf8')) as Record<string, number>;
  } catch {}
  if (Date.now() - (seen[key] ?? 0) < 3600_000) return true;
  if (spawnSync(py, ['-c', `import ${modules}`], { stdio: 'ignore', timeout: 120000 }).status !== 0) return false;
  try {
    mkdirSync(cacheDir, { recursive: true });
    seen[key] = Date.now();
    writeFileSync(file, JSON.stringify(seen));
  } catch {}
  return true;
}
