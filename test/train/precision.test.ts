// fit/evaluate/predict with precision, device and memoryFormat: bf16 training
// against PyTorch's AMP recipe on the CPU (forward and loss under
// torch.autocast('cpu', torch.bfloat16), backward and step outside), the
// GradScaler's state across a checkpoint and resume, devices on a CPU build.
import { describe, it, expect } from 'vitest';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import {
  torch,
  nn,
  optim,
  fit,
  evaluate,
  predict,
  cuda,
  loadReport,
  GradScaler,
  TensorLoader,
  parseRecipe,
  runRecipe,
  RecipeError,
  type Tensor,
  type TrainEvent,
} from 'finetorch';
import { flat } from '../helpers';

const convNet = () =>
  new nn.Sequential(
    new nn.Conv2d(2, 4, 3, { padding: 1 }),
    new nn.ReLU(),
    new nn.AdaptiveAvgPool2d(1),
    new nn.Flatten(),
    new nn.Linear(4, 8),
    new nn.ReLU(),
    new nn.Linear(8, 3),
  );
const weightsOf = (m: nn.Module) => Object.fromEntries(Object.entries(m.stateDict()).map(([k, t]) => [k, flat(t)]));
const stepLosses = (events: TrainEvent[]) => events.filter((e) => e.type === 'step').map((e) => (e as { loss: number }).loss);
function maxDiff(a: Record<string, number[]>, b: Record<string, number[]>): number {
  expect(Object.keys(a).sort()).toEqual(Object.keys(b).sort());
  return Math.max(...Object.keys(a).flatMap((k) => a[k].map((v, i) => Math.abs(v - b[k][i]))));
}

function data(seed: number) {
  torch.manualSeed(seed);
  const x = torch.randn([24, 2, 6, 6]);
  const y = torch.tensor(Array.from({ length: 24 }, (_, i) => (i * 5) % 3));
  return { x, y };
}

