// Test-time augmentation against PyTorch 1.13: the same small CNN (conv,
// BatchNorm with running statistics, adaptive pooling, linear) in torch runs
// each view (torch.flip, torchvision's five_crop) and averages the softmax
// probabilities; predict with tta() must give those probabilities and
// evaluate the NLL of them. Then the recipe field: runRecipe's test numbers
// are the TTA evaluation, and tta on text data is refused.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { torch, nn, tta, evaluate, predict, runRecipe, loadRun, parseRecipe, TensorLoader, type Module, type Tensor, type TtaOptions } from 'finetorch';
import { cli } from '../cli/cli-helpers';

const CASES: Array<{ name: string; options: TtaOptions }> = [
  { name: 'none', options: {} },
  { name: 'hflip', options: { hflip: true } },
  { name: 'hflip+vflip', options: { hflip: true, vflip: true } },
  { name: 'five', options: { crops: 'five' } },
  { name: 'ten (7 px crops + hflip)', options: { crops: 7, hflip: true } },
];

// 12 x 10 images: five crops of 8 (87.5% of 10) sit 2 and 1 pixels in; crops of 7 at 2.5 and 1.5, which Python's round takes to 2 and 2
const PYTHON = `
import json, torch, torchvision.transforms.functional as TF
torch.manual_seed(0)
torch.set_num_threads(1)
model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.BatchNorm2d(4), torch.nn.ReLU(),
                            torch.nn.AdaptiveAvgPool2d(2), torch.nn.Flatten(), torch.nn.Linear(16, 3))
bn = model[1]
bn.running_mean.copy_(torch.randn(4) * 0.1); bn.running_var.copy_(torch.rand(4) + 0.5)
model.eval()
x = torch.randn(6, 3, 12, 10)
y = torch.randint(0, 3, (6,))
cases = json.loads(${JSON.stringify(JSON.stringify(CASES))})
out = {}
with torch.no_grad():
    for c in cases:
        o = c['options']
        views = list(TF.five_crop(x, 7 if o.get('crops') == 7 else 8)) if 'crops' in o else [x]
        if o.get('hflip'): views = [w for v in views for w in (v, torch.flip(v, [3]))]
        if o.get('vflip'): views = [w for v in views for w in (v, torch.flip(v, [2]))]
        p = torch.stack([model(v).softmax(1) for v in views]).mean(0)
        out[c['name']] = {'views': len(views), 'p': p.tolist(), 'nll': -p[torch.arange(6), y].log().mean().item(),
                          'accuracy': (p.argmax(1) == y).float().mean().item()}
print(json.dumps({'weights': {k: v.tolist() for k, v in model.state_dict().items()}, 'x': x.tolist(), 'y': y.tolist(), 'cases': out}))
`;

interface Reference {
  weights: Record<string, unknown>;
  x: number[];
  y: number[];
  cases: Record<string, { views: number; p: number[][]; nll: number; accuracy: number }>;
}

let ref: Reference;
let model: Module;
let x: Tensor;
let y: Tensor;

beforeAll(() => {
  ref = JSON.parse(execFileSync('/usr/bin/python3', ['-c', PYTHON], { encoding: 'utf8', maxBuffer: 64 << 20 }));
  model = new nn.Sequential(
    new nn.Conv2d(3, 4, 3, { padding: 1 }),
    new nn.BatchNorm2d(4),
    new nn.ReLU(),
    new nn.AdaptiveAvgPool2d(2),
    new nn.Flatten(),
    new nn.Linear(16, 3),
  );
  model.loadStateDict(
    Object.fromEntries(
      Object.entries(ref.weights).map(([k, v]) => [k, torch.tensor(v as number[], { dtype: k.endsWith('num_batches_tracked') ? 'int64' : 'float32' })]),
    ),
  );
  x = torch.tensor(ref.x, { dtype: 'float32' });
  y = torch.tensor(ref.y, { dtype: 'int64' });
}, 120000);

