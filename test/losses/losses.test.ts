// Focal losses against PyTorch references: torchvision's sigmoid_focal_loss and
// Lin et al.'s softmax focal loss written in PyTorch; values and gradients.
import { describe, it, expect } from 'vitest';
import { torch, nn, losses, type Tensor } from 'finetorch';
import { fixture, flat } from '../helpers';

interface Enc {
  shape: number[];
  data: number[];
}
const fx = fixture<{
  logits: Enc;
  inputs: Enc;
  targets: Enc;
  focal: Array<{
    gamma: number;
    alpha: number | number[] | null;
    reduction: 'mean' | 'sum' | 'none';
    ignoreIndex: number | null;
    target: number[];
    loss: Enc;
    grad: Enc;
  }>;
  sigmoid: Array<{ alpha: number; gamma: number; reduction: 'mean' | 'sum' | 'none'; loss: Enc; grad: Enc }>;
}>('losses.json');

const t = (e: Enc, requiresGrad = false) => torch.tensor(Float64Array.from(e.data), { shape: e.shape, dtype: 'float32', requiresGrad });
function close(got: Tensor, want: Enc, tol: number, what: string) {
  expect(got.shape, what).toEqual(want.shape);
  flat(got).forEach((g, i) => expect(Math.abs(g - want.data[i]), `${what}[${i}]`).toBeLessThan(tol));
}

describe('losses.focalLoss', () => {
  it(`matches the PyTorch reference in ${fx.focal.length} settings (gamma, alpha, reduction, ignoreIndex), values and gradients`, () => {
    for (const c of fx.focal) {
      const what = JSON.stringify({ gamma: c.gamma, alpha: c.alpha, reduction: c.reduction, ignore: c.ignoreIndex });
      const x = t(fx.logits, true);
      const loss = losses.focalLoss(x, torch.tensor(c.target), {
        gamma: c.gamma,
        alpha: c.alpha ?? undefined,
        reduction: c.reduction,
        ignoreIndex: c.ignoreIndex ?? undefined,
      });
      close(loss, c.loss, 1e-5, `${what} loss`);
      loss.sum().backward();
      close(x.grad!, c.grad, 1e-5, `${what} grad`);
    }
  });

  it('with gamma 0 and no alpha equals cross-entropy', () => {
    torch.manualSeed(1);
    const logits = torch.randn([16, 5]);
    const target = torch.randint(0, 5, [16]);
    const a = losses.focalLoss(logits, target, { gamma: 0 }).item() as number;
    const b = nn.functional.crossEntropy(logits, target).item() as number;
    expect(Math.abs(a - b)).toBeLessThan(1e-6);
  });

  it('rejects bad arguments clearly', () => {
    const x = torch.randn([4, 3]);
    expect(() => losses.focalLoss(x, torch.tensor([0, 1]))).toThrow(/target must be a \[N\] tensor/);
    expect(() => losses.focalLoss(x, torch.tensor([0, 1, 2, 0]), { alpha: [1, 2] })).toThrow(/alpha has 2 entries for 3 classes/);
    expect(() => losses.focalLoss(x, torch.tensor([0, 1, 2, 0]), { gamma: -1 })).toThrow(/gamma must be >= 0/);
  });
});

describe('losses.sigmoidFocalLoss', () => {
  it(`matches torchvision.ops.sigmoid_focal_loss in ${fx.sigmoid.length} settings, values and gradients`, () => {
    for (const c of fx.sigmoid) {
      const what = JSON.stringify({ alpha: c.alpha, gamma: c.gamma, reduction: c.reduction });
      const x = t(fx.inputs, true);
      const loss = losses.sigmoidFocalLoss(x, t(fx.targets), { alpha: c.alpha, gamma: c.gamma, reduction: c.reduction });
      close(loss, c.loss, 1e-5, `${what} loss`);
      loss.sum().backward();
      close(x.grad!, c.grad, 1e-5, `${what} grad`);
    }
  });
});
