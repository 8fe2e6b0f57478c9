// fit trains a detection model: a real Faster R-CNN ResNet-50 FPN (small
// images, few proposals) on drawn PNG images with known boxes, through
// data.detection's loader. The per-step losses equal a plain hand-written
// loop's (torchvision's reference loop: sum of the loss dict, SGD), seeded the
// same; the epoch's mAP equals evaluateDetections on the trained model's
// detections; models.load takes arch 'fasterrcnn_resnet50_fpn'.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { torch, io, models, optim, data, metrics, fit, clipGradNorm, type Tensor, type TrainEvent } from 'finetorch';

// fit's documented torch seed of a step (seed, epoch, batch), so the samplers draw alike
const stepSeed = (seed: number, epoch: number, batch: number) => ((seed * 1000 + epoch) * 100_003 + batch) % 2 ** 52;

const OPTIONS = {
  numClasses: 3,
  minSize: 96,
  maxSize: 128,
  trainableBackboneLayers: 1,
  rpnPreNmsTopNTrain: 200,
  rpnPostNmsTopNTrain: 50,
  rpnBatchSizePerImage: 64,
  boxBatchSizePerImage: 32,
  rpnPreNmsTopNTest: 100,
  rpnPostNmsTopNTest: 50,
  boxScoreThresh: 0.01,
};
const W = 96;
const H = 80;
// one or two filled rectangles per image: [x1, y1, x2, y2], label
const SCENES: Array<Array<[number[], number]>> = [
  [[[10, 12, 50, 60], 1]],
  [
    [[40, 8, 90, 40], 2],
    [[5, 45, 35, 75], 1],
  ],
  [[[20, 20, 70, 70], 2]],
  [
    [[0, 0, 30, 30], 1],
    [[50, 30, 95, 78], 2],
  ],
];

let dir: string;
let loader: InstanceType<typeof data.detection.DetectionLoader>;
let model: InstanceType<typeof models.FasterRCNN>;

async function drawScenes(): Promise<Array<{ path: string; width: number; height: number; boxes: number[][]; labels: number[]; id: number }>> {
  return Promise.all(
    SCENES.map(async (objects, i) => {
      const pixels = Buffer.alloc(W * H * 3, 40);
      for (const [[x1, y1, x2, y2], label] of objects)
        for (let y = y1; y < y2; y++) for (let x = x1; x < x2; x++) pixels.set(label === 1 ? [220, 60, 60] : [60, 200, 90], (y * W + x) * 3);
      const path = join(dir, `scene${i}.png`);
      await sharp(pixels, { raw: { width: W, height: H, channels: 3 } })
        .png()
        .toFile(path);
      return { path, width: W, height: H, boxes: objects.map((o) => o[0]), labels: objects.map((o) => o[1]), id: i };
    }),
  );
}

