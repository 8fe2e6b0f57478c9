// Data-parallel scaling on one machine: images/s of 1 process x 1 thread and
// 2 processes x 1 thread (Gloo over loopback), finetorch beside PyTorch's
// DistributedDataParallel (Debian's /usr/bin/python3 with python3-torch 1.13, the
// libtorch finetorch links; bench/distributed_torch.py) in the same run.
//
//   node bench/distributed.mjs            5 rounds of 10 timed steps after 3 warm-up steps (about 4 minutes on 2 cores)
//   node bench/distributed.mjs --quick    smoke run: 1 round of 3 timed steps after 1 (under a minute)
//   options: --rounds N --steps N --warmup N --batch N (per rank, default 32) --classes N (default 10)
//            --size N (default 64) --worlds 1,2 --loop (also finetorch's plain loop with DistributedDataParallel)
//            --no-ceiling (leave out the ceiling run) --no-torch (finetorch only) --wait-idle[=SECONDS] (before each run, wait at most SECONDS, default 60,
//            until the CPUs are 90% idle: for a machine shared with other jobs)
//
// The model: ResNet-18 (torchvision's architecture on both sides), numClasses outputs,
// random 64x64 images, SGD (lr 0.01, momentum 0.9), cross-entropy. Weak scaling, as DDP
// users measure it: every rank trains batches of `batch`, so 2 ranks train twice the
// images per step; the scaling ratio is (images/s of 2 ranks) / (images/s of 1 process).
// finetorch trains with fit() (fit({ distributed: true }) on 2 ranks), PyTorch with the
// usual loop (DDP + DistributedSampler on 2 ranks, the plain model on 1). Each rank is
// a process started with torchrun's environment (RANK, WORLD_SIZE, MASTER_ADDR,
// MASTER_PORT), one thread each (FINETORCH_NUM_THREADS / torch.set_num_threads, and
// OMP/MKL/OpenBLAS pinned to 1), Gloo on the loopback interface (GLOO_SOCKET_IFNAME=lo)
// on both sides. Runs alternate (finetorch 1, PyTorch 1, finetorch 2, PyTorch 2, next
// round); a run's figure is its images over the time from the end of the warm-up steps
// to the end of the last step (the slower rank's); we report the median over rounds.
// The ceiling: 2 processes that each run the 1-process fit() at the same time, with no
// communication at all; what 2 cores of this machine allow (memory and caches shared), the
// ratio data parallelism can hope for.
// Each run also records the share of the machine's CPU that other processes took
// during its timed steps (/proc/stat minus the ranks' own CPU time): on a shared
// 2-core machine the 2-rank runs need both cores, so they suffer most from it.
// A full run writes bench/results/distributed.json; --quick writes bench/.cache/.
import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { cpus, loadavg, availableParallelism } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..');
const PYTHON = process.env.FINETORCH_BENCH_PYTHON ?? '/usr/bin/python3';
const argv = process.argv.slice(2);
const flag = (name) => argv.includes(name);
const option = (name, dflt) => {
  const i = argv.indexOf(name);
  return i >= 0 ? argv[i + 1] : dflt;
};

/** Busy and total CPU ticks of the whole machine, from /proc/stat. */
function cpuTicks() {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1, 9).map(Number);
  const total = f.reduce((a, b) => a + b, 0);
  return { busy: total - f[3] - f[4], total };
}

const cpuSeconds = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
};

