#!/usr/bin/env node
// Prebuilt binaries: naming, placing and test-loading them. Used by the
// release script (to place a fresh build), by install.mjs (to pick one) and by
// the packaging test (to place the CI machine's build exactly as a release would).
//
// Layout: prebuilds/<platform>-<arch>/<flavor>/finetorch.node + prebuild.json,
// flavor = libtorch-<version>-<cpu|cuXYZ>, e.g. libtorch-1.13.0-cpu (Debian 12's
// libtorch 1.13.1 calls itself 1.13.0 in its headers and CMake files) or
// libtorch-2.11.0-cu130. libtorch has no stable C++ ABI, so a binary is tied to
// one libtorch version and CUDA variant; node-gyp-build would ignore such tags,
// so finetorch's own loader walks these folders.
//
// CLI: node scripts/prebuild.mjs <finetorch.node> [packageRoot]  (places it, prints JSON)
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

export const packageRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..');
export const platformTag = `${process.platform}-${process.arch}`;

/** dlopen flags for preloading libtorch: now, global, and never unloaded (0x1000 = RTLD_NODELETE on glibc). */
const PRELOAD_FLAGS = 0x2 | 0x100 | 0x1000;

/** The shared libraries a binary of this flavor links, in dependency order. */
export function libtorchLibs(cuda) {
  return ['c10', 'torch_cpu', 'torch', ...(cuda ? ['c10_cuda', 'torch_cuda'] : [])];
}

/**
 * Source of a script that preloads libtorch from `libdir` (so a prebuilt whose
 * rpath points at the build machine's libtorch finds this machine's), then
 * requires `file` and prints its buildInfo() as JSON. Run in a child process.
 */
function probeScript(file, libdir, cuda) {
  return `
    const fs = require('fs'), path = require('path');
    const libdir = ${JSON.stringify(libdir ?? null)};
    if (libdir) for (const name of ${JSON.stringify(libtorchLibs(cuda))}) {
      const base = 'lib' + name + '.so';
      const f = fs.existsSync(path.join(libdir, base)) ? base : fs.readdirSync(libdir).find((x) => x.startsWith(base + '.'));
      if (!f) continue;
      try { process.dlopen({ exports: {} }, path.join(libdir, f), ${PRELOAD_FLAGS}); } catch (e) {
        if (!/did not self-register/.test(e.message)) throw e;
      }
    }
    const info = require(${JSON.stringify(file)}).buildInfo();
    process.stdout.write(JSON.stringify(info));`;
}

/**
 * Loads a binary in a child process (a bad one cannot take the caller down)
 * and returns {ok: true, info} with its buildInfo(), or {ok: false, error}
 * with the first line of why it failed.
 */
export function probe(file, { libdir, cuda = false } = {}) {
  try {
    const out = execFileSync(process.execPath, ['-e', probeScript(file, libdir, cuda)],
      { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 120000 });
    const info = JSON.parse(out);
    const mismatch = runtimeMismatch(info);
    return mismatch ? { ok: false, error: mismatch, info } : { ok: true, info };
  } catch (err) {
    const stderr = String(err.stderr ?? '');
    const line = stderr.split('\n').find((l) => /Error|error:|cannot open|undefined symbol/.test(l)) ?? stderr.split('\n')[0] ?? '';
    // dlopen repeats the file name: "<file>: cannot open shared object file" etc.
    return { ok: false, error: (line || err.message).trim().replace(/^Error: /, '').replace(`${file}: `, '') };
  }
}

/**
 * A binary whose libtorch (major.minor) differs from the one that got loaded
 * (possible with unversioned libtorch.so files) must not be used: libtorch has
 * no stable C++ ABI. show_config() comes from the loaded libtorch.
 */
export function runtimeMismatch(info) {
  const runtime = /TORCH_VERSION=(\d+\.\d+)/.exec(info.config ?? '')?.[1];
  const built = /^(\d+\.\d+)/.exec(info.libtorchVersion ?? '')?.[1];
  return runtime && built && runtime !== built
    ? `built for libtorch ${info.libtorchVersion}, but the libtorch loaded is ${runtime}` : null;
}

/** The flavor name of a binary from its buildInfo(): libtorch version + cpu or the CUDA runtime. */
export function flavorOf(info) {
  if (!/^\d+\.\d+\.\d+$/.test(info.libtorchVersion ?? '')) throw new Error(`unexpected libtorch version '${info.libtorchVersion}'`);
  if (!info.cuda) return `libtorch-${info.libtorchVersion}-cpu`;
  const m = /CUDA Runtime (\d+)\.(\d+)/.exec(info.config ?? '');
  return `libtorch-${info.libtorchVersion}-${m ? `cu${m[1]}${m[2]}` : 'cuda'}`;
}

/** The libtorch a flavor needs, in words, and how to install it (for messages). */
export function flavorFix(flavor) {
  const m = /^libtorch-(\d+)\.(\d+)\.(\d+)-(\w+)$/.exec(flavor);
  if (!m) return 'rebuild from source';
  const [, major, minor, patch, variant] = m;
  if (variant === 'cpu' && major === '1' && minor === '13') {
    return 'needs libtorch 1.13 (CPU): apt-get install libtorch1.13 libopenblas0-pthread (Debian 12)';
  }
  const torch = `${major}.${minor}.${patch}`;
  const index = variant === 'cpu' ? 'cpu' : variant;
  return `needs libtorch ${torch} (${variant}): pip install torch==${torch} --index-url https://download.pytorch.org/whl/${index}, ` +
    'then set FINETORCH_LIBTORCH to its folder (python3 -c "import torch, os; print(os.path.dirname(torch.__file__))")';
}

/** The prebuilt binaries shipped for this platform: [{flavor, file, meta}], sorted by flavor. */
export function listPrebuilds(root = packageRoot) {
  const dir = join(root, 'prebuilds', platformTag);
  if (!existsSync(dir)) return [];
  return readdirSync(dir).sort().flatMap((flavor) => {
    const file = join(dir, flavor, 'finetorch.node');
    if (!existsSync(file)) return [];
    const metaFile = join(dir, flavor, 'prebuild.json');
    const meta = existsSync(metaFile) ? JSON.parse(readFileSync(metaFile, 'utf8')) : {};
    return [{ flavor, file, meta }];
  });
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
    cudaRuntime: /CUDA Runtime (\d+\.\d+)/.exec(p.info.config ?? '')?.[1] ?? null,
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
