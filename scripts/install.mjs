#!/usr/bin/env node
// npm install hook. In order:
//   1. a prebuilt binary (prebuilds/<platform>-<arch>/<flavor>/) that loads
//      with the libtorch on this machine: use it, no compiler is run;
//   2. the same, with the libtorch that discovery finds (FINETORCH_LIBTORCH,
//      LIBTORCH, a Python torch) preloaded, for prebuilds whose rpath points at
//      the build machine's libtorch; the folder is recorded in
//      build/prebuilt.json for the loader;
//   3. otherwise build from source (scripts/build-native.mjs: cmake-js when
//      CMake works, else node-gyp), saying so and why;
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
import { findLibtorch, notFoundMessage } from './find-libtorch.mjs';
import { flavorFix, libtorchAt, listPrebuilds, packageRoot as root, platformTag } from './libtorch.mjs';
import { probe } from './prebuild.mjs';

const env = process.env;
const dryRun = Boolean(env.FINETORCH_INSTALL_DRY_RUN);
if (env.FINETORCH_SKIP_BUILD) {
  console.log('finetorch: FINETORCH_SKIP_BUILD is set; no native binary installed');
  process.exit(0);
}
const record = join(root, 'build', 'prebuilt.json');
const checkout = existsSync(join(root, '.git'));

// 1 and 2: prebuilt binaries. Each attempt: {text, flavor} (flavor when a prebuilt failed).
const prebuildAttempts = [];
let found;
if (env.FINETORCH_FROM_SOURCE) {
  prebuildAttempts.push({ text: 'prebuilt binaries: skipped (FINETORCH_FROM_SOURCE is set)' });
} else if (checkout) {
  prebuildAttempts.push({ text: 'prebuilt binaries: skipped in a git checkout (development builds from source)' });
} else {
  const prebuilds = listPrebuilds(root);
  if (prebuilds.length === 0) prebuildAttempts.push({ text: `prebuilt binaries: none for ${platformTag} in this package` });
  for (const p of prebuilds) {
    const r = probe(p.file);
    if (r.ok) use(p, r, null);
    prebuildAttempts.push({ text: `prebuilt ${platformTag}/${p.flavor}: ${r.error}`, flavor: p.flavor });
  }
  if (prebuilds.length > 0) {
    found = findLibtorch();
    if (found.cmakePrefix) {
      const { libdir } = libtorchAt(found.cmakePrefix);
      for (const p of prebuilds) {
        const r = probe(p.file, { libdir, cuda: p.cuda });
        if (r.ok) use(p, r, { libdir, source: found.source });
        prebuildAttempts.push({ text: `prebuilt ${platformTag}/${p.flavor} with libtorch preloaded from ${libdir}: ${r.error}`, flavor: p.flavor });
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
const fixes = prebuildAttempts.map(({ text, flavor }) => {
  if (!flavor || fixed.has(flavor)) return text;
  fixed.add(flavor);
  return `${text}\n      fix: ${flavorFix(flavor)}`;
});
if (!found.cmakePrefix) {
  console.error(`finetorch: no prebuilt binary loaded and no libtorch to build against. Tried:\n  ${fixes.join('\n  ')}`);
  console.error(notFoundMessage(found.tried).replace(/^finetorch: no libtorch found\. Tried:/, 'libtorch for a source build:'));
  console.error('Then run npm rebuild finetorch. FINETORCH_SKIP_BUILD=1 installs the JavaScript without a native binary.');
  process.exit(1);
}
const version = libtorchAt(found.cmakePrefix).version ?? 'unknown version';
if (!checkout || env.FINETORCH_FROM_SOURCE) {
  console.log(
    `finetorch: no prebuilt binary for ${platformTag} with libtorch ${version} (${found.source}) matched; building from source\n  ` + fixes.join('\n  '),
  );
}

const built = join(root, 'build', 'Release', 'finetorch.node');
if (existsSync(built)) {
  const newest = Math.max(
    ...['CMakeLists.txt', 'binding.gyp', ...readdirSync(join(root, 'native')).map((f) => join('native', f))].map((f) => statSync(join(root, f)).mtimeMs),
  );
  if (statSync(built).mtimeMs > newest && probe(built).ok) {
    console.log('finetorch: native addon is up to date');
    process.exit(0);
  }
}
if (dryRun) {
  console.log(
    `finetorch: dry run (FINETORCH_INSTALL_DRY_RUN): would build against ${found.cmakePrefix} with node ${relative(root, join(root, 'scripts', 'build-native.mjs'))}`,
  );
  process.exit(0);
}
try {
  execFileSync(process.execPath, [join(root, 'scripts', 'build-native.mjs')], { stdio: 'inherit', cwd: root });
  rmSync(record, { force: true });
} catch {
  console.error(
    'finetorch: the source build failed (output above). It needs a C++17 compiler and make, and either CMake >= 3.18\n' +
      "  (cmake-js) or, without CMake, python3 and Node's headers (node-gyp; it downloads the headers unless <node prefix>/include/node\n" +
      '  has them or npm_config_nodedir names them) (Debian/Ubuntu: apt-get install g++ make cmake),\n' +
      '  and the libtorch headers (libtorch-dev, a pip torch or a libtorch zip).\n' +
      '  Or use a libtorch that a prebuilt binary of this package matches: ' +
      (listPrebuilds(root)
        .map((p) => p.flavor)
        .join(', ') || 'none ship for this platform'),
  );
  process.exit(1);
}