/** One finetorch rank (started by the orchestrator below with torchrun's environment). */
async function finetorchRank(o) {
  const { torch, models, optim, fit, distributed, TensorLoader, nn } = await import('../dist/index.js');
  if (torch.getNumThreads() !== o.threads) throw new Error(`expected ${o.threads} thread(s), finetorch runs ${torch.getNumThreads()}`);
  // independent: each process trains alone (no process group), for the machine's ceiling
  const world = o.mode === 'independent' ? 1 : Number(process.env.WORLD_SIZE ?? 1);
  const rank = Number(process.env.RANK ?? 0);
  if (world > 1) await distributed.initProcessGroup({ backend: 'gloo', timeoutMs: 120_000 });
  torch.manualSeed(0);
  const model = models.resnet18({ numClasses: o.classes });
  model.train();
  const optimizer = new optim.SGD(model.parameters(), { lr: 0.01, momentum: 0.9 });
  const steps = o.warmup + o.steps;
  // every rank builds the whole data set; fit's sharding (distributed.shard) gives it its share
  torch.manualSeed(1);
  const x = torch.randn([world * o.batch * steps, 3, o.size, o.size]);
  const y = torch.randint(0, o.classes, [world * o.batch * steps]);
  const train = new TensorLoader(x, y, { batchSize: o.batch, shuffle: true, seed: 1 });

  const ends = [];
  let start = null;
  let step = 0;
  const stepEnded = () => {
    const now = performance.now();
    if (step === o.warmup - 1) start = { t: now, ticks: cpuTicks(), cpu: cpuSeconds() };
    else if (step >= o.warmup) ends.push((now - start.t) / 1000);
    step++;
  };
  if (o.mode === 'loop') {
    // the plain loop a user writes around DistributedDataParallel (world 1: the model itself)
    const ddp = world > 1 ? new distributed.DistributedDataParallel(model) : null;
    if (ddp) await ddp.ready;
    const data = ddp ? distributed.shard(train) : train;
    for (const { input, target } of data.batches(0)) {
      optimizer.zeroGrad();
      const logits = ddp ? ddp.forward(input) : model.forward(input);
      const loss = nn.functional.crossEntropy(logits, target);
      ddp?.reducer.prepare(); // arms the all-reduces that overlap the backward
      await loss.backwardAsync();
      if (ddp) await ddp.syncGradients();
      await optimizer.stepAsync();
      loss.item();
      logits.dispose();
      loss.dispose();
      input.dispose();
      target.dispose();
      stepEnded();
    }
  } else {
    await fit({ model, optimizer, train, epochs: 1, seed: 1, distributed: world > 1, onEvent: (e) => e.type === 'step' && stepEnded() });
  }
  const stop = { ticks: cpuTicks(), cpu: cpuSeconds() };
  if (world > 1) distributed.destroyProcessGroup();
  return {
    side: 'finetorch',
    mode: o.mode,
    rank,
    worldSize: world,
    threads: torch.getNumThreads(),
    images: ends.length * o.batch,
    seconds: ends.at(-1),
    stepEnds: ends,
    windowBusyTicks: stop.ticks.busy - start.ticks.busy,
    windowTotalTicks: stop.ticks.total - start.ticks.total,
    windowCpuSeconds: stop.cpu - start.cpu,
  };
}

/** A TCP port nobody listens on now (the OS's choice). */
function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/** Waits (at most maxS seconds) until the CPUs were at least 90% idle over half a second; returns the seconds waited. */
async function waitIdle(maxS) {
  const t0 = Date.now();
  while (Date.now() - t0 < maxS * 1000) {
    const a = cpuTicks();
    await new Promise((r) => setTimeout(r, 500));
    const b = cpuTicks();
    if ((b.busy - a.busy) / Math.max(1, b.total - a.total) <= 0.1) break;
  }
  return (Date.now() - t0) / 1000;
}

const THREAD_VARS = ['OMP_NUM_THREADS', 'MKL_NUM_THREADS', 'OPENBLAS_NUM_THREADS', 'FINETORCH_NUM_THREADS'];

