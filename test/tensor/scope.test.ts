// tidy() frees intermediates; noGrad() turns recording off.
import { describe, it, expect } from 'vitest';
import { torch, type Tensor } from 'finetorch';

describe('tidy', () => {
  it('disposes intermediates and keeps what is returned', () => {
    const made: Tensor[] = [];
    const out = torch.tidy(() => {
      const a = torch.ones([3]);
      const b = a.mul(2);
      made.push(a, b);
      return { sum: b.sum(), parts: [b.add(1)] };
    });
    expect(made.every((t) => t.isDisposed)).toBe(true);
    expect(out.sum.item()).toBe(6);
    expect(out.parts[0].toArray()).toEqual([3, 3, 3]);
  });

  it('nested scopes hand results to the outer scope; keep() exempts a tensor', () => {
    let inner!: Tensor;
    let kept!: Tensor;
    torch.tidy(() => {
      inner = torch.tidy(() => torch.ones([1]).add(1));
      kept = torch.keep(torch.zeros([1]));
      expect(inner.isDisposed).toBe(false);
    });
    expect(inner.isDisposed).toBe(true);
    expect(kept.isDisposed).toBe(false);
  });

  it('disposes on throw and rejects async functions', () => {
    let t!: Tensor;
    expect(() =>
      torch.tidy(() => {
        t = torch.ones([1]);
        throw new Error('boom');
      }),
    ).toThrow('boom');
    expect(t.isDisposed).toBe(true);
    expect(() => torch.tidy((async () => torch.ones([1])) as never)).toThrow(/synchronous/);
  });

  it('a disposed tensor cannot be used and dispose is idempotent', () => {
    const t = torch.ones([2]);
    t.dispose();
    t.dispose();
    expect(() => t.sum()).toThrow(/disposed/);
    {
      using u = torch.ones([1]);
      expect(u.isDisposed).toBe(false);
    }
  });
});

describe('noGrad', () => {
  it('records no graph inside and restores the mode after', () => {
    const x = torch.ones([2], { requiresGrad: true });
    const y = torch.noGrad(() => x.mul(2));
    expect(y.requiresGrad).toBe(false);
    expect(torch.isGradEnabled()).toBe(true);
    expect(x.mul(2).requiresGrad).toBe(true);
    expect(() =>
      torch.noGrad(() => {
        throw new Error('x');
      }),
    ).toThrow('x');
    expect(torch.isGradEnabled()).toBe(true);
  });
  it('detach() cuts the graph', () => {
    const x = torch.ones([2], { requiresGrad: true });
    expect(x.mul(3).detach().requiresGrad).toBe(false);
  });
});
