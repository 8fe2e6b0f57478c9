// Recipe validation: upper bounds on every field that sizes an allocation,
// choices matched case-insensitively, and prototype keys refused (they
// polluted Object.prototype through --set and reached zod's internals).
import { describe, it, expect } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { parseRecipe, RecipeError } from 'finetorch';

// biome-ignore lint/suspicious/noExplicitAny: a raw recipe object, edited by path below
type RawRecipe = Record<string, any>;
const base = (): RawRecipe => ({
  model: { arch: 'resnet18' },
  data: { kind: 'fashionMnist', classes: [0, 1] },
  optimizer: { lr: 1e-3 },
  epochs: 1,
});

/** The recipe with `value` at the dotted path. */
function withField(path: string, value: unknown): RawRecipe {
  const r = base();
  const keys = path.split('.');
  let node = r;
  for (const k of keys.slice(0, -1)) node = node[k] ??= {};
  node[keys[keys.length - 1]] = value;
  return r;
}

function issuesOf(recipe: unknown): Array<{ path: string; message: string }> {
  try {
    parseRecipe(recipe);
  } catch (err) {
    expect(err).toBeInstanceOf(RecipeError);
    return (err as RecipeError).issues;
  }
  return [];
}

const imageData = (extra: Record<string, unknown>) => ({ kind: 'imageFolder', root: '/data', ...extra });
const textData = (extra: Record<string, unknown>) => ({ kind: 'csv', path: '/t.csv', tokenizer: '/vocab.txt', ...extra });

// field, a value over the limit, the limit (accepted), and the data section it needs
const LIMITS: Array<[string, unknown, unknown, Record<string, unknown>?]> = [
  ['data.imageSize', 20000, 4096, imageData({})],
  ['data.augment.randomCropPadding', 20000, 1024, imageData({ imageSize: 32 })],
  ['data.maxLength', 100000, 4096, textData({})],
  ['data.classes', Array.from({ length: 100001 }, (_, i) => `c${i}`), ['a', 'b'], textData({})],
  ['data.perClass', 1e9, 6000, undefined],
  ['data.testPerClass', 1e9, 1000, undefined],
  ['data.counts', [10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10], [400, 20], undefined],
  ['data.prefetch', 1000, 64, imageData({})],
  ['batchSize', 1_000_000, 65536],
  ['epochs', 10_000_000, 100000],
  ['model.width', 100000, 256],
  ['model.inChannels', 1000, 64],
  ['model.numClasses', 10_000_000, 100000],
  ['freeze.blocks', 1_000_000, 4],
  ['optimizer.lrs', Array.from({ length: 2000 }, () => 1e-3), [1e-3, 1e-3]],
  ['schedule.warmupSteps', 1e12, 100],
  ['earlyStopping.patience', 1e9, 3],
  ['loss.classWeights', Array.from({ length: 100001 }, () => 1), [1, 2]],
];

describe('recipe limits', () => {
  for (const [path, over, ok, data] of LIMITS) {
    it(`${path}: ${Array.isArray(over) ? `${over.length} entries` : over} is refused naming recipe.${path}; ${Array.isArray(ok) ? `${ok.length} entries` : ok} is accepted`, () => {
      const make = (v: unknown) => {
        const r = base();
        if (data) r.data = structuredClone(data);
        if (path.startsWith('schedule.')) r.schedule = { kind: 'linear' };
        if (path.startsWith('earlyStopping.')) r.earlyStopping = { metric: 'loss' };
        if (path === 'optimizer.lrs') delete r.optimizer.lr;
        const keys = path.split('.');
        let node = r;
        for (const k of keys.slice(0, -1)) node = node[k] ??= {};
        node[keys[keys.length - 1]] = v;
        return r;
      };
      const issues = issuesOf(make(over));
      expect(issues.map((i) => i.path)).toEqual([`recipe.${path}`]);
      expect(issues[0].message).toMatch(/must (be|have) at most [\d,]+/);
      expect(issuesOf(make(ok))).toEqual([]);
    });
  }

  it('the message says the limit and why, with the value', () => {
    let message = '';
    try {
      parseRecipe(withField('model.width', 100000));
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toMatch(/recipe\.model\.width: must be at most 256 \(layer1 channels; .*\) \(got 100000\)/);
  });
});

describe('choices are matched case-insensitively', () => {
  it('optimizer type, schedule kind, loss type, early-stopping metric and normalize come back in their canonical spelling', () => {
    const r = parseRecipe({
      ...base(),
      data: imageData({ normalize: 'ImageNet' }),
      optimizer: { type: 'adamw', lr: 1e-3 },
      schedule: { kind: 'Cosine', warmupRatio: 0.1 },
      loss: { type: 'FOCAL' },
      earlyStopping: { metric: 'f1macro', patience: 2 },
    });
    expect(r.optimizer.type).toBe('AdamW');
    expect(r.schedule!.kind).toBe('cosine');
    expect(r.loss.type).toBe('focal');
    expect(r.earlyStopping!.metric).toBe('f1Macro');
    expect((r.data as { normalize?: unknown }).normalize).toBe('imagenet');
    expect(parseRecipe({ ...base(), optimizer: { type: 'sgd', lr: 0.1 } }).optimizer.type).toBe('SGD');
    expect(parseRecipe({ ...base(), optimizer: { type: 'ADAM', lr: 0.1 } }).optimizer.type).toBe('Adam');
    expect(parseRecipe({ ...base(), schedule: { kind: 'OneCycle' } }).schedule!.kind).toBe('onecycle');
  });

  it('an unknown choice still names the field and the choices', () => {
    const issues = issuesOf({ ...base(), optimizer: { type: 'adamx', lr: 1e-3 } });
    expect(issues.map((i) => i.path)).toEqual(['recipe.optimizer.type']);
    expect(issues[0].message).toMatch(/AdamW.*Adam.*SGD/);
  });
});

describe('prototype keys are refused', () => {
  it('__proto__, constructor and prototype at any depth, from JSON and YAML, name the field and pollute nothing', () => {
    const fromJson = JSON.parse('{"model": {"arch": "resnet18"}, "optimizer": {"lr": 0.001}, "epochs": 1, "__proto__": {"polluted": 1}}');
    expect(issuesOf(fromJson).map((i) => i.path)).toEqual(['recipe.__proto__']);
    const nested = JSON.parse('{"model": {"arch": "resnet18", "constructor": {"x": 1}}, "optimizer": {"lr": 0.001, "prototype": 2}, "epochs": 1}');
    expect(
      issuesOf(nested)
        .map((i) => i.path)
        .sort(),
    ).toEqual(['recipe.model.constructor', 'recipe.optimizer.prototype']);
    const yaml = parseYaml(
      'model: {arch: resnet18}\noptimizer: {lr: 0.001}\nepochs: 1\ndata:\n  kind: fashionMnist\n  classes: [0, 1]\n  __proto__: {polluted: 1}\n',
    );
    const issues = issuesOf(yaml);
    expect(issues.map((i) => i.path)).toEqual(['recipe.data.__proto__']);
    expect(issues[0].message).toMatch(/"__proto__" is not allowed as a field name/);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(Object.prototype).not.toHaveProperty('polluted');
  });
});
