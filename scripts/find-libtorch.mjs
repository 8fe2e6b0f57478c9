#!/usr/bin/env node
// Finds a libtorch to build against, in the documented order:
//   1. FINETORCH_LIBTORCH, else LIBTORCH (a libtorch folder or a CMake prefix).
//      An explicit setting is obeyed: if it holds no libtorch that is an error,
//      not a silent fall back to another libtorch (a typo would otherwise give
//      a CPU build to someone who asked for CUDA). What the other steps would
//      have found is still reported.
//   2. a Python torch install (torch.utils.cmake_prefix_path)
//   3. the system libtorch (Debian's libtorch-dev)
// Prints JSON {source, cmakePrefix, tried} or exits 1 with every attempt listed
// and the fix for each.
import { execFileSync } from 'node:child_process';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { cmakePrefixFor, explicitLibtorch, LIBTORCH_ENV, TORCH_CONFIG as CONFIG } from './libtorch.mjs';

const SYSTEM_DIRS = ['/usr/lib/x86_64-linux-gnu/cmake', '/usr/lib/aarch64-linux-gnu/cmake', '/usr/lib/cmake', '/usr/local/lib/cmake', '/usr/local/libtorch'];

function fromPython(tried) {
  for (const py of ['/usr/bin/python3', 'python3']) {
    try {
      const out = execFileSync(py, ['-c', 'import torch, torch.utils; print(torch.utils.cmake_prefix_path); print(torch.__version__)'], {
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'ignore'],
        timeout: 60000,
      })
        .trim()
        .split('\n');
      const prefix = cmakePrefixFor(out[0]);
      if (prefix) return { source: `python (${py}, torch ${out[1]})`, cmakePrefix: prefix };
      tried.push(`${py}: torch ${out[1]} has no ${CONFIG} under ${out[0]}`);
    } catch {
      tried.push(`${py}: no importable torch`);
    }
  }
  return null;
}

function fromSystem(tried) {
  for (const dir of SYSTEM_DIRS) {
    const prefix = cmakePrefixFor(dir);
    if (prefix) return { source: 'system', cmakePrefix: prefix };
  }
  tried.push(`system: no ${CONFIG} in ${SYSTEM_DIRS.join(', ')}`);
  return null;
}

export function findLibtorch(env = process.env) {
  const tried = [];
  const explicit = explicitLibtorch(env);
  for (const name of LIBTORCH_ENV) {
    if (name === explicit?.name) break;
    tried.push(`${name}: not set`);
  }
  if (explicit) {
    const { name, dir } = explicit;
    const prefix = cmakePrefixFor(dir);
    if (prefix) return { source: name, cmakePrefix: prefix, tried };
    tried.push(`${name}=${dir}: no ${CONFIG} under it`);
    // Obey the explicit setting, but say what the other steps would have found.
    for (const other of [fromPython(tried), fromSystem(tried)]) {
      if (other) tried.push(`${other.source}: libtorch at ${other.cmakePrefix}, not used because ${name} is set`);
    }
    return { source: null, cmakePrefix: null, tried };
  }
  const found = fromPython(tried) ?? fromSystem(tried);
  return found ? { ...found, tried } : { source: null, cmakePrefix: null, tried };
}

/** The fix for one failed attempt, by the kind of attempt. */
function fixFor(attempt) {
  if (/^(FINETORCH_LIBTORCH|LIBTORCH)=/.test(attempt)) {
    const name = attempt.split('=')[0];
    return `point ${name} at a libtorch folder (one with share/cmake/${CONFIG}) or unset it`;
  }
  const unused = /not used because (\w+) is set/.exec(attempt);
  if (unused) return `unset ${unused[1]} to build against this one`;
  if (/python3: no importable torch/.test(attempt)) return 'pip install torch (its bundled libtorch is used)';
  if (/python3: torch/.test(attempt)) return 'this torch ships no CMake files (Debian puts them in libtorch-dev); use a pip torch or libtorch-dev';
  if (/^system:/.test(attempt)) return 'apt-get install libtorch-dev libopenblas0-pthread (Debian/Ubuntu)';
  return null;
}

/** The error for when no libtorch is found: every attempt, with the fix for each. */
export function notFoundMessage(tried) {
  const lines = tried.map((t) => {
    const fix = /: not set$/.test(t) ? null : fixFor(t);
    return fix ? `${t}\n      fix: ${fix}` : t;
  });
  return (
    'finetorch: no libtorch found. Tried:\n  ' +
    lines.join('\n  ') +
    '\nInstall one of:\n  Debian/Ubuntu: apt-get install libtorch-dev libopenblas0-pthread\n' +
    '  pip install torch (its bundled libtorch is used)\n  or set FINETORCH_LIBTORCH=/path/to/libtorch'
  );
}

/** findLibtorch() for the build scripts: with no libtorch, print every attempt and its fix and exit 1. */
export function findLibtorchOrExit() {
  const found = findLibtorch();
  if (!found.cmakePrefix) {
    console.error(notFoundMessage(found.tried));
    process.exit(1);
  }
  return found;
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  console.log(JSON.stringify(findLibtorchOrExit()));
}
