#!/usr/bin/env node
// Finds a libtorch to build against, in the documented order:
//   1. FINETORCH_LIBTORCH, then LIBTORCH (a libtorch folder or a CMake prefix)
//   2. a Python torch install (torch.utils.cmake_prefix_path)
//   3. the system libtorch (Debian's libtorch-dev)
// Prints JSON {source, cmakePrefix, tried} or exits 1 with every attempt listed.
import { existsSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

const CONFIG = 'Torch/TorchConfig.cmake';

// A prefix works if <prefix>/Torch/TorchConfig.cmake or <prefix>/share/cmake/Torch/... exists.
function cmakePrefixFor(dir) {
  for (const p of [dir, join(dir, 'share/cmake'), join(dir, 'lib/cmake'), join(dir, 'lib/x86_64-linux-gnu/cmake')]) {
    if (existsSync(join(p, CONFIG))) return p;
  }
  return null;
}

export function findLibtorch(env = process.env) {
  const tried = [];
  for (const name of ['FINETORCH_LIBTORCH', 'LIBTORCH']) {
    const dir = env[name];
    if (!dir) { tried.push(`${name}: not set`); continue; }
    const prefix = cmakePrefixFor(dir);
    if (prefix) return { source: name, cmakePrefix: prefix, tried };
    tried.push(`${name}=${dir}: no ${CONFIG} under it`);
  }
  for (const py of ['/usr/bin/python3', 'python3']) {
    try {
      const out = execFileSync(py, ['-c', 'import torch, torch.utils; print(torch.utils.cmake_prefix_path); print(torch.__version__)'],
        { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 60000 }).trim().split('\n');
      const prefix = cmakePrefixFor(out[0]);
      if (prefix) return { source: `python (${py}, torch ${out[1]})`, cmakePrefix: prefix, tried };
      tried.push(`${py}: torch ${out[1]} has no ${CONFIG} under ${out[0]}`);
    } catch {
      tried.push(`${py}: no importable torch`);
    }
  }
  for (const dir of ['/usr/lib/x86_64-linux-gnu/cmake', '/usr/lib/aarch64-linux-gnu/cmake', '/usr/lib/cmake', '/usr/local/lib/cmake', '/usr/local/libtorch']) {
    const prefix = cmakePrefixFor(dir);
    if (prefix) return { source: 'system', cmakePrefix: prefix, tried };
    tried.push(`system: no ${CONFIG} in ${dir}`);
  }
  return { source: null, cmakePrefix: null, tried };
}

/** The error for when no libtorch is found: what was tried and how to get one. */
export function notFoundMessage(tried) {
  return 'finetorch: no libtorch found. Tried:\n  ' + tried.join('\n  ') +
    '\nInstall one of:\n  Debian/Ubuntu: apt-get install libtorch-dev libopenblas0-pthread\n' +
    '  pip install torch (its bundled libtorch is used)\n  or set FINETORCH_LIBTORCH=/path/to/libtorch';
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) {
  const found = findLibtorch();
  if (!found.cmakePrefix) {
    console.error(notFoundMessage(found.tried));
    process.exit(1);
  }
  console.log(JSON.stringify(found));
}
