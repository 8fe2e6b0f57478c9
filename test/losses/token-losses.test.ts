// Token losses against PyTorch (Debian's /usr/bin/python3, python3-torch):
// the focal loss over [B, T, K] token logits (ignore_index -100, per-class
// alpha, gamma, every reduction) against the focal formula written in
// PyTorch and, at gamma 0, against F.cross_entropy; losses.crfLoss (the CRF
// NLL, each reduction, the default mask from tags != -100, with and without
// the focal term) against pytorch-crf's algorithm written in PyTorch
// (test/losses/crf_reference.py); values and gradients within 1e-5.
import { describe, it, expect } from 'vitest';
import { torch, nn, losses, type Tensor } from 'finetorch';
import { flat } from '../helpers';
import { pythonReference } from './crf-reference';

interface Enc {
  shape: number[];
  data: number[];
}
const enc = (t: Tensor): Enc => ({ shape: t.shape, data: flat(t) });

function close(got: Tensor, want: Enc, tol: number, what: string): void {
  expect(got.shape, what).toEqual(want.shape);
  const g = flat(got);
  let worst = 0;
  g.forEach((v, i) => (worst = Math.max(worst, Math.abs(v - want.data[i]))));
  expect(worst, `${what}: max abs diff ${worst}`).toBeLessThanOrEqual(tol);
}

// [B=3, T=5, K=4] logits; padding and non-first pieces -100
torch.manualSeed(7);
const logitsValues = torch.randn([3, 5, 4]).mul(2);
const target = torch.tensor([
  [0, 1, 3, -100, 2],
  [2, 2, -100, -100, -100],
  [3, 0, 0, 1, -100],
]);

