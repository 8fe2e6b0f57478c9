// lrFind (the LR range test, fastai's lr_find) against a Python
// reimplementation of the published method on PyTorch 1.13: the same MLP,
// data and SGD run the exponential schedule in torch, smooth the loss with
// the debiased moving average and stop at 4 x the minimum; the suggestion
// rules (valley, steep, minimum) run in Python on the same curve and on fixed
// curves. Then: the model and the optimizer are exactly as before, so the
// training that follows is unchanged; and `finetorch lr-find` on a tiny recipe.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { torch, nn, optim, fit, lrFind, suggestLrs, TensorLoader, type Module, type Optimizer, type Tensor, type LrFindResult } from 'finetorch';
import { cli } from '../cli/cli-helpers';

const START = 1e-4;
const END = 1000; // high enough that this small MLP diverges before NUM_IT
const NUM_IT = 40;

// The reference: fastai's lr_find as its documentation and Smith's paper describe it, written out in torch.
const PYTHON = `
import json, math, random, sys, torch
torch.manual_seed(0)
torch.set_num_threads(1)
model = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 3))
x = torch.randn(64, 8)
y = torch.randint(0, 3, (64,))
weights = {k: v.tolist() for k, v in model.state_dict().items()}
opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
start, end, num_it, beta = ${START}, ${END}, ${NUM_IT}, 0.98

def suggest(lrs, losses, num_it):
    lrs, losses = lrs[num_it // 10:-5], losses[num_it // 10:-5]
    nans = [i for i, v in enumerate(losses) if v is None or math.isnan(v)]
    if nans:
        lrs, losses = lrs[:nans[0]], losses[:nans[0]]
    n = len(losses)
    if n == 0:
        return {'valley': None, 'steep': None, 'minimum': None}
    # minimum: a tenth of the LR at the lowest loss
    low = min(range(n), key=lambda i: losses[i])
    # steep: the most negative slope of loss against log(lr), forward differences
    steep = None
    if n >= 2:
        slopes = [(losses[i + 1] - losses[i]) / (math.log(lrs[i + 1]) - math.log(lrs[i])) for i in range(n - 1)]
        steep = lrs[min(range(n - 1), key=lambda i: slopes[i])]
    # valley: the longest decreasing subsequence; from its end back by its length, a third plus a sixth of the way in
    lds = [1] * n
    s = e = 0
    for i in range(1, n):
        for j in range(i):
            if losses[i] < losses[j] and lds[i] < lds[j] + 1:
                lds[i] = lds[j] + 1
        if lds[e] < lds[i]:
            e, s = i, i - lds[i]
    third = (e - s) / 3
    return {'valley': lrs[max(0, s + int(third) + int(third / 2))], 'steep': steep, 'minimum': lrs[low] / 10}

lrs, raw, smooth = [], [], []
avg, best, stopped = 0.0, float('inf'), 'numIt'
for it in range(num_it):
    lr = start * (end / start) ** (it / num_it)
    for g in opt.param_groups:
        g['lr'] = lr
    b = it % 4  # 4 batches of 16, in order: the data is cycled through
    opt.zero_grad()
    loss = torch.nn.functional.cross_entropy(model(x[b * 16:(b + 1) * 16]), y[b * 16:(b + 1) * 16])
    loss.backward()
    opt.step()
    v = loss.item()
    avg = beta * avg + (1 - beta) * v
    s = avg / (1 - beta ** (it + 1))
    lrs.append(lr); raw.append(v); smooth.append(s)
    best = min(best, s)
    if s > 4 * best:
        stopped = 'diverged'
        break

rng = random.Random(1)
def geom(n):
    return [1e-7 * (10 / 1e-7) ** (i / n) for i in range(n)]
curves = []
g = geom(100)
curves.append({'name': 'U-shaped with noise', 'numIt': 100, 'lrs': g,
  'losses': [2.3 - 1.5 / (1 + math.exp(-2 * (math.log10(l) + 3.5))) + 3 * max(0, math.log10(l) + 0.5) ** 2 + rng.gauss(0, 0.02) for l in g]})
g = geom(50)
curves.append({'name': 'falling all the way', 'numIt': 50, 'lrs': g, 'losses': [3 - 0.05 * i for i in range(50)]})
g = geom(80)[:60]
w = [2.0]
for i in range(59):
    w.append(w[-1] + rng.gauss(0, 0.1))
curves.append({'name': 'random walk, stopped at 60 of 80', 'numIt': 80, 'lrs': g, 'losses': w})
g = geom(100)[:70]
curves.append({'name': 'NaN from 40 on', 'numIt': 100, 'lrs': g, 'losses': [2 - 0.02 * i + 0.1 * math.sin(i) if i < 40 else float('nan') for i in range(70)]})
g = geom(100)
curves.append({'name': 'two valleys', 'numIt': 100, 'lrs': g, 'losses': [1.5 + math.cos(i / 8) + 0.001 * i for i in range(100)]})
curves.append({'name': 'too short', 'numIt': 100, 'lrs': geom(100)[:14], 'losses': [1.0] * 14})
for c in curves:
    c['expected'] = suggest(c['lrs'], c['losses'], c['numIt'])
    c['losses'] = [None if math.isnan(v) else v for v in c['losses']]

print(json.dumps({'weights': weights, 'x': x.tolist(), 'y': y.tolist(), 'lrs': lrs, 'raw': raw, 'smooth': smooth,
  'stopped': stopped, 'suggestion': suggest(lrs, smooth, num_it), 'curves': curves}))
`;