const sumOf = (r: Record<string, number>) => Object.values(r).reduce((a, b) => a + b, 0);

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'ft-detfit-'));
  const dataset = new data.detection.DetectionDataset(await drawScenes());
  loader = new data.detection.DetectionLoader(dataset, { batchSize: 2, shuffle: true, seed: 3 });
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('fit with a detection model', () => {
  it("trains on the model's summed losses, equal step by step to a hand-written loop, and validates with COCO mAP", async () => {
    torch.manualSeed(0);
    model = models.fasterrcnnResnet50Fpn(OPTIONS);
    const twin = models.fasterrcnnResnet50Fpn(OPTIONS);
    twin.loadStateDict(model.stateDict());
    const events: TrainEvent[] = [];
    const result = await fit({
      model,
      train: loader,
      val: loader,
      optimizer: new optim.SGD(
        model.parameters().filter((p) => p.requiresGrad),
        { lr: 0.005, momentum: 0.9 },
      ),
      epochs: 1,
      clipGradNorm: 10,
      seed: 7,
      onEvent: (e) => events.push(e),
    });
    const steps = events.filter((e) => e.type === 'step');
    expect(steps.length).toBe(2);
    for (const s of steps) {
      expect(Object.keys(s.losses!).sort()).toEqual(['loss_box_reg', 'loss_classifier', 'loss_objectness', 'loss_rpn_box_reg']);
      for (const v of Object.values(s.losses!)) expect(Number.isFinite(v)).toBe(true);
      expect(s.loss).toBeCloseTo(sumOf(s.losses!), 5);
    }

    // the same by hand: seeded samplers, loss = sum of the dict, clipped gradients, SGD
    twin.train();
    const optimizer = new optim.SGD(
      twin.parameters().filter((p) => p.requiresGrad),
      { lr: 0.005, momentum: 0.9 },
    );
    const handLosses: Record<string, number>[] = [];
    let batch = 0;
    for await (const b of loader.batches(0)) {
      optimizer.zeroGrad();
      torch.manualSeed(stepSeed(7, 0, batch++));
      const losses = twin.forward(b.images, b.targets) as Record<string, Tensor>;
      const total = Object.values(losses).reduce((a, l) => a.add(l));
      handLosses.push(Object.fromEntries(Object.entries(losses).map(([k, v]) => [k, v.item() as number])));
      total.backward();
      clipGradNorm(twin.parameters(), 10);
      optimizer.step();
    }
    steps.forEach((s, i) => {
      for (const [k, v] of Object.entries(handLosses[i])) expect(Math.abs(s.losses![k] - v), `step ${i} ${k}`).toBeLessThan(1e-6 * Math.max(1, Math.abs(v)));
    });

    // the epoch record: mean losses and the mAP of the trained model's detections
    const record = result.history[0];
    const epochEvent = events.find((e) => e.type === 'epoch');
    expect(epochEvent?.type === 'epoch' && epochEvent.detection).toEqual(record.detection);
    expect(result.best?.metric).toBe('map');
    model.eval();
    const predictions = [];
    const truths = [];
    for await (const b of loader.batches(0)) {
      const dets = model.forward(b.images) as Array<{ boxes: Tensor; scores: Tensor; labels: Tensor }>;
      predictions.push(...dets);
      truths.push(...b.targets);
    }
    const expected = metrics.evaluateDetections(predictions, truths);
    for (const k of ['map', 'map50', 'map75'] as const) expect(record.detection![k], k).toBeCloseTo(expected[k], 10);
    expect(record.detection!.map).toBeGreaterThanOrEqual(0);
    expect(Object.keys(record.losses!).length).toBe(4);
    expect(record.trainLoss).toBeCloseTo((sumOf(steps[0].losses!) + sumOf(steps[1].losses!)) / 2, 5);

    // models.load with the detection arch and another class count: every weight but the new box predictor's is the checkpoint's
    const path = join(dir, 'detector.safetensors');
    io.save(model.stateDict(), path);
    const swapped = models.load(path, { arch: 'fasterrcnn_resnet50_fpn', numClasses: 5 });
    const a = model.stateDict();
    const b = swapped.stateDict();
    expect(Object.keys(b).sort()).toEqual(Object.keys(a).sort());
    for (const k of Object.keys(a))
      if (k.startsWith('roi_heads.box_predictor.')) expect(b[k].shape[0], k).toBe(k.includes('cls_score') ? 5 : 20);
      else expect(b[k].eq(a[k]).all().item(), k).toBe(true);
    expect(() => models.load(path, { arch: 'fasterrcnn_resnet50_fpn', width: 8 })).toThrow(/width do not apply/);
  }, 120000);

  it('runs callbacks: a stop in onStepEnd ends training after that step, the epoch closed as usual', async () => {
    const hooks: string[] = [];
    const events: TrainEvent[] = [];
    const result = await fit({
      model,
      train: loader,
      optimizer: new optim.SGD(
        model.parameters().filter((p) => p.requiresGrad),
        { lr: 0.001 },
      ),
      epochs: 2,
      onEvent: (e) => events.push(e),
      callbacks: [
        {
          onTrainBegin: () => void hooks.push('trainBegin'),
          onEpochBegin: (ctx) => void hooks.push(`epochBegin ${ctx.epoch}`),
          onStepEnd: (ctx) => {
            hooks.push(`stepEnd ${ctx.step} loss ${Number.isFinite(ctx.loss)}`);
            ctx.stop('enough');
          },
          onEpochEnd: (ctx) => void hooks.push(`epochEnd ${ctx.epoch} ${ctx.history.length}`),
          onTrainEnd: () => void hooks.push('trainEnd'),
        },
      ],
    });
    expect(hooks).toEqual(['trainBegin', 'epochBegin 0', 'stepEnd 1 loss true', 'epochEnd 0 1', 'trainEnd']);
    expect(events.filter((e) => e.type === 'step').length).toBe(1);
    expect(result.stopped).toEqual({ epoch: 0, step: 1, reason: 'enough' });
    expect(result.history.length).toBe(1);
    expect(result.best?.metric).toBe('loss');
  });

  it('refuses options it does not handle yet, by name', async () => {
    const optimizer = new optim.SGD(model.parameters(), { lr: 0.01 });
    await expect(fit({ model, train: loader, optimizer, epochs: 1, ema: { decay: 0.99 } })).rejects.toThrow(/does not take ema/);
    await expect(fit({ model, train: loader, optimizer, epochs: 1, monitor: 'map' })).rejects.toThrow(/needs validation data/);
  });
});
