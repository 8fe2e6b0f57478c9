// Trainer pieces: recipe validation, gradient clipping against PyTorch,
// early stopping, best checkpoints, predict, diverging loss.
import { describe, it, expect } from 'vitest';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { torch, nn, optim, io, fit, predict, clipGradNorm, parseRecipe, TensorLoader, type Tensor, type TrainEvent } from 'finetorch';
import { flat } from '../helpers';

describe('recipe config', () => {
  const good = {
    model: { arch: 'resnet50', checkpoint: 'r50.pth', numClasses: 2 },
    freeze: { blocks: 4 },
    optimizer: { bottomLr: 1e-6, topLr: 1e-4 },
    schedule: { kind: 'linear', warmupSteps: 100 },
    loss: { type: 'focal', gamma: 2 },
    epochs: 10,
  };

  it('accepts a valid recipe and fills the defaults', () => {
    const r = parseRecipe(good);
    expect(r.optimizer.type).toBe('AdamW');
    expect(r.head.swap).toBe(true);
    expect(r.batchSize).toBe(32);
    expect(r.freeze!.trainBatchNorm).toBe(false);
  });

  it('names every bad field, its value and what was expected', () => {
    const bad = { ...good, model: { ...good.model, numClasses: 0 }, schedule: { kind: 'exponential' }, optimizer: {}, epochs: 'ten', extra: 1 };
    let message = '';
    try {
      parseRecipe(bad);
    } catch (e) {
      message = (e as Error).message;
    }
    expect(message).toMatch(/recipe\.model\.numClasses: .*\(got 0\)/);
    expect(message).toMatch(/recipe\.schedule\.kind: .*linear.*\(got "exponential"\)/);
    expect(message).toMatch(/recipe\.optimizer: give lr, or bottomLr and topLr, or lrs/);
    expect(message).toMatch(/recipe\.epochs: .*number.*\(got "ten"\)/);
    expect(message).toMatch(/extra/);
  });
});

describe('training utilities', () => {
  it('nn.utils.clipGradNorm scales gradients like torch.nn.utils.clip_grad_norm_', () => {
    const script = `
import torch, json
torch.manual_seed(0)
a = torch.randn(3, 4, requires_grad=True); b = torch.randn(5, requires_grad=True)
(a.sin().sum() * 3 + (b ** 2).sum()).backward()
data = {'a': a.tolist(), 'b': b.tolist()}
total = torch.nn.utils.clip_grad_norm_([a, b], 1.5)
print(json.dumps({**data, 'total': total.item(), 'ga': a.grad.reshape(-1).tolist(), 'gb': b.grad.tolist()}))`;
    const ref = JSON.parse(execFileSync('/usr/bin/python3', ['-c', script], { encoding: 'utf8' }));
    const a = torch.tensor(ref.a, { dtype: 'float32', requiresGrad: true });
    const b = torch.tensor(ref.b, { dtype: 'float32', requiresGrad: true });
    a.sin().sum().mul(3).add(b.pow(2).sum()).backward();
    expect(clipGradNorm).toBe(nn.utils.clipGradNorm); // the top-level export is an alias
    const total = nn.utils.clipGradNorm([a, b], 1.5);
    expect(Math.abs(total - ref.total)).toBeLessThan(1e-5);
    flat(a.grad!).forEach((g, i) => expect(Math.abs(g - ref.ga[i])).toBeLessThan(1e-6));
    flat(b.grad!).forEach((g, i) => expect(Math.abs(g - ref.gb[i])).toBeLessThan(1e-6));
  });

  it('early stopping, best checkpoint and predict', async () => {
    torch.manualSeed(1);
    const x = torch.randn([200, 4]);
    const y = x.sum(1).gt(0).long();
    const model = new nn.Sequential(new nn.Linear(4, 8), new nn.ReLU(), new nn.Linear(8, 2));
    const optimizer = new optim.SGD(model.parameters(), { lr: 0 }); // nothing improves after epoch 0
    const dir = mkdtempSync(join(tmpdir(), 'finetorch-fit-'));
    const events: TrainEvent[] = [];
    const r = await fit({
      model,
      optimizer,
      train: new TensorLoader(x, y, { batchSize: 50 }),
      val: new TensorLoader(x, y, { batchSize: 100 }),
      epochs: 20,
      earlyStopping: { metric: 'accuracy', patience: 2 },
      checkpointDir: dir,
      onEvent: (e) => events.push(e),
    });
    expect(r.stoppedEarly).toBe(true);
    expect(r.epochs).toBe(3);
    expect(r.best).toMatchObject({ epoch: 0, metric: 'accuracy' });
    expect(events.some((e) => e.type === 'early-stop')).toBe(true);
    expect(existsSync(join(dir, 'best', 'model.safetensors'))).toBe(true);
    expect(existsSync(join(dir, 'last', 'trainer.json'))).toBe(true);
    const p = await predict(model, new TensorLoader(x, y, { batchSize: 64 }));
    expect(p.predictions).toHaveLength(200);
    expect(p.probabilities[0].reduce((s, v) => s + v, 0)).toBeCloseTo(1, 6);
    rmSync(dir, { recursive: true, force: true });
  });

  it('a diverging loss stops training with a clear error', async () => {
    const x = torch.randn([20, 2]);
    const y = torch.tensor(Array.from({ length: 20 }, (_, i) => i % 2));
    const model = new nn.Linear(2, 2);
    const optimizer = new optim.SGD(model.parameters(), { lr: 50 }); // the squared outputs grow without bound
    await expect(fit({ model, optimizer, loss: (l) => l.pow(2).mean(), train: new TensorLoader(x, y, { batchSize: 5 }), epochs: 50 })).rejects.toThrow(
      /training diverged/,
    );
  });
});