interface Reference {
  weights: Record<string, number[] | number[][]>;
  x: number[][];
  y: number[];
  lrs: number[];
  raw: number[];
  smooth: number[];
  stopped: string;
  suggestion: Record<string, number | null>;
  curves: Array<{ name: string; numIt: number; lrs: number[]; losses: Array<number | null>; expected: Record<string, number | null> }>;
}

let ref: Reference;
let x: Tensor;
let y: Tensor;

function mlp(): Module {
  const model = new nn.Sequential(new nn.Linear(8, 16), new nn.ReLU(), new nn.Linear(16, 3));
  model.loadStateDict(Object.fromEntries(Object.entries(ref.weights).map(([k, v]) => [k, torch.tensor(v, { dtype: 'float32' })])));
  return model;
}

const batches = () => new TensorLoader(x, y, { batchSize: 16 });

/** Every number in the model's state and the optimizer's, as plain arrays (for exact comparison). */
function snapshot(model: Module, opt: Optimizer) {
  const arrays = (o: Record<string, unknown>) =>
    Object.fromEntries(Object.entries(o).map(([k, v]) => [k, v && typeof v === 'object' && 'toArray' in v ? (v as Tensor).toArray() : v]));
  const sd = opt.stateDict();
  return {
    model: arrays(model.stateDict()),
    state: Object.fromEntries(Object.entries(sd.state).map(([i, s]) => [i, arrays(s)])),
    groups: sd.paramGroups,
  };
}

/** The same LR per rule (null alike); LRs computed by JavaScript's and Python's pow may differ in the last bit. */
function expectSameLrs(got: Record<string, number | null>, want: Record<string, number | null>, what?: string) {
  expect(Object.keys(got).sort(), what).toEqual(Object.keys(want).sort());
  for (const k of Object.keys(want)) {
    if (want[k] === null) expect(got[k], `${what} ${k}`).toBeNull();
    else expect(Math.abs(got[k]! - want[k]!) / want[k]!, `${what} ${k}: ${got[k]} vs ${want[k]}`).toBeLessThan(1e-12);
  }
}

beforeAll(() => {
  ref = JSON.parse(execFileSync('/usr/bin/python3', ['-c', PYTHON], { encoding: 'utf8', maxBuffer: 64 << 20 }));
  x = torch.tensor(ref.x, { dtype: 'float32' });
  y = torch.tensor(ref.y, { dtype: 'int64' });
}, 120000);

