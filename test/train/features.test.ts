// fit's training features (issue 17): gradient accumulation and EMA of the
// weights against PyTorch doing the same (one Python process for the file),
// resume inside an accumulating epoch, callbacks that stop training and
// change LRs, custom metrics picking best/, gradual unfreezing, best/ without
// the optimizer state.
import { describe, it, expect, beforeAll } from 'vitest';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { torch, nn, optim, io, fit, evaluate, LRScheduler, TensorLoader, gradualUnfreezing, type Tensor, type TrainEvent, type Callback } from 'finetorch';
import { flat } from '../helpers';

type Weights = Record<string, number[]>;
const weightsOf = (sd: Record<string, Tensor>): Weights => Object.fromEntries(Object.entries(sd).map(([k, t]) => [k, flat(t)]));
function maxDiff(a: Weights, b: Weights): number {
  expect(Object.keys(a).sort()).toEqual(Object.keys(b).sort());
  return Math.max(...Object.keys(a).flatMap((k) => a[k].map((v, i) => Math.abs(v - b[k][i]))));
}
const tmp = () => mkdtempSync(join(tmpdir(), 'finetorch-features-'));

// 50 samples in batches of 8: 7 batches, the last of 2; 3 per optimizer step: groups of 3, 3 and 1
const N = 50;
const BATCH = 8;
const K = 3;
const EPOCHS = 2;
const STEPS = EPOCHS * Math.ceil(Math.ceil(N / BATCH) / K);
// (batch norm after the ReLU: a bias right before batch norm has a zero gradient up to rounding, which Adam's normalisation amplifies)
const net = () => new nn.Sequential(new nn.Linear(4, 8), new nn.ReLU(), new nn.BatchNorm1d(8), new nn.Linear(8, 3));

const reference = `
import json, sys, torch
d = json.load(sys.stdin)
x = torch.tensor(d['x']).reshape(${N}, 4); y = torch.tensor(d['y'])
out = {}
for name in ['sgd', 'adamw']:
    m = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.BatchNorm1d(8), torch.nn.Linear(8, 3))
    m.load_state_dict({k: torch.tensor(v, dtype=m.state_dict()[k].dtype).reshape(m.state_dict()[k].shape) for k, v in d['weights'].items()})
    if name == 'sgd':
        opt = torch.optim.SGD(m.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-3)
    else:
        opt = torch.optim.AdamW(m.parameters(), lr=0.02, weight_decay=0.01)
    # transformers' get_linear_schedule_with_warmup: 2 warmup steps over ${STEPS} optimizer steps
    warm, total = 2, ${STEPS}
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: s / max(1, warm) if s < warm else max(0.0, (total - s) / max(1, total - warm)))
    ema = {k: v.detach().clone() for k, v in m.state_dict().items()}
    updates = 0
    losses = []
    for epoch in range(${EPOCHS}):
        batches = [(x[i:i + ${BATCH}], y[i:i + ${BATCH}]) for i in range(0, ${N}, ${BATCH})]
        for g in [batches[i:i + ${K}] for i in range(0, len(batches), ${K})]:
            opt.zero_grad()
            step_losses = []
            for xb, yb in g:
                loss = torch.nn.functional.cross_entropy(m(xb), yb)
                (loss / len(g)).backward()  # transformers: loss / the group's number of batches
                step_losses.append(loss.item())
            if name == 'adamw':
                torch.nn.utils.clip_grad_norm_(m.parameters(), 0.5)
            opt.step(); sched.step()
            losses.append(sum(step_losses) / len(step_losses))
            # timm ModelEmaV2's update, with the decay warmup min(decay, (1 + t) / (10 + t))
            decay = min(0.8, (1 + updates) / (10 + updates)); updates += 1
            with torch.no_grad():
                for k, v in m.state_dict().items():
                    ema[k] = ema[k] * decay + (1. - decay) * v if v.is_floating_point() else v.clone()
    out[name] = {'losses': losses, 'weights': {k: v.reshape(-1).tolist() for k, v in m.state_dict().items()},
                 'ema': {k: v.reshape(-1).tolist() for k, v in ema.items()}}
print(json.dumps(out))`;

