// channels_last: model.toMemoryFormat converts 4-D parameters and buffers in
// place (same tensors, so optimizers stay valid), strides as PyTorch reports
// them (Debian's Python torch 1.13 / torchvision 0.14), and ResNet-18 forward
// and backward equal to the contiguous model within float32 rounding.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it, expect } from 'vitest';
import { torch, nn, optim, models, io, loadReport, type Tensor } from 'finetorch';

// PyTorch's strides for every parameter of ResNet-18 after
// model.to(memory_format=torch.channels_last), and for a channels_last input.
const PYTHON = `
import json, torch, torchvision
m = torchvision.models.resnet18(num_classes=10).to(memory_format=torch.channels_last)
x = torch.randn(2, 3, 8, 8).contiguous(memory_format=torch.channels_last)
print(json.dumps({'params': {n: list(p.stride()) for n, p in m.named_parameters()},
                  'input': list(x.stride()),
                  'isCL': x.is_contiguous(memory_format=torch.channels_last), 'isC': x.is_contiguous(),
                  'vectorIsCL': torch.randn(3).is_contiguous(memory_format=torch.channels_last)}))
`;
const ref = JSON.parse(execFileSync('/usr/bin/python3', ['-c', PYTHON]).toString()) as {
  params: Record<string, number[]>;
  input: number[];
  isCL: boolean;
  isC: boolean;
  vectorIsCL: boolean;
};

const values = (t: Tensor) => Array.from(t.detach().contiguous().flatten().dataSync() as Float32Array);
function maxDiff(a: Tensor, b: Tensor): number {
  const x = values(a);
  const y = values(b);
  expect(x.length).toBe(y.length);
  return x.reduce((m, v, i) => Math.max(m, Math.abs(v - y[i])), 0);
}

describe('tensor memory formats', () => {
  it("contiguous('channelsLast'), isContiguous and stride() as PyTorch reports them", () => {
    const x = torch.randn([2, 3, 8, 8]);
    expect(x.stride()).toEqual([192, 64, 8, 1]);
    expect(x.isContiguous()).toBe(true);
    expect(x.isContiguous('channelsLast')).toBe(false);
    const cl = x.contiguous('channelsLast');
    expect(cl.stride()).toEqual(ref.input);
    expect(cl.isContiguous('channelsLast')).toBe(ref.isCL);
    expect(cl.isContiguous()).toBe(ref.isC);
    expect(values(cl)).toEqual(values(x));
    expect(torch.randn([3]).isContiguous('channelsLast')).toBe(ref.vectorIsCL);
    expect(() => torch.randn([3]).contiguous('channelsLast')).toThrow(/needs a 4-D tensor.*got 1-D/);
    expect(() => x.contiguous('nhwc' as never)).toThrow(/memoryFormat must be 'contiguous' or 'channelsLast', got "nhwc"/);
  });

  it('inputToMemoryFormat converts 4-D batches and leaves other tensors as they are', () => {
    const x = torch.randn([2, 3, 4, 4]);
    expect(nn.inputToMemoryFormat(x, 'channelsLast').isContiguous('channelsLast')).toBe(true);
    const labels = torch.tensor([1, 2]);
    expect(nn.inputToMemoryFormat(labels, 'channelsLast').id).toBe(labels.id);
    expect(() => nn.inputToMemoryFormat(x, 'NHWC' as never)).toThrow(/memory format must be 'channelsLast' or 'contiguous', got "NHWC"/);
  });
});