describe('fit with precision bf16 (CPU autocast)', () => {
  it("matches PyTorch's AMP recipe, in the one-call native step and in the step in parts", async () => {
    const { x, y } = data(11);
    const init = convNet();
    const script = `
import json, sys, torch
d = json.load(sys.stdin)
m = torch.nn.Sequential(torch.nn.Conv2d(2, 4, 3, padding=1), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3))
m.load_state_dict({k: torch.tensor(v).reshape(m.state_dict()[k].shape) for k, v in d['weights'].items()})
x = torch.tensor(d['x']).reshape(24, 2, 6, 6); y = torch.tensor(d['y'])
opt = torch.optim.AdamW(m.parameters(), lr=0.01)
losses = []
for epoch in range(2):
    for b in range(3):
        opt.zero_grad()
        with torch.autocast('cpu', dtype=torch.bfloat16):
            loss = torch.nn.functional.cross_entropy(m(x[b*8:(b+1)*8]), y[b*8:(b+1)*8])
        loss.backward(); opt.step(); losses.append(loss.item())
print(json.dumps({'version': torch.__version__, 'losses': losses, 'weights': {k: v.reshape(-1).tolist() for k, v in m.state_dict().items()}}))`;
    const ref = JSON.parse(
      execFileSync('/usr/bin/python3', ['-c', script], { input: JSON.stringify({ weights: weightsOf(init), x: flat(x), y: flat(y) }), encoding: 'utf8' }),
    );
    const run = async (loss: Parameters<typeof fit>[0]['loss']) => {
      const model = convNet();
      model.loadStateDict(init.stateDict());
      const events: TrainEvent[] = [];
      const r = await fit({
        model,
        optimizer: new optim.AdamW(model.parameters(), { lr: 0.01 }),
        loss,
        precision: 'bf16',
        device: 'cpu',
        train: new TensorLoader(x, y, { batchSize: 8 }),
        epochs: 2,
        onEvent: (e) => events.push(e),
      });
      return { r, losses: stepLosses(events), weights: weightsOf(model) };
    };
    const nativeStep = await run('crossEntropy');
    const inParts = await run((l, t) => nn.functional.crossEntropy(l, t));
    expect(nativeStep.r.nativeSteps).toBe(6);
    expect(inParts.r.nativeSteps).toBe(0);
    const lossDiff = Math.max(...nativeStep.losses.map((l, i) => Math.max(Math.abs(l - ref.losses[i]), Math.abs(inParts.losses[i] - ref.losses[i]))));
    const weightDiff = Math.max(maxDiff(nativeStep.weights, ref.weights), maxDiff(inParts.weights, ref.weights));
    console.log(`fit bf16 vs PyTorch ${ref.version} AMP: losses ${lossDiff}, weights after 6 AdamW steps ${weightDiff}`);
    // the two step paths run the same kernels
    expect(maxDiff(nativeStep.weights, inParts.weights)).toBeLessThan(1e-6);
    // against PyTorch: the same libtorch release runs the same bfloat16 kernels; another release (CI's 2.x build) rounds
    // differently, within bfloat16's 2^-8 relative step on the losses and a few of those over six AdamW steps of 0.01
    const sameRelease = ref.version.split('.').slice(0, 2).join('.') === loadReport.libtorch.version.split('.').slice(0, 2).join('.');
    expect(lossDiff).toBeLessThan(sameRelease ? 1e-5 : 2 ** -8);
    expect(weightDiff).toBeLessThan(sameRelease ? 1e-5 : 5e-3);
    // and it is not fp32 training: the bf16 run differs from an fp32 one
    const fp32 = convNet();
    fp32.loadStateDict(init.stateDict());
    await fit({ model: fp32, optimizer: new optim.AdamW(fp32.parameters(), { lr: 0.01 }), train: new TensorLoader(x, y, { batchSize: 8 }), epochs: 2 });
    expect(maxDiff(weightsOf(fp32), ref.weights)).toBeGreaterThan(1e-4);
  });

  it('evaluate and predict under bf16 give float32 results close to fp32 ones', async () => {
    const { x, y } = data(12);
    const model = convNet();
    const loader = new TensorLoader(x, y, { batchSize: 10 });
    const full = await predict(model, loader);
    const half = await predict(model, loader, { precision: 'bf16' });
    const diff = Math.max(...full.probabilities.flatMap((r, i) => r.map((p, j) => Math.abs(p - half.probabilities[i][j]))));
    expect(diff).toBeGreaterThan(0);
    expect(diff).toBeLessThan(2e-2);
    const e32 = await evaluate(model, loader);
    const e16 = await evaluate(model, loader, { precision: 'bf16', device: 'cpu' });
    expect(Math.abs(e32.loss - e16.loss)).toBeLessThan(2e-2);
    expect(e16.samples).toBe(24);
    expect(torch.isAutocastEnabled('cpu')).toBe(false);
  });
});

describe('fit with memoryFormat channelsLast', () => {
  it('converts the model and every input batch, and trains as the contiguous layout does', async () => {
    const { x, y } = data(15);
    const init = convNet();
    const run = async (memoryFormat?: 'channelsLast') => {
      const model = convNet();
      model.loadStateDict(init.stateDict());
      const layouts: boolean[] = [];
      await fit({
        model,
        optimizer: new optim.SGD(model.parameters(), { lr: 0.1, momentum: 0.9 }),
        train: new TensorLoader(x, y, { batchSize: 8 }),
        epochs: 2,
        memoryFormat,
        forward: (m, input) => {
          layouts.push((input as Tensor).isContiguous('channelsLast'));
          return m.forwardAsync(input as Tensor);
        },
      });
      return { model, layouts, weights: weightsOf(model) };
    };
    const nhwc = await run('channelsLast');
    const nchw = await run();
    expect(nhwc.layouts).toEqual(Array(6).fill(true));
    expect(nchw.layouts).toEqual(Array(6).fill(false));
    expect(nhwc.model.parameters()[0].isContiguous('channelsLast')).toBe(true); // the conv weight
    expect(maxDiff(nhwc.weights, nchw.weights)).toBeLessThan(1e-5);
  });
});

