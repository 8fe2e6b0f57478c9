#!/usr/bin/env node
// A headless Chromium for the dashboard's browser test, without installing
// anything system-wide: Debian's chromium-headless-shell and the packages it
// needs that are not installed are fetched with `apt-get download` and
// unpacked with `dpkg -x` into a cache folder (default test/.cache/chromium,
// git-ignored), once; later calls reuse it. (apt-get install would add
// /usr/share/doc/*/copyright files, which other tests read as data.)
//
//   node scripts/get-chromium.mjs [--cache dir]   prints {executablePath, env} as JSON
//   import { getChromium } from './scripts/get-chromium.mjs'
//
// FINETORCH_CHROMIUM=/path/to/chrome, or an installed chromium /
// chromium-headless-shell, is used as it is.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, rmSync, writeFileSync, readFileSync, renameSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const PACKAGE = 'chromium-headless-shell';
const INSTALLED = ['/usr/lib/chromium/chromium-headless-shell', '/usr/lib/chromium/chromium'];

/** Library folders of an unpacked tree, for LD_LIBRARY_PATH. */
function libraryPath(tree) {
  const dirs = [
    'usr/lib/x86_64-linux-gnu',
    'usr/lib/x86_64-linux-gnu/pulseaudio',
    'usr/lib/aarch64-linux-gnu',
    'usr/lib/aarch64-linux-gnu/pulseaudio',
    'usr/lib/chromium',
  ];
  return dirs.map((d) => join(tree, d)).filter((d) => existsSync(d));
}

function run(cmd, args, options = {}) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 300_000, ...options });
  if (r.error || r.status !== 0)
    throw new Error(`get-chromium: '${cmd} ${args.join(' ')}' failed: ${r.error?.message ?? r.stderr.trim().split('\n').slice(-3).join(' ')}`);
  return r.stdout;
}

/**
 * The Chromium to launch: { executablePath, env } where env holds the
 * LD_LIBRARY_PATH the unpacked libraries need (empty for an installed one).
 */
export function getChromium(options = {}) {
  if (process.env.FINETORCH_CHROMIUM) {
    if (!existsSync(process.env.FINETORCH_CHROMIUM)) throw new Error(`get-chromium: FINETORCH_CHROMIUM=${process.env.FINETORCH_CHROMIUM} does not exist`);
    return { executablePath: process.env.FINETORCH_CHROMIUM, env: {} };
  }
  for (const p of INSTALLED) if (existsSync(p)) return { executablePath: p, env: {} };
  const cache = resolve(options.cache ?? join(root, 'test', '.cache', 'chromium'));
  const tree = join(cache, 'root');
  const exe = join(tree, 'usr', 'lib', 'chromium', 'chromium-headless-shell');
  const stamp = join(cache, 'done');
  if (!existsSync(stamp) || !existsSync(exe)) {
    // the packages apt would install (the ones missing here), from a dry run
    const plan = run('apt-get', ['install', '-s', '--no-install-recommends', PACKAGE], { env: { ...process.env, LC_ALL: 'C' } });
    const packages = [...plan.matchAll(/^Inst (\S+)/gm)].map((m) => m[1]);
    if (!packages.includes(PACKAGE)) throw new Error(`get-chromium: apt-get does not offer ${PACKAGE} (apt-get update?)`);
    const debs = join(cache, 'debs');
    rmSync(debs, { recursive: true, force: true });
    mkdirSync(debs, { recursive: true });
    run('apt-get', ['download', ...packages], { cwd: debs });
    // unpack into a fresh folder, then rename: a killed run never leaves half a tree that looks done
    const partial = join(cache, 'root.partial');
    rmSync(partial, { recursive: true, force: true });
    for (const deb of readdirSync(debs).filter((f) => f.endsWith('.deb'))) run('dpkg', ['-x', join(debs, deb), partial]);
    rmSync(tree, { recursive: true, force: true });
    renameSync(partial, tree);
    rmSync(debs, { recursive: true, force: true });
    if (!existsSync(exe)) throw new Error(`get-chromium: ${PACKAGE} unpacked but ${exe} is missing`);
    writeFileSync(stamp, packages.join('\n') + '\n');
  }
  const libs = libraryPath(tree);
  const env = { LD_LIBRARY_PATH: [...libs, process.env.LD_LIBRARY_PATH].filter(Boolean).join(':') };
  return { executablePath: exe, env, packages: readFileSync(stamp, 'utf8').trim().split('\n') };
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const i = process.argv.indexOf('--cache');
  try {
    process.stdout.write(JSON.stringify(getChromium(i > 0 ? { cache: process.argv[i + 1] } : {}), null, 2) + '\n');
  } catch (err) {
    process.stderr.write(err.message + '\n');
    process.exit(1);
  }
}