describe('lrFind against the Python reimplementation on PyTorch', () => {
  let r: LrFindResult;
  beforeAll(async () => {
    const model = mlp();
    const opt = new optim.SGD(model.parameters(), { lr: 0.1, momentum: 0.9 });
    r = await lrFind({ model, optimizer: opt, train: batches(), startLr: START, endLr: END, numIt: NUM_IT });
  });

  it('runs the exponential schedule from startLr towards endLr, one LR per iteration', () => {
    expect(r.lrs.length).toBe(ref.lrs.length);
    r.lrs.forEach((lr, i) => expect(Math.abs(lr - ref.lrs[i]) / ref.lrs[i]).toBeLessThan(1e-6)); // the optimizer holds LRs as doubles
    expect(r.lrs[0]).toBe(START);
  });

  it('trains as torch does and smooths the loss with the debiased moving average (beta 0.98)', () => {
    r.rawLosses.forEach((v, i) => expect(Math.abs(v - ref.raw[i])).toBeLessThan(1e-5 * Math.max(1, Math.abs(ref.raw[i]))));
    r.losses.forEach((v, i) => expect(Math.abs(v - ref.smooth[i])).toBeLessThan(1e-5 * Math.max(1, Math.abs(ref.smooth[i]))));
    // the first smoothed value is the first loss itself (the debiasing divides by 1 - 0.98)
    expect(Math.abs(r.losses[0] - r.rawLosses[0])).toBeLessThan(1e-12);
  });

  it('stops when the smoothed loss passes 4 x its minimum, at the same iteration as the reference', () => {
    expect(ref.stopped).toBe('diverged');
    expect(r.stopped).toBe('diverged');
    expect(r.lrs.length).toBeLessThan(NUM_IT);
    const last = r.losses.at(-1)!;
    expect(last).toBeGreaterThan(4 * Math.min(...r.losses));
    expect(r.losses.slice(0, -1).every((v, i, all) => v <= 4 * Math.min(...all.slice(0, i + 1)))).toBe(true);
  });

  it('suggests the LRs the reference rules pick on the same curve (valley by default)', () => {
    expectSameLrs(r.suggestion, ref.suggestion);
    expect(r.rule).toBe('valley');
    expect(r.suggested).toBe(r.suggestion.valley);
  });
});

describe('the suggestion rules on fixed curves', () => {
  it('valley, steep and minimum agree with the Python reimplementation', () => {
    expect(ref.curves.length).toBe(6);
    for (const c of ref.curves) {
      const got = suggestLrs(
        c.lrs,
        c.losses.map((v) => v ?? NaN),
        c.numIt,
      );
      expectSameLrs(got, c.expected, c.name);
    }
    // the fixtures reach each branch: a suggestion per rule, and none for a curve that is all trimmed away
    expect(ref.curves.at(-1)!.expected).toEqual({ valley: null, steep: null, minimum: null });
    expect(ref.curves[0].expected.valley).toBeGreaterThan(1e-5);
  });
});

