// Runs the Python reference scripts (Debian's /usr/bin/python3 with
// python3-torch/torchvision) into test/.cache, once per machine.
import { execFileSync } from 'node:child_process';
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