describe('tta against PyTorch', () => {
  const data = () => new TensorLoader(x, y, { batchSize: 4 }); // 2 batches, the second partial

  for (const c of CASES)
    it(`${c.name}: predict gives the mean softmax over the views, evaluate its NLL (1e-5)`, async () => {
      const want = ref.cases[c.name];
      const { probabilities } = await predict(model, data(), { forward: tta(c.options) });
      expect(probabilities.length).toBe(6);
      probabilities.forEach((row, i) => row.forEach((p, k) => expect(Math.abs(p - want.p[i][k])).toBeLessThan(1e-5)));
      const r = await evaluate(model, data(), { forward: tta(c.options) });
      expect(Math.abs(r.loss - want.nll)).toBeLessThan(1e-5);
      expect(r.accuracy).toBeCloseTo(want.accuracy, 6); // (Python's mean is float32)
    });

  it('the views differ: each augmentation changes the probabilities (the comparison above is not vacuous)', () => {
    const plain = ref.cases.none.p;
    for (const name of ['hflip', 'hflip+vflip', 'five', 'ten (7 px crops + hflip)']) {
      const diff = Math.max(...ref.cases[name].p.flatMap((row, i) => row.map((p, k) => Math.abs(p - plain[i][k]))));
      expect(diff, name).toBeGreaterThan(1e-3);
    }
    expect(ref.cases['ten (7 px crops + hflip)'].views).toBe(10);
  });

  it('refuses inputs and options it cannot use, naming them', async () => {
    expect(() => tta({ crops: 'ten' as never })).toThrow(/tta\.crops: expected 'five' or a crop size in pixels/);
    expect(() => tta({ flip: true } as never)).toThrow(/tta: unknown option flip/);
    await expect(predict(model, data(), { forward: tta({ crops: 20 }) })).rejects.toThrow(/crops of 20 pixels do not fit in 12x10 images/);
    const flat = new TensorLoader(torch.randn([4, 16]), torch.tensor([0, 1, 2, 0]), { batchSize: 4 });
    await expect(predict(new nn.Linear(16, 3), flat, { forward: tta({ hflip: true }) })).rejects.toThrow(
      /image batches \[N, C, H, W\]; got a tensor of shape \[4, 16\]/,
    );
  });
});

describe('recipe tta', () => {
  let dir: string;
  afterAll(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("runRecipe's test evaluation is the TTA evaluation of the best checkpoint", async () => {
    dir = mkdtempSync(join(tmpdir(), 'finetorch-tta-'));
    const recipe = {
      model: { arch: 'resnet18', width: 4, inChannels: 1, smallStem: true },
      optimizer: { lr: 3e-3 },
      data: { kind: 'fashionMnist', classes: ['T-shirt/top', 'Trouser'], perClass: 24, val: 0.25, testPerClass: 12 },
      epochs: 1,
      batchSize: 16,
      tta: { hflip: true, crops: 24 },
      out: join(dir, 'run'),
    };
    const r = await runRecipe(recipe);
    const test = (await import('finetorch')).buildData(parseRecipe(recipe), ['test']);
    const source = (await test).parts.test!;
    const withTta = await evaluate(r.model, source, { forward: tta({ hflip: true, crops: 24 }) });
    const plain = await evaluate(r.model, source);
    expect(r.test!.loss).toBeCloseTo(withTta.loss, 6);
    expect(r.test!.loss).not.toBeCloseTo(plain.loss, 6);
    // loadRun(...).evaluate and finetorch eval read the recipe (tta included) from the run's run.json
    const loaded = loadRun(join(dir, 'run'));
    expect((await loaded.evaluate('test')).loss).toBeCloseTo(withTta.loss, 6);
    loaded.dispose();
    const run = cli(['eval', '--checkpoint', join(dir, 'run')]);
    expect(run.status, run.stderr).toBe(0);
    expect(run.events.find((e) => e.type === 'start')!.tta).toEqual({ hflip: true, crops: 24 });
    expect(run.events.find((e) => e.type === 'eval')!.loss as number).toBeCloseTo(withTta.loss, 5);
  }, 120000);

  it('is refused for text data, naming the field', () => {
    expect(() =>
      parseRecipe({
        model: { arch: 'bert', config: 'c.json' },
        optimizer: { lr: 1e-4 },
        data: { kind: 'csv', path: 'a.csv', tokenizer: 'v.txt' },
        epochs: 1,
        tta: { hflip: true },
      }),
    ).toThrow(/recipe\.tta: flips and crops apply to images; the data is csv/);
    expect(() => parseRecipe({ model: { arch: 'resnet18' }, optimizer: { lr: 1e-4 }, epochs: 1, tta: { hflip: 'yes' } })).toThrow(/recipe\.tta\.hflip/);
  });
});