describe('lrFind leaves training as it was', () => {
  it('restores the weights, buffers, mode, optimizer state and param-group LRs exactly; fit afterwards is unchanged', async () => {
    const make = () => {
      const model = new nn.Sequential(new nn.Linear(8, 16), new nn.BatchNorm1d(16), new nn.ReLU(), new nn.Linear(16, 3));
      const seed = mlp(); // reference weights for the linear layers, so both copies start the same
      const sd = seed.stateDict();
      model.loadStateDict({ '0.weight': sd['0.weight'], '0.bias': sd['0.bias'], '3.weight': sd['2.weight'], '3.bias': sd['2.bias'] }, { strict: false });
      const [w, b, ...rest] = model.parameters();
      const opt = new optim.AdamW(
        [
          { params: [w, b], lr: 1e-3 },
          { params: rest, lr: 1e-2 },
        ],
        {},
      );
      return { model, opt };
    };
    const a = make();
    const b = make();
    // some training first, so Adam has state and BatchNorm running statistics
    for (const t of [a, b]) await fit({ model: t.model, optimizer: t.opt, train: batches(), epochs: 1 });
    a.model.eval();
    const before = snapshot(a.model, a.opt);
    const r = await lrFind({ model: a.model, optimizer: a.opt, train: batches(), startLr: [1e-5, 1e-4], endLr: [1, 10], numIt: 10, stopDiv: false });
    expect(r.lrs.length).toBe(10);
    expect(r.stopped).toBe('numIt');
    // each group on its own schedule; the recorded LR is the last group's (as fastai records it)
    r.lrs.forEach((lr, i) => expect(Math.abs(lr - 1e-4 * (10 / 1e-4) ** (i / 10)) / lr).toBeLessThan(1e-9));
    expect(snapshot(a.model, a.opt)).toEqual(before);
    expect(a.model.training).toBe(false);
    expect(a.opt.paramGroups.map((g) => g.lr)).toEqual([1e-3, 1e-2]);
    // the training that follows is the one without the test
    const after = await Promise.all([a, b].map((t) => fit({ model: t.model, optimizer: t.opt, train: batches(), epochs: 1 })));
    expect(after[0].history[0].trainLoss).toBe(after[1].history[0].trainLoss);
    expect(snapshot(a.model, a.opt)).toEqual(snapshot(b.model, b.opt));
  });

  it('rejects bad options with what was wrong', async () => {
    const model = mlp();
    const opt = new optim.SGD(model.parameters(), { lr: 0.1 });
    await expect(lrFind({ model, optimizer: opt, train: batches(), numIt: 0 })).rejects.toThrow(/numIt must be a positive integer, got 0/);
    await expect(lrFind({ model, optimizer: opt, train: batches(), startLr: [1e-7, 1e-6] })).rejects.toThrow(
      /startLr has 2 entries but the optimizer has 1 param groups/,
    );
    await expect(lrFind({ model, optimizer: opt, train: batches(), endLr: -1 })).rejects.toThrow(/endLr must be a positive finite number, got -1/);
    await expect(lrFind({ model, optimizer: opt, train: batches(), smoothing: 1 })).rejects.toThrow(/smoothing must be in \[0, 1\)/);
    // fewer than 6 iterations asked for: 6 run, the schedule spanning them (fastai's LRFinder)
    const short = await lrFind({ model, optimizer: opt, train: batches(), numIt: 2, stopDiv: false });
    expect(short.lrs.length).toBe(6);
    expect(Math.abs(short.lrs[5] - 1e-7 * 1e8 ** (5 / 6)) / short.lrs[5]).toBeLessThan(1e-9);
  });
});

describe('finetorch lr-find', () => {
  let dir: string;
  afterAll(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('runs the test on a recipe and writes lr-find.json and the plot (SVG and a PNG that decodes)', async () => {
    dir = mkdtempSync(join(tmpdir(), 'finetorch-lr-find-'));
    const recipe = join(dir, 'tiny.yaml');
    writeFileSync(
      recipe,
      `model: { arch: resnet18, width: 4, inChannels: 1, smallStem: true }
optimizer: { type: SGD, lr: 0.01, momentum: 0.9 }
data: { kind: fashionMnist, classes: [T-shirt/top, Trouser], perClass: 24, val: 0, testPerClass: 1 }
epochs: 1
batchSize: 16
`,
    );
    const run = cli(['lr-find', '--config', recipe, '--num-it', '20', '--start-lr', '1e-5', '--end-lr', '1', '--out', join(dir, 'out')]);
    expect(run.status, run.stderr).toBe(0);
    const result = run.events.find((e) => e.type === 'lr-find')!;
    expect(result.rule).toBe('valley');
    const saved = JSON.parse(readFileSync(join(dir, 'out', 'lr-find.json'), 'utf8'));
    expect(saved.lrs.length).toBe(result.iterations);
    expect(saved.lrs.length).toBeGreaterThan(2);
    expect(saved.lrs[0]).toBe(1e-5);
    expect(saved.suggested).toBe(result.suggested);
    expect(saved.suggestion).toEqual(suggestLrs(saved.lrs, saved.losses, 20));
    const svg = readFileSync(join(dir, 'out', 'lr-find.svg'), 'utf8');
    expect(svg).toMatch(/<svg/);
    expect(svg).toMatch(/learning rate/);
    if (saved.suggested !== null) expect(svg).toMatch(/valley/);
    const png = await sharp(join(dir, 'out', 'lr-find.png')).metadata();
    expect(png.format).toBe('png');
    expect(png.width).toBeGreaterThan(100);
    expect(existsSync(join(dir, 'out', 'run.json'))).toBe(false); // nothing of a run: the test trains nothing for keeps
  }, 120000);

  it('refuses a bad flag with the usage', () => {
    const run = cli(['lr-find', '--config', 'x.yaml', '--suggest', 'best']);
    expect(run.status).toBe(2);
    expect(run.stderr).toMatch(/--suggest: expected valley, steep, minimum, got "best"/);
  });
});
