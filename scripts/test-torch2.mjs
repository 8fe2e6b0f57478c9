#!/usr/bin/env node
// CI's libtorch 2.x leg: the same tests, on a finetorch built against PyTorch
// 2.x's libtorch (the pip torch wheel) instead of Debian's 1.13.
//   node scripts/test-torch2.mjs [venv|build|test|all|list]   (default: all)
//   venv   .venv-torch2 with torch 2.13.0+cpu, transformers, numpy, onnx,
//          onnxruntime and tensorboard (export and TensorBoard checks), from the
//          machine's local package locations only (FINETORCH_WHEELS, default
//          /opt/wheels; FINETORCH_PYPI, default the two local simple indexes),
//          so pip never waits on the network; kept when it already has them
//   build  build-torch2/ against that torch (FINETORCH_LIBTORCH; incremental)
//   test   the tests below, with FINETORCH_BINARY pointing at build-torch2;
//          the last line is "N passed, N failed, N skipped" as in run-tests.mjs
//   list   print the test files the leg runs
//
// Which tests run: every file under TORCH2_TESTS, plus every test file with a
// comment line containing "@torch2" (e.g. `// @torch2: runs in CI's libtorch
// 2.x leg`), so a new test file can join without editing this script; less
// the files in TORCH2_EXCLUDE.
// The Python references stay what they are in the 1.13 leg (fixtures made by
// Debian's python3-torch, tests that spawn /usr/bin/python3: same math);
// transformers-based tests use the venv's Python (FINETORCH_TRANSFORMERS_PYTHON)
// and must not skip here (FINETORCH_REQUIRE_TRANSFORMERS=1).
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { packageRoot as root } from './libtorch.mjs';
import { runVitest } from './run-tests.mjs';

/** Folders and files the 2.x leg runs (relative to the repository root). */
export const TORCH2_TESTS = [
  'test/native',
  'test/tensor',
  'test/nn',
  'test/optim',
  'test/models',
  'test/io',
  'test/train',
  'test/amp',
  'test/backends',
  'test/losses',
];

/**
 * Files under TORCH2_TESTS the 2.x leg leaves out, ~55 s of CI's 30 minutes:
 * hostile and fuzz test our TypeScript readers against hostile and random
 * files, where libtorch only makes the tensors other tests cover; memory
 * tests that our handles (not libtorch's allocator) release what they hold.
 */
export const TORCH2_EXCLUDE = ['test/io/hostile.test.ts', 'test/io/fuzz.test.ts', 'test/native/memory.test.ts'];

const TORCH_VERSION = '2.13.0+cpu';
const venv = join(root, '.venv-torch2');
const python = join(venv, 'bin', 'python');
const out = join(root, 'build-torch2');
export const binary = join(out, 'Release', 'finetorch.node');

function testFiles() {
  const all = [];
  const walk = (dir) => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name.endsWith('.test.ts')) all.push(relative(root, p));
    }
  };
  walk(join(root, 'test'));
  const listed = (f) => TORCH2_TESTS.some((t) => f === t || f.startsWith(`${t}/`));
  const tagged = (f) => /^\s*\/\/.*@torch2\b/m.test(readFileSync(join(root, f), 'utf8'));
  return all.filter((f) => (listed(f) || tagged(f)) && !TORCH2_EXCLUDE.includes(f)).sort();
}

function venvReady() {
  if (!existsSync(python)) return false;
  const check = `import torch, transformers, numpy, safetensors, onnx, onnxruntime, tensorboard; assert torch.__version__ == '${TORCH_VERSION}', torch.__version__`;
  return spawnSync(python, ['-c', check], { stdio: 'ignore', timeout: 120000 }).status === 0;
}

function makeVenv() {
  if (venvReady()) {
    console.log(`torch2: ${venv} has torch ${TORCH_VERSION} and transformers`);
    return;
  }
  const wheels = process.env.FINETORCH_WHEELS ?? '/opt/wheels';
  const [index, ...extra] = (process.env.FINETORCH_PYPI ?? 'file:///opt/pypi/simple file:///opt/pypi-more/simple').split(/\s+/);
  const started = Date.now();
  // Debian's interpreter (python3-venv): the one first on PATH may be another
  if (!existsSync(python)) execFileSync('/usr/bin/python3', ['-m', 'venv', venv], { stdio: 'inherit' });
  const sources = ['--index-url', index, ...extra.flatMap((u) => ['--extra-index-url', u]), '--find-links', wheels];
  execFileSync(
    python,
    [
      '-m',
      'pip',
      'install',
      '-q',
      '--disable-pip-version-check',
      ...sources,
      `torch==${TORCH_VERSION}`,
      'transformers==5.18.0',
      'numpy',
      'safetensors',
      'onnx',
      'onnxruntime',
      'tensorboard',
    ],
    { stdio: 'inherit' },
  );
  if (!venvReady()) throw new Error(`torch2: ${python} still lacks torch ${TORCH_VERSION} with transformers after pip install`);
  console.log(`torch2: made ${venv} in ${((Date.now() - started) / 1000).toFixed(0)} s`);
}

function torchDir() {
  return execFileSync(python, ['-c', 'import os, torch; print(os.path.dirname(torch.__file__))'], { encoding: 'utf8' }).trim();
}

function build() {
  execFileSync(process.execPath, [join(root, 'scripts', 'build-native.mjs'), '--out', out], {
    cwd: root,
    stdio: 'inherit',
    env: { ...process.env, FINETORCH_LIBTORCH: torchDir(), LIBTORCH: '' },
  });
}

function test() {
  const env = {
    ...process.env,
    FINETORCH_BINARY: binary,
    FINETORCH_TRANSFORMERS_PYTHON: python,
    FINETORCH_REQUIRE_TRANSFORMERS: '1',
  };
  // The binary must load and be a 2.x build: otherwise every test would say so.
  const probe = spawnSync(process.execPath, ['-e', "import('finetorch').then(f => console.log(f.loadReport.libtorch.version))"], {
    cwd: root,
    env,
    encoding: 'utf8',
  });
  const version = probe.stdout.trim();
  if (probe.status !== 0 || !/^2\./.test(version)) {
    console.error(`torch2: ${binary} is not a loadable libtorch 2.x build (${version || probe.stderr.trim()})`);
    console.log('0 passed, 1 failed, 0 skipped');
    return 1;
  }
  // CI's leg 1 has just compiled dist/ (FINETORCH_TSC_DONE=1 in .ci/run)
  if (process.env.FINETORCH_TSC_DONE !== '1')
    execFileSync(process.execPath, [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.json'], { cwd: root, stdio: 'inherit' });
  const files = testFiles();
  console.log(`torch2: ${files.length} test files on libtorch ${version} (${binary})`);
  const r = runVitest({ files, env, report: 'vitest-torch2.json' });
  console.log(`${r.passed} passed, ${r.failed} failed, ${r.skipped} skipped`);
  return r.ok ? 0 : 1;
}

function main(step) {
  if (step === 'list') console.log(testFiles().join('\n'));
  else if (step === 'venv') makeVenv();
  else if (step === 'build') build();
  else if (step === 'test') return test();
  else if (step === 'all') {
    makeVenv();
    build();
    return test();
  } else {
    console.error(`usage: node scripts/test-torch2.mjs [venv|build|test|all|list], not '${step}'`);
    return 2;
  }
  return 0;
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) process.exitCode = main(process.argv[2] ?? 'all');
