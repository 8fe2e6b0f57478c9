#!/usr/bin/env node
// Prebuilt binaries: naming, placing and test-loading them. Used by the
// release script (to place a fresh build), by install.mjs (to pick one) and by
// the packaging test (to place the CI machine's build exactly as a release would).
//
// Layout: prebuilds/<platform>-<arch>/<flavor>/finetorch.node + prebuild.json,
// flavor = libtorch-<version>-<cpu|cuXYZ> (scripts/libtorch.mjs: flavor names,
// listing prebuilds, preloading libtorch). libtorch has no stable C++ ABI, so a
// binary is tied to one libtorch version and CUDA variant; node-gyp-build's
// tags (platform, arch, napi, libc) cannot say that, so finetorch's own loader
// walks these folders.
//
// CLI: node scripts/prebuild.mjs <finetorch.node> [packageRoot]  (places it, prints JSON)
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { cudaVersionOf, flavorOf, packageRoot, platformTag, runtimeMismatch } from './libtorch.mjs';

export { packageRoot, platformTag };

/**
 * Source of an ES module that preloads libtorch from `libdir` (when given),
 * then requires `file` and prints its buildInfo() as JSON. Run in a child process.
 */
function probeScript(file, libdir, cuda) {
  return `
    import { createRequire } from 'node:module';
    import { preloadLibtorch } from ${JSON.stringify(new URL('./libtorch.mjs', import.meta.url).href)};
    const libdir = ${JSON.stringify(libdir ?? null)};
    if (libdir) preloadLibtorch(libdir, ${JSON.stringify(cuda)});
    const info = createRequire(${JSON.stringify(file)})(${JSON.stringify(file)}).buildInfo();
    process.stdout.write(JSON.stringify(info));`;
}

/**
 * Loads a binary in a child process (a bad one cannot take the caller down)
 * and returns {ok: true, info} with its buildInfo(), or {ok: false, error}
 * with the first line of why it failed.
 */
export function probe(file, { libdir, cuda = false } = {}) {
  try {
    const out = execFileSync(process.execPath, ['--input-type=module', '-e', probeScript(file, libdir, cuda)], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
      timeout: 120000,
    });
    const info = JSON.parse(out);
    const mismatch = runtimeMismatch(info);
    return mismatch ? { ok: false, error: mismatch, info } : { ok: true, info };
  } catch (err) {
    const stderr = String(err.stderr ?? '');
    const line = stderr.split('\n').find((l) => /Error|error:|cannot open|undefined symbol/.test(l)) ?? stderr.split('\n')[0] ?? '';
    // dlopen repeats the file name: "<file>: cannot open shared object file" etc.
    return {
      ok: false,
      error: (line || err.message)
        .trim()
        .replace(/^Error: /, '')
        .replace(`${file}: `, ''),
    };
  }
}

/**
 * Places a built finetorch.node as the prebuilt binary of its flavor under
 * <root>/prebuilds/<platform>-<arch>/<flavor>/, replacing that flavor only,
 * with a prebuild.json describing it. Returns {flavor, dir, file, meta}.
 */
export function placePrebuild(binary, { root = packageRoot, libtorch = {} } = {}) {
  const p = probe(resolve(binary));
  if (!p.ok) throw new Error(`finetorch: cannot place ${binary} as a prebuilt binary: it does not load here (${p.error})`);
  const flavor = flavorOf(p.info);
  const dir = join(root, 'prebuilds', platformTag, flavor);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const file = join(dir, 'finetorch.node');
  copyFileSync(binary, file);
  const meta = {
    flavor,
    platform: process.platform,
    arch: process.arch,
    napi: 8,
    libtorchVersion: p.info.libtorchVersion,
    cuda: p.info.cuda,
    cudaRuntime: p.info.cuda ? cudaVersionOf(p.info) : null,
    builtAgainst: libtorch,
    builtWith: `node ${process.version}`,
    builtAt: new Date().toISOString(),
  };
  writeFileSync(join(dir, 'prebuild.json'), JSON.stringify(meta, null, 2) + '\n');
  return { flavor, dir, file, meta };
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  const [binary, root] = process.argv.slice(2);
  if (!binary) {
    console.error('usage: node scripts/prebuild.mjs <finetorch.node> [packageRoot]');
    process.exit(2);
  }
  const placed = placePrebuild(binary, { root: root ? resolve(root) : packageRoot });
  console.log(JSON.stringify({ flavor: placed.flavor, file: placed.file }));
}
