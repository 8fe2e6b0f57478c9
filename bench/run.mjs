// finetorch vs PyTorch on the same libtorch: the whole benchmark suite.
//
//   npm run bench                 full run (about 15-20 minutes on a 2-core machine)
//   npm run bench -- --quick      development run (under 4 minutes; figures are indicative only)
//   node bench/run.mjs --only train,latency [--quick]   a subset; written to bench/.cache/only.json
//   node bench/run.mjs --report   rewrite BENCHMARKS.md from bench/results/latest.json
//   --wait-idle[=SECONDS]         before each process, wait (at most SECONDS, default 60) until the CPUs
//                                 are 90% idle: for a machine shared with other jobs
//   npm run bench -- --device cuda      the GPU rows only (about 2 minutes on one H200): training throughput
//                                 and peak memory, finetorch beside PyTorch (default, fused AdamW, + bf16, +
//                                 channels_last), measured by scripts/check-gpu.mjs --only bench; merged into
//                                 bench/results/latest.json and BENCHMARKS.md's GPU section. Without a CUDA
//                                 device the section says "not run" and why. Python: --python PATH, else
//                                 FINETORCH_CHECK_PYTHON, else python3 (the GPU machine's torch)
//   node bench/run.mjs --device cuda --from DIR/check-gpu.json   the same rows from a check:gpu run made
//                                 elsewhere (one GPU run gives both the checks and the rows)
//   --quiet-machine / --noisy-machine   force the label of the figures in BENCHMARKS.md; by default it
//                                 is derived from the CPU time other processes used during each run
//                                 (/proc/stat minus the run's own CPU time): quiet when under 10% in every run
//
// Every measurement runs in its own process: bench/ft_side.mjs (finetorch, Node) and
// bench/torch_side.py (Debian's /usr/bin/python3 with python3-torch, the same libtorch
// build). The two sides of a pair alternate, A B A B, for a number of rounds, so slow
// drift of the machine affects both; we report medians and the ratio finetorch/PyTorch
// of the medians. Results go to bench/results/latest.json and BENCHMARKS.md.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, totalmem, availableParallelism, release } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeReport } from './report.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..');
const cache = join(here, '.cache');
const PYTHON = process.env.FINETORCH_BENCH_PYTHON ?? '/usr/bin/python3';
const argv = process.argv.slice(2);
const flag = (name) => argv.includes(name);
const option = (name) => {
  const i = argv.indexOf(name);
  return i >= 0 ? argv[i + 1] : undefined;
};

if (flag('--report')) {
  const results = JSON.parse(readFileSync(join(here, 'results', 'latest.json'), 'utf8'));
  writeReport(results, join(root, 'BENCHMARKS.md'));
  console.log('wrote BENCHMARKS.md from bench/results/latest.json');
  process.exit(0);
}

if (option('--device') !== undefined && option('--device') !== 'cpu') {
  process.exit(await gpuRows(option('--device')));
}

/**
 * The GPU rows: scripts/check-gpu.mjs measures them (its bench part), and they are merged into
 * bench/results/latest.json (the CPU sections stay as they are) and BENCHMARKS.md. Without a CUDA
 * device the GPU section records that it was not run, and why.
 */
