// The seed's argument on real data (Debian's Fashion-MNIST): a small CNN
// pretrained on classes 0-4 is fine-tuned on classes 5-9 from 300 labels with
// each strategy; frozen parameters stay bit-identical; focal loss vs
// cross-entropy on a 1:20 imbalanced binary split; reproducibility and resume.
import { describe, it, expect, beforeAll } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { torch, nn, optim, finetune, losses, fit, evaluate, TensorLoader, fashionMnist, LRScheduler, type Tensor, type TrainEvent } from 'finetorch';
import { flat } from '../helpers';

function cnn(numClasses: number): nn.Sequential {
  return new nn.Sequential({
    stem: new nn.Sequential(new nn.Conv2d(1, 16, 3, { padding: 1 }), new nn.BatchNorm2d(16), new nn.ReLU(), new nn.MaxPool2d(2)),
    block1: new nn.Sequential(new nn.Conv2d(16, 32, 3, { padding: 1 }), new nn.BatchNorm2d(32), new nn.ReLU(), new nn.MaxPool2d(2)),
    block2: new nn.Sequential(new nn.Conv2d(32, 64, 3, { padding: 1 }), new nn.BatchNorm2d(64), new nn.ReLU(), new nn.AdaptiveAvgPool2d(1), new nn.Flatten()),
    head: new nn.Linear(64, numClasses),
  });
}

// images uint8 [N,28,28] -> float [N,1,28,28] in [-0.5, 0.5]
const prep = (images: Tensor) => torch.tidy(() => images.unsqueeze(1).float().div(255).sub(0.5));

/** Samples of the given classes (relabelled 0..k-1), at most `perClass` each, deterministic. */
function subset(data: { images: Tensor; labels: Tensor }, classes: number[], perClass: number[]): { x: Tensor; y: Tensor } {
  const labels = flat(data.labels);
  const picked: number[] = [];
  const newLabels: number[] = [];
  classes.forEach((c, k) => {
    let n = 0;
    for (let i = 0; i < labels.length && n < perClass[k]; i++)
      if (labels[i] === c) {
        picked.push(i);
        newLabels.push(k);
        n++;
      }
  });
  const idx = torch.tensor(picked);
  return { x: prep(data.images.indexSelect(0, idx)), y: torch.tensor(newLabels) };
}

let pretrained: Record<string, Tensor>;
let train5: { x: Tensor; y: Tensor };
let test5: { x: Tensor; y: Tensor };
let trainData: { images: Tensor; labels: Tensor };
let testData: { images: Tensor; labels: Tensor };

beforeAll(async () => {
  trainData = fashionMnist('train');
  testData = fashionMnist('test');
  expect(trainData.images.shape).toEqual([60000, 28, 28]);
  // pretraining: classes 0-4, 1,200 images each, 3 epochs
  const pre = subset(trainData, [0, 1, 2, 3, 4], [1200, 1200, 1200, 1200, 1200]);
  torch.manualSeed(0);
  const model = cnn(5);
  const opt = new optim.AdamW(model.parameters(), { lr: 2e-3 });
  await fit({ model, optimizer: opt, train: new TensorLoader(pre.x, pre.y, { batchSize: 64, shuffle: true, seed: 1 }), epochs: 3, seed: 1 });
  const preTest = subset(testData, [0, 1, 2, 3, 4], [200, 200, 200, 200, 200]);
  const r = await evaluate(model, new TensorLoader(preTest.x, preTest.y, { batchSize: 256 }));
  console.log(`pretrained on classes 0-4: test accuracy ${(r.accuracy * 100).toFixed(1)}%`);
  expect(r.accuracy).toBeGreaterThan(0.7);
  pretrained = Object.fromEntries(Object.entries(model.stateDict()).map(([k, v]) => [k, v.clone()]));
  // the task: classes 5-9 from 300 labels (60 each), tested on 1,000 images
  train5 = subset(trainData, [5, 6, 7, 8, 9], [60, 60, 60, 60, 60]);
  test5 = subset(testData, [5, 6, 7, 8, 9], [200, 200, 200, 200, 200]);
}, 600000);

