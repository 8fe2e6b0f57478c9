// The recipe API from code: the builders one by one, checked against the
// data read straight from Debian's IDX files, the checkpoint parsed by hand
// and the formulas the recipe names; then runRecipe end to end, resuming
// after an abort, and loadRun predicting on PNG files.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import {
  torch,
  parseRecipe,
  buildData,
  buildModel,
  buildOptimizer,
  buildLoss,
  runRecipe,
  loadRun,
  recipes,
  ConfigError,
  RecipeError,
  DataError,
  type Recipe,
  type RecipeEvent,
  type Tensor,
} from 'finetorch';
import { fashion, pngFolder } from '../cli/cli-helpers';

const root = resolve(__dirname, '..', '..');
const CHECKPOINT = join(root, 'assets', 'fashion-resnet18w16-c0-4.safetensors');
let dir: string;

beforeAll(() => {
  torch.setNumThreads(1);
  dir = mkdtempSync(join(tmpdir(), 'ft-recipes-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const fashionRecipe = (extra: Record<string, unknown> = {}): Recipe =>
  parseRecipe({
    model: { checkpoint: CHECKPOINT },
    data: { kind: 'fashionMnist', classes: ['Sandal', 'Sneaker', 'Ankle boot'], perClass: 60, testPerClass: 30, val: 0.2 },
    freeze: { blocks: 4 },
    optimizer: { bottomLr: 1e-4, topLr: 1e-2, weightDecay: 0.01 },
    batchSize: 32,
    epochs: 1,
    seed: 3,
    ...extra,
  });

/** The tensors of a .safetensors file, parsed by hand (8-byte header length, JSON header, little-endian float32). */
function readSafetensors(path: string): Record<string, { shape: number[]; data: Float32Array }> {
  const buf = readFileSync(path);
  const n = Number(buf.readBigUInt64LE(0));
  const header = JSON.parse(buf.subarray(8, 8 + n).toString('utf8'));
  const out: Record<string, { shape: number[]; data: Float32Array }> = {};
  for (const [k, v] of Object.entries(header) as Array<[string, { dtype: string; shape: number[]; data_offsets: [number, number] }]>) {
    if (k === '__metadata__' || v.dtype !== 'F32') continue;
    const bytes = buf.subarray(8 + n + v.data_offsets[0], 8 + n + v.data_offsets[1]);
    out[k] = { shape: v.shape, data: new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length)) };
  }
  return out;
}

describe('builders', () => {
  it('buildData: the classes, per-class counts and an 80/20 stratified split of the IDX files', async () => {
    const data = await buildData(fashionRecipe());
    expect(data.classes).toEqual(['Sandal', 'Sneaker', 'Ankle boot']);
    expect(data.sizes).toEqual({ train: 144, val: 36, test: 90 });
    expect(data.trainCounts).toEqual({ Sandal: 48, Sneaker: 48, 'Ankle boot': 48 });
    // the test part is the first 30 test images of each class, in file order: compare pixels with the IDX file
    const { images, labels } = fashion('t10k');
    const first: number[] = [];
    for (let i = 0; i < labels.length && first.length < 30; i++) if (labels[i] === 5) first.push(i);
    const batch = [...(data.parts.test!.batches(0) as Iterable<{ input: Tensor; target: Tensor }>)][0];
    const x = batch.input as Tensor;
    expect(x.shape).toEqual([32, 1, 28, 28]);
    const got = x.select(0, 7).flatten().toArray() as number[];
    const want = Array.from(images.subarray(first[7] * 784, (first[7] + 1) * 784), (v) => v / 255);
    expect(Math.max(...got.map((g, i) => Math.abs(g - want[i])))).toBeLessThan(1e-6);
    expect(batch.target.toArray()).toEqual([...Array(30).fill(0), 1, 1]);
  });

  it("buildModel: the checkpoint's weights below a fresh head for the data's classes", () => {
    const { model, spec, pretrained } = buildModel(fashionRecipe(), 3);
    expect(pretrained).toBe(true);
    expect(spec).toMatchObject({ arch: 'resnet18', options: { numClasses: 3, width: 16, inChannels: 1, smallStem: true } });
    const file = readSafetensors(CHECKPOINT);
    const sd = model.stateDict();
    const w = sd['layer3.1.conv2.weight'];
    expect(w.shape).toEqual(file['layer3.1.conv2.weight'].shape);
    expect(Array.from(w.flatten().toArray() as number[])).toEqual(Array.from(file['layer3.1.conv2.weight'].data));
    expect(sd['fc.weight'].shape).toEqual([3, file['fc.weight'].shape[1]]);
    model.dispose();
  });

  it('buildOptimizer: the first N blocks frozen, LRs spread geometrically bottom..top, no weight decay on 1-D parameters', () => {
    const recipe = fashionRecipe({ freeze: { blocks: 2 }, schedule: { kind: 'cosine', warmupRatio: 0.25 } });
    const { model } = buildModel(recipe, 3);
    const parts = buildOptimizer(recipe, model, 10);
    const frozen = model
      .namedParameters()
      .filter(([, p]) => !p.requiresGrad)
      .map(([n]) => n);
    expect(frozen.every((n) => n.startsWith('conv1.') || n.startsWith('bn1.') || n.startsWith('layer1.'))).toBe(true);
    expect(parts.frozen.sort()).toEqual(frozen.sort());
    // six blocks (stem, layer1..4, head): LR of block i = bottom * (top/bottom)^(i/5); the two frozen ones have no group
    const lr = (i: number) => 1e-4 * (1e-2 / 1e-4) ** (i / 5);
    const byBlock = new Map(parts.groups.map((g) => [g.block, g.lr]));
    expect(byBlock.has('stem')).toBe(false);
    for (const [i, b] of ['layer2', 'layer3', 'layer4', 'head'].entries()) expect(byBlock.get(b)).toBeCloseTo(lr(i + 2), 12);
    for (const g of parts.optimizer.paramGroups) {
      const oneD = g.params.every((p) => p.ndim === 1);
      if (oneD) expect(g.weightDecay).toBe(0);
    }
    // warmup (HF's step/warmupSteps) starts every group at LR 0
    expect(parts.scheduler).toBeDefined();
    expect(parts.optimizer.paramGroups.map((g) => g.lr).every((v) => v === 0)).toBe(true);
    model.dispose();
  });

  it('buildOptimizer: a recipe that does not fit the model is a ConfigError naming the field', () => {
    const recipe = fashionRecipe({ freeze: { blocks: 9 } });
    const { model } = buildModel(recipe, 3);
    let err: unknown;
    try {
      buildOptimizer(recipe, model, 10);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).field).toBe('recipe.freeze.blocks');
    expect((err as ConfigError).message).toMatch(/^recipe\.freeze\.blocks: blocks must be an integer in 0\.\.6/);
    model.dispose();
  });

  it('buildLoss: focal loss with gamma 0 equals cross-entropy, computed by hand', () => {
    const logits = [
      [2.0, -1.0, 0.5],
      [0.1, 0.2, 0.3],
    ];
    const target = [0, 2];
    const byHand =
      target
        .map((t, i) => {
          const row = logits[i];
          const m = Math.max(...row);
          const lse = m + Math.log(row.reduce((s, v) => s + Math.exp(v - m), 0));
          return lse - row[t];
        })
        .reduce((a, b) => a + b) / 2;
    const x = torch.tensor(logits, { dtype: 'float32' });
    const y = torch.tensor(target);
    const focal = (buildLoss(fashionRecipe({ loss: { type: 'focal', gamma: 0 } }), 3) as (l: Tensor, t: Tensor) => Tensor)(x, y);
    expect(focal.item()).toBeCloseTo(byHand, 5);
    // cross-entropy is fit's built-in loss, so fit can run whole steps natively
    expect(buildLoss(fashionRecipe({ loss: { type: 'crossEntropy', labelSmoothing: 0.1 } }), 3)).toMatchObject({ type: 'crossEntropy', labelSmoothing: 0.1 });
  });

  it('parseRecipe and the builders name what is wrong', async () => {
    expect(() => parseRecipe({ data: { kind: 'fashionMnist' }, epochs: 0 })).toThrow(RecipeError);
    await expect(buildData(fashionRecipe({ data: { kind: 'fashionMnist', classes: ['Sandal', 'Hat'] } }))).rejects.toThrow(
      /recipe\.data\.classes\.1: unknown Fashion-MNIST class "Hat"/,
    );
    await expect(buildData(fashionRecipe({ data: { kind: 'imageFolder', root: join(dir, 'nowhere') } }))).rejects.toBeInstanceOf(DataError);
  });
});

describe('runRecipe', () => {
  it('trains, checkpoints and evaluates the best checkpoint; loadRun and metrics.json agree with the result', async () => {
    const events: RecipeEvent[] = [];
    const out = join(dir, 'run1');
    const r = await runRecipe(fashionRecipe({ epochs: 2 }), { out, onEvent: (e) => events.push(e) });
    expect(r.status).toBe('ok');
    expect(r.fit.nativeSteps).toBe(10); // cross-entropy on a native model: every step in one native call
    expect(events[0]).toMatchObject({ type: 'start', classes: ['Sandal', 'Sneaker', 'Ankle boot'], batchesPerEpoch: 5 });
    expect(events.filter((e) => e.type === 'epoch')).toHaveLength(2);
    expect(events.at(-1)).toMatchObject({ type: 'eval', split: 'test', samples: 90 });
    expect(r.test!.samples).toBe(90);
    const metrics = JSON.parse(readFileSync(join(out, 'metrics.json'), 'utf8'));
    expect(metrics.test.accuracy).toBe(r.test!.accuracy);
    expect(r.checkpoint).toBe(join(out, 'best'));
    // the model handed back holds the best checkpoint's weights
    const file = readSafetensors(join(out, 'best', 'model.safetensors'));
    expect(Array.from(r.model.stateDict()['fc.weight'].flatten().toArray() as number[])).toEqual(Array.from(file['fc.weight'].data));
    // loadRun rebuilds the same model from the run folder and evaluates the same
    const run = loadRun(out);
    expect(run.classes).toEqual(r.classes);
    const again = await run.evaluate('test');
    expect(again.accuracy).toBe(r.test!.accuracy);
    expect(again.confusionMatrix).toEqual(r.test!.confusionMatrix);
    run.dispose();
    r.model.dispose();
  });

  it('resolves relative paths against baseDir, refuses a used out folder, and resumes after an abort to the same end', async () => {
    const object = { ...fashionRecipe({ epochs: 2 }), model: { checkpoint: 'fashion-resnet18w16-c0-4.safetensors' }, out: 'run-abort' } as Record<
      string,
      unknown
    >;
    const baseDir = join(dir, 'base');
    mkdirSync(baseDir);
    copyFileSync(CHECKPOINT, join(baseDir, 'fashion-resnet18w16-c0-4.safetensors'));
    const outAbs = join(baseDir, 'run-abort');
    {
      const controller = new AbortController();
      let steps = 0;
      const first = await runRecipe(object, {
        baseDir,
        out: outAbs,
        signal: controller.signal,
        onEvent: (e) => {
          if (e.type === 'step' && ++steps === 3) controller.abort();
        },
      });
      expect(first.status).toBe('interrupted');
      await expect(runRecipe(object, { baseDir, out: outAbs })).rejects.toThrow(/already holds a run/);
      const resumed = await runRecipe(object, { baseDir, resumeFrom: outAbs });
      expect(resumed.status).toBe('ok');
      const straight = await runRecipe(object, { baseDir, out: join(dir, 'run-straight') });
      expect(resumed.test!.accuracy).toBe(straight.test!.accuracy);
      expect(resumed.fit.history.map((h) => h.trainLoss)).toEqual(straight.fit.history.map((h) => h.trainLoss));
      for (const r of [first, resumed, straight]) r.model.dispose();
    }
  });

  it('loadRun predicts PNG files with class names and probabilities, as trained (a run on an image folder)', async () => {
    const images = join(dir, 'png');
    await pngFolder(images, { 1: 'trouser', 8: 'bag' }, 40);
    const out = join(dir, 'run-png');
    const r = await runRecipe(
      {
        model: { arch: 'resnet18', width: 8, inChannels: 1, smallStem: true },
        data: { kind: 'imageFolder', root: images, channels: 1 },
        epochs: 2,
        batchSize: 16,
        optimizer: { lr: 3e-3 },
        seed: 1,
      },
      { out },
    );
    const run = loadRun(out);
    const files = [join(images, 'bag'), join(images, 'trouser')];
    const preds = await run.predict(files);
    expect(preds).toHaveLength(80);
    for (const p of preds) {
      expect(Object.keys(p.probabilities)).toEqual(['bag', 'trouser']);
      expect(p.probabilities.bag + p.probabilities.trouser).toBeCloseTo(1, 6);
      expect(p.class).toBe(p.probabilities.bag > p.probabilities.trouser ? 'bag' : 'trouser');
    }
    // the trained model tells trousers from bags on images it trained on
    const correct = preds.filter((p) => p.input.includes(`/${p.class}/`)).length;
    expect(correct / preds.length).toBeGreaterThan(0.8);
    expect(existsSync(join(out, 'run.json'))).toBe(true);
    run.dispose();
    r.model.dispose();
  });

  it('needs an output folder', async () => {
    await expect(runRecipe(fashionRecipe())).rejects.toThrow(/recipe\.out: runRecipe needs an output folder/);
    expect(recipes.runRecipe).toBe(runRecipe);
  });
});

describe('runRecipe on text', () => {
  const words = ['good', 'great', 'nice', 'bad', 'awful', 'poor', 'the', 'film', 'was'];
  const vocab = ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]', ...words];
  const config = {
    model_type: 'bert',
    hidden_size: 16,
    num_hidden_layers: 1,
    num_attention_heads: 2,
    intermediate_size: 32,
    max_position_embeddings: 16,
    type_vocab_size: 2,
  };
  const setup = (vocabSize: number) => {
    const base = join(dir, `text-${vocabSize}`);
    mkdirSync(base, { recursive: true });
    writeFileSync(join(base, 'vocab.txt'), vocab.join('\n') + '\n');
    writeFileSync(join(base, 'config.json'), JSON.stringify({ ...config, vocab_size: vocabSize }));
    const rows = Array.from({ length: 40 }, (_, i) => ({ text: `the film was ${words[i % 6]}`, label: i % 6 < 3 ? 'positive' : 'negative' }));
    writeFileSync(join(base, 'reviews.jsonl'), rows.map((r) => JSON.stringify(r)).join('\n') + '\n');
    return {
      base,
      recipe: {
        model: { arch: 'bert', config: 'config.json' },
        data: { kind: 'jsonl', path: 'reviews.jsonl', tokenizer: 'vocab.txt', maxLength: 8 },
        optimizer: { lr: 1e-3 },
        epochs: 1,
        batchSize: 8,
        out: 'run',
      },
    };
  };

  it('trains from named inputs (no custom forward) and predicts texts', async () => {
    const { base, recipe } = setup(vocab.length);
    const r = await runRecipe(recipe, { baseDir: base });
    expect(r.status).toBe('ok');
    const run = loadRun(join(base, 'run'));
    const preds = await run.predict(['the film was great', 'the film was awful']);
    expect(preds.map((p) => p.text)).toEqual(['the film was great', 'the film was awful']);
    expect(preds.every((p) => Math.abs(p.probabilities.negative + p.probabilities.positive - 1) < 1e-6)).toBe(true);
    run.dispose();
    r.model.dispose();
  });

  it('a config vocab_size smaller than the tokenizer is refused before training, naming both numbers', async () => {
    const { base, recipe } = setup(8);
    const err = await runRecipe(recipe, { baseDir: base }).catch((e) => e);
    expect(err).toBeInstanceOf(ConfigError);
    expect(err.field).toBe('recipe.model.config');
    expect(err.message).toMatch(/vocab_size is 8 but the tokenizer has 14 token ids/);
  });
});
