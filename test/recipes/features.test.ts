// The recipe fields of issue 17's training features, end to end on a small
// pretrained ResNet: gradientAccumulationSteps (the schedule counts optimizer
// steps), ema (best/ holds the EMA weights that loadRun then loads), unfreeze
// (frozen blocks stay as pretrained until their epoch), monitor, and
// checkpoint.optimizerState false (a small best/ that loads but is not resumable).
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import {
  torch,
  io,
  parseRecipe,
  runRecipe,
  loadRun,
  buildModel,
  buildOptimizer,
  ConfigError,
  RecipeError,
  type RecipeEvent,
  type RecipeResult,
  type Tensor,
} from 'finetorch';
import { flat } from '../helpers';

const root = resolve(__dirname, '..', '..');
const CHECKPOINT = join(root, 'assets', 'fashion-resnet18w16-c0-4.safetensors');
let dir: string;
let out: string;
let result: RecipeResult;
const events: RecipeEvent[] = [];

const recipe = {
  model: { checkpoint: CHECKPOINT },
  // 3 classes x 40 images, a quarter for validation: 90 training images, 6 batches of 16 (the last of 10)
  data: { kind: 'fashionMnist', classes: ['Sandal', 'Sneaker', 'Ankle boot'], perClass: 40, testPerClass: 10, val: 0.25 },
  // blocks: stem, layer1..layer4, head (fc); the head trains from epoch 0, layer4 from epoch 1, layer3 from epoch 2
  freeze: { blocks: 5 },
  unfreeze: { every: 1 },
  optimizer: { lr: 3e-3, weightDecay: 0.01 },
  schedule: { kind: 'linear', warmupSteps: 1 },
  gradientAccumulationSteps: 4,
  ema: { decay: 0.9 },
  monitor: 'loss',
  checkpoint: { optimizerState: false },
  batchSize: 16,
  epochs: 3,
  seed: 4,
};

const sizeOf = (d: string) => readdirSync(d).reduce((n, f) => n + statSync(join(d, f)).size, 0);
function maxDiff(a: Tensor, b: Tensor): number {
  const [x, y] = [flat(a), flat(b)];
  expect(x.length).toBe(y.length);
  return x.reduce((m, v, i) => Math.max(m, Math.abs(v - y[i])), 0);
}

beforeAll(async () => {
  torch.setNumThreads(1);
  dir = mkdtempSync(join(tmpdir(), 'ft-recipe-features-'));
  out = join(dir, 'run');
  result = await runRecipe(recipe, { out, onEvent: (e) => events.push(e) });
}, 120_000);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('recipe training features', () => {
  it('gradientAccumulationSteps: one optimizer step per 4 batches (the epoch ending on a group of 2), and the schedule over optimizer steps', () => {
    const steps = events.filter((e) => e.type === 'step') as Array<Extract<RecipeEvent, { type: 'step' }>>;
    expect(steps.map((e) => e.microBatches)).toEqual([4, 2, 4, 2, 4, 2]);
    const state = JSON.parse(readFileSync(join(out, 'last', 'trainer.json'), 'utf8'));
    expect(state.step).toBe(6);
    expect(state.schedulerStep).toBe(6);
    // linear warmup over 1 of 3 x 2 = 6 steps: LR 0 at step 0, the full LR at step 1, then down by a fifth per step
    expect(steps.map((e) => e.lrs.at(-1))).toEqual([0, 3e-3, 0.8 * 3e-3, 0.6 * 3e-3, 0.4 * 3e-3, 0.2 * 3e-3].map((v) => expect.closeTo(v, 12)));
  });

  it('unfreeze: every block is in the optimizer from the start; blocks below the unfrozen ones keep their pretrained weights', () => {
    const start = events.find((e) => e.type === 'start') as Extract<RecipeEvent, { type: 'start' }>;
    expect([...new Set(start.groups.map((g) => g.block))]).toEqual(['stem', 'layer1', 'layer2', 'layer3', 'layer4', 'head']);
    const trainable = (prefix: string) =>
      result.model
        .namedParameters()
        .filter(([n]) => n.startsWith(prefix))
        .every(([, p]) => p.requiresGrad);
    expect(['conv1', 'layer1', 'layer2', 'layer3', 'layer4', 'fc'].map(trainable)).toEqual([false, false, false, true, true, true]);
    const pretrained = io.load(CHECKPOINT);
    const trained = io.load(join(out, 'last', 'model.safetensors'));
    expect(maxDiff(trained['layer2.1.conv2.weight'], pretrained['layer2.1.conv2.weight'])).toBe(0);
    expect(maxDiff(trained['layer2.1.bn2.running_mean'], pretrained['layer2.1.bn2.running_mean'])).toBe(0); // frozen batch norm stays in eval mode
    expect(maxDiff(trained['layer3.1.conv2.weight'], pretrained['layer3.1.conv2.weight'])).toBeGreaterThan(0);
  });

  it('ema and checkpoint.optimizerState false: best/ holds the model and EMA weights without the optimizer state; loadRun loads the EMA weights; resuming from best/ is refused', async () => {
    expect(result.fit.modelWeights).toBe('ema');
    expect(existsSync(join(out, 'best', 'optimizer.safetensors'))).toBe(false);
    expect(existsSync(join(out, 'best', 'ema.safetensors'))).toBe(true);
    expect(existsSync(join(out, 'last', 'optimizer.safetensors'))).toBe(true);
    // AdamW keeps two moments per parameter: last/ is about twice best/'s size... plus the EMA in both
    expect(sizeOf(join(out, 'best')) / sizeOf(join(out, 'last'))).toBeLessThan(0.55);
    const loaded = loadRun(out);
    const ema = io.load(join(out, 'best', 'ema.safetensors'));
    const sd = loaded.model.stateDict();
    for (const k of ['conv1.weight', 'layer4.1.conv2.weight', 'fc.weight', 'layer4.1.bn2.running_var']) expect(maxDiff(sd[k], ema[k])).toBe(0);
    expect(result.checkpoint).toBe(join(out, 'best'));
    expect(result.test).not.toBeNull();
    await expect(runRecipe(recipe, { resumeFrom: join(out, 'best') })).rejects.toThrow(/without the optimizer state .*resume from the run's last\//);
  });

  it('the fields are checked: unfreeze needs freeze.blocks, monitor names a metric of the task', () => {
    const base = { model: { arch: 'resnet18', width: 8 }, optimizer: { lr: 1e-3 }, epochs: 1 };
    expect(() => parseRecipe({ ...base, monitor: 'entityF1' })).toThrow(RecipeError);
    expect(() => parseRecipe({ ...base, monitor: 'entityF1' })).toThrow(/recipe\.monitor: entity metrics need task: tokenClassification/);
    expect(() => parseRecipe({ ...base, gradientAccumulationSteps: 0 })).toThrow(/recipe\.gradientAccumulationSteps/);
    expect(() => parseRecipe({ ...base, ema: { decay: 2 } })).toThrow(/recipe\.ema\.decay/);
    const r = parseRecipe({ ...base, unfreeze: { every: 2 } });
    const { model } = buildModel(r, 3);
    expect(() => buildOptimizer(r, model, 10)).toThrow(ConfigError);
    expect(() => buildOptimizer(r, model, 10)).toThrow(/recipe\.unfreeze.*freeze\.blocks/);
  });
});