async function gpuRows(device) {
  if (device !== 'cuda') {
    console.error(`--device must be cpu or cuda, not ${device}`);
    return 2;
  }
  const out = join(cache, 'gpu');
  mkdirSync(out, { recursive: true });
  const from = option('--from');
  let r = { status: 0, stderr: '' };
  if (!from) {
    const args = [join(root, 'scripts', 'check-gpu.mjs'), '--only', 'bench', '--device', 'cuda', '--out', out];
    if (flag('--quick')) args.push('--quick');
    if (option('--python')) args.push('--python', option('--python'));
    r = spawnSync(process.execPath, args, { cwd: root, stdio: ['ignore', 'inherit', 'pipe'], encoding: 'utf8' });
    process.stderr.write(r.stderr ?? '');
  } else if (!existsSync(from)) {
    console.error(`bench --device cuda --from: ${from} does not exist (the check-gpu.json of a check:gpu run)`);
    return 2;
  }
  const latest = join(here, 'results', 'latest.json');
  const results = existsSync(latest) ? JSON.parse(readFileSync(latest, 'utf8')) : null;
  if (!results) {
    console.error('bench --device cuda: no bench/results/latest.json to add the GPU rows to; run the CPU suite first (npm run bench)');
    return 2;
  }
  const file = from ?? join(out, 'check-gpu.json');
  const report = r.status === 0 || r.status === 1 ? JSON.parse(readFileSync(file, 'utf8')) : null;
  if (from && report?.device !== 'cuda') {
    console.error(`bench --device cuda --from: ${from} is a run on ${report?.device ?? 'no device'}, not cuda`);
    return 2;
  }
  if (report?.bench?.rows) {
    results.gpuBench = { ...report, measuredAt: report.startedAt, measuredBy: from ? 'npm run check:gpu' : 'npm run bench -- --device cuda' };
    results.gpu = null;
  } else {
    const reason =
      (r.stderr ?? '')
        .split('\n')
        .find((l) => l.startsWith('check:gpu:'))
        ?.replace(/^check:gpu: /, '') ?? `scripts/check-gpu.mjs exited with ${r.status ?? r.signal}`;
    results.gpu = `GPU rows not run (${new Date().toISOString().slice(0, 10)}): ${reason.replaceAll(`${root}/`, '')}`;
    results.gpuBench = null;
  }
  writeFileSync(latest, JSON.stringify(results, null, 2) + '\n');
  writeReport(results, join(root, 'BENCHMARKS.md'));
  console.log(`wrote the GPU section of BENCHMARKS.md and bench/results/latest.json (${results.gpuBench ? 'measured' : 'not run'})`);
  return results.gpuBench ? 0 : 2;
}

const QUICK = flag('--quick');
const only = option('--only')?.split(',');
const SECTIONS = ['train', 'peak-flops', 'epoch', 'memory', 'peak-rss', 'latency'];
for (const s of only ?? []) if (!SECTIONS.includes(s)) throw new Error(`--only: unknown section ${s}; one of ${SECTIONS.join(', ')}`);
const wanted = (s) => !only || only.includes(s);

// The sizes of every benchmark, for the full and the quick run.
const PLAN = QUICK
  ? {
      rounds: 2,
      train: { warmup: 1, steps: 3 },
      train50: { warmup: 1, steps: 2 },
      matmul: { n: 1024, iters: 5, rounds: 1 },
      epoch: { images: 256, rounds: 2 },
      memory: { steps: 300, every: 25, warmupSteps: 100 },
      peak: { size: 112, batch: 16, steps: 2, rounds: 1 },
      latency: { warmup: 3, iters: 20, threads: [2], rounds: 2 },
    }
  : {
      rounds: 5,
      train: { warmup: 3, steps: 12 },
      train50: { warmup: 2, steps: 6 },
      matmul: { n: 2048, iters: 10, rounds: 2 },
      epoch: { images: 2048, rounds: 3 },
      memory: { steps: 2000, every: 50, warmupSteps: 200 },
      peak: { size: 224, batch: 16, steps: 4, rounds: 3 },
      latency: { warmup: 10, iters: 100, threads: [1, 2], rounds: 3 },
    };
const rounds = Number(option('--rounds') ?? PLAN.rounds);

// BERT-small: 4 layers, hidden 256, 4 heads, FFN 1024, BERT's vocabulary, sequence 128.
const BERT_SMALL = {
  model_type: 'bert',
  vocab_size: 30522,
  hidden_size: 256,
  num_hidden_layers: 4,
  num_attention_heads: 4,
  intermediate_size: 1024,
  max_position_embeddings: 512,
  type_vocab_size: 2,
  layer_norm_eps: 1e-12,
  pad_token_id: 0,
  num_labels: 2,
};

// ---- processes ----

const THREAD_VARS = ['FINETORCH_NUM_THREADS', 'OMP_NUM_THREADS', 'MKL_NUM_THREADS', 'OPENBLAS_NUM_THREADS', 'TORCH_NUM_THREADS'];
const removedEnv = THREAD_VARS.filter((v) => process.env[v] !== undefined).map((v) => `${v}=${process.env[v]}`);
const cleanEnv = { ...process.env };
for (const v of THREAD_VARS) delete cleanEnv[v];

const started = Date.now();
const elapsed = () => `${((Date.now() - started) / 1000).toFixed(0)}s`;
const log = (msg) => process.stderr.write(`[bench ${elapsed()}] ${msg}\n`);

