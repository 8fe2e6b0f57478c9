// Faster R-CNN ResNet-50 FPN fine-tuning throughput (images/s) and eval latency
// (ms/image, batch 1): finetorch beside torchvision 0.14 in PyTorch Python
// (bench/detection_torch.py, Debian's /usr/bin/python3 with python3-torch 1.13,
// the libtorch finetorch links), on the same machine in the same run.
//
//   node bench/detection.mjs            full run: 5 rounds (about 7 minutes on 2 quiet cores); its entry
//                                       ('<settings>-<size>') in bench/results/detection.json
//   node bench/detection.mjs --quick    smoke run: 1 round, few steps (under 2 minutes); into bench/.cache/detection-results.json
//   options: --rounds N --steps N --warmup N --iters N (eval images timed) --batch N (default 2) --threads N (default 2)
//            --size N (minSize = maxSize, default 320) --settings default|light (the samplers, see below)
//            --tasks train,eval --wait-idle[=SECONDS] (before each process, wait at most SECONDS, default 60,
//            until the CPUs are 90% idle: for a machine shared with other jobs)
//
// The same weights: torchvision's model is built once as its fine-tuning recipe does
// (FrozenBatchNorm2d in the body, trainable_backbone_layers 3, num_classes 6), seeded,
// and saved as a .pth that finetorch loads (models.loadFasterRcnn). The same images:
// scenes of Fashion-MNIST items (data.detection.fashionScenes, 256 x 256, grey in three
// channels, 1-4 objects of classes 1-5), written once as raw float32 with their boxes.
// Training: batch of `batch` images, the four losses summed, backward, SGD (lr 0.001,
// momentum 0.9, weight decay 1e-4) over the trainable parameters; torch.manualSeed(step)
// before each step on both sides. Eval: eval mode, one image per call, no gradients.
// Settings 'default' are torchvision's (RPN 2000/2000 proposals pre/post NMS in training,
// 1000/1000 in eval, samplers of 256 anchors and 512 proposals per image); 'light' are the
// small-data settings of the contract (300/100 in training, 256 anchors 128, proposals 64).
// Each measurement runs in its own process; the sides alternate A B A B for `rounds`
// rounds and we report the medians over all timed steps and the ratio finetorch/PyTorch.
// Both sides run with the same threads and finetorch's OpenMP spin-wait settings
// (OMP_WAIT_POLICY ACTIVE, GOMP_SPINCOUNT 10000; finetorch sets them when it loads libtorch).
// Each run records the share of the machine's CPU other processes used during its
// timed window (/proc/stat minus the run's own CPU time); the results are labelled
// quiet when that stayed under 10% in every run.
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
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
const TICK = 100; // USER_HZ
const OMP_TUNING = { OMP_WAIT_POLICY: 'ACTIVE', GOMP_SPINCOUNT: '10000' };

