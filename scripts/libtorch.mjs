// What a libtorch folder and a finetorch binary flavor look like, in one place:
// the layout and version of a libtorch, preloading it, and the flavor names of
// prebuilt binaries. Used by the build and install scripts and, at run time,
// by lib/native/loader.ts. It is plain JavaScript under scripts/ because the
// install script runs before TypeScript is compiled (and scripts/ ships in the
// package); its types are in libtorch.d.mts.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const platformTag = `${process.platform}-${process.arch}`;

/** The settings that name a libtorch folder, first one set wins. */
export const LIBTORCH_ENV = ['FINETORCH_LIBTORCH', 'LIBTORCH'];

/** The first of LIBTORCH_ENV that is set: {name, dir}, or null. */
export function explicitLibtorch(env = process.env) {
  const name = LIBTORCH_ENV.find((n) => env[n]);
  return name ? { name, dir: env[name] } : null;
}

export const TORCH_CONFIG = 'Torch/TorchConfig.cmake';

/** The CMake prefix inside a libtorch folder (<dir>, <dir>/share/cmake, ...) that holds Torch/TorchConfig.cmake, or null. */
export function cmakePrefixFor(dir) {
  for (const p of [dir, join(dir, 'share/cmake'), join(dir, 'lib/cmake'), join(dir, 'lib/x86_64-linux-gnu/cmake')]) {
    if (existsSync(join(p, TORCH_CONFIG))) return p;
  }
  return null;
}

const hasLib = (dir, name) => existsSync(dir) && readdirSync(dir).some((f) => f === `lib${name}.so` || f.startsWith(`lib${name}.so.`));

/**
 * The parts of the libtorch at a CMake prefix: {include, libdir, version, cuda, abi}.
 * A libtorch tree (zip download or Python wheel) has include/ and lib/ two
 * levels above share/cmake; Debian keeps cmake/ inside the multiarch lib
 * folder (/usr/lib/x86_64-linux-gnu) and the headers in /usr/include.
 */
export function libtorchAt(cmakePrefix) {
  const tree = resolve(cmakePrefix, '..', '..');
  const libdir = [join(tree, 'lib'), resolve(cmakePrefix, '..')].find((d) => hasLib(d, 'c10')) ?? resolve(cmakePrefix, '..');
  const include = existsSync(join(tree, 'include', 'torch')) ? join(tree, 'include') : '/usr/include';
  const read = (file) => (existsSync(file) ? readFileSync(file, 'utf8') : '');
  // Debian's 1.13.1 declares 1.13.0 here, as in its headers.
  const version = /PACKAGE_VERSION "([^"]+)"/.exec(read(join(cmakePrefix, 'Torch', 'TorchConfigVersion.cmake')))?.[1] ?? null;
  // The C++ ABI libtorch was built with (pip wheels before 2.7 used the old one).
  const abi = /_GLIBCXX_USE_CXX11_ABI=([01])/.exec(read(join(cmakePrefix, TORCH_CONFIG)))?.[1] ?? '1';
  return { include, libdir, version, cuda: hasLib(libdir, 'torch_cuda'), abi };
}

/** "1.13" of "1.13.0", or undefined. */
export function majorMinor(version) {
  return /^(\d+\.\d+)/.exec(version ?? '')?.[1];
}

/** The C++ standard a libtorch's headers need: c++20 from 2.14, c++17 before (CMakeLists.txt says the same). */
export function cxxStandardFor(version) {
  const [major, minor] = (majorMinor(version) ?? '0.0').split('.').map(Number);
  return major > 2 || (major === 2 && minor >= 14) ? 'c++20' : 'c++17';
}

/** The shared libraries a finetorch binary links, in dependency order. */
export function libtorchLibs(cuda) {
  return ['c10', 'torch_cpu', 'torch', ...(cuda ? ['c10_cuda', 'torch_cuda'] : [])];
}

/**
 * dlopen libtorch's libraries from `libdir` globally and for good, so that a
 * prebuilt binary whose rpath points at the build machine's libtorch finds
 * this machine's. Flags: RTLD_NOW | RTLD_GLOBAL | RTLD_NODELETE (glibc).
 */
