// Optimizer updates against PyTorch: two param groups with different lr and
// weight decay, fixed gradients, six steps (fixtures from scripts/make-fixtures.py).
import { describe, it, expect } from 'vitest';
import { torch, nn, optim, type Tensor } from 'finetorch';
import { fixture, decode, expectClose, flat, type Encoded } from '../helpers';

interface OptCase {
  kind: 'SGD' | 'Adam' | 'AdamW';
  defaults: Record<string, unknown>;
  group2: Record<string, unknown>;
  steps: Encoded[][];
}
const fx = fixture<{ p1: Encoded; p2: Encoded; grads: Encoded[][]; cases: OptCase[] }>('optim.json');

function make(kind: OptCase['kind'], groups: Array<{ params: Tensor[] } & Record<string, unknown>>, defaults: Record<string, unknown>) {
  return kind === 'SGD' ? new optim.SGD(groups, defaults as { lr: number }) : new optim[kind](groups, defaults);
}

describe('optimizers match PyTorch with two param groups', () => {
  for (const c of fx.cases) {
    it(`${c.kind} ${JSON.stringify(c.defaults)} / ${JSON.stringify(c.group2)}`, () => {
      const p1 = decode(fx.p1, { requiresGrad: true });
      const p2 = decode(fx.p2, { requiresGrad: true });
      const opt = make(c.kind, [{ params: [p1] }, { params: [p2], ...c.group2 }], c.defaults);
      expect(opt.paramGroups).toHaveLength(2);
      expect(opt.paramGroups[1].lr).toBe(c.group2.lr);
      fx.grads.forEach(([g1, g2], step) => {
        p1.grad = decode(g1);
        p2.grad = decode(g2);
        opt.step();
        expectClose(p1, c.steps[step][0], 1e-6);
        expectClose(p2, c.steps[step][1], 1e-6);
      });
    });
  }
});

describe('optimizers without a default lr (every group gives its own, as PyTorch allows)', () => {
  // the PyTorch cases above, with the default lr moved into the first group: the same steps
  for (const c of fx.cases) {
    it(`${c.kind} ${JSON.stringify(c.defaults)} / ${JSON.stringify(c.group2)}, lr in the groups only`, () => {
      const p1 = decode(fx.p1, { requiresGrad: true });
      const p2 = decode(fx.p2, { requiresGrad: true });
      const { lr, ...rest } = c.defaults;
      const opt = make(
        c.kind,
        [
          { params: [p1], lr },
          { params: [p2], ...c.group2 },
        ],
        rest,
      );
      expect(opt.paramGroups.map((g) => g.lr)).toEqual([lr, c.group2.lr]);
      fx.grads.forEach(([g1, g2], step) => {
        p1.grad = decode(g1);
        p2.grad = decode(g2);
        opt.step();
        expectClose(p1, c.steps[step][0], 1e-6);
        expectClose(p2, c.steps[step][1], 1e-6);
      });
    });
  }
  it('SGD refuses a group without lr when the options give none, naming the group', () => {
    const p = () => torch.zeros([1], { requiresGrad: true });
    expect(() => new optim.SGD([{ params: [p()], lr: 0.1 }, { params: [p()] }], { momentum: 0.9 })).toThrow(/param group 1 has no lr/);
    expect(() => new optim.SGD([p()], { momentum: 0.9 })).toThrow(/optim\.SGD: lr is required for SGD/);
    const opt = new optim.SGD([{ params: [p()], lr: 0.1 }], { momentum: 0.9 });
    expect(() => opt.addParamGroup({ params: [p()] })).toThrow(/addParamGroup has no lr/);
    expect(opt.addParamGroup({ params: [p()], lr: 0.01 }).momentum).toBe(0.9);
  });
});

