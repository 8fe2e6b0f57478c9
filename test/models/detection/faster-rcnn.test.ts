// Faster R-CNN ResNet-50 FPN against torchvision 0.14: the same weights (a
// seeded torchvision model saved as .pth by make_faster_rcnn_refs.py, run with
// Debian's /usr/bin/python3) and the same images give torchvision's eval
// detections: boxes within 1e-3, scores within 1e-4, labels equal.
import { describe, it, expect, beforeAll } from 'vitest';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { torch, io, models, type Tensor } from 'finetorch';
import { cacheDir, root } from '../../reference';

const dir = join(cacheDir, 'detection-model');
const OPTIONS = { numClasses: 5, minSize: 128, maxSize: 192, rpnPreNmsTopNTest: 200, rpnPostNmsTopNTest: 100, boxScoreThresh: 0.01, boxDetectionsPerImg: 300 };
type Dets = { boxes: number[][]; scores: number[]; labels: number[] };
let images: Tensor[] = [];
let expected: Dets[] = [];
let model: InstanceType<typeof models.FasterRCNN>;

beforeAll(() => {
  if (!['model.pth', 'images.json', 'eval.json'].every((f) => existsSync(join(dir, f)))) {
    mkdirSync(dir, { recursive: true });
    execFileSync('/usr/bin/python3', [join(root, 'test/models/detection/make_faster_rcnn_refs.py'), dir], {
      stdio: ['ignore', 'ignore', 'inherit'],
      timeout: 600000,
    });
  }
  const raw = JSON.parse(readFileSync(join(dir, 'images.json'), 'utf8')) as Array<{ shape: number[]; data: number[] }>;
  images = raw.map((r) => torch.tensor(Float32Array.from(r.data), { shape: r.shape }));
  expected = JSON.parse(readFileSync(join(dir, 'eval.json'), 'utf8')) as Dets[];
  model = models.fasterrcnnResnet50Fpn(OPTIONS);
  const result = model.loadStateDict(io.load(join(dir, 'model.pth')));
  expect(result.missingKeys).toEqual([]);
  expect(result.unexpectedKeys).toEqual([]);
  model.eval();
}, 600000);

describe('fasterrcnnResnet50Fpn', () => {
  it("has torchvision's parameter and buffer names and shapes", () => {
    const sd = io.load(join(dir, 'model.pth'));
    const ours = model.stateDict();
    expect(Object.keys(ours).sort()).toEqual(Object.keys(sd).sort());
    for (const [k, v] of Object.entries(sd)) expect(ours[k].shape, k).toEqual(v.shape);
  });

  it("eval detections equal torchvision's (boxes 1e-3, scores 1e-4, labels equal)", () => {
    const dets = model.forward(images) as Array<{ boxes: Tensor; scores: Tensor; labels: Tensor }>;
    expect(dets.length).toBe(expected.length);
    dets.forEach((d, i) => {
      const e = expected[i];
      expect(e.scores.length).toBeGreaterThan(50); // the reference was made to have detections to compare
      expect(d.scores.shape).toEqual([e.scores.length]);
      const boxes = d.boxes.toArray() as number[][];
      const scores = d.scores.toArray() as number[];
      const labels = d.labels.toArray() as number[];
      let boxDiff = 0;
      let scoreDiff = 0;
      scores.forEach((s, j) => {
        scoreDiff = Math.max(scoreDiff, Math.abs(s - e.scores[j]));
        boxes[j].forEach((b, c) => (boxDiff = Math.max(boxDiff, Math.abs(b - e.boxes[j][c]))));
      });
      expect(labels).toEqual(e.labels);
      expect(scoreDiff).toBeLessThan(1e-4);
      expect(boxDiff).toBeLessThan(1e-3);
    });
  });
});