export function preloadLibtorch(libdir, cuda) {
  for (const name of libtorchLibs(cuda)) {
    const base = `lib${name}.so`;
    const file = existsSync(join(libdir, base)) ? base : readdirSync(libdir).find((f) => f.startsWith(`${base}.`));
    if (!file) continue;
    try {
      process.dlopen({ exports: {} }, join(libdir, file), 0x2 | 0x100 | 0x1000);
    } catch (err) {
      // A plain shared library is not a Node addon: it stays loaded, which is the point.
      if (!/did not self-register/.test(err.message)) throw err;
    }
  }
}

/**
 * A binary on another libtorch (major.minor) than its own must not be used:
 * libtorch has no stable C++ ABI. buildInfo().config comes from the libtorch
 * that got loaded, libtorchVersion from the headers it was built with.
 * Returns the problem in words, or null.
 */
export function runtimeMismatch(info) {
  const runtime = /TORCH_VERSION=(\d+\.\d+)/.exec(info.config ?? '')?.[1];
  const built = majorMinor(info.libtorchVersion);
  return runtime && built && runtime !== built ? `built for libtorch ${info.libtorchVersion}, but the libtorch loaded is ${runtime}` : null;
}

// Flavors: libtorch-<version>-<cpu|cuXYZ>, e.g. libtorch-1.13.0-cpu or
// libtorch-2.11.0-cu130 ("cuda" when the CUDA runtime version is unknown).

/**
 * The flavor of a binary, from its buildInfo(): the CUDA version libtorch was
 * built with (CUDA_VERSION in its build settings, there with or without a GPU),
 * else the "CUDA Runtime" line (only printed where a GPU is present).
 */
export function flavorOf(info) {
  if (!/^\d+\.\d+\.\d+$/.test(info.libtorchVersion ?? '')) throw new Error(`unexpected libtorch version '${info.libtorchVersion}'`);
  if (!info.cuda) return `libtorch-${info.libtorchVersion}-cpu`;
  const v = cudaVersionOf(info);
  return `libtorch-${info.libtorchVersion}-${v ? `cu${v.replace('.', '')}` : 'cuda'}`;
}

/** "13.0": the CUDA version a CUDA libtorch was built with (see flavorOf), or null. */
export function cudaVersionOf(info) {
  const config = info.config ?? '';
  return (/CUDA_VERSION=(\d+\.\d+)/.exec(config) ?? /CUDA Runtime (\d+\.\d+)/.exec(config))?.[1] ?? null;
}

/** {version, variant, cuda} of a flavor name, or null when it is not one. */
export function parseFlavor(flavor) {
  const m = /^libtorch-(\d+\.\d+\.\d+)-(cpu|cu\d+|cuda)$/.exec(flavor);
  return m ? { version: m[1], variant: m[2], cuda: m[2] !== 'cpu' } : null;
}

/** The libtorch a flavor needs, in words, and how to install it (for messages). */
export function flavorFix(flavor) {
  const f = parseFlavor(flavor);
  if (!f) return 'rebuild from source';
  if (!f.cuda && majorMinor(f.version) === '1.13') {
    return 'needs libtorch 1.13 (cpu): apt-get install libtorch1.13 libopenblas0-pthread (Debian 12)';
  }
  return (
    `needs libtorch ${f.version} (${f.variant}): pip install torch==${f.version} --index-url https://download.pytorch.org/whl/${f.variant}, ` +
    'then set FINETORCH_LIBTORCH to its folder (python3 -c "import torch, os; print(os.path.dirname(torch.__file__))")'
  );
}

/**
 * The prebuilt binaries in a package for this platform, sorted by flavor:
 * [{flavor, file, version, cuda, meta}], where version and cuda come from
 * prebuild.json, else from the flavor name. Layout:
 * prebuilds/<platform>-<arch>/<flavor>/finetorch.node + prebuild.json.
 */
export function listPrebuilds(root) {
  const dir = join(root, 'prebuilds', platformTag);
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .sort()
    .flatMap((flavor) => {
      const file = join(dir, flavor, 'finetorch.node');
      if (!existsSync(file)) return [];
      let meta = {};
      try {
        meta = JSON.parse(readFileSync(join(dir, flavor, 'prebuild.json'), 'utf8'));
      } catch {
        // no or unreadable prebuild.json: the flavor name says what it needs
      }
      const named = parseFlavor(flavor);
      return [{ flavor, file, version: meta.libtorchVersion ?? named?.version ?? null, cuda: meta.cuda ?? named?.cuda ?? false, meta }];
    });
}

/** The package root: scripts/ is one level down. */
export const packageRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..');