// CPU time of the whole machine, from /proc/stat (USER_HZ ticks): busy and total.
function cpuTicks() {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1, 9).map(Number);
  const idle = f[3] + f[4];
  const total = f.reduce((a, b) => a + b, 0);
  return { busy: total - idle, total };
}
const TICK = 100; // USER_HZ

/** Waits (up to maxS seconds) until the CPUs were at least 90% idle over half a second. */
async function waitIdle(maxS) {
  const t0 = Date.now();
  while (Date.now() - t0 < maxS * 1000) {
    const a = cpuTicks();
    await new Promise((r) => setTimeout(r, 500));
    const b = cpuTicks();
    if ((b.busy - a.busy) / Math.max(1, b.total - a.total) <= 0.1) return (Date.now() - t0) / 1000;
  }
  return (Date.now() - t0) / 1000;
}
const waitArg = argv.find((a) => a.startsWith('--wait-idle'));
const WAIT_IDLE = waitArg ? (waitArg.includes('=') ? Number(waitArg.split('=')[1]) : 60) : 0;
const waited = [];

/**
 * Runs one side of one task in a fresh process; resolves to its JSON result,
 * with the share of the machine's CPU that other processes used meanwhile
 * (foreignCpuShare: what made this run noisy).
 */
async function runSide(side, task, opts, { timeoutS = 900 } = {}) {
  if (WAIT_IDLE > 0) waited.push(await waitIdle(WAIT_IDLE));
  const env = { ...cleanEnv };
  if (opts.threads) {
    if (side === 'finetorch') env.FINETORCH_NUM_THREADS = String(opts.threads);
    // OpenBLAS (sgemm under both) runs its own threads, as many as cores, whatever
    // set_num_threads says: pin it too, so "n threads" means n cores on both sides.
    env.OPENBLAS_NUM_THREADS = String(opts.threads);
  }
  const [cmd, args] =
    side === 'finetorch'
      ? [process.execPath, [join(here, 'ft_side.mjs'), task, JSON.stringify(opts)]]
      : [PYTHON, [join(here, 'torch_side.py'), task, JSON.stringify(opts)]];
  return new Promise((resolve, reject) => {
    const t0 = Date.now();
    const before = cpuTicks();
    const child = spawn(cmd, args, { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => {
      out += d;
    });
    child.stderr.on('data', (d) => {
      err += d;
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutS * 1000);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const after = cpuTicks();
      const line = out.trim().split('\n').pop();
      if (code !== 0) return reject(new Error(`${side} ${task} failed (${signal ?? `exit ${code}`}):\n${err.trim().split('\n').slice(-15).join('\n')}`));
      let res;
      try {
        res = JSON.parse(line);
      } catch {
        return reject(new Error(`${side} ${task}: no JSON result on stdout:\n${out.slice(-2000)}\n${err.slice(-2000)}`));
      }
      const total = after.total - before.total;
      const foreign = total > 0 && typeof res.cpuSeconds === 'number' ? Math.max(0, (after.busy - before.busy - res.cpuSeconds * TICK) / total) : null;
      resolve({ ...res, processSeconds: (Date.now() - t0) / 1000, foreignCpuShare: foreign });
    });
  });
}

// ---- statistics ----

function median(values) {
  const v = values.filter((x) => typeof x === 'number' && Number.isFinite(x)).sort((a, b) => a - b);
  if (!v.length) return null;
  const m = Math.floor(v.length / 2);
  return v.length % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
}

/**
 * Runs pairs interleaved: for each round, each pair's finetorch run then its
 * PyTorch run (A B A B). `metric` picks the compared figure from a result.
 */
async function interleave(pairs, n) {
  const runs = pairs.map(() => ({ finetorch: [], pytorch: [] }));
  for (let r = 0; r < n; r++) {
    for (const [i, p] of pairs.entries()) {
      for (const side of ['finetorch', 'pytorch']) {
        const spec = p[side];
        const res = await runSide(side, spec.task, spec.opts);
        runs[i][side].push(res);
        log(
          `${p.key} round ${r + 1}/${n} ${side}: ${p.metric(res).toFixed(2)} ${p.unit} (${res.threads} threads, ${res.processSeconds.toFixed(1)}s, other processes ${(100 * (res.foreignCpuShare ?? 0)).toFixed(0)}% CPU)`,
        );
      }
    }
  }
  return pairs.map((p, i) => summarize(p, runs[i]));
}

