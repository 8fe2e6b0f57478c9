// Faster R-CNN ResNet-50 FPN against torchvision 0.14: the same weights (a
// seeded torchvision model saved as .pth by make_faster_rcnn_refs.py, run with
// Debian's /usr/bin/python3) and the same images give torchvision's eval
// detections: boxes within 1e-3, scores within 1e-4, labels equal.
import { describe, it, expect, beforeAll } from 'vitest';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { torch, io, models, finetune, type Tensor } from 'finetorch';
import { cacheDir, root } from '../../reference';

const dir = join(cacheDir, 'detection-model');
const OPTIONS = { numClasses: 5, minSize: 128, maxSize: 192, rpnPreNmsTopNTest: 200, rpnPostNmsTopNTest: 100, boxScoreThresh: 0.01, boxDetectionsPerImg: 300 };
type Dets = { boxes: number[][]; scores: number[]; labels: number[] };
let images: Tensor[] = [];
let expected: Dets[] = [];
let model: InstanceType<typeof models.FasterRCNN>;

beforeAll(() => {
  if (!['model.pth', 'images.json', 'eval.json', 'train.json'].every((f) => existsSync(join(dir, f)))) {
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

describe('fasterrcnnResnet50Fpn in train mode', () => {
  type TrainRef = {
    targets: Array<{ boxes: number[][]; labels: number[] }>;
    losses: Record<string, number>;
    gradNorms: Record<string, number>;
    lossesWithEmptyImage: Record<string, number>;
  };
  it("gives torchvision's four losses and gradients (samplers taking every anchor and proposal)", () => {
    const ref = JSON.parse(readFileSync(join(dir, 'train.json'), 'utf8')) as TrainRef;
    const trainModel = models.fasterrcnnResnet50Fpn({
      ...OPTIONS,
      rpnPreNmsTopNTrain: 200,
      rpnPostNmsTopNTrain: 100,
      rpnBatchSizePerImage: 1000000,
      boxBatchSizePerImage: 1000000,
    });
    trainModel.loadStateDict(io.load(join(dir, 'model.pth')));
    trainModel.train();
    const targets = ref.targets.map((t) => ({ boxes: torch.tensor(t.boxes, { dtype: 'float32' }), labels: torch.tensor(t.labels, { dtype: 'int64' }) }));
    const losses = trainModel.forward(images, targets) as Record<string, Tensor>;
    expect(Object.keys(losses).sort()).toEqual(Object.keys(ref.losses).sort());
    for (const [k, v] of Object.entries(ref.losses)) expect(Math.abs((losses[k].item() as number) - v), k).toBeLessThan(1e-5 * Math.max(1, Math.abs(v)));
    const total = Object.values(losses).reduce((a, b) => a.add(b));
    total.backward();
    const params = Object.fromEntries(trainModel.namedParameters());
    for (const [name, norm] of Object.entries(ref.gradNorms))
      expect(Math.abs((params[name].grad?.norm().item() as number) - norm), name).toBeLessThan(1e-3 * norm);
    // frozen by trainableBackboneLayers 3, as torchvision: conv1 and layer1 have no gradient
    expect(params['backbone.body.conv1.weight'].requiresGrad).toBe(false);
    expect(params['backbone.body.layer1.0.conv1.weight'].requiresGrad).toBe(false);
    expect(params['backbone.body.layer2.0.conv1.weight'].requiresGrad).toBe(true);
    // the second image without objects: all its anchors and proposals are background
    const empty = torch.noGrad(
      () => trainModel.forward(images, [targets[0], { boxes: torch.zeros([0, 4]), labels: torch.zeros([0], { dtype: 'int64' }) }]) as Record<string, Tensor>,
    );
    for (const [k, v] of Object.entries(ref.lossesWithEmptyImage))
      expect(Math.abs((empty[k].item() as number) - v), `${k} (empty image)`).toBeLessThan(1e-5 * Math.max(1, Math.abs(v)));
    trainModel.dispose();
  });
});

describe('fasterrcnnResnet50Fpn for fine-tuning', () => {
  it('declares its blocks, swaps its box predictor, initialises as torchvision and drops num_batches_tracked', () => {
    const m = models.fasterrcnnResnet50Fpn({ ...OPTIONS, trainableBackboneLayers: 0 });
    expect(m.blockPaths().map((b) => b.name)).toEqual(['stem', 'layer1', 'layer2', 'layer3', 'layer4', 'fpn', 'rpn', 'roi_heads', 'head']);
    expect(m.blocks().every((b) => b.modules.length === b.paths.length)).toBe(true);
    expect(m.head().path).toBe('roi_heads.box_predictor');
    // trainableBackboneLayers 0: the whole body is frozen, the FPN trains
    const params = Object.fromEntries(m.namedParameters());
    expect(Object.entries(params).filter(([k, p]) => k.startsWith('backbone.body.') && p.requiresGrad)).toEqual([]);
    expect(params['backbone.fpn.inner_blocks.0.0.weight'].requiresGrad).toBe(true);
    // RPN head weights N(0, 0.01); FPN kaiming_uniform(a=1): |w| <= sqrt(3 / fan_in), zero biases
    const std = params['rpn.head.conv.0.0.weight'].std().item() as number;
    expect(std).toBeGreaterThan(0.0095);
    expect(std).toBeLessThan(0.0105);
    const inner = params['backbone.fpn.inner_blocks.3.0.weight'];
    expect(inner.abs().max().item()).toBeLessThanOrEqual(Math.sqrt(3 / 2048));
    expect(inner.abs().max().item()).toBeGreaterThan(0.9 * Math.sqrt(3 / 2048));
    expect(params['backbone.fpn.layer_blocks.0.0.bias'].abs().max().item()).toBe(0);
    // torchvision's BatchNorm2d variant has num_batches_tracked in the body: dropped, as FrozenBatchNorm2d does
    const sd = io.load(join(dir, 'model.pth'));
    sd['backbone.body.bn1.num_batches_tracked'] = torch.tensor([7], { dtype: 'int64' }).reshape([]);
    const loaded = m.loadStateDict(sd);
    expect(loaded.unexpectedKeys).toEqual([]);
    // the recipes work on the declared blocks: freezing stem..fpn leaves rpn, roi_heads and head to the groups
    const frozen = finetune.freeze(m, { blocks: 6 });
    expect(frozen.length).toBeGreaterThan(0);
    expect(frozen.every((n) => n.startsWith('backbone.'))).toBe(true);
    const groups = finetune.paramGroups(m, { bottomLr: 1e-4, topLr: 1e-2 });
    expect([...new Set(groups.map((g) => g.block))]).toEqual(['rpn', 'roi_heads', 'head']);
    expect(groups.find((g) => g.block === 'head')?.lr).toBeCloseTo(1e-2, 10);
    // finetune.swapHead uses the model's own (a predictor of two Linears, not one)
    expect(finetune.swapHead(m, 4).constructor.name).toBe('FastRCNNPredictor');
    expect(m.archOptions().numClasses).toBe(4);
    m.swapHead(3);
    expect(m.stateDict()['roi_heads.box_predictor.cls_score.weight'].shape).toEqual([3, 1024]);
    expect(m.stateDict()['roi_heads.box_predictor.bbox_pred.weight'].shape).toEqual([12, 1024]);
    expect(m.archOptions().numClasses).toBe(3);
    expect(() => m.swapHead(1)).toThrow(/numClasses must be an integer of at least 2/);
    m.eval();
    const [d] = m.forward([images[0]]) as Array<{ boxes: Tensor; scores: Tensor; labels: Tensor }>;
    const labels = d.labels.toArray() as number[];
    expect(labels.every((l) => l === 1 || l === 2)).toBe(true);
    // the backbone and RPN are the loaded ones: the same proposals feed the new head, boxes inside the image
    expect(d.boxes.shape[1]).toBe(4);
    if (d.boxes.shape[0] > 0) expect(d.boxes.max().item()).toBeLessThanOrEqual(140);
    m.dispose();
  });
});

describe('models.loadFasterRcnn', () => {
  it("loads torchvision's .pth with its class count, or swaps the predictor for another", () => {
    const same = models.loadFasterRcnn(join(dir, 'model.pth'), { minSize: 128, maxSize: 192 });
    expect(same.settings.numClasses).toBe(5);
    const sd = io.load(join(dir, 'model.pth'));
    const ours = same.stateDict();
    for (const k of ['backbone.body.layer3.2.bn2.running_var', 'rpn.head.cls_logits.weight', 'roi_heads.box_predictor.bbox_pred.weight'])
      expect(ours[k].sub(sd[k]).abs().max().item(), k).toBe(0);
    same.dispose();
    const swapped = models.loadFasterRcnn(join(dir, 'model.pth'), { numClasses: 3 });
    expect(swapped.stateDict()['roi_heads.box_predictor.cls_score.weight'].shape).toEqual([3, 1024]);
    expect(swapped.stateDict()['roi_heads.box_head.fc7.weight'].sub(sd['roi_heads.box_head.fc7.weight']).abs().max().item()).toBe(0);
    swapped.dispose();
    expect(() => models.loadFasterRcnn(join(dir, 'images.json'))).toThrow(/images\.json/);
  });
});

describe('fasterrcnnResnet50Fpn samplers and errors', () => {
  it('samples anchors and proposals reproducibly from torch.manualSeed', () => {
    const ref = JSON.parse(readFileSync(join(dir, 'train.json'), 'utf8')) as { targets: Array<{ boxes: number[][]; labels: number[] }> };
    const m = models.fasterrcnnResnet50Fpn({
      ...OPTIONS,
      rpnPreNmsTopNTrain: 200,
      rpnPostNmsTopNTrain: 100,
      rpnBatchSizePerImage: 64,
      boxBatchSizePerImage: 32,
    });
    m.loadStateDict(io.load(join(dir, 'model.pth')));
    m.train();
    const targets = ref.targets.map((t) => ({ boxes: torch.tensor(t.boxes, { dtype: 'float32' }), labels: torch.tensor(t.labels, { dtype: 'int64' }) }));
    const run = (seed: number) =>
      torch.noGrad(() => {
        torch.manualSeed(seed);
        return Object.values(m.forward(images, targets) as Record<string, Tensor>).map((t) => t.item() as number);
      });
    const a = run(1);
    expect(run(1)).toEqual(a);
    expect(run(2)).not.toEqual(a);
    m.dispose();
  });

  it('gives empty detections, not an error, when no proposal survives (rpnScoreThresh above every score)', () => {
    const m = models.fasterrcnnResnet50Fpn({ ...OPTIONS, rpnScoreThresh: 1.1 });
    m.eval();
    const [d] = torch.noGrad(() => m.forward([images[0]]) as Array<{ boxes: Tensor; scores: Tensor; labels: Tensor }>);
    expect([d.boxes.shape, d.scores.shape, d.labels.shape]).toEqual([[0, 4], [0], [0]]);
    m.dispose();
  });

  it('names bad options and targets', () => {
    expect(() => models.fasterrcnnResnet50Fpn({ numClasses: 1 })).toThrow(/numClasses must be at least 2/);
    expect(() => models.fasterrcnnResnet50Fpn({ minSize: 1.5 })).toThrow(/minSize must be a non-negative integer/);
    expect(() => models.fasterrcnnResnet50Fpn({ trainableBackboneLayers: 6 })).toThrow(/trainableBackboneLayers must be in 0..5/);
    expect(() => models.fasterrcnnResnet50Fpn({ boxScoreTresh: 0.1 } as never)).toThrow(/unknown option 'boxScoreTresh'/);
    model.train();
    try {
      expect(() => model.forward(images)).toThrow(/targets must be given/);
      const boxes = torch.tensor([[10, 10, 5, 20]], { dtype: 'float32' });
      const labels = torch.tensor([1], { dtype: 'int64' });
      const ok = { boxes: torch.tensor([[1, 1, 5, 5]], { dtype: 'float32' }), labels };
      expect(() => model.forward(images, [ok, { boxes, labels }])).toThrow(/targets\[1\]\.boxes\[0\] has no width or height/);
      expect(() => model.forward(images, [ok, { boxes: ok.boxes, labels: torch.tensor([5], { dtype: 'int64' }) }])).toThrow(
        /targets\[1\]\.labels must be in 1\.\.4/,
      );
      expect(() => model.forward(images, [ok])).toThrow(/one per image \(2\)/);
      expect(() => model.forward([torch.zeros([1, 8, 8])])).toThrow(/targets must be given/);
    } finally {
      model.eval();
    }
    expect(() => model.forward([torch.zeros([1, 8, 8])])).toThrow(/images\[0\] must be a float32 \[3, H, W\] tensor, got float32 \[1,8,8\]/);
    expect(() => model.forward([images[0], torch.zeros([3, 0, 8])])).toThrow(/images\[1\] is empty \(0x8 pixels\)/);
  });
});
