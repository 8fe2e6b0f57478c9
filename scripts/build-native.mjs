#!/usr/bin/env node
// Source build of the addon: locate libtorch, build, record what was used.
//   node scripts/build-native.mjs [--out DIR] [--rebuild] [--builder cmake-js|node-gyp]
// Two builders, one discovery (find-libtorch.mjs):
//   cmake-js  (CMakeLists.txt) when CMake works: find_package(Torch) knows
//             every libtorch layout, and a precompiled header for torch.h
//             about halves the build (full build on 2 cores: 90 s, against
//             182 s with node-gyp, which has no precompiled headers);
//   node-gyp  (binding.gyp) otherwise: npm ships node-gyp, so a machine with
//             a compiler, make and python3 but no CMake still builds.
// --out builds in DIR instead of build/ (cmake-js only: the release script
// builds its prebuilds apart from the development build; node-gyp always
// builds in build/); --rebuild starts clean.
// The binary is DIR/Release/finetorch.node and DIR/libtorch.json records the
// libtorch it was built against and the builder.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { availableParallelism } from 'node:os';
import { findLibtorchOrExit } from './find-libtorch.mjs';
import { libtorchAt, packageRoot as root } from './libtorch.mjs';
import { getGlooHeaders } from './get-gloo-headers.mjs';

const { values: args } = parseArgs({ options: { out: { type: 'string' }, rebuild: { type: 'boolean' }, builder: { type: 'string' } } });
const builder = args.builder ?? (cmakeWorks() ? 'cmake-js' : 'node-gyp');
if (!['cmake-js', 'node-gyp'].includes(builder)) {
  console.error(`finetorch: --builder must be cmake-js or node-gyp, not '${builder}'`);
  process.exit(2);
}
const out = resolve(root, args.out ?? 'build');
if (builder === 'node-gyp' && out !== join(root, 'build')) {
  console.error(`finetorch: node-gyp always builds in ${join(root, 'build')}; --out ${args.out} needs --builder cmake-js`);
  process.exit(2);
}
const found = findLibtorchOrExit();
const why = args.builder ? '--builder' : builder === 'cmake-js' ? 'cmake is on PATH' : 'no working cmake on PATH';
console.log(`finetorch: building with ${builder} (${why}) against libtorch from ${found.source} (${found.cmakePrefix})`);
const started = Date.now();
const jobs = String(availableParallelism());
if (builder === 'cmake-js') buildWithCmakeJs();
else buildWithNodeGyp();
mkdirSync(out, { recursive: true });
writeFileSync(
  join(out, 'libtorch.json'),
  JSON.stringify(
    { source: found.source, cmakePrefix: found.cmakePrefix, builder, builtAt: new Date().toISOString(), buildSeconds: (Date.now() - started) / 1000 },
    null,
    2,
  ) + '\n',
);
console.log(`finetorch: native build done in ${((Date.now() - started) / 1000).toFixed(0)} s`);

function cmakeWorks() {
  return spawnSync('cmake', ['--version'], { stdio: 'ignore' }).status === 0;
}