// ---- the two step paths of fit, against each other and against PyTorch

const mlp = () => new nn.Sequential(new nn.Linear(4, 8), new nn.ReLU(), new nn.Linear(8, 3));
const weightsOf = (m: nn.Module) => Object.fromEntries(Object.entries(m.stateDict()).map(([k, t]) => [k, flat(t)]));
const stepLosses = (events: TrainEvent[]) => events.filter((e) => e.type === 'step').map((e) => (e as { loss: number }).loss);
function maxDiff(a: Record<string, number[]>, b: Record<string, number[]>): number {
  expect(Object.keys(a).sort()).toEqual(Object.keys(b).sort());
  return Math.max(...Object.keys(a).flatMap((k) => a[k].map((v, i) => Math.abs(v - b[k][i]))));
}

describe('fit: the one-call native step and the step in parts', () => {
  it('give the same losses and weights as each other and as PyTorch (SGD with momentum, class weights, label smoothing)', async () => {
    torch.manualSeed(3);
    const x = torch.randn([60, 4]);
    const y = torch.tensor(Array.from({ length: 60 }, (_, i) => (i * 7) % 3));
    const init = mlp();
    const classWeights = [1, 2, 0.5];
    const script = `
import json, sys, torch
d = json.load(sys.stdin)
m = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3))
m.load_state_dict({k: torch.tensor(v).reshape(m.state_dict()[k].shape) for k, v in d['weights'].items()})
x = torch.tensor(d['x']).reshape(60, 4); y = torch.tensor(d['y'])
opt = torch.optim.SGD(m.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-3)
crit = torch.nn.CrossEntropyLoss(weight=torch.tensor(d['classWeights']), label_smoothing=0.1)
losses = []
for epoch in range(2):
    for b in range(3):
        opt.zero_grad()
        loss = crit(m(x[b*20:(b+1)*20]), y[b*20:(b+1)*20])
        loss.backward(); opt.step(); losses.append(loss.item())
print(json.dumps({'losses': losses, 'weights': {k: v.reshape(-1).tolist() for k, v in m.state_dict().items()}}))`;
    const ref = JSON.parse(
      execFileSync('/usr/bin/python3', ['-c', script], {
        input: JSON.stringify({ weights: weightsOf(init), x: flat(x), y: flat(y), classWeights }),
        encoding: 'utf8',
      }),
    );
    const weight = torch.tensor(classWeights);
    const run = async (loss: Parameters<typeof fit>[0]['loss']) => {
      const model = mlp();
      model.loadStateDict(init.stateDict());
      const events: TrainEvent[] = [];
      const r = await fit({
        model,
        optimizer: new optim.SGD(model.parameters(), { lr: 0.1, momentum: 0.9, weightDecay: 1e-3 }),
        loss,
        train: new TensorLoader(x, y, { batchSize: 20 }),
        epochs: 2,
        onEvent: (e) => events.push(e),
      });
      return { r, losses: stepLosses(events), weights: weightsOf(model) };
    };
    const native = await run({ type: 'crossEntropy', weight, labelSmoothing: 0.1 });
    const inParts = await run((l, t) => nn.functional.crossEntropy(l, t, { weight, labelSmoothing: 0.1 }));
    expect(native.r.nativeSteps).toBe(6);
    expect(inParts.r.nativeSteps).toBe(0);
    native.losses.forEach((l, i) => {
      expect(Math.abs(l - inParts.losses[i])).toBeLessThan(1e-6);
      expect(Math.abs(l - ref.losses[i])).toBeLessThan(1e-5);
    });
    expect(maxDiff(native.weights, inParts.weights)).toBeLessThan(1e-6);
    expect(maxDiff(native.weights, ref.weights)).toBeLessThan(1e-5);
  });

  it('give the same losses and weights on a conv net with batch norm and dropout (AdamW, 2 epochs, shuffled)', async () => {
    torch.manualSeed(8);
    const x = torch.randn([48, 1, 8, 8]);
    const y = torch.tensor(Array.from({ length: 48 }, (_, i) => i % 4));
    const net = () =>
      new nn.Sequential(
        new nn.Conv2d(1, 4, 3, { padding: 1 }),
        new nn.BatchNorm2d(4),
        new nn.ReLU(),
        new nn.Dropout(0.3),
        new nn.Flatten(),
        new nn.Linear(256, 4),
      );
    const init = net();
    const run = async (loss: Parameters<typeof fit>[0]['loss']) => {
      const model = net();
      model.loadStateDict(init.stateDict());
      const events: TrainEvent[] = [];
      const r = await fit({
        model,
        optimizer: new optim.AdamW(model.parameters(), { lr: 0.01 }),
        loss,
        seed: 2,
        train: new TensorLoader(x, y, { batchSize: 16, shuffle: true, seed: 1 }),
        epochs: 2,
        onEvent: (e) => events.push(e),
      });
      return { r, losses: stepLosses(events), weights: weightsOf(model) }; // batch norm running stats included
    };
    const native = await run(undefined);
    const inParts = await run((l, t) => nn.functional.crossEntropy(l, t));
    expect(native.r.nativeSteps).toBe(6);
    expect(inParts.r.nativeSteps).toBe(0);
    native.losses.forEach((l, i) => expect(Math.abs(l - inParts.losses[i])).toBeLessThan(1e-6));
    expect(maxDiff(native.weights, inParts.weights)).toBeLessThan(1e-6);
  });

  it("the default loss and 'crossEntropy' take the native step; clipGradNorm, a custom forward or a TypeScript forward take the step in parts", async () => {
    torch.manualSeed(4);
    const x = torch.randn([40, 4]);
    const y = torch.tensor(Array.from({ length: 40 }, (_, i) => i % 3));
    const train = new TensorLoader(x, y, { batchSize: 10 });
    const fitWith = async (extra: Partial<Parameters<typeof fit>[0]>, model: nn.Module = mlp()) =>
      (await fit({ model, optimizer: new optim.SGD(model.parameters(), { lr: 0.05 }), train, epochs: 1, ...extra })).nativeSteps;
    expect(await fitWith({})).toBe(4);
    expect(await fitWith({ loss: 'crossEntropy' })).toBe(4);
    expect(await fitWith({ clipGradNorm: 1 })).toBe(0);
    expect(await fitWith({ forward: (m, input) => m.forwardAsync(input as Tensor) })).toBe(0);
    class Net extends nn.Module {
      fc = this.registerModule('fc', new nn.Linear(4, 3));
      forward(input: Tensor): Tensor {
        return this.fc.forward(input).relu();
      }
    }
    expect(await fitWith({}, new Net())).toBe(0);
    await expect(fitWith({ loss: { type: 'crossEntropy', labelSmoothing: 2 } })).rejects.toThrow(/fit: loss\.labelSmoothing must be in \[0, 1\], got 2/);
    await expect(fitWith({ loss: 'focal' as never })).rejects.toThrow(/fit: loss must be a function .*got focal/);
  });
});

