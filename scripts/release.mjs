#!/usr/bin/env node
// Builds the prebuilt binary for this machine's libtorch and the npm package.
//
//   npm run release                      clean build, place, TypeScript, pack
//   npm run release -- --skip-build      place the existing build/Release/finetorch.node instead
//   npm run release -- --no-pack         stop after placing (CI jobs that only make a prebuild)
//   npm run release -- --pack-only       no build, no placing: pack with the prebuilds already in
//                                        prebuilds/ (CI's packaging job, after collecting them)
//   npm run release -- --pack-destination DIR   where the .tgz goes (default: the package root)
//   npm run release -- --out DIR         build in DIR (default build/release); with
//                                        --skip-build, place DIR's existing build
//
// The flavor is the libtorch it is built against: FINETORCH_LIBTORCH selects it,
// e.g. the CUDA flavor from a pip torch (CUDA toolkit from CUDA_HOME, else
// /usr/local/cuda):
//   FINETORCH_LIBTORCH=$(python -c 'import os, torch; print(os.path.dirname(torch.__file__))') \
//     npm run release -- --out build-cuda      -> prebuilds/linux-x64/libtorch-2.14.1-cu130
//
// 1. build: scripts/build-native.mjs --out build/release --rebuild, a clean
//    cmake-js build against the libtorch that discovery finds (FINETORCH_LIBTORCH,
//    LIBTORCH, a Python torch, the system libtorch), apart from the development
//    build in build/;
// 2. place: prebuilds/<platform>-<arch>/<flavor>/finetorch.node + prebuild.json
//    (scripts/prebuild.mjs; flavor from the binary's buildInfo(), e.g.
//    libtorch-1.13.0-cpu, libtorch-2.11.0-cu130). Other flavors already in
//    prebuilds/ (copied from other machines, as CI does) are kept and packed;
// 3. TypeScript: dist/ files whose source is gone are removed, then tsc;
// 4. npm pack (--ignore-scripts: prepare has just been done), then a check that
//    the tarball holds dist/ and the prebuilds and none of build/, node_modules/,
//    test/, bench/. Prints the tarball, its size and the prebuilds inside.
// Publishing is `npm publish <tgz>`, left to the caller (CI does it on a tag).
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { pathToFileURL } from 'node:url';
import { packageRoot, placePrebuild } from './prebuild.mjs';

const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';

/** Paths a published package must not contain, and ones it must. */
const JUNK = [/^build\//, /^node_modules\//, /^test\//, /^bench\//, /(^|\/)\.cache\//, /^test-results\//, /\.tgz$/, /^\.git\//];
// scripts/libtorch.mjs is imported by dist/native/loader.js at run time.
const REQUIRED = [
  'package.json',
  'dist/index.js',
  'dist/index.d.ts',
  'dist/native/loader.js',
  'scripts/install.mjs',
  'scripts/prebuild.mjs',
  'scripts/libtorch.mjs',
];

/**
 * npm pack of `root` into `dest` without lifecycle scripts; returns
 * {file, size, unpackedSize, files} and throws when the contents are wrong.
 */
export function packPackage(root = packageRoot, dest = root) {
  const out = execFileSync(npm, ['pack', '--ignore-scripts', '--json', '--pack-destination', dest], {
    cwd: root,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const [info] = JSON.parse(out);
  const files = info.files.map((f) => f.path);
  const problems = [
    ...files.filter((f) => JUNK.some((re) => re.test(f))).map((f) => `should not be packed: ${f}`),
    ...REQUIRED.filter((f) => !files.includes(f)).map((f) => `missing: ${f}`),
  ];
  if (problems.length) throw new Error(`finetorch: the package is wrong:\n  ${problems.join('\n  ')}`);
  return { file: join(dest, info.filename), size: info.size, unpackedSize: info.unpackedSize, files };
}

/** Removes dist/ outputs whose lib/ source no longer exists (tsc never deletes them). */
function removeStaleDist(root) {
  const dist = join(root, 'dist');
  if (!existsSync(dist)) return [];
  const removed = [];
  const walk = (dir) => {
    for (const name of readdirSync(dir)) {
      const file = join(dir, name);
      if (statSync(file).isDirectory()) {
        walk(file);
        continue;
      }
      const m = /^(.*)\.(js|js\.map|d\.ts)$/.exec(relative(dist, file));
      if (m && !existsSync(join(root, 'lib', `${m[1]}.ts`))) {
        rmSync(file);
        removed.push(relative(root, file));
      }
    }
  };
  walk(dist);
  return removed;
}

/** Steps 1 and 2: a clean build (or the existing one with --skip-build), placed as a prebuilt. */
function buildAndPlace(root, args) {
  let buildDir = args.out ? resolve(args.out) : join(root, 'build');
  if (!args['skip-build']) {
    buildDir = args.out ? resolve(args.out) : join(root, 'build', 'release');
    execFileSync(process.execPath, [join(root, 'scripts', 'build-native.mjs'), '--out', buildDir, '--rebuild'], { cwd: root, stdio: 'inherit' });
  }
  const binary = join(buildDir, 'Release', 'finetorch.node');
  if (!existsSync(binary)) throw new Error(`finetorch: ${binary} does not exist; build it (npm run build:native) or drop --skip-build`);
  const libtorchJson = join(buildDir, 'libtorch.json');
  const libtorch = existsSync(libtorchJson) ? JSON.parse(readFileSync(libtorchJson, 'utf8')) : {};
  const placed = placePrebuild(binary, { root, libtorch: { source: libtorch.source, cmakePrefix: libtorch.cmakePrefix } });
  console.log(`release: placed ${relative(root, placed.file)} (${(statSync(placed.file).size / 1e6).toFixed(1)} MB)`);
}

function main() {
  const { values: args } = parseArgs({
    options: {
      'skip-build': { type: 'boolean' },
      'no-pack': { type: 'boolean' },
      'pack-only': { type: 'boolean' },
      'pack-destination': { type: 'string' },
      out: { type: 'string' },
    },
  });
  const root = packageRoot;
  const started = Date.now();
  if (!args['pack-only']) buildAndPlace(root, args);
  if (args['no-pack']) return;

  // Steps 3 and 4.
  const stale = removeStaleDist(root);
  if (stale.length) console.log(`release: removed stale ${stale.join(', ')}`);
  execFileSync(process.execPath, [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.json'], { cwd: root, stdio: 'inherit' });
  const dest = resolve(args['pack-destination'] ?? root);
  const pack = packPackage(root, dest);
  const prebuilds = pack.files.filter((f) => f.endsWith('finetorch.node'));
  console.log(
    `release: ${pack.file}: ${(pack.size / 1e6).toFixed(2)} MB packed, ` +
      `${(pack.unpackedSize / 1e6).toFixed(2)} MB unpacked, ${pack.files.length} files, in ${((Date.now() - started) / 1000).toFixed(0)} s`,
  );
  console.log(`release: prebuilds in the package:\n  ${prebuilds.join('\n  ') || '(none)'}`);
  console.log(`release: publish with: npm publish ${pack.file}`);
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  try {
    main();
  } catch (err) {
    console.error(err.message);
    process.exit(1);
  }
}
