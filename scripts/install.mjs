#!/usr/bin/env node
// npm install hook. In order:
//   1. a prebuilt binary (prebuilds/<platform>-<arch>/<flavor>/) that loads
//      with the libtorch on this machine: use it, no compiler is run;
//   2. the same, with the libtorch that discovery finds (FINETORCH_LIBTORCH,
//      LIBTORCH, a Python torch) preloaded, for prebuilds whose rpath points at
//      the build machine's libtorch; the folder is recorded in
//      build/prebuilt.json for the loader;
//   3. otherwise build from source (cmake-js), saying so and why;
//   4. no libtorch at all: one error with every attempt and the fix for each.
// In a git checkout (development) the source build is used, and skipped when
// it is newer than every native source.
//
// Environment:
//   FINETORCH_SKIP_BUILD=1       do nothing (install the JS only)
//   FINETORCH_FROM_SOURCE=1      ignore prebuilt binaries, build from source
//   FINETORCH_INSTALL_DRY_RUN=1  print the decision, build nothing (exit 1 only
//                                when there is neither a prebuilt nor a libtorch)
import { existsSync, mkdirSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { findLibtorch, libDirFor, libtorchVersionAt, notFoundMessage } from './find-libtorch.mjs';
import { flavorFix, listPrebuilds, platformTag, probe } from './prebuild.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const env = process.env;
const dryRun = Boolean(env.FINETORCH_INSTALL_DRY_RUN);
if (env.FINETORCH_SKIP_BUILD) {
  console.log('finetorch: FINETORCH_SKIP_BUILD is set; no native binary installed');
  process.exit(0);
}
const record = join(root, 'build', 'prebuilt.json');
const checkout = existsSync(join(root, '.git'));

// 1 and 2: prebuilt binaries.
const prebuildAttempts = [];
let found;
if (env.FINETORCH_FROM_SOURCE) {
  prebuildAttempts.push('prebuilt binaries: skipped (FINETORCH_FROM_SOURCE is set)');
} else if (checkout) {
  prebuildAttempts.push('prebuilt binaries: skipped in a git checkout (development builds from source)');
} else {
  const prebuilds = listPrebuilds(root);
  if (prebuilds.length === 0) prebuildAttempts.push(`prebuilt binaries: none for ${platformTag} in this package`);
  for (const p of prebuilds) {
    const r = probe(p.file);
    if (r.ok) use(p, r, null);
    prebuildAttempts.push(`prebuilt ${platformTag}/${p.flavor}: ${r.error}`);
  }
  if (prebuilds.length > 0) {
    found = findLibtorch();
    if (found.cmakePrefix) {
      const libdir = libDirFor(found.cmakePrefix);
      for (const p of prebuilds) {
        const r = probe(p.file, { libdir, cuda: Boolean(p.meta.cuda ?? /-cu/.test(p.flavor)) });
        if (r.ok) use(p, r, { libdir, source: found.source });
        prebuildAttempts.push(`prebuilt ${platformTag}/${p.flavor} with libtorch preloaded from ${libdir}: ${r.error}`);
      }
    }
  }
}

function use(p, r, preload) {
  const how = preload ? `, libtorch preloaded from ${preload.libdir} (${preload.source})` : '';
  console.log(`finetorch: using prebuilt binary ${platformTag}/${p.flavor} (libtorch ${r.info.libtorchVersion}${how}); no compiler needed`);
  if (!dryRun) {
    if (preload) {
      mkdirSync(dirname(record), { recursive: true });
      writeFileSync(record, JSON.stringify({ flavor: p.flavor, libdir: preload.libdir, source: preload.source }, null, 2) + '\n');
    } else {
      rmSync(record, { force: true });
    }
  }
  process.exit(0);
}

// 3 and 4: build from source.
found ??= findLibtorch();
const fixed = new Set();
const fixes = prebuildAttempts.map((a) => {
  const flavor = /prebuilt \S+\/(libtorch-\S+?)[: ]/.exec(a)?.[1];
  if (!flavor || fixed.has(flavor)) return a;
  fixed.add(flavor);
  return `${a}\n      fix: ${flavorFix(flavor)}`;
});
if (!found.cmakePrefix) {
  console.error(`finetorch: no prebuilt binary loaded and no libtorch to build against. Tried:\n  ${fixes.join('\n  ')}`);
  console.error(notFoundMessage(found.tried).replace(/^finetorch: no libtorch found\. Tried:/, 'libtorch for a source build:'));
  console.error('Then run npm rebuild finetorch. FINETORCH_SKIP_BUILD=1 installs the JavaScript without a native binary.');
  process.exit(1);
}
const version = libtorchVersionAt(found.cmakePrefix) ?? 'unknown version';
if (!checkout || env.FINETORCH_FROM_SOURCE) {
  console.log(`finetorch: no prebuilt binary for ${platformTag} with libtorch ${version} (${found.source}) matched; building from source\n  ` +
    fixes.join('\n  '));
}

const built = join(root, 'build', 'Release', 'finetorch.node');
if (existsSync(built)) {
  const newest = Math.max(...['CMakeLists.txt', ...readdirSync(join(root, 'native')).map((f) => join('native', f))]
    .map((f) => statSync(join(root, f)).mtimeMs));
  if (statSync(built).mtimeMs > newest && probe(built).ok) {
    console.log('finetorch: native addon is up to date');
    process.exit(0);
  }
}
if (dryRun) {
  console.log(`finetorch: dry run (FINETORCH_INSTALL_DRY_RUN): would build against ${found.cmakePrefix} with node ${relative(root, join(root, 'scripts', 'build-native.mjs'))}`);
  process.exit(0);
}
try {
  execFileSync(process.execPath, [join(root, 'scripts', 'build-native.mjs')], { stdio: 'inherit', cwd: root });
  rmSync(record, { force: true });
} catch {
  console.error('finetorch: the source build failed (output above). It needs a C++17 compiler, CMake >= 3.18 and make or ninja\n' +
    '  (Debian/Ubuntu: apt-get install g++ cmake make), and the libtorch headers (libtorch-dev, a pip torch or a libtorch zip).\n' +
    '  Or use a libtorch that a prebuilt binary of this package matches: ' +
    (listPrebuilds(root).map((p) => p.flavor).join(', ') || 'none ship for this platform'));
  process.exit(1);
}
