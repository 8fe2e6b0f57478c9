// Op values and gradients against PyTorch (fixtures from scripts/make-fixtures.py).
import { describe, it, expect } from 'vitest';
import { torch, nn, type Tensor } from 'finetorch';
import { fixture, decode, expectClose, type Encoded } from '../helpers';

const F = nn.functional;
interface Case {
  name: string;
  inputs: Encoded[];
  output: Encoded;
  upstream?: Encoded;
  grads?: Record<string, Encoded>;
}

// The same functions as in scripts/make-fixtures.py, written with finetorch.
const OPS: Record<string, (...xs: Tensor[]) => Tensor> = {
  add: (a, b) => a.add(b),
  add_alpha: (a, b) => a.add(b, 2.5),
  sub: (a, b) => a.sub(b),
  mul: (a, b) => a.mul(b),
  div: (a, b) => a.div(b.abs().add(0.5)),
  mul_scalar: (a) => a.mul(2.5),
  pow_scalar: (a) => a.abs().add(0.1).pow(1.7),
  pow_tensor: (a, b) => a.abs().add(0.1).pow(b),
  exp: (a) => a.exp(),
  log: (a) => a.abs().add(0.1).log(),
  sqrt: (a) => a.abs().add(0.1).sqrt(),
  abs: (a) => a.abs(),
  neg: (a) => a.neg(),
  clamp: (a) => a.clamp(-0.5, 0.5),
  clamp_min: (a) => a.clamp(0.1),
  where: (a, b) => torch.where(a.gt(0), a, b.mul(2)),
  maximum: (a, b) => torch.maximum(a, b),
  sum_all: (a) => a.sum(),
  sum_dim: (a) => a.sum(1),
  sum_dims_keepdim: (a) => a.sum([0, 1], true),
  mean_all: (a) => a.mean(),
  mean_keepdim: (a) => a.mean(0, true),
  max_all: (a) => a.max(),
  max_dim: (a) => a.max(1)[0],
  min_dim_keepdim: (a) => a.min(0, true)[0],
  logsumexp: (a) => a.logsumexp(1),
  std: (a) => a.std(1),
  var_biased: (a) => a.var(0, { unbiased: false }),
  norm: (a) => a.norm(),
  softmax: (a) => a.softmax(1),
  logSoftmax: (a) => a.logSoftmax(0),
  sigmoid: (a) => a.sigmoid(),
  tanh: (a) => a.tanh(),
  relu: (a) => a.relu(),
  gelu: (a) => F.gelu(a),
  matmul: (a, c) => a.matmul(c),
  transpose: (a) => a.transpose(0, 1).mul(torch.arange(3, undefined, 1, { dtype: 'float32' })),
  reshape: (a) => a.reshape(2, 6),
  permute_unsqueeze: (a) => a.unsqueeze(0).permute(2, 0, 1),
  gather: (a, i) => a.gather(1, i),
  indexSelect: (a, r) => a.indexSelect(0, r),
  cat: (a) => torch.cat([a, a.mul(2)], 1),
  stack: (a, b) => torch.stack([a.index(0), b], 0),
  index_slice: (a) => a.index('1:', '::2'),
  crossEntropy: (x, t) => F.crossEntropy(x, t),
  crossEntropy_weight: (x, t, w) => F.crossEntropy(x, t, { weight: w }),
  crossEntropy_smoothing: (x, t) => F.crossEntropy(x, t, { labelSmoothing: 0.1 }),
  crossEntropy_weight_smoothing: (x, t, w) => F.crossEntropy(x, t, { weight: w, labelSmoothing: 0.2 }),
  crossEntropy_ignore: (x, t) => F.crossEntropy(x, t, { ignoreIndex: 2 }),
  crossEntropy_sum: (x, t) => F.crossEntropy(x, t, { reduction: 'sum' }),
  crossEntropy_none: (x, t) => F.crossEntropy(x, t, { reduction: 'none' }),
  crossEntropy_probs: (x, p) => F.crossEntropy(x, p),
  nllLoss_weight: (x, t, w) => F.nllLoss(x.logSoftmax(1), t, { weight: w }),
  bceWithLogits: (x, y) => F.bceWithLogits(x, y),
  bceWithLogits_posWeight: (x, y) => F.bceWithLogits(x, y, { posWeight: torch.tensor(3, { dtype: 'float32' }) }),
  bceWithLogits_weight_sum: (x, y) => F.bceWithLogits(x, y, { weight: torch.linspace(0.5, 1.5, 6), reduction: 'sum' }),
  mseLoss: (x, y) => F.mseLoss(x, y),
  argmax_dim: (a) => a.argmax(1),
  argmax_all: (a) => a.argmax(),
  oneHot: (t) => torch.oneHot(t, 4),
  gt: (a, b) => a.gt(b),
  eq_scalar: (t) => t.eq(2),
  topk_values: (a) => a.topk(2, 1)[0],
  sort_indices: (a) => a.sort(1, true)[1],
  cumsum: (a) => a.cumsum(1),
};

const cases = fixture<Case[]>('ops.json');

describe('ops match PyTorch', () => {
  it('covers every fixture case', () => {
    expect(cases.map((c) => c.name).sort()).toEqual(Object.keys(OPS).sort());
  });

  for (const c of cases) {
    it(c.name, () => {
      const diff = new Set(Object.keys(c.grads ?? {}).map(Number));
      const xs = c.inputs.map((e, i) => decode(e, { requiresGrad: diff.has(i) }));
      const out = OPS[c.name](...xs);
      expect(out.dtype).toBe(c.output.dtype);
      expectClose(out, c.output, 1e-5);
      if (c.upstream && c.grads) {
        out.mul(decode(c.upstream)).sum().backward();
        for (const [i, g] of Object.entries(c.grads)) expectClose(xs[Number(i)].grad!, g, 1e-5);
      }
    });
  }
});

describe('relu_', () => {
  it('clamps in place (the same tensor back) and backpropagates as relu', () => {
    const x = torch.tensor([-2, -0.5, 0, 0.5, 3], { requiresGrad: true });
    const y = x.mul(2);
    expect(y.relu_()).toBe(y);
    expect(y.toArray()).toEqual([0, 0, 0, 1, 6]);
    y.sum().backward();
    // d/dx relu(2x) = 2 where 2x > 0, else 0
    expect(x.grad!.toArray()).toEqual([0, 0, 0, 2, 2]);
  });
});
