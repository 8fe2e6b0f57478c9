#!/usr/bin/env node
// Source build of the addon: locate libtorch, run cmake-js, record what was used.
import { execFileSync } from 'node:child_process';
import { writeFileSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { availableParallelism } from 'node:os';
import { findLibtorch, notFoundMessage } from './find-libtorch.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const found = findLibtorch();
if (!found.cmakePrefix) {
  console.error(notFoundMessage(found.tried));
  process.exit(1);
}
console.log(`finetorch: building against libtorch from ${found.source} (${found.cmakePrefix})`);
const started = Date.now();
const cmakeJs = join(root, 'node_modules/cmake-js/bin/cmake-js');
execFileSync(process.execPath, [cmakeJs, 'build', '--parallel', String(availableParallelism()), '--log-level', 'warn',
  `--CDCMAKE_PREFIX_PATH=${found.cmakePrefix}`], { cwd: root, stdio: 'inherit' });
mkdirSync(join(root, 'build'), { recursive: true });
writeFileSync(join(root, 'build/libtorch.json'),
  JSON.stringify({ source: found.source, cmakePrefix: found.cmakePrefix, builtAt: new Date().toISOString(),
    buildSeconds: (Date.now() - started) / 1000 }, null, 2) + '\n');
console.log(`finetorch: native build done in ${((Date.now() - started) / 1000).toFixed(0)} s`);