const SETTINGS = {
  default: {
    rpnPreNmsTopNTrain: 2000,
    rpnPostNmsTopNTrain: 2000,
    rpnPreNmsTopNTest: 1000,
    rpnPostNmsTopNTest: 1000,
    rpnBatchSizePerImage: 256,
    boxBatchSizePerImage: 512,
  },
  light: {
    rpnPreNmsTopNTrain: 300,
    rpnPostNmsTopNTrain: 100,
    rpnPreNmsTopNTest: 1000,
    rpnPostNmsTopNTest: 1000,
    rpnBatchSizePerImage: 128,
    boxBatchSizePerImage: 64,
  },
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

/** The model options both sides build (finetorch's names; the Python side maps them to torchvision's). */
function modelOptions(o) {
  return { numClasses: 6, trainableBackboneLayers: 3, minSize: o.size, maxSize: o.size, ...SETTINGS[o.settings] };
}

/** One finetorch measurement (a child process of the orchestrator). */
async function finetorchSide(task, dir, o) {
  const { torch, models, optim } = await import('../dist/index.js');
  torch.setNumThreads(o.threads);
  const meta = JSON.parse(readFileSync(join(dir, 'meta.json'), 'utf8'));
  const [n, c, h, w] = meta.shape;
  const raw = readFileSync(join(dir, 'images.bin'));
  const flat = new Float32Array(raw.buffer, raw.byteOffset, raw.byteLength / 4);
  const images = Array.from({ length: n }, (_, i) => torch.tensor(flat.slice(i * c * h * w, (i + 1) * c * h * w), { shape: [c, h, w] }));
  const targets = meta.targets.map((t) => ({
    boxes: torch.tensor(Float32Array.from(t.boxes.flat()), { shape: [t.boxes.length, 4] }),
    labels: torch.tensor(t.labels, { dtype: 'int64' }),
  }));
  const model = models.loadFasterRcnn(join(dir, 'model.pth'), modelOptions(o));
  const times = [];
  const losses = [];
  const detections = [];
  let start = null;
  if (task === 'train') {
    model.train();
    const optimizer = new optim.SGD(
      model.parameters().filter((p) => p.requiresGrad),
      { lr: o.lr, momentum: 0.9, weightDecay: 1e-4 },
    );
    for (let step = 0; step < o.warmup + o.steps; step++) {
      if (step === o.warmup) start = { ticks: cpuTicks(), cpu: cpuSeconds() };
      const idx = Array.from({ length: o.batch }, (_, j) => (step * o.batch + j) % n);
      torch.manualSeed(step);
      const t0 = performance.now();
      const value = torch.tidy(() => {
        const parts = model.forward(
          idx.map((i) => images[i]),
          idx.map((i) => targets[i]),
        );
        const loss = Object.values(parts).reduce((a, b) => a.add(b));
        optimizer.zeroGrad();
        loss.backward();
        optimizer.step();
        return loss.item();
      });
      losses.push(value);
      if (step >= o.warmup) times.push((performance.now() - t0) / 1000);
    }
  } else {
    model.eval();
    for (let it = 0; it < o.warmup + o.iters; it++) {
      if (it === o.warmup) start = { ticks: cpuTicks(), cpu: cpuSeconds() };
      const t0 = performance.now();
      const [d] = model.forward([images[it % n]]);
      detections.push(d.boxes.shape[0]);
      if (it >= o.warmup) times.push((performance.now() - t0) / 1000);
      Object.values(d).forEach((t) => t.dispose());
    }
  }
  const stop = { ticks: cpuTicks(), cpu: cpuSeconds() };
  return {
    side: 'finetorch',
    threads: torch.getNumThreads(),
    times,
    losses,
    detections,
    windowBusyTicks: stop.ticks.busy - start.ticks.busy,
    windowTotalTicks: stop.ticks.total - start.ticks.total,
    windowCpuSeconds: stop.cpu - start.cpu,
  };
}

/** Writes the benchmark's scenes (raw float32 [N, 3, H, W]) and their boxes, once per size of data. */
async function writeData(dir, count) {
  const metaPath = join(dir, 'meta.json');
  if (existsSync(metaPath) && JSON.parse(readFileSync(metaPath, 'utf8')).shape[0] === count) return;
  const { data } = await import('../dist/index.js');
  const scenes = data.detection.fashionScenes({ count, canvas: 256, classes: [0, 1, 2, 3, 4], objectsPerScene: [1, 4], seed: 7 });
  const items = [];
  for (let i = 0; i < count; i++) items.push(await scenes.get(i, Math.random));
  const [c, h, w] = items[0].shape;
  const all = new Float32Array(count * c * h * w);
  items.forEach((it, i) => all.set(it.data, i * c * h * w));
  writeFileSync(join(dir, 'images.bin'), Buffer.from(all.buffer));
  writeFileSync(metaPath, JSON.stringify({ shape: [count, c, h, w], targets: items.map((it) => ({ boxes: it.boxes, labels: it.labels })) }));
}

/** Waits (up to maxS seconds) until the CPUs were at least 90% idle over half a second. */
async function waitIdle(maxS) {
  const t0 = Date.now();
  while (Date.now() - t0 < maxS * 1000) {
    const a = cpuTicks();
    await new Promise((r) => setTimeout(r, 500));
    const b = cpuTicks();
    if ((b.busy - a.busy) / Math.max(1, b.total - a.total) <= 0.1) return;
  }
}

/** Runs one side in a fresh process; resolves to its JSON result with the CPU share other processes took in its timed window. */
function runSide(side, task, dir, o) {
  const env = { ...process.env, ...OMP_TUNING, OPENBLAS_NUM_THREADS: String(o.threads), FINETORCH_NUM_THREADS: String(o.threads) };
  const [cmd, args] =
    side === 'finetorch'
      ? [process.execPath, [fileURLToPath(import.meta.url), '--side', task, dir, JSON.stringify(o)]]
      : [PYTHON, [join(here, 'detection_torch.py'), task, dir, JSON.stringify({ ...o, ...modelOptions(o) })]];
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    child.on('close', (code, signal) => {
      if (code !== 0) return reject(new Error(`${side} ${task} failed (${signal ?? `exit ${code}`}):\n${err.trim().split('\n').slice(-15).join('\n')}`));
      const res = JSON.parse(
        out
          .trim()
          .split('\n')
          .filter((l) => l.startsWith('{'))
          .at(-1),
      );
      const foreign = res.windowTotalTicks > 0 ? Math.max(0, (res.windowBusyTicks - res.windowCpuSeconds * TICK) / res.windowTotalTicks) : null;
      resolve({ ...res, foreignCpuShare: foreign });
    });
  });
}