describe('losses.focalLoss over tokens [B, T, K]', () => {
  const cases = [
    { gamma: 2, alpha: null, reduction: 'mean' },
    { gamma: 2, alpha: [0.25, 1, 2, 4], reduction: 'mean' },
    { gamma: 1.5, alpha: 0.5, reduction: 'sum' },
    { gamma: 2, alpha: [0.25, 1, 2, 4], reduction: 'none' },
    { gamma: 0, alpha: null, reduction: 'mean' },
  ] as const;
  const ref = pythonReference<{ cases: Array<{ loss: Enc; grad: Enc }>; crossEntropy: number }>({
    job: 'focal',
    logits: enc(logitsValues),
    target: enc(target),
    cases,
  });

  it('matches the focal formula in PyTorch (ignore_index, alpha, gamma, reductions): values and gradients within 1e-5', () => {
    cases.forEach((c, i) => {
      const x = logitsValues.clone().requiresGrad_(true);
      const loss = losses.focalLoss(x, target, {
        gamma: c.gamma,
        alpha: c.alpha === null ? undefined : (c.alpha as number | number[]),
        reduction: c.reduction,
        ignoreIndex: -100,
      });
      const what = JSON.stringify(c);
      close(loss, ref.cases[i].loss, 1e-5, `${what} loss`);
      loss.sum().backward();
      close(x.grad!, ref.cases[i].grad, 1e-5, `${what} grad`);
      // ignored positions get no gradient
      const g = flat(x.grad!);
      expect(g.slice((0 * 5 + 3) * 4, (0 * 5 + 4) * 4).every((v) => v === 0)).toBe(true);
    });
  });

  it("gamma 0, no alpha: PyTorch's cross_entropy with ignore_index=-100", () => {
    const loss = losses.focalLoss(logitsValues, target, { gamma: 0, ignoreIndex: -100 }).item() as number;
    expect(Math.abs(loss - ref.crossEntropy)).toBeLessThan(1e-5);
  });

  it("reduction 'none' keeps the token layout [B, T] with 0 at ignored positions", () => {
    const loss = losses.focalLoss(logitsValues, target, { ignoreIndex: -100, reduction: 'none' });
    expect(loss.shape).toEqual([3, 5]);
    expect(flat(loss)[3]).toBe(0);
  });

  it('rejects mismatched shapes, out-of-range tags and bad options, naming them', () => {
    expect(() => losses.focalLoss(logitsValues, torch.tensor([[0, 1]]))).toThrow(/target must be a \[B, T\] tensor of class indices matching logits \[3,5,4\]/);
    expect(() => losses.focalLoss(logitsValues, target)).toThrow(/target holds class -100, outside 0\.\.3 \(pass ignoreIndex/);
    expect(() => losses.focalLoss(logitsValues, target.add(0).mul(0).add(4), { ignoreIndex: -100 })).toThrow(/target holds class 4, outside 0\.\.3/);
    expect(() => losses.focalLoss(logitsValues, target, { ignoreIndex: -100, alpha: [1, 2] })).toThrow(/alpha has 2 entries for 4 classes/);
    expect(() => losses.focalLoss(logitsValues, target.to('float32'), { ignoreIndex: -100 })).toThrow(/target must hold int64 class indices/);
  });
});

// word-level tags: -100 only past each sequence's end (the CRF's mask is a prefix)
const crfTags = torch.tensor([
  [0, 1, 3, 2, 2],
  [2, 2, -100, -100, -100],
  [3, 0, 0, 1, -100],
]);

describe('losses.crfLoss', () => {
  // batch-first emissions [B=3, T=5, K=4]; the mask comes from tags != -100
  const crf = new nn.CRF(4, { batchFirst: true });
  const params = Object.fromEntries(crf.namedParameters().map(([n, p]) => [n, enc(p)]));
  const cases = [
    { reduction: 'mean' },
    { reduction: 'sum' },
    { reduction: 'none' },
    { reduction: 'token_mean' },
    { reduction: 'mean', focalWeight: 0.5, gamma: 2, alpha: [0.25, 1, 2, 4] },
    { reduction: 'none', focalWeight: 2, gamma: 1, alpha: null },
    { reduction: 'token_mean', focalWeight: 1, gamma: 2, alpha: null },
  ] as const;
  const ref = pythonReference<{ cases: Array<{ loss: Enc; grad: Enc; crfGrads: Record<string, Enc> }>; decode: number[][] }>({
    job: 'crfLoss',
    emissions: enc(logitsValues),
    tags: enc(crfTags),
    crf: params,
    cases,
  });

  it("is pytorch-crf's negative log-likelihood (mask = tags != -100), with the focal term when asked: values and gradients (emissions and CRF) within 1e-5", () => {
    cases.forEach((c, i) => {
      const x = logitsValues.clone().requiresGrad_(true);
      crf.zeroGrad();
      const focal =
        'focalWeight' in c ? { weight: c.focalWeight, gamma: c.gamma, alpha: c.alpha === null ? undefined : (c.alpha as unknown as number[]) } : undefined;
      const loss = losses.crfLoss(crf, x, crfTags, undefined, { reduction: c.reduction, focal });
      const what = JSON.stringify(c);
      close(loss, ref.cases[i].loss, 1e-5, `${what} loss`);
      loss.sum().backward();
      close(x.grad!, ref.cases[i].grad, 1e-5, `${what} emissions grad`);
      for (const [name, p] of crf.namedParameters()) close(p.grad!, ref.cases[i].crfGrads[name], 1e-5, `${what} ${name}.grad`);
    });
    expect(crf.decode(logitsValues, crfTags.ne(-100))).toEqual(ref.decode);
  });

  it('an explicit mask gives the same loss as the mask from tags', () => {
    const a = losses.crfLoss(crf, logitsValues, crfTags).item() as number;
    const b = losses.crfLoss(crf, logitsValues, crfTags, crfTags.ne(-100)).item() as number;
    expect(a).toBe(b);
  });

  it('rejects what does not fit, naming it', () => {
    expect(() => losses.crfLoss(crf, logitsValues.narrow(2, 0, 3), target)).toThrow(/emissions have 3 tags in their last dimension but the CRF has 4/);
    expect(() => losses.crfLoss(crf, logitsValues, crfTags.narrow(1, 0, 4))).toThrow(/tags must be int64 \[B, T\] = \[3, 5\]/);
    expect(() => losses.crfLoss(crf, logitsValues, crfTags.clamp(0, null).add(1))).toThrow(/tags hold 4 at a position the mask keeps; tags must be in 0\.\.3/);
    // -100 inside a sequence makes a mask that is not a prefix: the CRF says so
    expect(() => losses.crfLoss(crf, logitsValues, target)).toThrow(/not a left-aligned prefix/);
    expect(() => losses.crfLoss(crf, logitsValues, crfTags, undefined, { reduction: 'avg' as never })).toThrow(/reduction must be one of/);
    expect(() => losses.crfLoss(crf, logitsValues, crfTags, undefined, { focal: { weight: -1 } })).toThrow(/focal must be \{ weight >= 0/);
    expect(() => losses.crfLoss({} as never, logitsValues, crfTags)).toThrow(/crf must be an nn\.CRF/);
  });
});