function buildWithCmakeJs() {
  // cmake-js is a dependency: in node_modules here, or hoisted next to finetorch
  // when finetorch is itself installed as a dependency.
  const cmakeJs = join(dirname(createRequire(import.meta.url).resolve('cmake-js/package.json')), 'bin', 'cmake-js');
  // CMake caches Torch_DIR and cmake-js only configures a fresh build folder:
  // when the libtorch found now is another one, start clean.
  const torchDir = join(found.cmakePrefix, 'Torch');
  const cache = join(out, 'CMakeCache.txt');
  const cached = existsSync(cache) ? /^Torch_DIR:PATH=(.*)$/m.exec(readFileSync(cache, 'utf8'))?.[1] : undefined;
  const rebuild = args.rebuild || (cached !== undefined && resolve(cached) !== resolve(torchDir));
  if (rebuild && !args.rebuild) console.log(`finetorch: ${out} was configured for ${cached}; rebuilding`);
  execFileSync(
    process.execPath,
    [
      cmakeJs,
      rebuild ? 'rebuild' : 'build',
      '--out',
      out,
      '--parallel',
      jobs,
      '--log-level',
      'warn',
      `--CDCMAKE_PREFIX_PATH=${found.cmakePrefix}`,
      `--CDTorch_DIR=${torchDir}`,
      // link this libtorch's libraries, not a system libtorch's (CMakeLists.txt)
      `--CDFINETORCH_LIBTORCH_LIBDIR=${libtorchAt(found.cmakePrefix).libdir}`,
      ...cudaToolkitArgs(),
      // distributed support when Gloo's headers can be had (never fails the build)
      `--CDFINETORCH_GLOO_INCLUDE=${getGlooHeaders() ?? ''}`,
    ],
    { cwd: root, stdio: 'inherit' },
  );
}

/**
 * A CUDA libtorch's CMake files look for the CUDA toolkit (headers, cudart,
 * nvcc). CMake guesses its root from the nvcc on PATH, which is wrong for a
 * wrapper such as /usr/local/bin/nvcc: name it (CUDA_HOME, else CUDA_PATH,
 * else /usr/local/cuda).
 */
function cudaToolkitArgs() {
  if (!libtorchAt(found.cmakePrefix).cuda) return [];
  const root = [process.env.CUDA_HOME, process.env.CUDA_PATH, '/usr/local/cuda'].find((d) => d && existsSync(join(d, 'bin', 'nvcc')));
  if (!root) {
    console.error(
      `finetorch: the libtorch at ${found.cmakePrefix} is a CUDA build and its CMake files need the CUDA toolkit ` +
        '(nvcc, headers, cudart): none found in CUDA_HOME, CUDA_PATH or /usr/local/cuda; install it or set CUDA_HOME',
    );
    process.exit(1);
  }
  console.log(`finetorch: CUDA toolkit ${root}`);
  return [`--CDCUDA_TOOLKIT_ROOT_DIR=${root}`, `--CDCUDAToolkit_ROOT=${root}`, `--CDCMAKE_CUDA_COMPILER=${join(root, 'bin', 'nvcc')}`];
}

function buildWithNodeGyp() {
  // npm runs install scripts with npm_config_node_gyp set to its bundled
  // node-gyp; outside npm, the copy bundled with the npm next to this node.
  const bundled = join(dirname(process.execPath), '..', 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js');
  const nodeGyp = [process.env.npm_config_node_gyp, bundled].find((f) => f && existsSync(f));
  if (!nodeGyp) throw new Error(`finetorch: node-gyp not found (npm_config_node_gyp is not set and ${bundled} does not exist); install npm or CMake`);
  // node-gyp downloads Node's headers unless told where they are: the Node
  // running this has them in <prefix>/include/node (official tarballs and
  // Debian's nodejs), which makes the build work offline. A nodedir the user
  // set (npm_config_nodedir) wins.
  const prefix = resolve(dirname(process.execPath), '..');
  const nodedir = !process.env.npm_config_nodedir && existsSync(join(prefix, 'include', 'node', 'common.gypi')) ? [`--nodedir=${prefix}`] : [];
  // --rebuild: node-gyp rebuild cleans (removes build/), configures and builds.
  const steps = args.rebuild ? ['rebuild'] : ['configure', 'build'];
  // binding.gyp asks gyp-libtorch.mjs for each path: hand it the libtorch
  // found here, so that discovery (which may start Python) runs once.
  execFileSync(process.execPath, [nodeGyp, ...steps, ...nodedir, `--jobs=${jobs}`, '--loglevel=warn'], {
    cwd: root,
    stdio: 'inherit',
    env: { ...process.env, FINETORCH_LIBTORCH: found.cmakePrefix },
  });
}
