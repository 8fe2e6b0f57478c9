// `finetorch doctor`: what this installation runs on. Which native addon was
// loaded and how it was chosen (prebuilt or source build), which libtorch it
// uses (where, version, CPU or CUDA flavor), CUDA devices, threads, and the
// BLAS library actually mapped into the process (read from /proc/self/maps
// after libtorch is loaded, so it is what runs, not what was configured).
import { existsSync, readFileSync, realpathSync } from 'node:fs';
import { availableParallelism, cpus, platform, release } from 'node:os';
import { basename, dirname } from 'node:path';
import { parseArgs, usageLines, type FlagSpec, type FlagValues } from './args.js';
import { EXIT } from './errors.js';

const FLAGS: Record<string, FlagSpec> = {
  json: { type: 'boolean', help: 'one JSON object instead of text' },
  help: { type: 'boolean', help: 'this help' },
};
export const DOCTOR_USAGE = `usage: finetorch doctor [--json]\n\n${usageLines(FLAGS)}\n`;

export interface DoctorReport {
  ok: boolean;
  node: { version: string; napi: string | null; platform: string; arch: string; os: string };
  finetorch: { version: string; addon: string | null; origin: string | null; prebuiltFlavor: string | null; attempts: string[]; error?: string };
  libtorch: {
    version: string | null;
    flavor: 'cpu' | 'cuda' | null;
    path: string | null;
    libraries: string[];
    source: string | null;
    cmakePrefix: string | null;
    cpuCapability: string | null;
  };
  cuda: { built: boolean; available: boolean; devices: number; driver: string | null };
  threads: { intraOp: number | null; interOp: number | null; backend: string | null; cores: number; env: Record<string, string | null> };
  blas: { library: string | null; version: string | null; paths: string[]; configured: string | null };
  cpu: { model: string | null; cores: number };
}

/** Shared libraries mapped into this process (Linux); empty elsewhere. */
export function mappedLibraries(): string[] {
  const maps = '/proc/self/maps';
  if (!existsSync(maps)) return [];
  const libs = new Set<string>();
  for (const line of readFileSync(maps, 'utf8').split('\n')) {
    const path = line.split(/\s+/).slice(5).join(' ');
    if (path.startsWith('/') && /\.so(\.|$)/.test(path)) libs.add(path);
  }
  return [...libs];
}

