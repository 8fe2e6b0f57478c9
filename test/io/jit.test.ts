// TorchScript files made by torch.jit.script and torch.jit.trace: load, list
// parameters, run (bit-identical to torchvision), train, swap the head, save.
import { describe, it, expect, beforeAll } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { torch, nn, optim, io, jit, type Tensor } from 'finetorch';
import { flat } from '../helpers';
import { reference } from '../reference';

let dir = '';
beforeAll(() => {
  dir = reference('make-vision-fixtures.py', 'vision-jit', ['resnet18'], ['resnet18.script.pt', 'resnet18.trace.pt', 'resnet18.train.safetensors']);
}, 600000);

const maxDiff = (a: Tensor, b: Tensor) => {
  expect(a.shape).toEqual(b.shape);
  return a.sub(b).abs().max().item() as number;
};

describe('TorchScript modules', () => {
  for (const kind of ['script', 'trace']) {
    it(`torch.jit.${kind}: parameters in PyTorch's names and order, eval output equal to torchvision`, () => {
      const m = jit.load(join(dir, `resnet18.${kind}.pt`));
      expect(jit.isScriptModule(m)).toBe(true);
      const eager = io.load(join(dir, 'resnet18.pth'));
      expect(Object.keys(m.stateDict())).toEqual(Object.keys(eager));
      expect(m.namedParameters().map(([n]) => n)).toEqual(Object.keys(eager).filter((k) => !/running_|num_batches/.test(k)));
      m.eval();
      const ref = io.load(join(dir, 'resnet18.io.safetensors'));
      const diff = torch.noGrad(() => maxDiff(m.forward(ref.input), ref.output));
      console.log(`parity resnet18 torch.jit.${kind}: max abs diff ${diff.toExponential(2)}`);
      expect(diff).toBeLessThanOrEqual(1e-4);
    });
  }

  it('a scripted module trains like the eager one (one SGD step in train mode)', () => {
    const m = jit.load(join(dir, 'resnet18.script.pt'));
    const ref = io.load(join(dir, 'resnet18.io.safetensors'));
    const want = io.load(join(dir, 'resnet18.train.safetensors'));
    m.train();
    expect(m.training).toBe(true);
    const opt = new optim.SGD(m.parameters(), { lr: 0.1, momentum: 0.9 });
    const loss = nn.functional.crossEntropy(m.forward(ref.input), want.target);
    expect(Math.abs((loss.item() as number) - (want.loss.item() as number))).toBeLessThan(1e-4);
    loss.backward();
    opt.step();
    const sd = m.stateDict();
    for (const name of ['conv1.weight', 'bn1.running_mean', 'layer4.1.bn2.running_var', 'fc.bias'])
      expect(maxDiff(sd[name], want[`after.${name}`]), name).toBeLessThan(1e-4);
  });

  it('swaps a Linear head by replacing its parameters; the graph uses them and gradients reach them', () => {
    const m = jit.load(join(dir, 'resnet18.script.pt'));
    const fc = m.getSubmodule('fc');
    fc.registerParameter('weight', torch.randn([2, 512]).mul(0.01));
    fc.registerParameter('bias', torch.zeros([2]));
    m.eval();
    const out = m.forward(torch.randn([3, 3, 64, 64]));
    expect(out.shape).toEqual([3, 2]);
    out.sum().backward();
    const grads = Object.fromEntries(m.namedParameters().map(([n, p]) => [n, p.grad]));
    expect(grads['fc.weight']!.shape).toEqual([2, 512]);
    expect(grads['conv1.weight']).not.toBeNull();
  });

  it('saves and loads back with the same outputs; bad files are clear errors', () => {
    const tmp = mkdtempSync(join(tmpdir(), 'finetorch-jit-'));
    const m = jit.load(join(dir, 'resnet18.trace.pt'));
    m.eval();
    jit.save(m, join(tmp, 'copy.pt'));
    const again = jit.load(join(tmp, 'copy.pt'));
    again.eval();
    const x = torch.randn([1, 3, 64, 64]);
    expect(flat(again.forward(x))).toEqual(flat(m.forward(x)));
    expect(() => jit.load(join(dir, 'resnet18.pth'))).toThrow(/not a loadable TorchScript file/);
    expect(() => jit.load(join(tmp, 'missing.pt'))).toThrow(/does not exist/);
    expect(() => jit.save(new nn.Linear(1, 1), join(tmp, 'x.pt'))).toThrow(/only TorchScript modules/);
    rmSync(tmp, { recursive: true, force: true });
  });
});
