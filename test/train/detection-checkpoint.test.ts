// fit's checkpoints for a detection model (a real Faster R-CNN ResNet-50 FPN
// on small drawn PNG images): checkpointDir writes best/ (by mAP) and last/
// as the classification loop does; 1 epoch, resumed for a 2nd that the signal
// stops after one step, resumed again mid-epoch, equals a straight 2-epoch run
// step by step (every loss, every LR) and in the final weights and optimizer
// state; a classification checkpoint and a detection one do not resume into
// each other.
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
let valLoader: InstanceType<typeof data.detection.DetectionLoader>;
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
async function run(
  epochs: number,
  checkpointDir: string,
  extra: { resumeFrom?: string; signal?: AbortSignal; checkpointEvery?: number; onEvent?: (e: TrainEvent) => void } = {},
) {
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
    val: valLoader,
    optimizer,
    scheduler,
    epochs,
    seed: extra.resumeFrom ? undefined : 11, // a resumed run takes the seed from trainer.json
    device: 'cpu', // the one device a detection fit takes
    checkpointDir,
    saveOptimizerState: false, // best/ without the optimizer (last/ keeps it)
    resumeFrom: extra.resumeFrom,
    checkpointEvery: extra.checkpointEvery,
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
  const scenes = await drawScenes();
  loader = new data.detection.DetectionLoader(new data.detection.DetectionDataset(scenes), { batchSize: 2, shuffle: true, seed: 3 });
  valLoader = new data.detection.DetectionLoader(new data.detection.DetectionDataset(scenes.slice(1, 3)), { batchSize: 2 });
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
    for (const file of ['model.safetensors', 'optimizer.safetensors', 'trainer.json']) expect(existsSync(join(root, 'last', file)), `last/${file}`).toBe(true);
    // saveOptimizerState: false leaves the optimizer out of best/ only
    expect(existsSync(join(root, 'best', 'model.safetensors'))).toBe(true);
    expect(existsSync(join(root, 'best', 'optimizer.safetensors'))).toBe(false);
    expect(trainerJson(join(root, 'best')).optimizerState).toBe(false);
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

  it('1 epoch, resume (stopped by the signal inside the 2nd epoch), resume mid-epoch: every step and the final weights equal 2 epochs straight', async () => {
    const root = join(dir, 'split');
    // epoch 0 alone; checkpointEvery 1 also writes last/ after its first step, holding the position
    const positions: unknown[] = [];
    const first = await run(1, root, {
      checkpointEvery: 1,
      onEvent: (e) => e.type === 'checkpoint' && e.path.endsWith('last') && positions.push(trainerJson(e.path).position ?? null),
    });
    expect(positions).toEqual([{ epoch: 0, batch: 1, lossSum: 2 * first.steps[0].loss, seen: 2, losses: expect.any(Object) }, null]);
    expect(first.result.modelEpoch).toBe(0);
    // resumed at the epoch boundary; the signal after its first step writes last/ there and stops
    const controller = new AbortController();
    const second = await run(2, root, { resumeFrom: root, signal: controller.signal, onEvent: (e) => e.type === 'step' && controller.abort() });
    expect(second.events[0]).toEqual({ type: 'resumed', epoch: 1, batch: 0, step: 2, path: join(root, 'last') });
    expect(second.result.interrupted).toBe(true);
    expect(second.result.modelEpoch).toBeNull();
    expect(second.events.at(-1)).toEqual({ type: 'interrupted', epoch: 1, batch: 1, step: 3, path: join(root, 'last') });
    expect(trainerJson(join(root, 'last'))).toMatchObject({
      task: 'detection',
      epoch: 0,
      step: 3,
      schedulerStep: 3,
      position: { epoch: 1, batch: 1, seen: 2 },
    });
    // resumed inside epoch 1: the loader skips the batch already done
    const third = await run(2, root, { resumeFrom: join(root, 'last') });
    expect(third.events[0]).toMatchObject({ type: 'resumed', epoch: 1, batch: 1, step: 3 });
    const steps = [...first.steps, ...second.steps, ...third.steps];
    expect(steps.map((s) => [s.epoch, s.step, s.batch])).toEqual(straight.steps.map((s) => [s.epoch, s.step, s.batch]));
    steps.forEach((s, i) => {
      expect(s.lrs, `step ${i} lrs`).toEqual(straight.steps[i].lrs);
      for (const [k, v] of Object.entries(straight.steps[i].losses!)) expect(s.losses![k], `step ${i} ${k}`).toBe(v);
    });
    // the 2nd epoch's means count the batch done before the stop; epoch 0's record comes back from trainer.json
    expect(third.result.history).toEqual(straight.result.history);
    expect(third.result.best).toEqual(straight.result.best);
    expectSameWeights(join(dir, 'straight', 'last', 'model.safetensors'), join(root, 'last', 'model.safetensors'));
    expectSameWeights(join(dir, 'straight', 'last', 'optimizer.safetensors'), join(root, 'last', 'optimizer.safetensors'));
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
    await expect(fit({ model, train: loader, optimizer, epochs: 1, precision: 'bf16', distributed: true })).rejects.toThrow(
      /does not take precision, distributed/,
    );
    await expect(fit({ model, train: loader, optimizer, epochs: 1, device: 'cuda' })).rejects.toThrow(/CPU only yet: device "cuda"/);
  });
});
