// The finetorch side of the benchmark suite (bench/run.mjs drives it).
//   node bench/ft_side.mjs TASK 'JSON-OPTIONS'
// Prints one JSON line (the result) on stdout. Every task mirrors a task of
// bench/torch_side.py: same model, sizes, optimizer, loss and step count.
// Threads: options.threads = null leaves finetorch at its default (all cores);
// a number is passed as FINETORCH_NUM_THREADS by the orchestrator and
// checked here.
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { torch, models, optim, data, fit, trainStepAsync, TensorLoader, loadReport } from '../dist/index.js';

const [task, json] = process.argv.slice(2);
const o = JSON.parse(json ?? '{}');

function statusKb(field) {
  const m = readFileSync('/proc/self/status', 'utf8').match(new RegExp(`^${field}:\\s+(\\d+)`, 'm'));
  return m ? Number(m[1]) : null;
}
const rssMB = () => statusKb('VmRSS') / 1024;
const peakRssMB = () => statusKb('VmHWM') / 1024;

function threads() {
  if (o.threads && torch.getNumThreads() !== o.threads) throw new Error(`expected ${o.threads} threads, finetorch runs ${torch.getNumThreads()}`);
  return torch.getNumThreads();
}

function pct(values, p) {
  const v = [...values].sort((a, b) => a - b);
  const k = ((v.length - 1) * p) / 100;
  const lo = Math.floor(k),
    hi = Math.ceil(k);
  return v[lo] + (v[hi] - v[lo]) * (k - lo);
}

/** AdamW with two param groups: backbone at 1e-4, head at 1e-3, weight decay 0.01 (as torch_side.py). */
function twoGroups(model, head = 'fc') {
  const named = model.namedParameters();
  const isHead = ([name]) => name.startsWith(`${head}.`);
  return new optim.AdamW(
    [
      { params: named.filter((e) => !isHead(e)).map(([, p]) => p), lr: 1e-4 },
      { params: named.filter(isHead).map(([, p]) => p), lr: 1e-3 },
    ],
    { weightDecay: 0.01 },
  );
}

async function step(model, optimizer, input, target) {
  const { loss, output } = await trainStepAsync({ model, optimizer, input, target });
  const value = loss.item();
  loss.dispose();
  output.dispose();
  return value;
}

