// fit's checkpoints for a detection model (a real Faster R-CNN ResNet-50 FPN
// on small drawn PNG images): checkpointDir writes best/ (by mAP) and last/
// as the classification loop does; 1 epoch, then resume for a 2nd, and a run
// stopped by the signal inside an epoch, then resumed, both equal a straight
// 2-epoch run step by step (every loss) and in the final weights; a
// classification checkpoint and a detection one do not resume into each other.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { torch, io, nn, models, optim, data, fit, TensorLoader, LRScheduler, type Tensor, type TrainEvent } from 'finetorch';

const OPTIONS = {
  numClasses: 3,
  minSize: 64,
  maxSize: 96,
  trainableBackboneLayers: 0,
  rpnPreNmsTopNTrain: 100,
  rpnPostNmsTopNTrain: 30,
  rpnBatchSizePerImage: 32,
  boxBatchSizePerImage: 16,
  rpnPreNmsTopNTest: 50,
  rpnPostNmsTopNTest: 30,
  boxScoreThresh: 0.01,
};
const W = 72;
const H = 60;
// filled rectangles per image: [x1, y1, x2, y2], label
const SCENES: Array<Array<[number[], number]>> = [
  [[[8, 9, 38, 45], 1]],
  [
    [[30, 6, 68, 30], 2],
    [[4, 34, 26, 56], 1],
  ],
  [[[15, 15, 52, 52], 2]],
  [
    [[0, 0, 22, 22], 1],
    [[38, 22, 71, 58], 2],
  ],
];

let dir: string;
let loader: InstanceType<typeof data.detection.DetectionLoader>;
let model: InstanceType<typeof models.FasterRCNN>;
let init: Record<string, Tensor>;