let x: Tensor;
let y: Tensor;
let init: nn.Module;
let ref: Record<'sgd' | 'adamw', { losses: number[]; weights: Weights; ema: Weights }>;

beforeAll(() => {
  torch.manualSeed(11);
  x = torch.randn([N, 4]);
  y = torch.tensor(Array.from({ length: N }, (_, i) => (i * 7 + (i >> 2)) % 3));
  init = net();
  ref = JSON.parse(
    execFileSync('/usr/bin/python3', ['-c', reference], {
      input: JSON.stringify({ weights: weightsOf(init.stateDict()), x: flat(x), y: flat(y) }),
      encoding: 'utf8',
    }),
  );
});

function setup(kind: 'sgd' | 'adamw') {
  const model = net();
  model.loadStateDict(init.stateDict());
  const optimizer =
    kind === 'sgd'
      ? new optim.SGD(model.parameters(), { lr: 0.1, momentum: 0.9, weightDecay: 1e-3 })
      : new optim.AdamW(model.parameters(), { lr: 0.02, weightDecay: 0.01 });
  const scheduler = new LRScheduler(optimizer, { kind: 'linear', totalSteps: STEPS, warmupSteps: 2 });
  return { model, optimizer, scheduler, train: new TensorLoader(x, y, { batchSize: BATCH }) };
}