describe('fit with a GradScaler', () => {
  it('saves the scaler in checkpoints and restores it on resume: 2 epochs + resume = 3 epochs straight', async () => {
    const { x, y } = data(13);
    const init = convNet();
    const scalerOptions = { initScale: 2 ** 10, growthInterval: 4 };
    const run = async (epochs: number, dir: string, resumeFrom?: string) => {
      const model = convNet();
      model.loadStateDict(init.stateDict());
      const scaler = new GradScaler(scalerOptions);
      const r = await fit({
        model,
        optimizer: new optim.SGD(model.parameters(), { lr: 0.05, momentum: 0.9 }),
        gradScaler: scaler,
        clipGradNorm: 1,
        train: new TensorLoader(x, y, { batchSize: 8, shuffle: true, seed: 1 }),
        epochs,
        checkpointDir: dir,
        resumeFrom,
        seed: 3,
      });
      return { r, scaler, weights: weightsOf(model) };
    };
    const dirs = [mkdtempSync(join(tmpdir(), 'finetorch-amp-')), mkdtempSync(join(tmpdir(), 'finetorch-amp-'))];
    try {
      const straight = await run(3, dirs[0]);
      // 9 clean steps with growth every 4: 2^10 -> 2^11 -> 2^12, one step counted towards the next growth
      expect(straight.scaler.stateDict()).toEqual({ scale: 2 ** 12, growthFactor: 2, backoffFactor: 0.5, growthInterval: 4, growthTracker: 1 });
      expect(straight.r.nativeSteps).toBe(0);
      expect(straight.r.skippedSteps).toBe(0);
      await run(2, dirs[1]);
      const saved = JSON.parse(readFileSync(join(dirs[1], 'last', 'trainer.json'), 'utf8'));
      expect(saved.scaler).toEqual({ scale: 2 ** 11, growthFactor: 2, backoffFactor: 0.5, growthInterval: 4, growthTracker: 2 });
      const resumed = await run(3, dirs[1], join(dirs[1], 'last'));
      expect(resumed.scaler.stateDict()).toEqual(straight.scaler.stateDict());
      expect(maxDiff(resumed.weights, straight.weights)).toBe(0);
    } finally {
      dirs.forEach((d) => rmSync(d, { recursive: true, force: true }));
    }
  });
});