/** The BLAS implementation among the mapped libraries (libblas.so.3 resolved through its alternatives link). */
export function detectBlas(libs: string[]): { library: string | null; version: string | null; paths: string[] } {
  const real = (p: string) => {
    try {
      return realpathSync(p);
    } catch {
      return p;
    }
  };
  const kinds: Array<[RegExp, string]> = [
    [/libmkl_/, 'Intel MKL'],
    [/libopenblas/, 'OpenBLAS'],
    [/libblis/, 'BLIS'],
    [/libatlas|libsatlas|libtatlas/, 'ATLAS'],
    [/libArmPL|libarmpl/, 'Arm Performance Libraries'],
    [/libcublas/, 'cuBLAS'],
  ];
  const paths = libs.filter((l) => /lib(open)?blas|libmkl_|libblis|atlas|armpl|libcublas/i.test(basename(l)));
  const names: string[] = [];
  let version: string | null = null;
  for (const p of paths) {
    const r = real(p);
    let kind = kinds.find(([re]) => re.test(basename(r)))?.[1];
    // Debian's libblas.so.3 alternatives: the folder names the implementation
    if (!kind && /openblas/.test(r)) kind = 'OpenBLAS';
    if (!kind && /\/blas\//.test(r)) kind = 'reference BLAS (netlib)';
    if (!kind && /atlas/.test(r)) kind = 'ATLAS';
    if (kind === 'OpenBLAS') {
      const flavor = /openblas-(pthread|openmp|serial)/.exec(r)?.[1];
      const v = /-r(\d+\.\d+\.\d+)/.exec(r)?.[1];
      if (v) version = v;
      kind = flavor ? `OpenBLAS (${flavor})` : kind;
    }
    if (kind && !names.includes(kind)) names.push(kind);
  }
  return { library: names.length ? names.join(' + ') : null, version, paths };
}

export async function collectDoctor(): Promise<DoctorReport> {
  const report: DoctorReport = {
    ok: false,
    node: { version: process.version, napi: process.versions.napi ?? null, platform: process.platform, arch: process.arch, os: `${platform()} ${release()}` },
    finetorch: { version: 'unknown', addon: null, origin: null, prebuiltFlavor: null, attempts: [] },
    libtorch: { version: null, flavor: null, path: null, libraries: [], source: null, cmakePrefix: null, cpuCapability: null },
    cuda: { built: false, available: false, devices: 0, driver: null },
    threads: { intraOp: null, interOp: null, backend: null, cores: availableParallelism(), env: {} },
    blas: { library: null, version: null, paths: [], configured: null },
    cpu: { model: cpus()[0]?.model ?? null, cores: availableParallelism() },
  };
  for (const k of ['FINETORCH_NUM_THREADS', 'OMP_NUM_THREADS', 'MKL_NUM_THREADS', 'FINETORCH_BINARY', 'FINETORCH_LIBTORCH', 'CUDA_VISIBLE_DEVICES'])
    report.threads.env[k] = process.env[k] ?? null;
  if (existsSync('/proc/driver/nvidia/version')) report.cuda.driver = readFileSync('/proc/driver/nvidia/version', 'utf8').split('\n')[0].trim();
  let loader: typeof import('../native/loader.js');
  try {
    loader = await import('../native/loader.js');
  } catch (err) {
    report.finetorch.error = (err as Error).message;
    report.finetorch.attempts = (err as Error).message
      .split('\n')
      .filter((l) => l.startsWith('  ') && !l.startsWith('  -'))
      .map((l) => l.trim());
    return report;
  }
  const { native, loadReport } = loader;
  const { finetorchVersion } = await import('../recipes/run-record.js');
  const extra = loadReport as unknown as { flavor?: string; libtorch: { libdir?: string } };
  report.finetorch = {
    version: finetorchVersion(),
    addon: loadReport.path,
    origin: loadReport.origin,
    prebuiltFlavor: extra.flavor ?? null,
    attempts: loadReport.attempts,
  };
  const info = native.buildInfo();
  const libs = mappedLibraries();
  const torchLibs = libs.filter((l) => /\/libtorch[^/]*\.so|\/libc10[^/]*\.so/.test(l));
  const core = torchLibs.find((l) => /libtorch_cpu\.so/.test(l)) ?? torchLibs[0] ?? null;
  report.libtorch = {
    version: info.libtorchVersion,
    flavor: info.cuda || torchLibs.some((l) => /libtorch_cuda|libc10_cuda/.test(l)) ? 'cuda' : 'cpu',
    path: core ? dirname(core) : null,
    libraries: torchLibs,
    source: loadReport.libtorch.source ?? null,
    cmakePrefix: loadReport.libtorch.cmakePrefix ?? null,
    cpuCapability: /CPU capability usage: (\S+)/.exec(info.config)?.[1] ?? null,
  };
  report.cuda.built = info.cuda;
  report.cuda.available = native.cudaIsAvailable();
  report.cuda.devices = report.cuda.available ? native.cudaDeviceCount() : 0;
  report.threads.intraOp = native.getNumThreads();
  report.threads.interOp = Number(/get_num_interop_threads\(\) : (\d+)/.exec(info.parallelInfo)?.[1]) || null;
  report.threads.backend = /ATen parallel backend: (.+)/.exec(info.parallelInfo)?.[1]?.trim() ?? null;
  report.blas = { ...detectBlas(libs), configured: /BLAS_INFO=([^,\s]+)/.exec(info.config)?.[1] ?? null };
  report.ok = true;
  return report;
}

export function formatDoctor(r: DoctorReport): string {
  const lines: Array<[string, string]> = [
    ['node', `${r.node.version} (N-API ${r.node.napi ?? '?'}) on ${r.node.platform}-${r.node.arch}, ${r.node.os}`],
    ['finetorch', r.finetorch.version],
    [
      'native addon',
      r.finetorch.addon
        ? `${r.finetorch.addon} (${r.finetorch.origin}${r.finetorch.prebuiltFlavor ? ` ${r.finetorch.prebuiltFlavor}` : ''})`
        : `not loaded: ${r.finetorch.error?.split('\n')[0] ?? '?'}`,
    ],
  ];
  if (r.ok) {
    lines.push(
      ['libtorch', `${r.libtorch.version} ${r.libtorch.flavor?.toUpperCase()} build${r.libtorch.source ? `, ${r.libtorch.source}` : ''}`],
      ['libtorch path', r.libtorch.path ?? '?'],
      ['CPU', `${r.cpu.model ?? '?'}, ${r.cpu.cores} cores, kernels ${r.libtorch.cpuCapability ?? '?'}`],
      ['threads', `${r.threads.intraOp} intra-op, ${r.threads.interOp ?? '?'} inter-op (${r.threads.backend ?? '?'})`],
      ['BLAS', `${r.blas.library ?? 'none mapped'}${r.blas.version ? ` ${r.blas.version}` : ''}${r.blas.paths.length ? ` (${r.blas.paths.join(', ')})` : ''}`],
      [
        'CUDA',
        r.cuda.built
          ? `${r.cuda.available ? `${r.cuda.devices} device(s)` : 'built with CUDA, no device visible'}${r.cuda.driver ? `; ${r.cuda.driver}` : ''}`
          : `not in this build (CPU libtorch)${r.cuda.driver ? `; driver present: ${r.cuda.driver}` : ''}`,
      ],
    );
  }
  const env = Object.entries(r.threads.env)
    .filter(([, v]) => v !== null)
    .map(([k, v]) => `${k}=${v}`);
  if (env.length) lines.push(['environment', env.join(' ')]);
  if (r.finetorch.attempts.length) lines.push(['tried first', r.finetorch.attempts.join('\n' + ' '.repeat(15))]);
  const width = Math.max(...lines.map(([k]) => k.length)) + 2;
  let out = lines.map(([k, v]) => k.padEnd(width) + v).join('\n') + '\n';
  if (!r.ok && r.finetorch.error) out += '\n' + r.finetorch.error + '\n';
  return out;
}

export async function doctorCommand(argv: string[]): Promise<number> {
  let flags: FlagValues;
  try {
    const args = parseArgs('doctor', argv, FLAGS);
    if (args.positionals.length) throw new Error(`finetorch doctor: unexpected argument ${JSON.stringify(args.positionals[0])}`);
    flags = args.flags;
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n\n${DOCTOR_USAGE}`);
    return EXIT.usage;
  }
  if (flags.help) {
    process.stdout.write(DOCTOR_USAGE);
    return EXIT.ok;
  }
  const report = await collectDoctor();
  process.stdout.write(flags.json ? JSON.stringify(report, null, 2) + '\n' : formatDoctor(report));
  return report.ok ? EXIT.ok : EXIT.runtime;
}
