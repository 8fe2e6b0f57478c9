#!/usr/bin/env node
// Source build of the addon: locate libtorch, run cmake-js, record what was used.
//   node scripts/build-native.mjs [--out DIR] [--rebuild]
// --out builds in DIR instead of build/ (the release script builds its
// prebuilds apart from the development build); --rebuild starts clean.
// The binary is DIR/Release/finetorch.node and DIR/libtorch.json records the
// libtorch it was built against.
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { availableParallelism } from 'node:os';
import { findLibtorch, notFoundMessage } from './find-libtorch.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const { values: args } = parseArgs({ options: { out: { type: 'string' }, rebuild: { type: 'boolean' } } });
const out = resolve(root, args.out ?? 'build');
const found = findLibtorch();
if (!found.cmakePrefix) {
  console.error(notFoundMessage(found.tried));
  process.exit(1);
}
console.log(`finetorch: building against libtorch from ${found.source} (${found.cmakePrefix})`);
const started = Date.now();
// cmake-js is a dependency: in node_modules here, or hoisted next to finetorch
// when finetorch is itself installed as a dependency.
const cmakeJs = join(dirname(createRequire(import.meta.url).resolve('cmake-js/package.json')), 'bin', 'cmake-js');
// CMake caches Torch_DIR and cmake-js only configures a fresh build folder:
// when the libtorch found now is another one, start clean.
const torchDir = join(found.cmakePrefix, 'Torch');
const cache = join(out, 'CMakeCache.txt');
const cached = existsSync(cache) ? /^Torch_DIR:PATH=(.*)$/m.exec(readFileSync(cache, 'utf8'))?.[1] : undefined;
const rebuild = args.rebuild || (cached !== undefined && resolve(cached) !== resolve(torchDir));
if (rebuild && !args.rebuild) console.log(`finetorch: ${out} was configured for ${cached}; rebuilding`);
execFileSync(process.execPath, [cmakeJs, rebuild ? 'rebuild' : 'build', '--out', out,
  '--parallel', String(availableParallelism()), '--log-level', 'warn',
  `--CDCMAKE_PREFIX_PATH=${found.cmakePrefix}`, `--CDTorch_DIR=${torchDir}`], { cwd: root, stdio: 'inherit' });
mkdirSync(out, { recursive: true });
writeFileSync(join(out, 'libtorch.json'),
  JSON.stringify({ source: found.source, cmakePrefix: found.cmakePrefix, builtAt: new Date().toISOString(),
    buildSeconds: (Date.now() - started) / 1000 }, null, 2) + '\n');
console.log(`finetorch: native build done in ${((Date.now() - started) / 1000).toFixed(0)} s`);