function summarize(p, runs) {
  const ft = runs.finetorch.map(p.metric);
  const py = runs.pytorch.map(p.metric);
  const mf = median(ft),
    mp = median(py);
  const perRound = ft.map((v, k) => (py[k] ? v / py[k] : null)).filter((x) => x !== null);
  return {
    key: p.key,
    title: p.title,
    unit: p.unit,
    better: p.better,
    finetorch: { median: mf, values: ft, threads: runs.finetorch[0]?.threads, runs: runs.finetorch },
    pytorch: { median: mp, values: py, threads: runs.pytorch[0]?.threads, runs: runs.pytorch },
    ratio: mf !== null && mp ? mf / mp : null,
    ratioPerRound: { median: median(perRound), min: Math.min(...perRound), max: Math.max(...perRound) },
  };
}

// ---- preparation: PNG files and the ResNet-50 checkpoint ----

function preparePngs(count) {
  const dir = join(cache, `png64-${count}`);
  if (existsSync(join(dir, 'done'))) return dir;
  log(`writing ${count} PNG files (Fashion-MNIST, 64x64 RGB) to ${dir}`);
  const r = spawnSync(process.execPath, [join(here, 'make-pngs.mjs'), String(count), dir], { cwd: root, stdio: 'inherit' });
  if (r.status !== 0) throw new Error('make-pngs.mjs failed');
  return dir;
}

async function prepareCheckpoint() {
  const path = join(cache, 'resnet50-seed0.pth');
  if (!existsSync(path)) {
    log('writing a seeded ResNet-50 checkpoint with torch.save');
    mkdirSync(cache, { recursive: true });
    await runSide('pytorch', 'checkpoint', { path });
  }
  return path;
}

// ---- the suite ----

const trainPair = (key, title, model, size, batch, threads, plan) => ({
  key,
  title,
  unit: 'images/s',
  better: 'higher',
  metric: (r) => r.imagesPerSecond,
  finetorch: { task: 'train', opts: { model, size, batch, threads: threads.finetorch, ...plan } },
  pytorch: { task: 'train', opts: { model, size, batch, threads: threads.pytorch, ...plan } },
});

function memoryGrowth(samples, warmupSteps, field) {
  const after = samples.filter((s) => s.step >= warmupSteps);
  if (after.length < 2) return null;
  const base = after[0][field];
  const tail = after.slice(-Math.max(1, Math.ceil(after.length / 10)));
  const end = Math.max(...tail.map((s) => s[field]));
  // least-squares slope, MB per 1,000 steps
  const n = after.length;
  const mx = after.reduce((s, a) => s + a.step, 0) / n;
  const my = after.reduce((s, a) => s + a[field], 0) / n;
  const slope = after.reduce((s, a) => s + (a.step - mx) * (a[field] - my), 0) / after.reduce((s, a) => s + (a.step - mx) ** 2, 0);
  return {
    fromStep: after[0].step,
    toStep: after.at(-1).step,
    baseMB: base,
    endMB: end,
    maxMB: Math.max(...after.map((s) => s[field])),
    growth: (end - base) / base,
    slopeMBPer1000Steps: slope * 1000,
  };
}

function previousGpu() {
  const latest = join(here, 'results', 'latest.json');
  if (!existsSync(latest)) return {};
  const { gpu, gpuBench } = JSON.parse(readFileSync(latest, 'utf8'));
  return { gpu, gpuBench };
}