describe('restoreBest: what the model holds after fit', () => {
  // validation labels are the training labels flipped: the better the model fits, the worse it validates, so the best epoch is an early one
  torch.manualSeed(5);
  const x = torch.randn([120, 4]);
  const y = x.sum(1).gt(0).long();
  const flipped = y.neg().add(1);
  const setup = () => {
    torch.manualSeed(6);
    const model = new nn.Sequential(new nn.Linear(4, 8), new nn.ReLU(), new nn.Linear(8, 2));
    return {
      model,
      optimizer: new optim.SGD(model.parameters(), { lr: 0.2 }),
      train: new TensorLoader(x, y, { batchSize: 20 }),
      val: new TensorLoader(x, flipped, { batchSize: 60 }),
      epochs: 4,
      monitor: 'loss' as const,
    };
  };
  const weightsAt = (events: Array<{ epoch: number; weights: Record<string, number[]> }>, epoch: number) => events.find((e) => e.epoch === epoch)!.weights;

  it("with checkpointDir: the best epoch's weights (from best/), by default; the last epoch's with restoreBest: false", async () => {
    for (const restoreBest of [undefined, false]) {
      const dir = mkdtempSync(join(tmpdir(), 'finetorch-restore-'));
      const s = setup();
      const seen: Array<{ epoch: number; weights: Record<string, number[]> }> = [];
      const r = await fit({
        ...s,
        checkpointDir: dir,
        restoreBest,
        onEvent: (e) => {
          if (e.type === 'epoch') seen.push({ epoch: e.epoch, weights: weightsOf(s.model) });
        },
      });
      expect(r.best!.epoch).toBeLessThan(3); // the setup works as intended
      const bestFile = Object.fromEntries(Object.entries(io.load(join(dir, 'best', 'model.safetensors'))).map(([k, t]) => [k, flat(t)]));
      expect(maxDiff(bestFile, weightsAt(seen, r.best!.epoch))).toBe(0);
      if (restoreBest === false) {
        expect(r.modelEpoch).toBe(3);
        expect(maxDiff(weightsOf(s.model), weightsAt(seen, 3))).toBe(0);
      } else {
        expect(r.modelEpoch).toBe(r.best!.epoch);
        expect(maxDiff(weightsOf(s.model), bestFile)).toBe(0);
      }
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("without checkpointDir: the last epoch's weights by default, the best epoch's (kept in memory) with restoreBest: true", async () => {
    for (const restoreBest of [undefined, true]) {
      const s = setup();
      const seen: Array<{ epoch: number; weights: Record<string, number[]> }> = [];
      const r = await fit({
        ...s,
        restoreBest,
        onEvent: (e) => {
          if (e.type === 'epoch') seen.push({ epoch: e.epoch, weights: weightsOf(s.model) });
        },
      });
      const expected = restoreBest ? r.best!.epoch : 3;
      expect(r.best!.epoch).toBeLessThan(3);
      expect(r.modelEpoch).toBe(expected);
      expect(maxDiff(weightsOf(s.model), weightsAt(seen, expected))).toBe(0);
    }
  });
});