function loadPretrained(numClasses: number): nn.Sequential {
  const model = cnn(5);
  model.loadStateDict(pretrained);
  finetune.swapHead(model, numClasses);
  return model;
}

type Strategy = 'head-only' | 'frozen-2' | 'full' | 'differential';

async function fineTune(strategy: Strategy, seed = 7) {
  torch.manualSeed(seed);
  const model = loadPretrained(5);
  if (strategy === 'head-only') finetune.freeze(model, { blocks: 3 });
  if (strategy === 'frozen-2') finetune.freeze(model, { blocks: 2 });
  const lrs = strategy === 'differential' ? { bottom: 1e-4, top: 3e-3 } : { lrs: [3e-3, 3e-3, 3e-3, 3e-3] };
  const groups = finetune.paramGroups(model, { ...lrs, weightDecay: 1e-4 });
  const optimizer = new optim.AdamW(groups);
  const loader = new TensorLoader(train5.x, train5.y, { batchSize: 32, shuffle: true, seed });
  const epochs = 8;
  const scheduler = new LRScheduler(optimizer, { kind: 'linear', totalSteps: epochs * loader.length, warmupSteps: loader.length });
  const before = Object.fromEntries(Object.entries(model.stateDict()).map(([k, v]) => [k, flat(v)]));
  const events: TrainEvent[] = [];
  const started = Date.now();
  const result = await fit({
    model,
    optimizer,
    scheduler,
    train: loader,
    val: new TensorLoader(test5.x, test5.y, { batchSize: 500 }),
    epochs,
    seed,
    onEvent: (e) => events.push(e),
  });
  const test = await evaluate(model, new TensorLoader(test5.x, test5.y, { batchSize: 500 }));
  return { model, before, events, result, test, seconds: (Date.now() - started) / 1000, groups };
}

