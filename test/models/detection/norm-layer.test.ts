// Faster R-CNN's normLayer option against torchvision 0.14: 'batchnorm' is
// the model fasterrcnn_resnet50_fpn builds with no weights (nn.BatchNorm2d in
// the body). With the same weights (a seeded torchvision model saved as .pth
// by make_norm_layer_refs.py, Debian's /usr/bin/python3) and the same images
// and targets, a train-mode pass gives torchvision's four losses and leaves
// the same running statistics; the trained checkpoint then loads into the
// default 'frozen' model (running statistics used, counters dropped), which
// detects as the BatchNorm model does in eval mode.
import { describe, it, expect, beforeAll } from 'vitest';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { torch, io, models, type Tensor } from 'finetorch';
import { cacheDir, root } from '../../reference';

const dir = join(cacheDir, 'detection-norm-layer');
const OPTIONS = { numClasses: 3, minSize: 64, maxSize: 64, trainableBackboneLayers: 5, rpnPreNmsTopNTrain: 100, rpnPostNmsTopNTrain: 50 };
type Refs = {
  images: Array<{ shape: number[]; data: number[] }>;
  targets: Array<{ boxes: number[][]; labels: number[] }>;
  losses: Record<string, number>;
  stats: Record<string, number[]>;
  numBatchesTracked: number;
  trainable: string[];
};
let refs: Refs;

beforeAll(() => {
  if (!['model.pth', 'refs.json'].every((f) => existsSync(join(dir, f))) || !JSON.parse(readFileSync(join(dir, 'refs.json'), 'utf8')).trainable) {
    mkdirSync(dir, { recursive: true });
    execFileSync('/usr/bin/python3', [join(root, 'test/models/detection/make_norm_layer_refs.py'), dir], {
      stdio: ['ignore', 'ignore', 'inherit'],
      timeout: 300000,
    });
  }
  refs = JSON.parse(readFileSync(join(dir, 'refs.json'), 'utf8')) as Refs;
}, 300000);

const maxDiff = (a: number[], b: number[]) => a.reduce((m, x, i) => Math.max(m, Math.abs(x - b[i])), 0);

describe("fasterrcnnResnet50Fpn({ normLayer: 'batchnorm' })", () => {
  it("trains with BatchNorm2d as torchvision's weights=None model: the same losses and running statistics", () => {
    const model = models.fasterrcnnResnet50Fpn({ ...OPTIONS, normLayer: 'batchnorm', rpnBatchSizePerImage: 1_000_000, boxBatchSizePerImage: 1_000_000 });
    const sd = io.load(join(dir, 'model.pth'));
    // BatchNorm2d's num_batches_tracked included: the state dicts have the same keys
    expect(Object.keys(model.stateDict()).sort()).toEqual(Object.keys(sd).sort());
    model.loadStateDict(sd);
    // trainableBackboneLayers 5: every parameter trains, the stem's BatchNorm included
    expect(
      model
        .namedParameters()
        .filter(([, p]) => p.requiresGrad)
        .map(([n]) => n)
        .sort(),
    ).toEqual([...refs.trainable].sort());
    model.train();
    const images = refs.images.map((r) => torch.tensor(Float32Array.from(r.data), { shape: r.shape }));
    const targets = refs.targets.map((t) => ({
      boxes: torch.tensor(Float32Array.from(t.boxes.flat()), { shape: [t.boxes.length, 4] }),
      labels: torch.tensor(BigInt64Array.from(t.labels, BigInt), { shape: [t.labels.length] }),
    }));
    const losses = model.forward(images, targets) as Record<string, Tensor>;
    for (const [k, v] of Object.entries(refs.losses)) expect(Math.abs((losses[k].item() as number) - v), k).toBeLessThan(1e-4 * Math.max(1, Math.abs(v)));
    const after = model.stateDict();
    for (const [k, v] of Object.entries(refs.stats)) expect(maxDiff(Array.from(after[k].dataSync() as Float32Array), v), k).toBeLessThan(1e-4);
    expect(Number(after['backbone.body.bn1.num_batches_tracked'].item())).toBe(refs.numBatchesTracked);

    // its checkpoint into the default (frozen) model: the running statistics are used, the counters dropped
    const frozen = models.fasterrcnnResnet50Fpn({ ...OPTIONS, rpnPreNmsTopNTest: 100, rpnPostNmsTopNTest: 50, boxScoreThresh: 0 });
    const result = frozen.loadStateDict(after);
    expect(result).toEqual({ missingKeys: [], unexpectedKeys: [], mismatchedKeys: [] });
    expect(Object.keys(frozen.stateDict()).some((k) => k.endsWith('num_batches_tracked'))).toBe(false);
    const bnEval = models.fasterrcnnResnet50Fpn({ ...OPTIONS, normLayer: 'batchnorm', rpnPreNmsTopNTest: 100, rpnPostNmsTopNTest: 50, boxScoreThresh: 0 });
    bnEval.loadStateDict(after);
    frozen.eval();
    bnEval.eval();
    const a = frozen.forward(images) as Array<{ boxes: Tensor; scores: Tensor; labels: Tensor }>;
    const b = bnEval.forward(images) as Array<{ boxes: Tensor; scores: Tensor; labels: Tensor }>;
    a.forEach((d, i) => {
      expect(d.scores.shape[0]).toBeGreaterThan(0);
      expect(d.scores.shape).toEqual(b[i].scores.shape);
      expect(d.labels.toArray()).toEqual(b[i].labels.toArray());
      expect(maxDiff(Array.from(d.scores.dataSync() as Float32Array), Array.from(b[i].scores.dataSync() as Float32Array))).toBeLessThan(1e-5);
      expect(maxDiff(Array.from(d.boxes.dataSync() as Float32Array), Array.from(b[i].boxes.dataSync() as Float32Array))).toBeLessThan(1e-3);
    });
    // and a frozen checkpoint (no counters) into a BatchNorm model
    expect(bnEval.loadStateDict(frozen.stateDict())).toEqual({ missingKeys: [], unexpectedKeys: [], mismatchedKeys: [] });
    for (const m of [model, frozen, bnEval]) m.dispose();
  });

  it('refuses an unknown normLayer by name', () => {
    expect(() => models.fasterrcnnResnet50Fpn({ normLayer: 'groupnorm' as 'frozen' })).toThrow(/normLayer must be 'frozen' or 'batchnorm', got "groupnorm"/);
  });
});