const median = (v) => {
  const s = [...v].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

async function main() {
  if (flag('--side')) {
    const [task, dir, json] = argv.slice(argv.indexOf('--side') + 1);
    console.log(JSON.stringify(await finetorchSide(task, dir, JSON.parse(json))));
    return;
  }
  const quick = flag('--quick');
  const o = {
    threads: Number(option('--threads', 2)),
    batch: Number(option('--batch', 2)),
    size: Number(option('--size', 320)),
    settings: option('--settings', 'default'),
    lr: 0.001,
    warmup: Number(option('--warmup', quick ? 1 : 2)),
    steps: Number(option('--steps', quick ? 3 : 6)),
    iters: Number(option('--iters', quick ? 6 : 12)),
  };
  if (!SETTINGS[o.settings]) throw new Error(`--settings must be one of ${Object.keys(SETTINGS).join(', ')}, not ${o.settings}`);
  const rounds = Number(option('--rounds', quick ? 1 : 5));
  const tasks = option('--tasks', 'train,eval').split(',');
  const waitArg = argv.find((a) => a.startsWith('--wait-idle'));
  const waitS = waitArg ? (waitArg.includes('=') ? Number(waitArg.split('=')[1]) : 60) : 0;

  const dir = join(here, '.cache', 'detection');
  mkdirSync(dir, { recursive: true });
  await writeData(dir, 16);
  // one model per set of options (the .pth carries the architecture's sizes only; the options are set on load)
  if (!existsSync(join(dir, 'model.pth'))) {
    const p = await runSide('pytorch', 'make-model', dir, o);
    console.log(`wrote ${p.saved}`);
  }
  console.log(
    `Faster R-CNN R50-FPN, ${o.size} x ${o.size}, settings ${o.settings}, ${o.threads} threads, train batch ${o.batch} (${o.steps} timed steps after ${o.warmup}), eval ${o.iters} images after ${o.warmup}, ${rounds} round(s); ${cpus()[0]?.model ?? ''}`,
  );
  const runs = { train: { finetorch: [], pytorch: [] }, eval: { finetorch: [], pytorch: [] } };
  const foreign = [];
  for (let r = 0; r < rounds; r++) {
    for (const task of tasks) {
      for (const side of ['finetorch', 'pytorch']) {
        if (waitS > 0) await waitIdle(waitS);
        const res = await runSide(side, task, dir, o);
        runs[task][side].push(res);
        foreign.push(res.foreignCpuShare ?? 0);
        const figure =
          task === 'train'
            ? `${(o.batch / median(res.times)).toFixed(2)} images/s (loss ${res.losses[0].toFixed(3)} -> ${res.losses.at(-1).toFixed(3)})`
            : `${(1000 * median(res.times)).toFixed(0)} ms/image (${median(res.detections)} detections)`;
        console.log(
          `  round ${r + 1} ${task} ${side}: ${figure}; other processes ${(100 * (res.foreignCpuShare ?? 0)).toFixed(0)}% CPU, load ${loadavg()[0].toFixed(1)}`,
        );
      }
    }
  }
  const results = {};
  for (const task of tasks) {
    const ft = median(runs[task].finetorch.flatMap((x) => x.times));
    const pt = median(runs[task].pytorch.flatMap((x) => x.times));
    results[task] =
      task === 'train'
        ? { finetorchImagesPerSec: o.batch / ft, pytorchImagesPerSec: o.batch / pt, ratio: pt / ft }
        : { finetorchMsPerImage: 1000 * ft, pytorchMsPerImage: 1000 * pt, ratio: ft / pt };
    // CPU time (every thread, spin-waits included) per image of the timed windows: less sensitive to other processes than wall time
    const images = task === 'train' ? o.batch * o.steps : o.iters;
    for (const side of ['finetorch', 'pytorch'])
      results[task][`${side}CpuMsPerImage`] = (1000 * median(runs[task][side].map((x) => x.windowCpuSeconds))) / images;
    // the same medians over the quiet runs only (other processes under 10% of the CPUs), when each side has one
    const quiet = (side) => runs[task][side].filter((x) => (x.foreignCpuShare ?? 1) < 0.1).flatMap((x) => x.times);
    const [qf, qp] = [quiet('finetorch'), quiet('pytorch')];
    results[task].quietRuns =
      qf.length && qp.length
        ? task === 'train'
          ? { finetorchImagesPerSec: o.batch / median(qf), pytorchImagesPerSec: o.batch / median(qp), ratio: median(qp) / median(qf) }
          : { finetorchMsPerImage: 1000 * median(qf), pytorchMsPerImage: 1000 * median(qp), ratio: median(qf) / median(qp) }
        : null;
    results[task].foreignCpuShareFinetorch = runs[task].finetorch.map((x) => x.foreignCpuShare);
    results[task].foreignCpuSharePytorch = runs[task].pytorch.map((x) => x.foreignCpuShare);
    results[task].stepSecondsFinetorch = runs[task].finetorch.map((x) => x.times);
    results[task].stepSecondsPytorch = runs[task].pytorch.map((x) => x.times);
  }
  const maxForeign = Math.max(...foreign);
  const machineState = maxForeign < 0.1 ? 'quiet' : 'noisy';
  for (const task of tasks)
    console.log(
      `${task}: CPU time per image (both threads) finetorch ${results[task].finetorchCpuMsPerImage.toFixed(0)} ms, PyTorch ${results[task].pytorchCpuMsPerImage.toFixed(0)} ms`,
    );
  if (results.train)
    console.log(
      `train: finetorch ${results.train.finetorchImagesPerSec.toFixed(2)} images/s, PyTorch ${results.train.pytorchImagesPerSec.toFixed(2)} images/s; finetorch/PyTorch ${results.train.ratio.toFixed(2)} (higher is better)`,
    );
  if (results.eval)
    console.log(
      `eval: finetorch ${results.eval.finetorchMsPerImage.toFixed(0)} ms/image, PyTorch ${results.eval.pytorchMsPerImage.toFixed(0)} ms/image; finetorch/PyTorch ${results.eval.ratio.toFixed(2)} (lower is better)`,
    );
  for (const task of tasks) {
    const q = results[task].quietRuns;
    if (q) console.log(`${task}, quiet runs only: finetorch/PyTorch ${q.ratio.toFixed(2)} (${JSON.stringify(q)})`);
  }
  console.log(`machine ${machineState}: other processes took at most ${(100 * maxForeign).toFixed(0)}% of the CPUs during a timed window`);
  // one entry per settings and size (a run of another configuration keeps the others)
  const out = quick ? join(here, '.cache', 'detection-results.json') : join(here, 'results', 'detection.json');
  const kept = existsSync(out) ? JSON.parse(readFileSync(out, 'utf8')) : {};
  kept.configs ??= {};
  const machine = { cpu: cpus()[0]?.model ?? '', cores: cpus().length, machineState, maxForeignCpuShare: maxForeign };
  const pythonTorch = runs.train?.pytorch[0]?.torch ?? runs.eval?.pytorch[0]?.torch;
  kept.configs[`${o.settings}-${o.size}`] = {
    date: new Date().toISOString(),
    machine,
    pytorch: `torch ${pythonTorch} (${PYTHON})`,
    options: { ...o, rounds, model: modelOptions(o) },
    results,
  };
  writeFileSync(out, JSON.stringify(kept, null, 2) + '\n');
  console.log(`wrote ${out}`);
}

await main();