describe('fine-tuning Fashion-MNIST classes 5-9 from a model pretrained on 0-4', () => {
  const results: Record<string, { accuracy: number; f1Macro: number; rocAuc: number | null; seconds: number }> = {};

  for (const strategy of ['head-only', 'frozen-2', 'full', 'differential'] as const) {
    it(`${strategy}: trains well above chance; frozen parameters bit-identical; every group follows its own LR`, async () => {
      const { model, before, events, result, test, seconds, groups } = await fineTune(strategy);
      results[strategy] = { accuracy: test.accuracy, f1Macro: test.f1Macro, rocAuc: test.rocAuc, seconds };
      console.log(
        `${strategy}: accuracy ${(test.accuracy * 100).toFixed(1)}%, macro-F1 ${test.f1Macro.toFixed(3)}, AUC ${test.rocAuc?.toFixed(3)}, ${seconds.toFixed(1)} s, event-loop delay p99 ${result.eventLoopDelay.p99.toFixed(1)} ms`,
      );
      expect(test.accuracy).toBeGreaterThan(0.5); // chance is 0.2
      const after = model.stateDict();
      const frozenPrefixes = strategy === 'head-only' ? ['stem.', 'block1.', 'block2.'] : strategy === 'frozen-2' ? ['stem.', 'block1.'] : [];
      for (const [k, v] of Object.entries(before)) {
        if (frozenPrefixes.some((p) => k.startsWith(p))) expect(flat(after[k]), `${k} frozen`).toEqual(v);
        else if (k.endsWith('weight') && !k.includes('running')) expect(flat(after[k]), `${k} trained`).not.toEqual(v);
      }
      // the schedule scales every group's base LR by the same factor
      const steps = events.filter((e): e is Extract<TrainEvent, { type: 'step' }> => e.type === 'step');
      const base = groups.map((g) => g.lr);
      for (const s of steps.slice(1)) {
        const f = s.lrs[0] / base[0];
        s.lrs.forEach((lr, i) => expect(Math.abs(lr - base[i] * f)).toBeLessThanOrEqual(1e-15 + 1e-12 * base[i]));
      }
    }, 300000);
  }

  it('reports the comparison', () => {
    console.log(
      'strategy comparison (300 labels):\n' +
        Object.entries(results)
          .map(
            ([k, r]) =>
              `  ${k.padEnd(13)} acc ${(r.accuracy * 100).toFixed(1)}%  F1 ${r.f1Macro.toFixed(3)}  AUC ${r.rocAuc?.toFixed(3)}  ${r.seconds.toFixed(1)} s`,
          )
          .join('\n'),
    );
    expect(Object.keys(results).length).toBe(4);
  });

  it('is reproducible: the same seed and data give the same metrics twice', async () => {
    const a = await fineTune('head-only', 11);
    const b = await fineTune('head-only', 11);
    expect(b.test).toEqual(a.test);
  }, 300000);

  it('resumes from a checkpoint exactly where an uninterrupted run would be', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'finetorch-resume-'));
    const run = async (epochs: number, resumeFrom?: string) => {
      torch.manualSeed(3);
      const model = loadPretrained(5);
      const optimizer = new optim.AdamW(model.parameters(), { lr: 1e-3 });
      const loader = new TensorLoader(train5.x, train5.y, { batchSize: 50, shuffle: true, seed: 5 });
      const scheduler = new LRScheduler(optimizer, { kind: 'cosine', totalSteps: 4 * loader.length, warmupSteps: 2 });
      await fit({ model, optimizer, scheduler, train: loader, epochs, seed: 5, checkpointDir: resumeFrom ? undefined : join(dir, `run${epochs}`), resumeFrom });
      return model.parameters().flatMap(flat);
    };
    const straight = await run(4);
    await run(2);
    const resumed = await run(4, join(dir, 'run2', 'last'));
    expect(resumed).toEqual(straight);
    rmSync(dir, { recursive: true, force: true });
  }, 300000);

  it('focal loss vs cross-entropy on a 1:20 imbalanced binary split (Shirt vs T-shirt/top)', async () => {
    // positives: Shirt (6) x 20, negatives: T-shirt/top (0) x 400; tested on 1,000 balanced images
    const trainBin = subset(trainData, [0, 6], [400, 20]);
    const testBin = subset(testData, [0, 6], [500, 500]);
    const scores: Record<string, number> = {};
    for (const kind of ['crossEntropy', 'focal'] as const) {
      torch.manualSeed(21);
      const model = loadPretrained(2);
      finetune.freeze(model, { blocks: 1 });
      const optimizer = new optim.AdamW(finetune.paramGroups(model, { bottom: 1e-4, top: 3e-3 }));
      const loss = kind === 'focal' ? (l: Tensor, t: Tensor) => losses.focalLoss(l, t, { gamma: 2, alpha: [0.25, 0.75] }) : undefined;
      await fit({ model, optimizer, loss, train: new TensorLoader(trainBin.x, trainBin.y, { batchSize: 32, shuffle: true, seed: 2 }), epochs: 8, seed: 2 });
      const r = await evaluate(model, new TensorLoader(testBin.x, testBin.y, { batchSize: 500 }));
      scores[kind] = r.f1Macro;
      const [[, fp], [fn, tp]] = r.confusionMatrix;
      console.log(
        `imbalanced 1:20, ${kind}: macro-F1 ${r.f1Macro.toFixed(3)}, accuracy ${(r.accuracy * 100).toFixed(1)}%, AUC ${r.rocAuc?.toFixed(3)}, minority recall ${(tp / (tp + fn)).toFixed(3)}, false positives ${fp}`,
      );
      expect(r.rocAuc).toBeGreaterThan(0.6);
    }
    console.log(`focal - cross-entropy macro-F1: ${(scores.focal - scores.crossEntropy).toFixed(3)}`);
  }, 300000);
});