describe('devices and precisions a build cannot do', () => {
  const model = () => new nn.Linear(2, 2);
  const loader = () => new TensorLoader(torch.randn([4, 2]), torch.tensor([0, 1, 0, 1]), { batchSize: 2 });
  const fitWith = (o: Record<string, unknown>) => {
    const m = model();
    return fit({ model: m, optimizer: new optim.SGD(m.parameters(), { lr: 0.1 }), train: loader(), epochs: 1, ...o });
  };

  it('refuses CUDA on a CPU build, bad device names, precisions and memory formats, naming the option', async () => {
    if (!cuda.isAvailable()) {
      await expect(fitWith({ device: 'cuda' })).rejects.toThrow(/fit: device 'cuda' asked for, but (this libtorch is a CPU build|no CUDA device is visible)/);
      await expect(evaluate(model(), loader(), { device: 'cuda:1' })).rejects.toThrow(/evaluate: device 'cuda:1' asked for/);
      await expect(predict(model(), loader(), { device: 'cuda:0' })).rejects.toThrow(/predict: device 'cuda:0' asked for/);
    }
    await expect(fitWith({ device: 'gpu' })).rejects.toThrow(/fit: device must be 'cpu', 'cuda' or 'cuda:N', got "gpu"/);
    await expect(fitWith({ precision: 'fp8' })).rejects.toThrow(/fit: precision must be 'fp32', 'bf16', 'fp16', got "fp8"/);
    await expect(fitWith({ memoryFormat: 'nhwc' })).rejects.toThrow(/fit: memoryFormat must be 'contiguous' or 'channelsLast', got "nhwc"/);
    const [major, minor] = loadReport.libtorch.version.split('.').map(Number);
    if (major < 2 || (major === 2 && minor < 3))
      await expect(fitWith({ precision: 'fp16' })).rejects.toThrow(
        /fit: precision 'fp16': float16 autocast on the CPU needs libtorch 2.3 or later .*: use precision 'bf16' on the CPU/,
      );
  });

  it('device cpu given explicitly trains as the default does', async () => {
    const { x, y } = data(14);
    const init = convNet();
    const weights = [];
    for (const device of [undefined, 'cpu']) {
      const m = convNet();
      m.loadStateDict(init.stateDict());
      const r = await fit({
        model: m,
        optimizer: new optim.SGD(m.parameters(), { lr: 0.1 }),
        train: new TensorLoader(x, y, { batchSize: 8 }),
        epochs: 1,
        device,
      });
      expect(r.nativeSteps).toBe(3);
      weights.push(weightsOf(m));
    }
    expect(maxDiff(weights[0], weights[1])).toBe(0);
  });
});

describe('recipe fields precision and memoryFormat', () => {
  const recipe = (extra: Record<string, unknown>) =>
    parseRecipe({
      model: { checkpoint: resolve(__dirname, '..', '..', 'assets', 'fashion-resnet18w16-c0-4.safetensors') },
      data: { kind: 'fashionMnist', classes: ['Sandal', 'Sneaker', 'Ankle boot'], perClass: 40, testPerClass: 10, val: 0.25 },
      freeze: { blocks: 4 },
      optimizer: { lr: 1e-2 },
      batchSize: 30,
      epochs: 1,
      seed: 3,
      ...extra,
    });

  it('are checked, case-insensitively, with fp32 and contiguous as defaults', () => {
    expect(recipe({})).toMatchObject({ precision: 'fp32', memoryFormat: 'contiguous' });
    expect(recipe({ precision: 'BF16', memoryFormat: 'channelslast' })).toMatchObject({ precision: 'bf16', memoryFormat: 'channelsLast' });
    expect(() => recipe({ precision: 'half' })).toThrow(RecipeError);
    expect(() => recipe({ precision: 'half' })).toThrow(/recipe\.precision/);
  });

  it('runRecipe trains under bf16 autocast in the one-call native step (weights differ from an fp32 run)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'finetorch-amp-recipe-'));
    try {
      const fc = async (precision: string) => {
        const r = await runRecipe(recipe({ precision }), { out: join(dir, precision) });
        expect(r.status).toBe('ok');
        expect(r.fit.nativeSteps).toBe(3);
        const w = flat(r.model.stateDict()['fc.weight']);
        r.model.dispose();
        return w;
      };
      const half = await fc('bf16');
      const full = await fc('fp32');
      const diff = Math.max(...half.map((v, i) => Math.abs(v - full[i])));
      expect(diff).toBeGreaterThan(1e-5);
      expect(diff).toBeLessThan(0.05);
      expect(JSON.parse(readFileSync(join(dir, 'bf16', 'run.json'), 'utf8')).recipe.precision).toBe('bf16');
      const [major, minor] = loadReport.libtorch.version.split('.').map(Number);
      if (major < 2 || (major === 2 && minor < 3))
        await expect(runRecipe(recipe({ precision: 'fp16' }), { out: join(dir, 'fp16') })).rejects.toMatchObject({
          name: 'ConfigError',
          field: 'recipe.precision',
          message: expect.stringMatching(/fp16 on cpu: float16 autocast on the CPU needs libtorch 2.3 or later .*; use 'bf16' on the CPU/),
        });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
