// pretrain() of kind 'reconstruction' from code, on real data: the demo's
// Fashion-MNIST ResNet (trained on clothes) adapted on unlabelled footwear
// and bags. The config's errors name their fields; the masks and the loss
// follow their definitions (checked with plain arithmetic); the output is the
// backbone without the decoder under the checkpoint's own names, loading with
// models.load for a new number of classes; a run stopped by its signal and
// resumed ends bitwise equal to an uninterrupted one; `steps` counts steps.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { torch, io, models, pretrain, parsePretrainConfig, RecipeError, DataError, ConfigError, type PretrainEvent, type Tensor } from 'finetorch';
import { patchMask, reconstructionLoss } from '../../dist/pretrain/index.js';
import { pngFolder } from '../cli/cli-helpers';

const root = resolve(__dirname, '..', '..');
const CHECKPOINT = join(root, 'assets', 'fashion-resnet18w16-c0-4.safetensors');
let dir: string;

beforeAll(() => {
  torch.setNumThreads(1);
  dir = mkdtempSync(join(tmpdir(), 'ft-pretrain-img-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const config = (extra: Record<string, unknown> = {}) => ({
  kind: 'reconstruction',
  model: { checkpoint: CHECKPOINT },
  data: { kind: 'fashionMnist', classes: ['Sandal', 'Sneaker', 'Bag', 'Ankle boot'], perClass: 12, normalize: { mean: [0.286], std: [0.353] }, val: 0.25 },
  decoder: { hidden: 32 },
  corruption: { patchSize: 7, maskRatio: 0.5 },
  epochs: 2,
  batchSize: 8,
  lr: 1e-3,
  seed: 5,
  ...extra,
});

const values = (t: Tensor) => Array.from(t.dataSync() as Float32Array);
const fileBytes = (f: string) => readFileSync(f);

describe('config', () => {
  const issuesOf = (c: unknown) => {
    try {
      parsePretrainConfig(c);
    } catch (err) {
      expect(err).toBeInstanceOf(RecipeError);
      return (err as RecipeError).issues.map((i) => `${i.path}: ${i.message}`);
    }
    throw new Error('expected the config to be refused');
  };

  it('names every bad field', () => {
    expect(issuesOf({ ...config(), kind: 'autoencoder' })).toEqual(["pretrain.kind: expected 'mlm' or 'reconstruction'"]);
    const { lr: _lr, ...noLr } = config();
    expect(issuesOf(noLr)[0]).toMatch(/^pretrain\.lr: /);
    expect(issuesOf(config({ corruption: { maskRatio: 1.5 } }))[0]).toMatch(/^pretrain\.corruption\.maskRatio: .*<1/);
    expect(issuesOf(config({ decoder: { hidden: 32, layers: 3 } }))).toEqual(['pretrain.decoder.layers: unknown field']);
    expect(issuesOf(config({ data: { kind: 'fashionMnist', perClass: 0 } }))[0]).toMatch(/^pretrain\.data\.perClass: /);
    expect(issuesOf(config({ steps: 10 }))).toEqual(['pretrain.epochs: give epochs or steps (one of them)']);
    const { epochs: _e, ...neither } = config();
    expect(issuesOf(neither)).toEqual(['pretrain.epochs: give epochs or steps (one of them)']);
    expect(issuesOf(JSON.parse('{"kind":"reconstruction","__proto__":{"x":1}}'))[0]).toMatch(/^pretrain\.__proto__: .*not allowed/);
  });

  it('refuses what only shows when the run starts, naming the field', async () => {
    const run = (c: Record<string, unknown>) => pretrain(c, { out: join(dir, 'refused'), force: true });
    await expect(run(config({ model: { checkpoint: join(dir, 'nope.safetensors') } }))).rejects.toThrow(/pretrain\.model\.checkpoint.*does not exist/);
    await expect(run(config({ data: { kind: 'fashionMnist', channels: 3, classes: [5] } }))).rejects.toThrow(
      /pretrain\.data\.channels.*3 channel\(s\), the model takes 1/,
    );
    await expect(run(config({ data: { kind: 'imageFolder', root: join(dir, 'missing'), channels: 1 } }))).rejects.toBeInstanceOf(DataError);
    await expect(run(config({ data: { kind: 'fashionMnist', classes: ['Sneaker', 'Boot'] } }))).rejects.toThrow(/pretrain\.data\.classes\.1/);
    await expect(run(config({ corruption: { patchSize: 40 } }))).rejects.toBeInstanceOf(ConfigError);
  });
});

describe('masks and loss', () => {
  it('masks round(ratio x patches) whole patches per image, from the seed alone', () => {
    const m = patchMask(3, 28, 28, { patchSize: 7, maskRatio: 0.5, seed: 11 });
    for (let s = 0; s < 3; s++) {
      const img = m.subarray(s * 784, (s + 1) * 784);
      expect(img.reduce((a, b) => a + b, 0)).toBe(8 * 49); // 16 patches of 7x7, half of them
      // every 7x7 patch is all masked or all kept
      for (let r = 0; r < 4; r++)
        for (let c = 0; c < 4; c++) {
          const cells = [];
          for (let y = 0; y < 7; y++) for (let x = 0; x < 7; x++) cells.push(img[(r * 7 + y) * 28 + c * 7 + x]);
          expect(new Set(cells).size).toBe(1);
        }
    }
    expect(patchMask(3, 28, 28, { patchSize: 7, maskRatio: 0.5, seed: 11 })).toEqual(m);
    expect(patchMask(3, 28, 28, { patchSize: 7, maskRatio: 0.5, seed: 12 })).not.toEqual(m);
    // a patch size that does not divide the image: cut squares at the edges, still at least one patch
    const edge = patchMask(1, 10, 10, { patchSize: 4, maskRatio: 0.01, seed: 1 });
    expect(edge.reduce((a, b) => a + b, 0)).toBeGreaterThanOrEqual(4);
  });

  it('is the mean squared error over all pixels, or over the masked ones', () => {
    const out = [0.5, -1, 2, 0, 1, 3];
    const clean = [1, -1, 0, 0, 0, 1];
    const mask = [1, 0, 1, 0, 0, 1];
    const target = torch.tensor([clean, mask]).reshape([1, 2, 1, 2, 3]);
    const output = torch.tensor([out]);
    const sq = out.map((o, i) => (o - clean[i]) ** 2);
    expect(reconstructionLoss('all')(output, target).item()).toBeCloseTo(sq.reduce((a, b) => a + b) / 6, 6);
    expect(reconstructionLoss('masked')(output, target).item()).toBeCloseTo((sq[0] + sq[2] + sq[5]) / 3, 6);
  });
});

describe('pretrain (reconstruction)', () => {
  it('adapts the backbone and writes it without the decoder, loadable for a new number of classes', async () => {
    const out = join(dir, 'adapt');
    const events: PretrainEvent[] = [];
    const r = await pretrain(config(), { out, onEvent: (e) => events.push(e) });
    expect(r.status).toBe('ok');
    expect(readdirSync(out).sort()).toEqual(['backbone.safetensors', 'best', 'last', 'metrics.json', 'pretrain.json']);
    const start = events.find((e) => e.type === 'start')!;
    expect(start).toMatchObject({ kind: 'reconstruction', samples: { train: 36, val: 12 }, batchesPerEpoch: 5, epochs: 2, totalSteps: 10 });
    expect(events.filter((e) => e.type === 'step')).toHaveLength(10);
    // held-out metrics: mean squared errors of normalised pixels, finite and positive
    expect(r.metrics).toMatchObject({ samples: 12 });
    const m = r.metrics as { mse: number; maskedMse: number };
    expect(m.mse).toBeGreaterThan(0);
    expect(m.maskedMse).toBeGreaterThan(0);
    expect(JSON.parse(readFileSync(join(out, 'metrics.json'), 'utf8')).val).toEqual(r.metrics);

    // the output: the checkpoint's names less the head, the trained values (last/'s), the architecture in the metadata
    const original = io.load(CHECKPOINT);
    const adapted = io.load(r.output!);
    const trained = io.load(join(out, 'last', 'model.safetensors'));
    expect(Object.keys(adapted).sort()).toEqual(
      Object.keys(original)
        .filter((k) => !k.startsWith('fc.'))
        .sort(),
    );
    expect(Object.keys(trained).filter((k) => k.startsWith('fc.'))).toEqual(['fc.0.weight', 'fc.0.bias', 'fc.2.weight', 'fc.2.bias']);
    expect(trained['fc.2.weight'].shape).toEqual([784, 32]);
    for (const k of Object.keys(adapted)) expect(values(adapted[k]), k).toEqual(values(trained[k]));
    expect(values(adapted['layer4.1.conv2.weight'])).not.toEqual(values(original['layer4.1.conv2.weight']));

    const model = models.load(r.output!, { numClasses: 3 });
    expect(model.arch).toBe('resnet18');
    expect(model.archOptions()).toMatchObject({ width: 16, inChannels: 1, smallStem: true, numClasses: 3 });
    const sd = model.stateDict();
    expect(sd['fc.weight'].shape).toEqual([3, 128]);
    expect(values(sd['layer1.0.conv1.weight'])).toEqual(values(adapted['layer1.0.conv1.weight']));
    const logits = model.forward(torch.zeros([2, 1, 28, 28]));
    expect(logits.shape).toEqual([2, 3]);
  });

  it('resumes exactly: stopped by its signal after 3 steps and resumed, it ends bitwise equal to an uninterrupted run', async () => {
    const straight = join(dir, 'straight');
    const a = await pretrain(config(), { out: straight });
    const stopped = join(dir, 'stopped');
    const controller = new AbortController();
    const first = await pretrain(config(), {
      out: stopped,
      signal: controller.signal,
      onEvent: (e) => {
        if (e.type === 'step' && e.step === 2) controller.abort();
      },
    });
    expect(first.status).toBe('interrupted');
    expect(first.output).toBeNull();
    expect(existsSync(join(stopped, 'backbone.safetensors'))).toBe(false);
    const resumedEvents: PretrainEvent[] = [];
    const b = await pretrain(config(), { resumeFrom: join(stopped, 'last'), onEvent: (e) => resumedEvents.push(e) });
    expect(b.status).toBe('ok');
    expect(resumedEvents.find((e) => e.type === 'resumed')).toMatchObject({ epoch: 0, batch: 3, step: 3 });
    expect(resumedEvents.filter((e) => e.type === 'step')).toHaveLength(7);
    expect(fileBytes(b.output!).equals(fileBytes(a.output!))).toBe(true);
    expect(fileBytes(join(stopped, 'last', 'model.safetensors')).equals(fileBytes(join(straight, 'last', 'model.safetensors')))).toBe(true);
    expect(b.metrics).toEqual(a.metrics);
    // a finished run's folder is not started over by accident
    await expect(pretrain(config(), { out: straight })).rejects.toThrow(/already holds a run; continue it with resumeFrom/);
  });

  it('counts steps, not epochs, when given steps; reads a folder of images', async () => {
    const images = join(dir, 'pngs');
    mkdirSync(images);
    await pngFolder(images, { 5: 'sandals', 7: 'sneakers' }, 10);
    const events: PretrainEvent[] = [];
    const r = await pretrain(
      config({
        epochs: undefined,
        steps: 5,
        batchSize: 6,
        data: { kind: 'imageFolder', root: images, channels: 1, normalize: { mean: [0.286], std: [0.353] }, val: 0.2 },
      }),
      { out: join(dir, 'steps'), onEvent: (e) => events.push(e) },
    );
    expect(r.status).toBe('ok');
    expect(events.find((e) => e.type === 'start')).toMatchObject({ samples: { train: 16, val: 4 }, batchesPerEpoch: 3, epochs: 2, totalSteps: 5 });
    expect(events.filter((e) => e.type === 'step').map((e) => (e as { epoch: number }).epoch)).toEqual([0, 0, 0, 1, 1]);
    expect(r.metrics).toMatchObject({ samples: 4 });
  });
});
