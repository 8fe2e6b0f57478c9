// Work off the main thread: same results as the synchronous calls, the event
// loop keeps running meanwhile, and calls on one module are serialised.
import { describe, it, expect } from 'vitest';
import { torch, nn, optim, trainStepAsync } from 'finetorch';
import { flat } from '../helpers';

describe('async work', () => {
  it('forwardAsync equals forward', async () => {
    const m = new nn.Sequential(new nn.Linear(8, 16), new nn.GELU(), new nn.Linear(16, 3));
    const x = torch.randn([4, 8]);
    expect(flat(await m.forwardAsync(x))).toEqual(flat(m.forward(x)));
  });

  it('backwardAsync and stepAsync equal backward and step', async () => {
    const make = () => {
      torch.manualSeed(5);
      return new nn.Linear(4, 2);
    };
    const a = make();
    const b = make();
    const x = torch.randn([6, 4]);
    const y = torch.tensor([0, 1, 1, 0, 1, 0]);
    const oa = new optim.Adam(a.parameters(), { lr: 0.1 });
    const ob = new optim.Adam(b.parameters(), { lr: 0.1 });
    nn.functional.crossEntropy(a.forward(x), y).backward();
    oa.step();
    await nn.functional.crossEntropy(b.forward(x), y).backwardAsync();
    await ob.stepAsync();
    expect(b.parameters().flatMap(flat)).toEqual(a.parameters().flatMap(flat));
  });

  it('trainStepAsync equals the same step done by hand', async () => {
    const make = () => {
      torch.manualSeed(6);
      return new nn.Sequential(new nn.Linear(4, 8), new nn.ReLU(), new nn.Linear(8, 3));
    };
    const a = make();
    const b = make();
    const x = torch.randn([5, 4]);
    const y = torch.tensor([0, 2, 1, 2, 0]);
    const oa = new optim.SGD(a.parameters(), { lr: 0.1, momentum: 0.9 });
    const ob = new optim.SGD(b.parameters(), { lr: 0.1, momentum: 0.9 });
    for (let i = 0; i < 3; i++) {
      oa.zeroGrad();
      const loss = nn.functional.crossEntropy(a.forward(x), y, { labelSmoothing: 0.1 });
      loss.backward();
      oa.step();
      const r = await trainStepAsync({ model: b, optimizer: ob, input: x, target: y, labelSmoothing: 0.1 });
      expect(r.loss.item()).toBeCloseTo(loss.item() as number, 6);
    }
    expect(b.parameters().flatMap(flat)).toEqual(a.parameters().flatMap(flat));
  });

  it('noGrad applies to async work started inside it', async () => {
    const m = new nn.Linear(3, 3);
    const out = await torch.noGrad(() => m.forwardAsync(torch.ones([1, 3])));
    expect(out.requiresGrad).toBe(false);
    expect((await m.forwardAsync(torch.ones([1, 3]))).requiresGrad).toBe(true);
  });

  it('the event loop runs while a long forward is on a worker thread', async () => {
    const m = new nn.Sequential(new nn.Linear(1024, 1024), new nn.ReLU(), new nn.Linear(1024, 1024));
    const x = torch.randn([1024, 1024]);
    let ticks = 0;
    const timer = setInterval(() => ticks++, 1);
    const pending = [];
    for (let i = 0; i < 8; i++) pending.push(m.forwardAsync(x));
    await Promise.all(pending);
    clearInterval(timer);
    expect(ticks).toBeGreaterThan(0);
  });

  it('concurrent calls on one module are serialised and all correct', async () => {
    const m = new nn.Sequential(new nn.Linear(16, 16), new nn.Tanh());
    const x = torch.randn([32, 16]);
    const want = flat(m.forward(x));
    const outs = await Promise.all(Array.from({ length: 16 }, () => m.forwardAsync(x)));
    for (const o of outs) expect(flat(o)).toEqual(want);
  });

  it("errors in async work reject the Promise with PyTorch's message", async () => {
    const m = new nn.Linear(4, 2);
    await expect(m.forwardAsync(torch.ones([1, 3]))).rejects.toThrow(/cannot be multiplied/);
    await expect(torch.ones([2]).backwardAsync()).rejects.toThrow(/does not require grad|implicitly created only for scalar/);
  });
});
