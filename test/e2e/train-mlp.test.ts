// End to end: a small MLP learns a synthetic task to > 95% accuracy with AdamW
// and two param groups, while a frozen parameter does not move.
import { describe, it, expect } from 'vitest';
import { torch, nn, optim, trainStepAsync, type Tensor } from 'finetorch';
import { flat } from '../helpers';

function data(n: number) {
  const x = torch.rand([n, 2]).mul(4).sub(2);
  const y = x.pow(2).sum(1).lt(1.5).long();
  return { x, y };
}

function accuracy(model: nn.Module, x: Tensor, y: Tensor): number {
  model.eval();
  const acc = torch.noGrad(() => model.forward(x).argmax(1).eq(y).float().mean().item()) as number;
  model.train();
  return acc;
}

describe('end-to-end training', () => {
  it('sync loop: > 95% with AdamW, two groups, a frozen parameter unchanged', () => {
    torch.manualSeed(1);
    const train = data(1500);
    const test = data(500);
    const l1 = new nn.Linear(2, 64);
    const model = new nn.Sequential(l1, new nn.ReLU(), new nn.Linear(64, 64), new nn.ReLU(), new nn.Linear(64, 2));
    const frozen = l1.parameters()[1]; // first layer's bias
    frozen.requiresGrad_(false);
    const before = flat(frozen);
    const [w0, , w2, b2, w4, b4] = model.parameters();
    const opt = new optim.AdamW([
      { params: [w0, frozen, w2, b2], lr: 5e-3 },
      { params: [w4, b4], lr: 1e-2, weightDecay: 0 },
    ]);
    for (let epoch = 0; epoch < 25; epoch++) {
      const perm = torch.randperm(1500);
      for (let i = 0; i < 1500; i += 100) {
        torch.tidy(() => {
          const idx = perm.narrow(0, i, 100);
          opt.zeroGrad();
          nn.functional.crossEntropy(model.forward(train.x.indexSelect(0, idx)), train.y.indexSelect(0, idx)).backward();
          opt.step();
        });
      }
    }
    const acc = accuracy(model, test.x, test.y);
    console.log(`sync MLP test accuracy: ${(acc * 100).toFixed(1)}%`);
    expect(acc).toBeGreaterThan(0.95);
    expect(flat(frozen)).toEqual(before);
    expect(frozen.grad).toBeNull();
  });

  it('async loop with trainStepAsync reaches the same bar', async () => {
    torch.manualSeed(2);
    const train = data(1500);
    const test = data(500);
    const body = new nn.Sequential(new nn.Linear(2, 64), new nn.ReLU(), new nn.Linear(64, 64), new nn.ReLU());
    const head = new nn.Linear(64, 2);
    const model = new nn.Sequential({ body, head });
    const opt = new optim.AdamW([
      { params: body.parameters(), lr: 5e-3 },
      { params: head.parameters(), lr: 1e-2 },
    ]);
    for (let epoch = 0; epoch < 25; epoch++) {
      const perm = torch.randperm(1500);
      for (let i = 0; i < 1500; i += 100) {
        const idx = perm.narrow(0, i, 100);
        const r = await trainStepAsync({ model, optimizer: opt, input: train.x.indexSelect(0, idx), target: train.y.indexSelect(0, idx) });
        r.loss.dispose();
        r.output.dispose();
      }
    }
    const acc = accuracy(model, test.x, test.y);
    console.log(`async MLP test accuracy: ${(acc * 100).toFixed(1)}%`);
    expect(acc).toBeGreaterThan(0.95);
  });
});