/** Starts `world` ranks of one side and resolves to their JSON results, or rejects with the first failure's output. */
async function launch(side, world, o, timeoutS) {
  const port = await freePort();
  const ranks = [];
  for (let rank = 0; rank < world; rank++) {
    const env = {
      ...process.env,
      RANK: String(rank),
      LOCAL_RANK: String(rank),
      WORLD_SIZE: String(world),
      MASTER_ADDR: '127.0.0.1',
      MASTER_PORT: String(port),
    };
    env.GLOO_SOCKET_IFNAME = 'lo';
    for (const v of THREAD_VARS) env[v] = String(o.threads);
    const [cmd, args] =
      side === 'pytorch'
        ? [PYTHON, [join(here, 'distributed_torch.py'), JSON.stringify(o)]]
        : [process.execPath, [fileURLToPath(import.meta.url), '--rank', JSON.stringify(o)]];
    ranks.push(
      new Promise((resolve, reject) => {
        const child = spawn(cmd, args, { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'] });
        let out = '';
        let err = '';
        child.stdout.on('data', (d) => (out += d));
        child.stderr.on('data', (d) => (err += d));
        const timer = setTimeout(() => child.kill('SIGKILL'), timeoutS * 1000);
        child.on('close', (code, signal) => {
          clearTimeout(timer);
          const line = out
            .trim()
            .split('\n')
            .filter((l) => l.startsWith('{'))
            .at(-1);
          if (code !== 0 || !line)
            return reject(new Error(`${side} rank ${rank} of ${world} failed (${signal ?? `exit ${code}`}):\n${err.trim().split('\n').slice(-15).join('\n')}`));
          resolve(JSON.parse(line));
        });
      }),
    );
  }
  const results = await Promise.allSettled(ranks);
  const failed = results.find((r) => r.status === 'rejected');
  if (failed) throw failed.reason;
  return results.map((r) => r.value);
}

/** One run's figures from its ranks' results: images/s over the slower rank's timed steps, and the others' CPU share. */
function summarizeRun(ranks) {
  const seconds = Math.max(...ranks.map((r) => r.seconds));
  const images = ranks.reduce((a, r) => a + r.images, 0);
  const r0 = ranks[0];
  // rank 0's window of /proc/stat, minus every rank's own CPU time in its window (the windows nearly coincide)
  const own = ranks.reduce((a, r) => a + r.windowCpuSeconds, 0) * 100;
  const foreignCpuShare = r0.windowTotalTicks > 0 ? Math.max(0, (r0.windowBusyTicks - own) / r0.windowTotalTicks) : null;
  // images per second of the ranks' own CPU time: less sensitive to other processes than images/s (a rank waiting
  // in a collective uses little CPU, so this shows the communication's CPU cost, not the waits)
  const imagesPerCpuSecond = images / ranks.reduce((a, r) => a + r.windowCpuSeconds, 0);
  return { imagesPerSecond: images / seconds, imagesPerCpuSecond, images, seconds, foreignCpuShare, stepEnds: ranks.map((r) => r.stepEnds) };
}

/** '(min-max)' of a run's values, when there are several: how much the rounds disagreed. */
const spread = (values, digits = 1) => (values.length > 1 ? `(${Math.min(...values).toFixed(digits)}-${Math.max(...values).toFixed(digits)})` : '');

const median = (values) => {
  const v = values.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (!v.length) return null;
  const m = v.length >> 1;
  return v.length % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
};

async function main() {
  const quick = flag('--quick');
  const o = {
    threads: 1,
    classes: Number(option('--classes', 10)),
    size: Number(option('--size', 64)),
    batch: Number(option('--batch', 32)),
    warmup: Number(option('--warmup', quick ? 1 : 3)),
    steps: Number(option('--steps', quick ? 3 : 10)),
  };
  if (!(o.warmup >= 1)) throw new Error('--warmup must be at least 1 (the timed window starts at the end of the warm-up)');
  if (!(o.steps >= 1)) throw new Error('--steps must be at least 1');
  const rounds = Number(option('--rounds', quick ? 1 : 5));
  const worlds = option('--worlds', '1,2').split(',').map(Number);
  const variants = [
    { key: 'finetorch', side: 'finetorch', mode: 'fit', label: 'finetorch fit()' },
    ...(flag('--no-ceiling') ? [] : [{ key: 'independent', side: 'finetorch', mode: 'independent', label: 'ceiling: independent fit() processes', only: 2 }]),
    ...(flag('--loop') ? [{ key: 'finetorchLoop', side: 'finetorch', mode: 'loop', label: 'finetorch loop + DistributedDataParallel' }] : []),
    ...(flag('--no-torch') ? [] : [{ key: 'pytorch', side: 'pytorch', mode: 'loop', label: 'PyTorch DDP' }]),
  ];
  const timeoutS = 60 + 10 * (o.warmup + o.steps);
  const waitArg = argv.find((a) => a.startsWith('--wait-idle'));
  const WAIT_IDLE = waitArg ? (waitArg.includes('=') ? Number(waitArg.split('=')[1]) : 60) : 0;
  const waited = [];
  const started = Date.now();
  const log = (msg) => console.log(`[${((Date.now() - started) / 1000).toFixed(0)}s] ${msg}`);
  console.log(
    `ResNet-18 ${o.size}x${o.size}, ${o.classes} classes, SGD, batch ${o.batch} per rank, ${o.threads} thread per rank, Gloo on loopback; ` +
      `${o.steps} timed steps after ${o.warmup}, ${rounds} round(s); ${cpus()[0]?.model ?? ''}, ${availableParallelism()} cores, load average ${loadavg()[0].toFixed(2)}`,
  );

  const runs = Object.fromEntries(variants.map((v) => [v.key, Object.fromEntries(worlds.map((w) => [w, []]))]));
  for (let r = 0; r < rounds; r++) {
    for (const world of worlds) {
      for (const v of variants) {
        if (v.only && v.only !== world) continue;
        if (WAIT_IDLE > 0) waited.push(await waitIdle(WAIT_IDLE));
        const ranks = await launch(v.side, world, { ...o, mode: v.mode }, timeoutS);
        const run = summarizeRun(ranks);
        runs[v.key][world].push(run);
        log(
          `round ${r + 1}/${rounds} ${v.label}, ${world} process(es): ${run.imagesPerSecond.toFixed(1)} images/s ` +
            `(${run.imagesPerCpuSecond.toFixed(1)} per CPU second; ${run.seconds.toFixed(2)} s timed; other processes ${(100 * (run.foreignCpuShare ?? 0)).toFixed(0)}% of the CPU)`,
        );
      }
    }
  }

  // On a shared machine: the medians over the runs that had their cores, i.e. where other processes took less than
  // the cores the run left free plus 10% of the CPU (a 1-process run on 2 cores leaves one free; a 2-process run none)
  const cores = availableParallelism();
  const isQuiet = (world, x) => x.foreignCpuShare !== null && x.foreignCpuShare < Math.max(0, cores - world) / cores + 0.1;
  const quietSummary = (v) => {
    const ips = Object.fromEntries(worlds.map((w) => [w, median(runs[v.key][w].filter((x) => isQuiet(w, x)).map((x) => x.imagesPerSecond))]));
    const count = Object.fromEntries(worlds.map((w) => [w, runs[v.key][w].filter((x) => isQuiet(w, x)).length]));
    const base = v.only ? median(runs.finetorch[1]?.filter((x) => isQuiet(1, x)).map((x) => x.imagesPerSecond) ?? []) : ips[1];
    return { imagesPerSecond: ips, runs: count, scaling: base && ips[2] ? ips[2] / base : null };
  };
  const summary = variants.map((v) => {
    const ips = Object.fromEntries(worlds.map((w) => [w, median(runs[v.key][w].map((x) => x.imagesPerSecond))]));
    // the ceiling's ratio is over finetorch's 1-process runs
    const one = runs[v.only ? 'finetorch' : v.key][1] ?? [];
    const two = runs[v.key][2] ?? [];
    const one1 = median(one.map((x) => x.imagesPerSecond));
    const perRoundRatio = one.length === two.length ? two.map((x, k) => x.imagesPerSecond / one[k].imagesPerSecond) : [];
    return {
      key: v.key,
      label: v.label,
      imagesPerSecond: ips,
      scaling: one1 && ips[2] ? ips[2] / one1 : null,
      scalingPerRound: perRoundRatio,
      imagesPerCpuSecond: Object.fromEntries(worlds.map((w) => [w, median(runs[v.key][w].map((x) => x.imagesPerCpuSecond))])),
      foreignCpuShare: Object.fromEntries(worlds.map((w) => [w, runs[v.key][w].map((x) => x.foreignCpuShare)])),
      quiet: quietSummary(v),
      runs: runs[v.key],
    };
  });
  const torchRow = summary.find((s) => s.key === 'pytorch');
  console.log('');
  console.log(`| | ${worlds.map((w) => `${w} process${w > 1 ? 'es' : ''} x 1 thread`).join(' | ')} | scaling (2 / 1) |`);
  console.log(`|---|${worlds.map(() => '---:').join('|')}|---:|`);
  for (const s of summary)
    console.log(
      `| ${s.label} | ${worlds.map((w) => (s.imagesPerSecond[w] === null ? '-' : `${s.imagesPerSecond[w].toFixed(1)} img/s ${spread(s.runs[w].map((x) => x.imagesPerSecond))}`)).join(' | ')} | ${s.scaling?.toFixed(2) ?? '-'}x ${spread(s.scalingPerRound, 2)} |`,
    );
  if (summary.some((s) => worlds.some((w) => s.quiet.runs[w] < s.runs[w].length))) {
    console.log('');
    console.log('the same over the runs that had their cores (other processes under (cores - processes) / cores + 10% of the CPU):');
    console.log(`| | ${worlds.map((w) => `${w} process${w > 1 ? 'es' : ''} x 1 thread`).join(' | ')} | scaling (2 / 1) |`);
    console.log(`|---|${worlds.map(() => '---:').join('|')}|---:|`);
    for (const s of summary)
      console.log(
        `| ${s.label} | ${worlds.map((w) => (s.quiet.imagesPerSecond[w] === null ? `- (${s.quiet.runs[w]} runs)` : `${s.quiet.imagesPerSecond[w].toFixed(1)} img/s (${s.quiet.runs[w]} runs)`)).join(' | ')} | ${s.quiet.scaling?.toFixed(2) ?? '-'}x |`,
      );
  }
  if (torchRow)
    for (const s of summary.filter((x) => x.key !== 'pytorch' && x.key !== 'independent'))
      console.log(
        `${s.label} / PyTorch: ${worlds.map((w) => `${w} process(es) ${(s.imagesPerSecond[w] / torchRow.imagesPerSecond[w]).toFixed(2)}x`).join(', ')}`,
      );
  console.log(
    `images per CPU second of the ranks (less sensitive to other load): ${summary
      .map(
        (s) =>
          `${s.label} ${worlds
            .filter((w) => s.imagesPerCpuSecond[w] !== null)
            .map((w) => `${w}: ${s.imagesPerCpuSecond[w].toFixed(1)}`)
            .join(', ')}`,
      )
      .join('; ')}`,
  );
  const shares = summary.flatMap((s) => worlds.flatMap((w) => s.foreignCpuShare[w])).filter((x) => x !== null);
  console.log(
    `other processes took ${(100 * Math.min(...shares)).toFixed(0)}-${(100 * Math.max(...shares)).toFixed(0)}% of the CPU during the timed steps (median ${(100 * median(shares)).toFixed(0)}%)`,
  );

  const out = quick ? join(here, '.cache', 'distributed.json') : join(here, 'results', 'distributed.json');
  mkdirSync(dirname(out), { recursive: true });
  const machine = { cpu: cpus()[0]?.model ?? '', cores: availableParallelism(), loadAverageAfter: loadavg() };
  const config = {
    model: 'resnet18',
    optimizer: 'SGD lr 0.01 momentum 0.9',
    scaling: 'weak (batch per rank)',
    backend: 'gloo',
    ...o,
    rounds,
    worlds,
    waitIdle: WAIT_IDLE,
  };
  machine.waitedForIdleSeconds = waited.reduce((a, b) => a + b, 0);
  writeFileSync(out, JSON.stringify({ date: new Date().toISOString(), mode: quick ? 'quick' : 'full', machine, config, results: summary }, null, 2) + '\n');
  console.log(`wrote ${out}`);
}

if (flag('--rank')) console.log(JSON.stringify(await finetorchRank(JSON.parse(option('--rank')))));
else await main();