describe('model.toMemoryFormat', () => {
  it("ResNet-18: strides as PyTorch's, the same parameter tensors, an optimizer made before keeps stepping them", () => {
    const m = models.resnet18({ numClasses: 10 });
    const before = m.namedParameters();
    // fused kernels need state laid out like the parameters: use them where this libtorch has them (CPU: 2.4+)
    const [major, minor] = loadReport.libtorch.version.split('.').map(Number);
    const mode = major > 2 || (major === 2 && minor >= 4) ? { fused: true } : { foreach: true };
    const opt = new optim.AdamW(m.parameters(), { lr: 1e-3, ...mode });
    expect(m.toMemoryFormat('channelsLast')).toBe(m);
    const after = m.namedParameters();
    expect(after.map(([n, p]) => [n, p.id])).toEqual(before.map(([n, p]) => [n, p.id]));
    for (const [n, p] of after) expect([n, p.stride()]).toEqual([n, ref.params[n]]);
    expect(m.getSubmodule('conv1').parameters()[0].isContiguous('channelsLast')).toBe(true);

    // a training step through the old handles: gradients and optimizer state are channels_last too
    const x = nn.inputToMemoryFormat(torch.randn([2, 3, 32, 32]), 'channelsLast');
    m.forward(x).sum().backward();
    const w = before.find(([n]) => n === 'conv1.weight')![1];
    expect(w.grad!.isContiguous('channelsLast')).toBe(true);
    const w0 = values(w);
    opt.step();
    expect(opt.stepImplementation).toBe(Object.keys(mode)[0]);
    expect(values(w)).not.toEqual(w0);
    const state = opt.stateDict().state[0];
    expect((state.expAvg as Tensor).stride()).toEqual(ref.params['conv1.weight']);

    m.toMemoryFormat('contiguous');
    expect(w.isContiguous()).toBe(true);
    expect(() => m.toMemoryFormat('channels_last' as never)).toThrow(
      /toMemoryFormat: memory format must be 'channelsLast' or 'contiguous', got "channels_last"/,
    );
  });

  it("ResNet-18 forward and backward (train mode) equal the contiguous model and PyTorch's channels_last run within float32 rounding", () => {
    // torchvision's weights, input and output gradient, and PyTorch's parameter gradients for a channels_last run
    const dir = mkdtempSync(join(tmpdir(), 'ft-channels-last-'));
    execFileSync('/usr/bin/python3', [
      '-c',
      `
import sys, torch, torchvision
torch.manual_seed(0)
m = torchvision.models.resnet18(num_classes=10)
torch.save(m.state_dict(), sys.argv[1] + '/weights.pth')
m = m.to(memory_format=torch.channels_last)
x = torch.randn(4, 3, 64, 64)
y = m(x.contiguous(memory_format=torch.channels_last))
g = torch.randn_like(y)
y.backward(g)
d = {'x': x, 'g': g, 'y': y.detach()}
d.update({'grad.' + n: p.grad.contiguous() for n, p in m.named_parameters()})
torch.save(d, sys.argv[1] + '/run.pth')
`,
      dir,
    ]);
    const weights = io.load(join(dir, 'weights.pth'));
    const run = io.load(join(dir, 'run.pth'));
    rmSync(dir, { recursive: true });
    const a = models.resnet18({ numClasses: 10 });
    const b = models.resnet18({ numClasses: 10 });
    a.loadStateDict(weights);
    b.loadStateDict(weights);
    b.toMemoryFormat('channelsLast');
    const ya = a.forward(run.x);
    const yb = b.forward(nn.inputToMemoryFormat(run.x, 'channelsLast'));
    expect(yb.isContiguous('channelsLast') || yb.shape.length !== 4).toBe(true);
    ya.backward(run.g);
    yb.backward(run.g);
    const outDiff = maxDiff(ya, yb);
    const outVsTorch = maxDiff(yb, run.y);
    let gradDiff = 0;
    let gradVsTorch = 0;
    let gradScale = 0;
    const pb = new Map(b.namedParameters());
    for (const [n, p] of a.namedParameters()) {
      const q = pb.get(n)!;
      if (p.shape.length === 4) expect(q.grad!.isContiguous('channelsLast')).toBe(true);
      gradDiff = Math.max(gradDiff, maxDiff(p.grad!, q.grad!));
      gradVsTorch = Math.max(gradVsTorch, maxDiff(q.grad!, run[`grad.${n}`]));
      gradScale = values(p.grad!).reduce((m, v) => Math.max(m, Math.abs(v)), gradScale);
    }
    // running statistics (train mode) are updated the same way
    const bb = new Map(b.namedBuffers());
    let bufferDiff = 0;
    for (const [n, t] of a.namedBuffers()) if (t.dtype === 'float32') bufferDiff = Math.max(bufferDiff, maxDiff(t, bb.get(n)!));
    console.log(
      `ResNet-18 channels_last vs contiguous: logits ${outDiff.toExponential(2)}, grads ${gradDiff.toExponential(2)} (largest grad ${gradScale.toExponential(2)}), ` +
        `running stats ${bufferDiff.toExponential(2)}; vs PyTorch channels_last: logits ${outVsTorch.toExponential(2)}, grads ${gradVsTorch.toExponential(2)}`,
    );
    expect(outDiff).toBeLessThan(1e-4);
    expect(outVsTorch).toBeLessThan(1e-4);
    expect(gradDiff).toBeLessThan(3e-5 * gradScale);
    expect(gradVsTorch).toBeLessThan(3e-5 * gradScale);
    expect(bufferDiff).toBeLessThan(1e-5);
  });
});
