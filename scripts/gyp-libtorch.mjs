#!/usr/bin/env node
// Paths for binding.gyp (the node-gyp/prebuildify build), from the same
// libtorch discovery as the cmake-js build. Usage: gyp-libtorch.mjs include|libdir|libs|cuda
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { findLibtorch, notFoundMessage } from './find-libtorch.mjs';

const found = findLibtorch();
if (!found.cmakePrefix) {
  console.error(notFoundMessage(found.tried));
  process.exit(1);
}
// A libtorch tree (zip download or Python wheel) has include/ and lib/ two
// levels above share/cmake; Debian splits them into /usr/include and the
// multiarch lib folder that holds cmake/.
const tree = resolve(found.cmakePrefix, '..', '..');
const isTree = existsSync(join(tree, 'include', 'torch'));
const include = isTree ? join(tree, 'include') : '/usr/include';
const libdir = isTree ? join(tree, 'lib') : dirname(found.cmakePrefix);
const cuda = readdirSync(libdir).some((f) => f.startsWith('libtorch_cuda.'));
// The C++ ABI libtorch was built with (pip wheels before 2.7 used the old one).
const config = readFileSync(join(found.cmakePrefix, 'Torch', 'TorchConfig.cmake'), 'utf8');
const abi = /_GLIBCXX_USE_CXX11_ABI=([01])/.exec(config)?.[1] ?? '1';
const what = process.argv[2];
if (what === 'include') console.log([include, join(include, 'torch', 'csrc', 'api', 'include')].join(' '));
else if (what === 'libdir') console.log(libdir);
else if (what === 'libs') console.log(['-ltorch', '-ltorch_cpu', '-lc10', ...(cuda ? ['-Wl,--no-as-needed', '-ltorch_cuda', '-lc10_cuda', '-Wl,--as-needed'] : [])].join(' '));
else if (what === 'abi') console.log(abi);
else if (what === 'cuda') console.log(cuda ? 1 : 0);
else { console.error('usage: gyp-libtorch.mjs include|libdir|libs|abi|cuda'); process.exit(2); }