describe('param groups', () => {
  it("a group keeps an explicit option equal to libtorch's own default (libtorch 2.x would take the optimizer's instead)", () => {
    const p = () => torch.zeros([1], { requiresGrad: true });
    const sgd = new optim.SGD([{ params: [p()] }, { params: [p()], weightDecay: 0, momentum: 0 }], { lr: 0.1, momentum: 0.9, weightDecay: 0.01 });
    expect(sgd.paramGroups.map((g) => [g.weightDecay, g.momentum])).toEqual([
      [0.01, 0.9],
      [0, 0],
    ]);
    const adamw = new optim.AdamW([{ params: [p()], lr: 1e-3, weightDecay: 1e-2 }], { lr: 0.05, weightDecay: 0.2 });
    expect([adamw.paramGroups[0].lr, adamw.paramGroups[0].weightDecay]).toEqual([1e-3, 1e-2]);
    const g = adamw.addParamGroup({ params: [p()], lr: 1e-3, eps: 1e-8, betas: [0.9, 0.999] });
    expect([g.lr, g.weightDecay]).toEqual([1e-3, 0.2]);
    adamw.paramGroups[0].lr = 0.01;
    adamw.paramGroups[0].lr = 1e-3;
    expect(adamw.paramGroups[0].lr).toBe(1e-3);
  });

  it('lr is readable and writable at runtime and changes the next step', () => {
    const p = torch.tensor([1, 2, 3], { dtype: 'float32', requiresGrad: true });
    const opt = new optim.SGD([p], { lr: 0.1 });
    opt.paramGroups[0].lr = 0.5;
    expect(opt.paramGroups[0].lr).toBe(0.5);
    p.grad = torch.ones([3]);
    opt.step();
    expect(p.toArray()).toEqual([0.5, 1.5, 2.5]);
  });

  it('addParamGroup adds a live group (gradual unfreezing) with defaults filled in', () => {
    const a = torch.tensor([1], { dtype: 'float32', requiresGrad: true });
    const b = torch.tensor([1], { dtype: 'float32', requiresGrad: true });
    const opt = new optim.AdamW([a], { lr: 1e-3, weightDecay: 0 });
    const g = opt.addParamGroup({ params: [b], lr: 1e-4 });
    expect(opt.paramGroups).toHaveLength(2);
    expect(g.lr).toBe(1e-4);
    expect(g.weightDecay).toBe(0);
    expect(g.params[0].id).toBe(b.id);
    expect(() => opt.addParamGroup({ params: [a] })).toThrow(/already appears in a param group/);
  });

  it('user fields on a group are kept (schedulers store initialLr there)', () => {
    const opt = new optim.Adam([torch.zeros([1], { requiresGrad: true })], { lr: 0.01 });
    opt.paramGroups[0].initialLr = 0.01;
    expect(opt.paramGroups[0].initialLr).toBe(0.01);
  });

  it('zeroGrad sets gradients to none by default', () => {
    const p = torch.ones([2], { requiresGrad: true });
    const opt = new optim.SGD([p], { lr: 0.1 });
    p.sum().backward();
    expect(p.grad).not.toBeNull();
    opt.zeroGrad();
    expect(p.grad).toBeNull();
    p.sum().backward();
    opt.zeroGrad({ setToNone: false });
    expect(p.grad!.toArray()).toEqual([0, 0]);
  });

  it('a parameter without requiresGrad does not move even with weight decay', () => {
    const frozen = torch.tensor([1, 2], { dtype: 'float32' });
    const live = torch.tensor([1, 2], { dtype: 'float32', requiresGrad: true });
    const opt = new optim.AdamW([frozen, live], { lr: 0.1, weightDecay: 0.5 });
    live.mul(live).sum().backward();
    opt.step();
    expect(frozen.toArray()).toEqual([1, 2]);
    expect(live.toArray()).not.toEqual([1, 2]);
  });
});

describe('optimizer state save/load for resuming', () => {
  for (const kind of ['SGD', 'Adam', 'AdamW'] as const) {
    it(`${kind}: resuming from stateDict continues exactly like an uninterrupted run`, () => {
      const run = (resumeAt: number | null) => {
        torch.manualSeed(11);
        const model = new nn.Linear(3, 2);
        const groups = [{ params: [model.parameters()[0]] }, { params: [model.parameters()[1]], lr: 0.003 }];
        const defaults = kind === 'SGD' ? { lr: 0.05, momentum: 0.9 } : { lr: 0.01 };
        let opt = make(kind, groups, defaults);
        const x = torch.randn([8, 3]);
        const y = torch.tensor([0, 1, 1, 0, 1, 0, 0, 1]);
        for (let step = 0; step < 6; step++) {
          if (step === resumeAt) {
            const saved = opt.stateDict();
            // a fresh optimizer over the same parameters, as after a restart
            const restored = make(kind, [{ params: [model.parameters()[0]] }, { params: [model.parameters()[1]] }], { lr: 1 });
            restored.loadStateDict(saved);
            expect(restored.paramGroups[1].lr).toBe(0.003);
            opt.dispose();
            opt = restored;
          }
          opt.zeroGrad();
          nn.functional.crossEntropy(model.forward(x), y).backward();
          opt.step();
        }
        return model.parameters().flatMap(flat);
      };
      const straight = run(null);
      const resumed = run(3);
      expect(resumed).toEqual(straight);
    });
  }

  it("stateDict has PyTorch's layout", () => {
    const p = torch.ones([2], { requiresGrad: true });
    const opt = new optim.Adam([p], { lr: 0.1 });
    p.sum().backward();
    opt.step();
    const sd = opt.stateDict();
    expect(sd.paramGroups[0].params).toEqual([0]);
    expect(sd.paramGroups[0].lr).toBe(0.1);
    expect(sd.state[0].step).toBe(1);
    expect((sd.state[0].expAvg as Tensor).shape).toEqual([2]);
  });
});

describe('optimizer validation', () => {
  const p = () => [torch.zeros([1], { requiresGrad: true })];
  it('rejects bad options with the field named', () => {
    expect(() => new optim.SGD(p(), { lr: -1 })).toThrow(/optim\.SGD\.lr/);
    expect(() => new optim.Adam(p(), { betas: [0.9, 1.5] })).toThrow(/betas/);
    expect(() => new optim.SGD(p(), { lr: 0.1, nesterov: true })).toThrow(/nesterov needs momentum/);
    expect(() => new optim.AdamW([], {})).toThrow(/non-empty/);
    expect(() => new optim.AdamW([torch.ones([1], { requiresGrad: true }).mul(2)], {})).toThrow(/not a leaf/);
    expect(() => new optim.AdamW(p(), { lr: 0.1, foo: 1 } as never)).toThrow(/foo|Unrecognized/i);
    // unknown keys on a group are kept on it, as PyTorch keeps them in the group dict
    expect(new optim.AdamW([{ params: p(), name: 'head' } as never]).paramGroups[0].name).toBe('head');
    const opt = new optim.SGD(p(), { lr: 0.1 });
    expect(() => {
      opt.paramGroups[0].lr = Number.NaN;
    }).toThrow(/lr/);
    expect(opt.paramGroups[0].lr).toBe(0.1);
  });
});
