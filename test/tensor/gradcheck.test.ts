// Finite-difference gradient checks for the composite ops (float64): the
// autograd gradient of each loss equals (f(x+h) - f(x-h)) / 2h.
import { describe, it, expect } from 'vitest';
import { torch, nn, type Tensor } from 'finetorch';

const F = nn.functional;

function gradcheck(f: (x: Tensor) => Tensor, x0: Tensor, h = 1e-6, tol = 1e-6): void {
  const x = x0.clone().requiresGrad_();
  f(x).backward();
  const analytic = Array.from(x.grad!.dataSync() as Float64Array);
  const base = Array.from(x0.dataSync() as Float64Array);
  for (let i = 0; i < base.length; i++) {
    const plus = base.slice();
    plus[i] += h;
    const minus = base.slice();
    minus[i] -= h;
    const fp = f(torch.tensor(Float64Array.from(plus), { shape: x0.shape })).item() as number;
    const fm = f(torch.tensor(Float64Array.from(minus), { shape: x0.shape })).item() as number;
    const numeric = (fp - fm) / (2 * h);
    expect(Math.abs(numeric - analytic[i]), `element ${i}: numeric ${numeric} vs autograd ${analytic[i]}`).toBeLessThan(tol);
  }
}

describe('finite-difference gradient checks', () => {
  torch.manualSeed(7);
  const logits = torch.randn([4, 3], { dtype: 'float64' });
  const target = torch.tensor([2, 0, 1, 1]);
  const weight = torch.tensor([0.5, 1.0, 2.0], { dtype: 'float64' });

  it('crossEntropy with class weights and label smoothing', () => {
    gradcheck((x) => F.crossEntropy(x, target, { weight, labelSmoothing: 0.15 }), logits);
  });
  it('crossEntropy with ignoreIndex', () => {
    gradcheck((x) => F.crossEntropy(x, target, { ignoreIndex: 1 }), logits);
  });
  it('logSoftmax composed with gather (a hand-written NLL)', () => {
    gradcheck((x) => x.logSoftmax(1).gather(1, target.unsqueeze(1)).neg().mean(), logits);
  });
  it('softmax-weighted sum (focal-style (1-p)^gamma * log p)', () => {
    gradcheck((x) => {
      const logp = x.logSoftmax(1).gather(1, target.unsqueeze(1));
      return logp.exp().neg().add(1).pow(2).mul(logp).neg().mean();
    }, logits);
  });
  it('bceWithLogits with posWeight and weight', () => {
    const y = torch.tensor([1, 0, 1, 0, 1, 1], { dtype: 'float64' });
    const x0 = torch.randn([6], { dtype: 'float64' });
    gradcheck(
      (x) => F.bceWithLogits(x, y, { posWeight: torch.tensor(2.5, { dtype: 'float64' }), weight: torch.linspace(0.2, 1.2, 6, { dtype: 'float64' }) }),
      x0,
    );
  });
  it('sigmoid, clamp and logsumexp chain', () => {
    gradcheck((x) => x.sigmoid().clamp(0.1, 0.9).logsumexp(0).sum(), logits);
  });
});