const tasks = {
  /** Training throughput on a fixed synthetic batch (images/s): one native call per step. */
  async train() {
    const n = threads();
    torch.manualSeed(0);
    const model = models[o.model]({ numClasses: 10 });
    model.train();
    const optimizer = twoGroups(model);
    const x = torch.randn([o.batch, 3, o.size, o.size]);
    const y = torch.randint(0, 10, [o.batch]);
    if (o.mainThreadOp) torch.tidy(() => torch.randn([1000, 1000]).add(1).sum().item()); // a parallel op on the main thread
    for (let i = 0; i < o.warmup; i++) await step(model, optimizer, x, y);
    const times = [];
    const t0 = performance.now();
    for (let i = 0; i < o.steps; i++) {
      const t = performance.now();
      await step(model, optimizer, x, y);
      times.push(performance.now() - t);
    }
    const elapsed = (performance.now() - t0) / 1000;
    return { threads: n, imagesPerSecond: (o.steps * o.batch) / elapsed, stepMsMedian: pct(times, 50), seconds: elapsed };
  },

  /** float32 matmul (sgemm) GFLOP/s through finetorch (same libtorch as Python). */
  async matmul() {
    const n = threads();
    const a = torch.randn([o.n, o.n]),
      b = torch.randn([o.n, o.n]);
    for (let i = 0; i < 2; i++) a.matmul(b).dispose();
    let best = 0;
    for (let i = 0; i < o.iters; i++) {
      const t = performance.now();
      const c = a.matmul(b);
      best = Math.max(best, (2 * o.n ** 3) / ((performance.now() - t) / 1000) / 1e9);
      c.dispose();
    }
    return { threads: n, n: o.n, gflops: best };
  },

  /** One training epoch with fit() over PNG files on disk, decoded and augmented by data.DataLoader. */
  async epoch() {
    const n = threads();
    torch.manualSeed(0);
    const model = models.resnet18({ numClasses: 10 });
    model.train();
    const optimizer = twoGroups(model);
    const folder = data.imageFolder(o.root);
    const transforms = [
      { randomResizedCrop: o.crop, scale: [0.8, 1] },
      { horizontalFlip: 0.5 },
      { normalize: { mean: data.IMAGENET_MEAN, std: data.IMAGENET_STD } },
    ];
    const dataset = new data.ImageDataset(folder.samples, { channels: 3, transforms });
    const loader = new data.DataLoader(dataset, { batchSize: o.batch, shuffle: true, seed: 1, prefetch: o.prefetch });
    if (o.mainThreadOp) torch.tidy(() => torch.randn([1000, 1000]).add(1).sum().item()); // a parallel op on the main thread
    const t0 = performance.now();
    const result = await fit({ model, optimizer, train: loader, epochs: 1, seed: 1 });
    const seconds = (performance.now() - t0) / 1000;
    return {
      threads: n,
      images: loader.stats.samples,
      seconds,
      imagesPerSecond: loader.stats.samples / seconds,
      dataWaitShare: loader.stats.waitMs / 1000 / seconds,
      eventLoopDelayMs: result.eventLoopDelay,
    };
  },

  /** RSS and external memory over many fit() steps (in-memory data, shuffled batches), sampled every few steps. */
  async memory() {
    const n = threads();
    torch.manualSeed(0);
    const model = models[o.model]({ numClasses: 10 });
    const optimizer = twoGroups(model);
    const x = torch.randn([o.dataset, 3, o.size, o.size]);
    const y = torch.randint(0, 10, [o.dataset]);
    const train = new TensorLoader(x, y, { batchSize: o.batch, shuffle: true, seed: 1, dropLast: true });
    const epochs = Math.ceil(o.steps / train.length);
    const samples = [];
    let steps = 0;
    const t0 = performance.now();
    const result = await fit({
      model,
      optimizer,
      train,
      epochs,
      seed: 1,
      onEvent: (e) => {
        if (e.type !== 'step') return;
        steps++;
        if (steps % o.every === 0) {
          const m = process.memoryUsage();
          samples.push({ step: steps, rssMB: m.rss / 2 ** 20, externalMB: m.external / 2 ** 20, heapUsedMB: m.heapUsed / 2 ** 20 });
        }
      },
    });
    return {
      threads: n,
      steps,
      seconds: (performance.now() - t0) / 1000,
      samples,
      cpuCache: torch.cpuCacheStats(),
      eventLoopDelayMs: result.eventLoopDelay,
    };
  },

  /** Peak RSS (VmHWM) of a ResNet-50 fine-tune: load the .pth, new 10-class head, AdamW, a few steps. */
  async peak() {
    const n = threads();
    torch.manualSeed(0);
    const model = models.load(o.checkpoint, { arch: 'resnet50', numClasses: 10 });
    model.train();
    const optimizer = twoGroups(model);
    const afterLoad = rssMB();
    for (let i = 0; i < o.steps; i++) {
      const x = torch.randn([o.batch, 3, o.size, o.size]);
      const y = torch.randint(0, 10, [o.batch]);
      await step(model, optimizer, x, y);
      x.dispose();
      y.dispose();
    }
    return {
      threads: n,
      peakRssMB: peakRssMB(),
      rssAfterLoadMB: afterLoad,
      rssEndMB: rssMB(),
      maxRssGetrusageMB: process.resourceUsage().maxRSS / 1024,
      cpuCache: torch.cpuCacheStats(),
    };
  },

  /**
   * Batch-1 inference latency (eval mode, no grad), per call, in ms: forwardAsync
   * (off the event loop: what a server would call), or forward with call: 'sync'.
   */
  async latency() {
    const n = threads();
    torch.manualSeed(0);
    let model, inputs;
    if (o.model === 'bert') {
      model = models.bert({ ...o.config, hidden_act: 'gelu' }, { numClasses: o.config.num_labels });
      const ids = torch.randint(1000, o.config.vocab_size, [1, o.seq]);
      inputs = [ids, torch.ones([1, o.seq], { dtype: 'int64' }), torch.zeros([1, o.seq], { dtype: 'int64' })];
    } else {
      model = models[o.model]({ numClasses: 1000 });
      inputs = [torch.randn([1, 3, o.size, o.size])];
    }
    model.eval();
    const call = o.call === 'sync' ? async () => torch.noGrad(() => model.forward(...inputs)) : () => torch.noGrad(() => model.forwardAsync(...inputs));
    for (let i = 0; i < o.warmup; i++) (await call()).dispose();
    const times = [];
    for (let i = 0; i < o.iters; i++) {
      const t = performance.now();
      const out = await call();
      times.push(performance.now() - t);
      out.dispose();
    }
    return { threads: n, call: o.call ?? 'async', p50Ms: pct(times, 50), p99Ms: pct(times, 99), meanMs: times.reduce((s, v) => s + v, 0) / times.length };
  },

  async versions() {
    const sharp = (await import('sharp')).default;
    const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));
    return {
      finetorch: pkg.version,
      node: process.version,
      libtorch: loadReport.libtorch?.version ?? null,
      libtorchSource: loadReport.libtorch?.source ?? null,
      sharp: sharp.versions.sharp,
      vips: sharp.versions.vips,
      defaultThreads: torch.getNumThreads(),
      cores: availableParallelism(),
      uvThreadpool: Number(process.env.UV_THREADPOOL_SIZE ?? 4),
    };
  },
};

if (!tasks[task]) {
  console.error(`unknown task ${task}; one of ${Object.keys(tasks).join(', ')}`);
  process.exit(2);
}
const result = await tasks[task]();
const cpu = process.cpuUsage();
console.log(JSON.stringify({ ...result, side: 'finetorch', cpuSeconds: (cpu.user + cpu.system) / 1e6, osThreads: statusKb('Threads') }));
