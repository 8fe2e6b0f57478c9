#!/usr/bin/env node
// Paths and flags for binding.gyp (the node-gyp source build), from the same
// libtorch discovery as the cmake-js build. Usage: gyp-libtorch.mjs include|libdir|libs|abi|cuda|std
import { join } from 'node:path';
import { findLibtorchOrExit } from './find-libtorch.mjs';
import { cxxStandardFor, libtorchAt, libtorchLibs } from './libtorch.mjs';

const found = findLibtorchOrExit();
const torch = libtorchAt(found.cmakePrefix);
// Without --no-as-needed the linker drops torch_cuda (nothing references it
// directly) and CUDA silently disappears at run time.
const libs = libtorchLibs(false).map((l) => `-l${l}`);
if (torch.cuda)
  libs.push(
    '-Wl,--no-as-needed',
    ...libtorchLibs(true)
      .slice(libs.length)
      .map((l) => `-l${l}`),
    '-Wl,--as-needed',
  );
const answers = {
  include: [torch.include, join(torch.include, 'torch', 'csrc', 'api', 'include')].join(' '),
  libdir: torch.libdir,
  libs: libs.join(' '),
  abi: torch.abi,
  cuda: torch.cuda ? 1 : 0,
  std: cxxStandardFor(torch.version),
};
const what = process.argv[2];
if (!(what in answers)) {
  console.error(`usage: gyp-libtorch.mjs ${Object.keys(answers).join('|')}`);
  process.exit(2);
}
console.log(answers[what]);
