// torch.autocast on the CPU (bfloat16) against Python's
// torch.autocast('cpu', dtype=torch.bfloat16) on Debian's PyTorch 1.13: the
// dtype each op produces, a small conv net's forward and backward, nesting,
// the cast cache, and async work started inside a region.
import { describe, it, expect } from 'vitest';
import { execFileSync } from 'node:child_process';
import { torch, nn, cuda, loadReport, type Tensor } from 'finetorch';
import { flat } from '../helpers';

const python = (script: string, input: unknown) =>
  JSON.parse(execFileSync('/usr/bin/python3', ['-c', script], { input: JSON.stringify(input), encoding: 'utf8' }));
const maxDiff = (a: number[], b: number[]) => {
  expect(a.length).toBe(b.length);
  return Math.max(...a.map((v, i) => Math.abs(v - b[i])));
};
const bf16 = { dtype: 'bfloat16' } as const;

describe('torch.autocast on the CPU against PyTorch', () => {
  it('gives each op the dtype PyTorch gives it', () => {
    torch.manualSeed(0);
    const a = torch.randn([4, 6]);
    const b = torch.randn([6, 5]);
    const img = torch.randn([2, 3, 5, 5]);
    const target = torch.tensor([0, 2, 1, 4]);
    const probs = torch.rand([4, 5]);
    const linear = new nn.Linear(6, 5);
    const conv = new nn.Conv2d(3, 4, 3);
    const norm = new nn.LayerNorm(6);
    const bn = new nn.BatchNorm2d(4);
    bn.eval();
    const F = nn.functional;
    const ops: Record<string, () => Tensor> = {
      matmul: () => a.matmul(b),
      linear: () => linear.forward(a),
      conv2d: () => conv.forward(img),
      softmax: () => a.softmax(1),
      logSoftmax: () => a.logSoftmax(1),
      layerNorm: () => norm.forward(a), // (a bfloat16 input fails in LayerNorm under 1.13's CPU autocast, in PyTorch too)
      batchNorm: () => bn.forward(conv.forward(img)),
      crossEntropy: () => F.crossEntropy(a.matmul(b), target),
      nllLoss: () => F.nllLoss(a.matmul(b).logSoftmax(1), target),
      mseLoss: () => F.mseLoss(a.matmul(b), probs),
      bceWithLogits: () => F.bceWithLogits(a.matmul(b), probs),
      addMixed: () => a.matmul(b).add(probs),
      relu: () => a.matmul(b).relu(),
      sum: () => a.matmul(b).sum(),
      exp: () => a.matmul(b).exp(),
    };
    const got = torch.autocast('cpu', bf16, () => Object.fromEntries(Object.entries(ops).map(([k, f]) => [k, f().dtype])));
    const script = `
import json, sys, torch
d = json.load(sys.stdin)
t = lambda k: torch.tensor(d[k]['data'], dtype=torch.float32).reshape(d[k]['shape'])
a, b, img, probs = t('a'), t('b'), t('img'), t('probs')
target = torch.tensor(d['target'])
F = torch.nn.functional
linear = torch.nn.Linear(6, 5); conv = torch.nn.Conv2d(3, 4, 3); norm = torch.nn.LayerNorm(6); bn = torch.nn.BatchNorm2d(4).eval()
ops = {
  'matmul': lambda: a @ b, 'linear': lambda: linear(a), 'conv2d': lambda: conv(img),
  'softmax': lambda: a.softmax(1), 'logSoftmax': lambda: a.log_softmax(1), 'layerNorm': lambda: norm(a),
  'batchNorm': lambda: bn(conv(img)), 'crossEntropy': lambda: F.cross_entropy(a @ b, target),
  'nllLoss': lambda: F.nll_loss((a @ b).log_softmax(1), target), 'mseLoss': lambda: F.mse_loss(a @ b, probs),
  'bceWithLogits': lambda: F.binary_cross_entropy_with_logits(a @ b, probs), 'addMixed': lambda: (a @ b) + probs,
  'relu': lambda: (a @ b).relu(), 'sum': lambda: (a @ b).sum(), 'exp': lambda: (a @ b).exp(),
}
with torch.autocast('cpu', dtype=torch.bfloat16):
    out = {k: str(f().dtype).replace('torch.', '') for k, f in ops.items()}
print(json.dumps(out))`;
    const enc = (t: Tensor) => ({ data: flat(t), shape: t.shape });
    const want = python(script, { a: enc(a), b: enc(b), img: enc(img), probs: enc(probs), target: flat(target) });
    expect(got).toEqual(want);
    // the lists at work: matmul-like ops in bfloat16, others as PyTorch says (checked above)
    expect(got.matmul).toBe('bfloat16');
    expect(got.conv2d).toBe('bfloat16');
    expect(got.linear).toBe('bfloat16');
    expect(got.crossEntropy).toBe('float32');
    // nothing leaks out of the region
    expect(a.matmul(b).dtype).toBe('float32');
    expect(torch.isAutocastEnabled('cpu')).toBe(false);
  });

  it('a conv net forward (in the region) and backward (after it) match PyTorch within bfloat16 rounding', async () => {
    torch.manualSeed(1);
    const model = new nn.Sequential(
      new nn.Conv2d(3, 8, 3, { padding: 1 }),
      new nn.BatchNorm2d(8),
      new nn.ReLU(),
      new nn.AdaptiveAvgPool2d(1),
      new nn.Flatten(),
      new nn.Linear(8, 16),
      new nn.GELU(),
      new nn.Linear(16, 5),
    );
    const x = torch.randn([6, 3, 8, 8]);
    const y = torch.tensor([0, 1, 2, 3, 4, 0]);
    const weights = Object.fromEntries(Object.entries(model.stateDict()).map(([k, t]) => [k, { data: flat(t), shape: t.shape }]));
    // forward on the torch thread (forwardAsync) and the loss on the main thread, both in one async region
    const { logits, loss } = await torch.autocast('cpu', bf16, async () => {
      const logits = await model.forwardAsync(x);
      return { logits, loss: nn.functional.crossEntropy(logits, y) };
    });
    await loss.backwardAsync();
    const script = `
import json, sys, torch
d = json.load(sys.stdin)
m = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.BatchNorm2d(8), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(),
    torch.nn.Linear(8, 16), torch.nn.GELU(), torch.nn.Linear(16, 5))
m.load_state_dict({k: torch.tensor(v['data']).reshape(v['shape']).to(m.state_dict()[k].dtype) for k, v in d['weights'].items()})
x = torch.tensor(d['x']).reshape(6, 3, 8, 8); y = torch.tensor(d['y'])
with torch.autocast('cpu', dtype=torch.bfloat16):
    logits = m(x)
    loss = torch.nn.functional.cross_entropy(logits, y)
loss.backward()
print(json.dumps({'logitsDtype': str(logits.dtype), 'lossDtype': str(loss.dtype), 'logits': logits.float().reshape(-1).tolist(), 'loss': loss.item(),
  'grads': {n: p.grad.reshape(-1).tolist() for n, p in m.named_parameters()}, 'gradDtypes': sorted({str(p.grad.dtype) for p in m.parameters()})}))`;
    const ref = python(script, { weights, x: flat(x), y: flat(y) });
    expect(`torch.${logits.dtype}`).toBe(ref.logitsDtype);
    expect(`torch.${loss.dtype}`).toBe(ref.lossDtype);
    const logitsDiff = maxDiff(flat(logits.float()), ref.logits);
    const lossDiff = Math.abs((loss.item() as number) - ref.loss);
    let gradDiff = 0;
    const gradDtypes = new Set<string>();
    for (const [name, p] of model.namedParameters()) {
      gradDtypes.add(`torch.${p.grad!.dtype}`);
      gradDiff = Math.max(gradDiff, maxDiff(flat(p.grad!), ref.grads[name]));
    }
    expect([...gradDtypes].sort()).toEqual(ref.gradDtypes); // float32 parameters get float32 gradients
    console.log(`autocast bf16 vs PyTorch: logits ${logitsDiff}, loss ${lossDiff}, gradients ${gradDiff}`);
    // bfloat16 keeps 8 bits of mantissa: one rounding step of values around 1 is 2^-8
    expect(logitsDiff).toBeLessThanOrEqual(2 ** -7);
    expect(lossDiff).toBeLessThanOrEqual(2 ** -8);
    expect(gradDiff).toBeLessThanOrEqual(2 ** -8);
  });
});

