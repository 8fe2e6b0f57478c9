#!/usr/bin/env node
// Gloo's headers for the addon's distributed support (native/distributed.cc):
// c10d's ProcessGroupGloo.hpp includes them, and neither Debian's libtorch-dev
// nor the PyTorch wheels ship them. Debian's libgloo-dev is fetched with
// `apt-get download` and unpacked with `dpkg -x` into a git-ignored cache
// (default build-deps/gloo), once; nothing is installed system-wide (apt-get
// install would add /usr/share/doc/*/copyright files, which tests read as data).
// Only headers are used: libtorch links its own Gloo.
//
//   node scripts/get-gloo-headers.mjs [--cache dir]   prints the include folder, or nothing
//   import { getGlooHeaders } from './scripts/get-gloo-headers.mjs'
//
// FINETORCH_GLOO_INCLUDE=/path (a folder holding gloo/) is used as it is;
// FINETORCH_GLOO_INCLUDE=none builds without distributed support.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');

function run(cmd, args, options = {}) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 120_000, ...options });
  if (r.error || r.status !== 0) throw new Error(`'${cmd} ${args.join(' ')}' failed: ${r.error?.message ?? r.stderr.trim().split('\n').slice(-3).join(' ')}`);
  return r.stdout;
}

/**
 * The folder to add to the include path (it holds gloo/), or null when the
 * headers cannot be had (no apt, no network): the build then goes on without
 * distributed support. Never throws.
 */
export function getGlooHeaders(options = {}) {
  const fromEnv = process.env.FINETORCH_GLOO_INCLUDE;
  if (fromEnv === 'none') return null;
  if (fromEnv) {
    if (existsSync(join(fromEnv, 'gloo', 'algorithm.h'))) return fromEnv;
    console.warn(`finetorch: FINETORCH_GLOO_INCLUDE=${fromEnv} has no gloo/algorithm.h; building without distributed support`);
    return null;
  }
  if (existsSync('/usr/include/gloo/algorithm.h')) return '/usr/include';
  const cache = resolve(options.cache ?? join(root, 'build-deps', 'gloo'));
  const include = join(cache, 'root', 'usr', 'include');
  if (existsSync(join(cache, 'done')) && existsSync(join(include, 'gloo', 'algorithm.h'))) return include;
  try {
    const debs = join(cache, 'debs');
    rmSync(debs, { recursive: true, force: true });
    mkdirSync(debs, { recursive: true });
    run('apt-get', ['download', 'libgloo-dev'], { cwd: debs });
    const deb = readdirSync(debs).find((f) => f.endsWith('.deb'));
    if (!deb) throw new Error('apt-get download libgloo-dev left no .deb');
    // unpack into a fresh folder, then rename: a killed run never leaves half a tree that looks done
    const partial = join(cache, 'root.partial');
    rmSync(partial, { recursive: true, force: true });
    run('dpkg', ['-x', join(debs, deb), partial]);
    rmSync(join(cache, 'root'), { recursive: true, force: true });
    renameSync(partial, join(cache, 'root'));
    rmSync(debs, { recursive: true, force: true });
    if (!existsSync(join(include, 'gloo', 'algorithm.h'))) throw new Error(`${deb} unpacked but has no gloo/algorithm.h`);
    writeFileSync(join(cache, 'done'), deb + '\n');
    return include;
  } catch (e) {
    console.warn(`finetorch: could not fetch Gloo's headers (${e.message}); building without distributed support (distInit will say so)`);
    return null;
  }
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const i = process.argv.indexOf('--cache');
  const dir = getGlooHeaders(i > 0 ? { cache: process.argv[i + 1] } : {});
  if (dir) console.log(dir);
}
