// Trainer pieces: recipe validation, gradient clipping against PyTorch,
// early stopping, best checkpoints, predict, diverging loss.
import { describe, it, expect } from 'vitest';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { torch, nn, optim, fit, predict, clipGradNorm, parseRecipe, TensorLoader, type TrainEvent } from 'finetorch';
import { flat } from '../helpers';

describe('recipe config', () => {
  const good = { model: { arch: 'resnet50', checkpoint: 'r50.pth', numClasses: 2 }, freeze: { blocks: 4 }, optimizer: { bottomLr: 1e-6, topLr: 1e-4 }, schedule: { kind: 'linear', warmupSteps: 100 }, loss: { type: 'focal', gamma: 2 }, epochs: 10 };

  it('accepts a valid recipe and fills the defaults', () => {
    const r = parseRecipe(good);
    expect(r.optimizer.type).toBe('AdamW');
    expect(r.head.swap).toBe(true);
    expect(r.batchSize).toBe(32);
    expect(r.freeze!.trainBatchNorm).toBe(false);
  });

  it('names every bad field, its value and what was expected', () => {
    const bad = { ...good, model: { ...good.model, numClasses: 0 }, schedule: { kind: 'exponential' }, optimizer: {}, epochs: 'ten', extra: 1 };
    let message = '';
    try { parseRecipe(bad); } catch (e) { message = (e as Error).message; }
    expect(message).toMatch(/recipe\.model\.numClasses: .*\(got 0\)/);
    expect(message).toMatch(/recipe\.schedule\.kind: .*linear.*\(got "exponential"\)/);
    expect(message).toMatch(/recipe\.optimizer: give lr, or bottomLr and topLr, or lrs/);
    expect(message).toMatch(/recipe\.epochs: .*number.*\(got "ten"\)/);
    expect(message).toMatch(/extra/);
  });
});

describe('training utilities', () => {
  it('clipGradNorm scales gradients like torch.nn.utils.clip_grad_norm_', () => {
    const script = `
import torch, json
torch.manual_seed(0)
a = torch.randn(3, 4, requires_grad=True); b = torch.randn(5, requires_grad=True)
(a.sin().sum() * 3 + (b ** 2).sum()).backward()
data = {'a': a.tolist(), 'b': b.tolist()}
total = torch.nn.utils.clip_grad_norm_([a, b], 1.5)
print(json.dumps({**data, 'total': total.item(), 'ga': a.grad.reshape(-1).tolist(), 'gb': b.grad.tolist()}))`;
    const ref = JSON.parse(execFileSync('/usr/bin/python3', ['-c', script], { encoding: 'utf8' }));
    const a = torch.tensor(ref.a, { dtype: 'float32', requiresGrad: true });
    const b = torch.tensor(ref.b, { dtype: 'float32', requiresGrad: true });
    a.sin().sum().mul(3).add(b.pow(2).sum()).backward();
    const total = clipGradNorm([a, b], 1.5);
    expect(Math.abs(total - ref.total)).toBeLessThan(1e-5);
    flat(a.grad!).forEach((g, i) => expect(Math.abs(g - ref.ga[i])).toBeLessThan(1e-6));
    flat(b.grad!).forEach((g, i) => expect(Math.abs(g - ref.gb[i])).toBeLessThan(1e-6));
  });

  it('early stopping, best checkpoint and predict', async () => {
    torch.manualSeed(1);
    const x = torch.randn([200, 4]);
    const y = x.sum(1).gt(0).long();
    const model = new nn.Sequential(new nn.Linear(4, 8), new nn.ReLU(), new nn.Linear(8, 2));
    const optimizer = new optim.SGD(model.parameters(), { lr: 0 }); // nothing improves after epoch 0
    const dir = mkdtempSync(join(tmpdir(), 'finetorch-fit-'));
    const events: TrainEvent[] = [];
    const r = await fit({ model, optimizer, train: new TensorLoader(x, y, { batchSize: 50 }), val: new TensorLoader(x, y, { batchSize: 100 }), epochs: 20,
      earlyStopping: { metric: 'accuracy', patience: 2 }, checkpointDir: dir, onEvent: (e) => events.push(e) });
    expect(r.stoppedEarly).toBe(true);
    expect(r.epochs).toBe(3);
    expect(r.best).toMatchObject({ epoch: 0, metric: 'accuracy' });
    expect(events.some((e) => e.type === 'early-stop')).toBe(true);
    expect(existsSync(join(dir, 'best', 'model.safetensors'))).toBe(true);
    expect(existsSync(join(dir, 'last', 'trainer.json'))).toBe(true);
    const p = await predict(model, new TensorLoader(x, y, { batchSize: 64 }));
    expect(p.predictions).toHaveLength(200);
    expect(p.probabilities[0].reduce((s, v) => s + v, 0)).toBeCloseTo(1, 6);
    rmSync(dir, { recursive: true, force: true });
  });

  it('a diverging loss stops training with a clear error', async () => {
    const x = torch.randn([20, 2]);
    const y = torch.tensor(Array.from({ length: 20 }, (_, i) => i % 2));
    const model = new nn.Linear(2, 2);
    const optimizer = new optim.SGD(model.parameters(), { lr: 50 }); // the squared outputs grow without bound
    await expect(fit({ model, optimizer, loss: (l) => l.pow(2).mean(), train: new TensorLoader(x, y, { batchSize: 5 }), epochs: 50 })).rejects.toThrow(/training diverged/);
  });
});
