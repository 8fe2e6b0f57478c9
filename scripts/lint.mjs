#!/usr/bin/env node
// Lint and format check: Biome for TypeScript/JavaScript (biome.jsonc), clang-format
// for native/ (.clang-format).
//   npm run lint       check only; exits 1 when anything would change or a rule fails
//   npm run lint:fix   format both and apply Biome's safe fixes; what is left needs a hand
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { packageRoot as root } from './libtorch.mjs';

const { values: args } = parseArgs({ options: { fix: { type: 'boolean' } } });
const biome = join(root, 'node_modules', '@biomejs', 'biome', 'bin', 'biome');
const native = readdirSync(join(root, 'native'))
  .filter((f) => /\.(cc|h)$/.test(f))
  .map((f) => join('native', f));

let failed = false;
const run = (what, cmd, cmdArgs) => {
  const r = spawnSync(cmd, cmdArgs, { cwd: root, stdio: 'inherit' });
  if (r.error?.code === 'ENOENT') {
    console.error(`lint: ${cmd} not found; ${what === 'clang-format' ? 'apt-get install clang-format (Debian/Ubuntu)' : 'npm ci'}`);
    failed = true;
  } else if (r.status !== 0) {
    console.error(`lint: ${what} failed`);
    failed = true;
  }
};

run('biome', process.execPath, [biome, 'check', '--error-on-warnings', ...(args.fix ? ['--write'] : [])]);
run('clang-format', 'clang-format', args.fix ? ['-i', ...native] : ['--dry-run', '--Werror', ...native]);
process.exit(failed ? 1 : 0);