describe('torch.autocast regions', () => {
  it('nest: an inner region disables or re-enables, each exit restores the enclosing state', () => {
    const a = torch.randn([3, 3]);
    const seen = torch.autocast('cpu', bf16, () => {
      const outer = a.matmul(a).dtype;
      const inner = torch.autocast('cpu', { enabled: false }, () => [a.matmul(a).dtype, torch.isAutocastEnabled('cpu')]);
      const again = a.matmul(a).dtype;
      return { outer, inner, again, dtype: torch.getAutocastDtype('cpu') };
    });
    expect(seen).toEqual({ outer: 'bfloat16', inner: ['float32', false], again: 'bfloat16', dtype: 'bfloat16' });
    expect(torch.isAutocastEnabled('cpu')).toBe(false);
    // an error inside fn leaves the region too
    expect(() =>
      torch.autocast('cpu', bf16, () => {
        throw new Error('boom');
      }),
    ).toThrow('boom');
    expect(torch.isAutocastEnabled('cpu')).toBe(false);
  });

  it('async work started in a synchronous region runs under it on the torch thread; work started after does not', async () => {
    const lin = new nn.Linear(4, 2);
    const x = torch.randn([3, 4]);
    let pending: Promise<Tensor> | null = null;
    torch.autocast('cpu', bf16, () => {
      pending = lin.forwardAsync(x);
    }); // the region ends when fn returns
    const after = lin.forwardAsync(x);
    expect(pending).not.toBeNull();
    expect((await pending!).dtype).toBe('bfloat16');
    expect((await after).dtype).toBe('float32');
  });

  // (libtorch's C++ Linear runs addmm on weight.t(), a view, which autocast does not cache; a convolution's weight it does)
  it('the cast cache holds within a region and is cleared at its end, as in PyTorch (main thread and torch thread)', async () => {
    const script = `
import json, torch
torch.manual_seed(0)
conv = torch.nn.Conv2d(2, 3, 2); x = torch.randn(1, 2, 4, 4)
lin = conv
out = {}
for cache in (True, False):
    with torch.autocast('cpu', dtype=torch.bfloat16, cache_enabled=cache):
        y1 = lin(x)
        with torch.no_grad(): lin.weight.add_(1)
        y2 = lin(x)
    with torch.autocast('cpu', dtype=torch.bfloat16, cache_enabled=cache):
        y3 = lin(x)
    out[str(cache)] = {'sameInRegion': torch.equal(y1, y2), 'sameAfter': torch.equal(y2, y3)}
print(json.dumps(out))`;
    const want = python(script, {});
    expect(want).toEqual({ True: { sameInRegion: true, sameAfter: false }, False: { sameInRegion: false, sameAfter: true } });
    for (const cacheEnabled of [true, false]) {
      for (const onTorchThread of [false, true]) {
        const lin = new nn.Conv2d(2, 3, 2);
        const x = torch.randn([1, 2, 4, 4]);
        const run = (): Promise<Tensor> => (onTorchThread ? lin.forwardAsync(x) : Promise.resolve(lin.forward(x)));
        const weight = lin.parameters()[0];
        const bump = () =>
          torch.noGrad(() => {
            weight.add_(1);
          });
        const [y1, y2] = await torch.autocast('cpu', { ...bf16, cacheEnabled }, async () => {
          const y1 = await run();
          bump();
          return [y1, await run()];
        });
        const y3 = await torch.autocast('cpu', { ...bf16, cacheEnabled }, run);
        const same = (p: Tensor, q: Tensor) => maxDiff(flat(p), flat(q)) === 0;
        expect({ sameInRegion: same(y1, y2), sameAfter: same(y2, y3) }, `cacheEnabled ${cacheEnabled}, torch thread ${onTorchThread}`).toEqual(
          want[cacheEnabled ? 'True' : 'False'],
        );
      }
    }
  });

  it('refuses what this build cannot do, naming the argument', () => {
    expect(() => torch.autocast('tpu' as 'cpu', {}, () => 1)).toThrow(/deviceType must be 'cpu' or 'cuda', got "tpu"/);
    expect(() => torch.autocast('cpu', { dtype: 'float64' as 'bfloat16' }, () => 1)).toThrow(/dtype must be 'bfloat16' or 'float16', got "float64"/);
    expect(() => torch.autocast('cpu', { enabled: 'yes' as unknown as boolean }, () => 1)).toThrow(/enabled must be a boolean/);
    expect(() => torch.autocast('cpu', {}, undefined as unknown as () => 1)).toThrow(/expected a function/);
    if (!cuda.isAvailable())
      expect(() => torch.autocast('cuda', {}, () => 1)).toThrow(/'cuda' autocast asked for, but (this libtorch is a CPU build|no CUDA device is visible)/);
    expect(torch.autocast('cuda', { enabled: false }, () => 1)).toBe(1); // disabled: nothing to refuse
    const version = loadReport.libtorch.version.split('.').map(Number);
    if (version[0] < 2 || (version[0] === 2 && version[1] < 3))
      expect(() => torch.autocast('cpu', { dtype: 'float16' }, () => 1)).toThrow(/float16 autocast on the CPU needs libtorch 2.3 or later .*use 'bfloat16'/);
  });
});