describe('gradientAccumulationSteps and ema, against PyTorch and timm', () => {
  for (const kind of ['sgd', 'adamw'] as const) {
    it(`${kind}: k batches summed per optimizer step, the epoch's last smaller group divided by its size, the schedule counting optimizer steps; EMA as timm's formula`, async () => {
      const s = setup(kind);
      const events: TrainEvent[] = [];
      const r = await fit({
        ...s,
        epochs: EPOCHS,
        gradientAccumulationSteps: K,
        clipGradNorm: kind === 'adamw' ? 0.5 : undefined,
        ema: { decay: 0.8, warmup: true, evaluate: false },
        onEvent: (e) => events.push(e),
      });
      const steps = events.filter((e) => e.type === 'step') as Array<Extract<TrainEvent, { type: 'step' }>>;
      expect(steps.map((e) => e.step)).toEqual([0, 1, 2, 3, 4, 5]);
      expect(steps.map((e) => e.microBatches)).toEqual([3, 3, 1, 3, 3, 1]);
      expect(steps.map((e) => e.batch)).toEqual([2, 5, 6, 2, 5, 6]);
      expect(s.scheduler.lastStep).toBe(STEPS);
      expect(r.nativeSteps).toBe(0);
      steps.forEach((e, i) => expect(Math.abs(e.loss - ref[kind].losses[i])).toBeLessThan(1e-5));
      expect(maxDiff(weightsOf(s.model.stateDict()), ref[kind].weights)).toBeLessThan(1e-5);
      expect(r.modelWeights).toBe('trained');
      expect(maxDiff(weightsOf(r.ema!), ref[kind].ema)).toBeLessThan(1e-5);
    });
  }

  it('a run interrupted inside an accumulating epoch and resumed ends with the same weights and EMA as PyTorch', async () => {
    const dir = tmp();
    try {
      const first = setup('sgd');
      const stop = new AbortController();
      const r1 = await fit({
        ...first,
        epochs: EPOCHS,
        gradientAccumulationSteps: K,
        ema: { decay: 0.8, warmup: true, evaluate: false },
        checkpointDir: dir,
        signal: stop.signal,
        onEvent: (e) => {
          if (e.type === 'step' && e.step === 3) stop.abort(); // epoch 1, after its first group
        },
      });
      expect(r1.interrupted).toBe(true);
      const state = JSON.parse(readFileSync(join(dir, 'last', 'trainer.json'), 'utf8'));
      expect(state.position).toMatchObject({ epoch: 1, batch: 3 });
      expect(state.ema).toEqual({ decay: 0.8, warmup: true, evaluate: false, updates: 4 });
      const second = setup('sgd');
      const events: TrainEvent[] = [];
      const r2 = await fit({
        ...second,
        epochs: EPOCHS,
        gradientAccumulationSteps: K,
        ema: { decay: 0.8, warmup: true, evaluate: false },
        checkpointDir: dir,
        resumeFrom: join(dir, 'last'),
        onEvent: (e) => events.push(e),
      });
      expect(events.filter((e) => e.type === 'step').map((e) => (e as { step: number }).step)).toEqual([4, 5]);
      expect(maxDiff(weightsOf(second.model.stateDict()), ref.sgd.weights)).toBeLessThan(1e-5);
      expect(maxDiff(weightsOf(r2.ema!), ref.sgd.ema)).toBeLessThan(1e-5);
      expect(maxDiff(weightsOf(io.load(join(dir, 'last', 'ema.safetensors'))), ref.sgd.ema)).toBeLessThan(1e-5);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('ema.evaluate: validation runs on the EMA weights, best/ says so, and the model ends holding them', async () => {
    const dir = tmp();
    try {
      const s = setup('sgd');
      const val = new TensorLoader(x, y, { batchSize: 25 });
      const r = await fit({
        ...s,
        val,
        epochs: EPOCHS,
        gradientAccumulationSteps: K,
        ema: { decay: 0.8, warmup: true },
        checkpointDir: dir,
        monitor: 'loss',
        restoreBest: false,
      });
      expect(r.modelWeights).toBe('ema');
      // the model holds the final EMA weights (PyTorch's), and the last epoch's validation loss is theirs
      expect(maxDiff(weightsOf(s.model.stateDict()), ref.sgd.ema)).toBeLessThan(1e-5);
      const m = net();
      m.loadStateDict(io.load(join(dir, 'last', 'ema.safetensors')));
      m.eval();
      const loss = torch.noGrad(() => nn.functional.crossEntropy(m.forward(x), y).item() as number);
      expect(Math.abs(r.history[EPOCHS - 1].val!.loss - loss)).toBeLessThan(1e-5);
      expect(JSON.parse(readFileSync(join(dir, 'best', 'trainer.json'), 'utf8')).ema.evaluate).toBe(true);
      // last/'s model.safetensors holds the trained weights, from which training resumes
      expect(maxDiff(weightsOf(io.load(join(dir, 'last', 'model.safetensors'))), ref.sgd.weights)).toBeLessThan(1e-5);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('callbacks', () => {
  const data = () => {
    torch.manualSeed(5);
    const xs = torch.randn([40, 4]);
    const ys = torch.tensor(Array.from({ length: 40 }, (_, i) => i % 3));
    return { train: new TensorLoader(xs, ys, { batchSize: 10 }), val: new TensorLoader(xs, ys, { batchSize: 20 }) };
  };
  const mlp = () => new nn.Sequential(new nn.Linear(4, 8), new nn.ReLU(), new nn.Linear(8, 3));

  it('an LR set in onStepEnd is used from the next step; stop() in onStepEnd ends training after that step, closing the epoch', async () => {
    const model = mlp();
    const optimizer = new optim.SGD(model.parameters(), { lr: 0.1 });
    const snapshots: Weights[] = [];
    const calls: string[] = [];
    const events: TrainEvent[] = [];
    const cb: Callback = {
      onTrainBegin: (ctx) => void calls.push(`trainBegin ${ctx.epoch}`),
      onEpochBegin: (ctx) => void calls.push(`epochBegin ${ctx.epoch}`),
      async onStepEnd(ctx) {
        await new Promise((r) => setTimeout(r, 1)); // awaited
        calls.push(`step ${ctx.step}`);
        snapshots.push(weightsOf(ctx.model.stateDict()));
        if (ctx.step === 2) ctx.optimizer.paramGroups[0].lr = 0;
        if (ctx.step === 6) ctx.stop('enough');
      },
      onEpochEnd: (ctx) => void calls.push(`epochEnd ${ctx.epoch} ${ctx.val ? 'val' : ''}`),
      onTrainEnd: (ctx) => void calls.push(`trainEnd ${ctx.history.length}`),
    };
    const r = await fit({ model, optimizer, ...data(), epochs: 5, callbacks: [cb], onEvent: (e) => events.push(e) });
    const steps = events.filter((e) => e.type === 'step') as Array<Extract<TrainEvent, { type: 'step' }>>;
    expect(steps.map((e) => e.lrs[0])).toEqual([0.1, 0.1, 0, 0, 0, 0]);
    expect(maxDiff(snapshots[2], snapshots[1])).toBe(0); // step 2 ran at LR 0
    expect(maxDiff(snapshots[1], snapshots[0])).toBeGreaterThan(0);
    expect(r.stopped).toEqual({ epoch: 1, step: 6, reason: 'enough' });
    expect(events.at(-1)).toEqual({ type: 'stopped', epoch: 1, step: 6, reason: 'enough' });
    expect(r.epochs).toBe(2); // epoch 1 stopped after its third step, then validated
    expect(calls).toEqual([
      'trainBegin 0',
      'epochBegin 0',
      'step 1',
      'step 2',
      'step 3',
      'step 4',
      'epochEnd 0 val',
      'epochBegin 1',
      'step 5',
      'step 6',
      'epochEnd 1 val',
      'trainEnd 2',
    ]);
  });

  it('stop() in onEpochEnd ends training after that epoch; bad callbacks are named', async () => {
    const model = mlp();
    const r = await fit({
      model,
      optimizer: new optim.SGD(model.parameters(), { lr: 0.1 }),
      ...data(),
      epochs: 5,
      callbacks: [{ onEpochEnd: (ctx) => (ctx.epoch === 1 ? ctx.stop('plateau') : undefined) }],
    });
    expect(r.epochs).toBe(2);
    expect(r.stopped?.reason).toBe('plateau');
    await expect(
      fit({ model, optimizer: new optim.SGD(model.parameters(), { lr: 0.1 }), ...data(), epochs: 1, callbacks: [{ onStepEnd: 3 } as never] }),
    ).rejects.toThrow(/fit: callbacks\[0\]\.onStepEnd must be a function/);
  });
});

describe('custom metrics', () => {
  it('land in val.custom, pick best/ as monitor (mode min), stop early, and see the probabilities, predictions and targets', async () => {
    const dir = tmp();
    try {
      torch.manualSeed(6);
      const xs = torch.randn([30, 4]);
      const ys = torch.tensor(Array.from({ length: 30 }, (_, i) => i % 3));
      const model = new nn.Sequential(new nn.Linear(4, 3));
      const scripted = [5, 1, 3, 2, 4]; // lowest at epoch 1; then no improvement for 2 epochs
      let calls = 0;
      const seen: number[] = [];
      const r = await fit({
        model,
        optimizer: new optim.SGD(model.parameters(), { lr: 0.1 }),
        train: new TensorLoader(xs, ys, { batchSize: 10 }),
        val: new TensorLoader(xs, ys, { batchSize: 30 }),
        epochs: 5,
        checkpointDir: dir,
        metrics: {
          scripted: () => scripted[calls++],
          myAccuracy: ({ predictions, targets, probabilities }) => {
            seen.push(probabilities.length, probabilities[0].length, Math.abs(probabilities[0].reduce((a, b) => a + b, 0) - 1));
            return predictions.filter((p, i) => p === targets[i]).length / targets.length;
          },
        },
        monitor: 'scripted',
        earlyStopping: { metric: 'scripted', patience: 2, mode: 'min' },
      });
      expect(r.best).toEqual({ epoch: 1, metric: 'scripted', value: 1 });
      expect(r.stoppedEarly).toBe(true);
      expect(r.epochs).toBe(4);
      expect(r.modelEpoch).toBe(1);
      expect(JSON.parse(readFileSync(join(dir, 'best', 'trainer.json'), 'utf8')).epoch).toBe(1);
      for (const h of r.history) expect(h.val!.custom!.myAccuracy).toBeCloseTo(h.val!.accuracy, 12);
      expect(seen.slice(0, 2)).toEqual([30, 3]);
      expect(seen[2]).toBeLessThan(1e-6); // softmax rows in float32
      await expect(
        fit({
          model,
          optimizer: new optim.SGD(model.parameters(), { lr: 0.1 }),
          train: new TensorLoader(xs, ys, { batchSize: 10 }),
          epochs: 1,
          monitor: 'nope',
        }),
      ).rejects.toThrow(/fit: monitor 'nope' is neither a built-in metric .* nor one of metrics/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('custom metrics for taggers', () => {
  it("see the true and predicted tag sequences (seqeval's input) and land in val.custom", async () => {
    torch.manualSeed(9);
    const model = new nn.Linear(4, 3); // emissions [B, W, 3] for tags O, B-X, I-X
    const xs = torch.randn([4, 5, 4]);
    const ys = torch.tensor([
      [0, 1, 2, 0, -100],
      [1, 2, 2, -100, -100],
      [0, 0, 0, 0, 0],
      [1, 0, -100, -100, -100],
    ]);
    const seen: { yTrue?: string[][]; yPred?: string[][] } = {};
    const val = await evaluate(model, new TensorLoader(xs, ys, { batchSize: 2 }), {
      loss: (l, t) => nn.functional.crossEntropy(l.reshape([-1, 3]), t.reshape([-1])),
      tagging: { tags: ['O', 'B-X', 'I-X'] },
      metrics: {
        words: ({ yTrue, yPred }) => {
          Object.assign(seen, { yTrue, yPred });
          return yTrue!.flat().length;
        },
      },
    });
    expect(val.custom).toEqual({ words: 14 });
    expect(seen.yTrue).toEqual([
      ['O', 'B-X', 'I-X', 'O'],
      ['B-X', 'I-X', 'I-X'],
      ['O', 'O', 'O', 'O', 'O'],
      ['B-X', 'O'],
    ]);
    const argmax = (torch.noGrad(() => model.forward(xs).argmax(2)).toArray() as number[][]).map((r, i) => r.slice(0, seen.yTrue![i].length));
    expect(seen.yPred).toEqual(argmax.map((r) => r.map((v) => ['O', 'B-X', 'I-X'][v])));
  });
});

describe('gradual unfreezing and saveOptimizerState', () => {
  it('unfreezes one block from the top every N epochs; frozen blocks do not move until then; best/ without the optimizer state', async () => {
    const dir = tmp();
    try {
      torch.manualSeed(7);
      const xs = torch.randn([24, 4]);
      const ys = torch.tensor(Array.from({ length: 24 }, (_, i) => i % 2));
      // blocks are the children: 0, 1 (ReLU, no parameters), 2, 3, 4
      const model = new nn.Sequential(new nn.Linear(4, 6), new nn.ReLU(), new nn.Linear(6, 6), new nn.Linear(6, 6), new nn.Linear(6, 2));
      for (const i of ['0', '2', '3'])
        for (const p of model
          .namedChildren()
          .find(([n]) => n === i)![1]
          .parameters())
          p.requiresGrad_(false);
      const optimizer = new optim.AdamW(model.parameters(), { lr: 0.01 }); // every block, frozen ones included
      const unfreezing = gradualUnfreezing({ every: 2, blocks: 1 });
      const history: Weights[] = [];
      const r = await fit({
        model,
        optimizer,
        train: new TensorLoader(xs, ys, { batchSize: 8 }),
        val: new TensorLoader(xs, ys, { batchSize: 24 }),
        epochs: 6,
        checkpointDir: dir,
        saveOptimizerState: false,
        callbacks: [unfreezing, { onEpochEnd: (ctx) => void history.push(weightsOf(ctx.model.stateDict())) }],
      });
      expect(unfreezing.log).toEqual([
        { epoch: 2, blocks: ['3'] },
        { epoch: 4, blocks: ['2'] },
      ]);
      // did parameter k change during epoch e
      const moved = (k: string, e: number) => history[e][k].some((v, i) => v !== history[e - 1][k][i]);
      for (let e = 1; e < 6; e++) {
        expect(moved('4.weight', e)).toBe(true);
        expect(moved('3.weight', e)).toBe(e >= 2);
        expect(moved('2.weight', e)).toBe(e >= 4);
        expect(moved('0.weight', e)).toBe(false);
      }
      expect(r.epochs).toBe(6);
      // best/: the model and trainer.json only, loadable as weights, refused for resuming with a clear message
      expect(existsSync(join(dir, 'best', 'optimizer.safetensors'))).toBe(false);
      expect(existsSync(join(dir, 'last', 'optimizer.safetensors'))).toBe(true);
      await expect(fit({ model, optimizer, train: new TensorLoader(xs, ys, { batchSize: 8 }), epochs: 7, resumeFrom: join(dir, 'best') })).rejects.toThrow(
        /written without the optimizer state .* resume from the run's last\//,
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