async function drawScenes() {
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

/** One detection fit from the model's initial weights (resume loads its own), SGD with momentum and a schedule, so all three must be restored. */
async function run(epochs: number, checkpointDir: string, extra: { resumeFrom?: string; signal?: AbortSignal; onEvent?: (e: TrainEvent) => void } = {}) {
  model.loadStateDict(init);
  const optimizer = new optim.SGD(
    model.parameters().filter((p) => p.requiresGrad),
    { lr: 0.01, momentum: 0.9 },
  );
  const scheduler = new LRScheduler(optimizer, { kind: 'cosine', totalSteps: 4, warmupSteps: 1 });
  const events: TrainEvent[] = [];
  const result = await fit({
    model,
    train: loader,
    val: loader,
    optimizer,
    scheduler,
    epochs,
    seed: 11,
    checkpointDir,
    resumeFrom: extra.resumeFrom,
    signal: extra.signal,
    onEvent: (e) => {
      events.push(e);
      extra.onEvent?.(e);
    },
  });
  return { result, events, steps: events.flatMap((e) => (e.type === 'step' ? [e] : [])) };
}

const trainerJson = (folder: string) => JSON.parse(readFileSync(join(folder, 'trainer.json'), 'utf8'));

function expectSameWeights(a: string, b: string): void {
  const x = io.load(a);
  const y = io.load(b);
  expect(Object.keys(y).sort()).toEqual(Object.keys(x).sort());
  for (const k of Object.keys(x)) expect(y[k].eq(x[k]).all().item(), k).toBe(true);
}

let straight: Awaited<ReturnType<typeof run>>;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'ft-detckpt-'));
  loader = new data.detection.DetectionLoader(new data.detection.DetectionDataset(await drawScenes()), { batchSize: 2, shuffle: true, seed: 3 });
  torch.manualSeed(0);
  model = models.fasterrcnnResnet50Fpn(OPTIONS);
  // a copy: stateDict's tensors share the parameters' storage, which training changes
  init = torch.noGrad(() => Object.fromEntries(Object.entries(model.stateDict()).map(([k, t]) => [k, t.clone()])));
  straight = await run(2, join(dir, 'straight'));
}, 60000);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('fit checkpoints a detection model', () => {
  it("writes best/ (by mAP) and last/ in fit's layout: model, optimizer, trainer.json with the detection history", () => {
    const root = join(dir, 'straight');
    const { result, steps } = straight;
    expect(steps.length).toBe(4);
    expect(result.best?.metric).toBe('map');
    for (const name of ['best', 'last'])
      for (const file of ['model.safetensors', 'optimizer.safetensors', 'trainer.json']) expect(existsSync(join(root, name, file)), `${name}/${file}`).toBe(true);
    const last = trainerJson(join(root, 'last'));
    expect(last).toMatchObject({ task: 'detection', epoch: 1, step: 4, seed: 11, schedulerStep: 4, best: result.best });
    expect(last.position).toBeUndefined();
    // the history read back keeps each epoch's losses and COCO scores
    expect(last.history).toEqual(JSON.parse(JSON.stringify(result.history)));
    expect(Object.keys(last.history[1].losses).sort()).toEqual(['loss_box_reg', 'loss_classifier', 'loss_objectness', 'loss_rpn_box_reg']);
    // best/ holds the best epoch by mAP, and its epoch's record says so
    const maps = result.history.map((r) => r.detection!.map);
    expect(result.best!.value).toBe(Math.max(...maps));
    expect(trainerJson(join(root, 'best')).epoch).toBe(result.best!.epoch);
    expect(result.modelEpoch).toBe(result.best!.epoch); // restoreBest: the model ends holding best/'s weights
  });

  it('1 epoch, then resume for a 2nd: the same losses at every step and the same final weights as 2 epochs straight', async () => {
    const root = join(dir, 'split');
    const first = await run(1, root);
    const second = await run(2, root, { resumeFrom: root });
    expect(second.events[0]).toMatchObject({ type: 'resumed', epoch: 1, batch: 0, step: 2, path: join(root, 'last') });
    const steps = [...first.steps, ...second.steps];
    expect(steps.map((s) => s.step)).toEqual([0, 1, 2, 3]);
    steps.forEach((s, i) => {
      expect(s.lrs, `step ${i} lrs`).toEqual(straight.steps[i].lrs);
      for (const [k, v] of Object.entries(straight.steps[i].losses!)) expect(s.losses![k], `step ${i} ${k}`).toBe(v);
    });
    expect(second.result.history).toEqual(straight.result.history);
    expectSameWeights(join(dir, 'straight', 'last', 'model.safetensors'), join(root, 'last', 'model.safetensors'));
    expectSameWeights(join(dir, 'straight', 'last', 'optimizer.safetensors'), join(root, 'last', 'optimizer.safetensors'));
  }, 60000);

  it('the signal inside an epoch writes last/ at that step and stops; resuming continues mid-epoch to the straight run', async () => {
    const root = join(dir, 'signal');
    const controller = new AbortController();
    const stopped = await run(2, root, { signal: controller.signal, onEvent: (e) => e.type === 'step' && e.step === 2 && controller.abort() });
    expect(stopped.result.interrupted).toBe(true);
    expect(stopped.events.at(-1)).toEqual({ type: 'interrupted', epoch: 1, batch: 1, step: 3, path: join(root, 'last') });
    const last = trainerJson(join(root, 'last'));
    expect(last).toMatchObject({ task: 'detection', epoch: 0, step: 3, position: { epoch: 1, batch: 1, seen: 2 } });
    const resumed = await run(2, root, { resumeFrom: join(root, 'last') });
    expect(resumed.events[0]).toMatchObject({ type: 'resumed', epoch: 1, batch: 1, step: 3 });
    const steps = [...stopped.steps, ...resumed.steps];
    expect(steps.length).toBe(4);
    steps.forEach((s, i) => {
      for (const [k, v] of Object.entries(straight.steps[i].losses!)) expect(s.losses![k], `step ${i} ${k}`).toBe(v);
    });
    // the epoch's means count the batch done before the stop
    expect(resumed.result.history).toEqual(straight.result.history);
    expectSameWeights(join(dir, 'straight', 'last', 'model.safetensors'), join(root, 'last', 'model.safetensors'));
  }, 60000);

  it('a classification checkpoint does not resume into a detector, nor a detection one into a classifier: the error names trainer.json', async () => {
    const classifier = new nn.Sequential(new nn.Linear(4, 3));
    const x = torch.randn([8, 4]);
    const y = torch.tensor([0, 1, 2, 0, 1, 2, 0, 1]).long();
    const classification = join(dir, 'classification');
    await fit({
      model: classifier,
      optimizer: new optim.SGD(classifier.parameters(), { lr: 0.1 }),
      train: new TensorLoader(x, y, { batchSize: 4 }),
      epochs: 1,
      checkpointDir: classification,
    });
    const detectorOptimizer = new optim.SGD(model.parameters(), { lr: 0.01 });
    await expect(fit({ model, train: loader, optimizer: detectorOptimizer, epochs: 2, resumeFrom: classification })).rejects.toThrow(
      `${join(classification, 'last', 'trainer.json')}: is not a detection checkpoint`,
    );
    await expect(
      fit({
        model: classifier,
        optimizer: new optim.SGD(classifier.parameters(), { lr: 0.1 }),
        train: new TensorLoader(x, y, { batchSize: 4 }),
        epochs: 2,
        resumeFrom: join(dir, 'straight'),
      }),
    ).rejects.toThrow(`${join(dir, 'straight', 'last', 'trainer.json')}: is a detection checkpoint`);
  });

  it('keeps refusing what it does not support, by name', async () => {
    const optimizer = new optim.SGD(model.parameters(), { lr: 0.01 });
    await expect(fit({ model, train: loader, optimizer, epochs: 1, ema: { decay: 0.99 } })).rejects.toThrow(/does not take ema/);
    await expect(fit({ model, train: loader, optimizer, epochs: 1, precision: 'bf16', device: 'cpu' })).rejects.toThrow(/does not take precision, device/);
  });
});