async function main() {
  mkdirSync(join(here, 'results'), { recursive: true });
  log(
    `${QUICK ? 'quick' : 'full'} run, ${rounds} rounds${only ? `, only ${only.join(',')}` : ''}; load average ${loadavg()
      .map((x) => x.toFixed(2))
      .join(' ')}`,
  );
  const ftVersions = await runSide('finetorch', 'versions', {});
  const pyVersions = await runSide('pytorch', 'versions', {});
  const results = {
    mode: QUICK ? 'quick' : 'full',
    machineState: flag('--quiet-machine') ? 'quiet' : flag('--noisy-machine') ? 'noisy' : 'unlabelled',
    startedAt: new Date(started).toISOString(),
    machine: {
      cpu: cpus()[0].model,
      cores: availableParallelism(),
      memoryGiB: +(totalmem() / 2 ** 30).toFixed(1),
      kernel: release(),
      loadAverageBefore: loadavg(),
    },
    versions: { finetorch: ftVersions, pytorch: pyVersions },
    removedEnv,
    plan: { ...PLAN, rounds },
    waitIdle: WAIT_IDLE,
    // the GPU rows come from `--device cuda` (another machine, another run): kept across CPU runs
    gpu: previousGpu().gpu ?? 'GPU rows not run: this suite measures the CPU; run `npm run bench -- --device cuda` on a CUDA machine.',
    gpuBench: previousGpu().gpuBench ?? null,
    sections: {},
  };
  const S = results.sections;
  const save = () => {
    results.finishedAt = new Date().toISOString();
    results.totalSeconds = (Date.now() - started) / 1000;
    results.machine.loadAverageAfter = loadavg();
    results.waitedForIdleSeconds = waited.reduce((a, b) => a + b, 0);
    const file = only ? join(cache, 'only.json') : join(here, 'results', 'latest.json');
    writeFileSync(file, JSON.stringify(results, null, 2) + '\n');
    return file;
  };

  // 1. training throughput, and the FLOP utilisation
  if (wanted('train')) {
    log('1. training throughput: ResNet-18 64x64 batch 32, AdamW with two param groups');
    const t = PLAN.train;
    S.train = await interleave(
      [
        trainPair('resnet18-t1', 'ResNet-18 64x64 b32, 1 thread each', 'resnet18', 64, 32, { finetorch: 1, pytorch: 1 }, t),
        trainPair('resnet18-t2', 'ResNet-18 64x64 b32, 2 threads each', 'resnet18', 64, 32, { finetorch: 2, pytorch: 2 }, t),
        trainPair('resnet18-default', 'ResNet-18 64x64 b32, each at its default threads', 'resnet18', 64, 32, { finetorch: null, pytorch: null }, t),
      ],
      rounds,
    );
    S.train.push(
      ...(await interleave(
        [trainPair('resnet50-t2', 'ResNet-50 112x112 b32, 2 threads each', 'resnet50', 112, 32, { finetorch: 2, pytorch: 2 }, PLAN.train50)],
        Math.max(2, rounds - 2),
      )),
    );
    save();
  }
  if (wanted('peak-flops')) {
    log('1b. FLOPs per image and the matmul peak of this libtorch');
    const flops = (
      await runSide('pytorch', 'flops', {
        models: [
          ['resnet18', 64],
          ['resnet50', 112],
        ],
      })
    ).forwardFlopsPerImage;
    const mm = {};
    for (const threads of [1, 2]) {
      const key = `t${threads}`;
      const pairs = await interleave(
        [
          {
            key: `sgemm-${key}`,
            title: `float32 matmul ${PLAN.matmul.n}^3, ${threads} thread(s)`,
            unit: 'GFLOP/s',
            better: 'higher',
            metric: (r) => r.gflops,
            finetorch: { task: 'matmul', opts: { ...PLAN.matmul, threads } },
            pytorch: { task: 'matmul', opts: { ...PLAN.matmul, threads } },
          },
        ],
        PLAN.matmul.rounds,
      );
      mm[key] = pairs[0];
    }
    S.flops = { forwardFlopsPerImage: flops, trainFlopsFactor: 3, matmul: mm };
    save();
  }

  // 2. end-to-end epoch on PNG files with augmentation
  if (wanted('epoch')) {
    const dir = preparePngs(PLAN.epoch.images);
    log(`2. end-to-end epoch: ${PLAN.epoch.images} PNG files, ResNet-18 64x64 b32, 2 threads each`);
    const common = { root: dir, batch: 32, crop: 64, threads: 2 };
    const ipsOf = (r) => r.imagesPerSecond;
    S.epoch = await interleave(
      [
        {
          key: 'epoch-w0',
          title: 'PNG epoch: finetorch DataLoader vs torch DataLoader (num_workers=0)',
          unit: 'images/s',
          better: 'higher',
          metric: ipsOf,
          finetorch: { task: 'epoch', opts: common },
          pytorch: { task: 'epoch', opts: { ...common, workers: 0 } },
        },
        {
          key: 'epoch-w2',
          title: 'PNG epoch: finetorch DataLoader vs torch DataLoader (num_workers=2)',
          unit: 'images/s',
          better: 'higher',
          metric: ipsOf,
          finetorch: { task: 'epoch', opts: common },
          pytorch: { task: 'epoch', opts: { ...common, workers: 2 } },
        },
      ],
      PLAN.epoch.rounds,
    );
    save();
  }

  // 3. memory: flat over many steps, and peak RSS of a ResNet-50 fine-tune
  if (wanted('memory')) {
    const m = PLAN.memory;
    log(`3. memory over ${m.steps} fit() steps: ResNet-18 32x32 batch 16, 2 threads`);
    const opts = { model: 'resnet18', size: 32, batch: 16, dataset: 1600, steps: m.steps, every: m.every, threads: 2 };
    const ft = await runSide('finetorch', 'memory', opts);
    log(`   finetorch: ${ft.steps} steps in ${ft.seconds.toFixed(0)}s`);
    const py = await runSide('pytorch', 'memory', opts);
    log(`   pytorch: ${py.samples.at(-1)?.step} steps in ${py.seconds.toFixed(0)}s`);
    S.memory = {
      config: opts,
      warmupSteps: m.warmupSteps,
      finetorch: {
        rss: memoryGrowth(ft.samples, m.warmupSteps, 'rssMB'),
        external: memoryGrowth(ft.samples, m.warmupSteps, 'externalMB'),
        heapUsed: memoryGrowth(ft.samples, m.warmupSteps, 'heapUsedMB'),
        seconds: ft.seconds,
        eventLoopDelayMs: ft.eventLoopDelayMs,
        cpuCache: ft.cpuCache,
        foreignCpuShare: ft.foreignCpuShare,
        samples: ft.samples,
      },
      pytorch: { rss: memoryGrowth(py.samples, m.warmupSteps, 'rssMB'), seconds: py.seconds, foreignCpuShare: py.foreignCpuShare, samples: py.samples },
    };
    save();
  }
  if (wanted('peak-rss')) {
    const checkpoint = await prepareCheckpoint();
    const p = PLAN.peak;
    log(`3b. peak RSS of a ResNet-50 fine-tune (${p.size}x${p.size}, batch ${p.batch}, ${p.steps} steps), separate processes`);
    const opts = { checkpoint, size: p.size, batch: p.batch, steps: p.steps, threads: 2 };
    S.peakRss = (
      await interleave(
        [
          {
            key: 'resnet50-peak-rss',
            title: `Peak RSS, ResNet-50 fine-tune ${p.size}x${p.size} b${p.batch}`,
            unit: 'MB',
            better: 'lower',
            metric: (r) => r.peakRssMB,
            finetorch: { task: 'peak', opts },
            pytorch: { task: 'peak', opts },
          },
        ],
        p.rounds,
      )
    )[0];
    save();
  }

  // 5. inference latency, batch 1
  if (wanted('latency')) {
    const l = PLAN.latency;
    log('5. inference latency, batch 1: ResNet-18 224x224 and BERT-small (4 layers, hidden 256, sequence 128)');
    const pairs = [];
    for (const threads of l.threads) {
      for (const [key, title, opts] of [
        ['resnet18', 'ResNet-18 224x224', { model: 'resnet18', size: 224 }],
        ['bert-small', 'BERT-small seq 128', { model: 'bert', config: BERT_SMALL, seq: 128 }],
      ]) {
        const o = { ...opts, warmup: l.warmup, iters: l.iters, threads };
        pairs.push({
          key: `${key}-t${threads}-p50`,
          title: `${title}, ${threads} thread(s): p50`,
          unit: 'ms',
          better: 'lower',
          metric: (r) => r.p50Ms,
          finetorch: { task: 'latency', opts: o },
          pytorch: { task: 'latency', opts: o },
        });
      }
    }
    const res = await interleave(pairs, Math.min(rounds, l.rounds));
    // p99 from the same runs
    S.latency = res.map((r) => ({
      ...r,
      p99: { finetorch: median(r.finetorch.runs.map((x) => x.p99Ms)), pytorch: median(r.pytorch.runs.map((x) => x.p99Ms)) },
    }));
    save();
  }

  const file = save();
  log(`wrote ${file}`);
  if (!only) {
    writeReport(results, join(root, 'BENCHMARKS.md'));
    log('wrote BENCHMARKS.md');
  }
}

await main();
