// Every class of error becomes a JS Error with PyTorch's message (no C++
// backtrace), and nothing a caller passes can crash the process.
import { describe, it, expect } from 'vitest';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { torch, nn, optim } from 'finetorch';

function message(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(Error);
    const m = (e as Error).message;
    expect(m).not.toMatch(/Exception raised from|frame #\d/); // no C++ backtrace
    return m;
  }
  throw new Error('expected an error');
}

describe('libtorch errors become JS Errors', () => {
  it('shape mismatch', () => {
    expect(message(() => torch.ones([2, 3]).matmul(torch.ones([2, 3])))).toMatch(/mat1 and mat2 shapes cannot be multiplied \(2x3 and 2x3\)/);
    expect(message(() => torch.ones([2, 3]).add(torch.ones([4])))).toMatch(/size of tensor a \(3\) must match the size of tensor b \(4\)/);
    expect(message(() => torch.ones([6]).view(4, 2))).toMatch(/shape '\[4, 2\]' is invalid for input of size 6/);
    expect(message(() => new nn.Linear(4, 2).forward(torch.ones([1, 3])))).toMatch(/cannot be multiplied/);
  });

  it('dtype mismatch', () => {
    expect(message(() => torch.ones([2, 2]).matmul(torch.ones([2, 2], { dtype: 'float64' })))).toMatch(/expected .*(Float|Double)|dtype/i);
    expect(message(() => nn.functional.crossEntropy(torch.ones([2, 3]), torch.tensor([0.5, 1.5])))).toMatch(/Long|Float|dtype|scalar type/i);
  });

  it('device: CUDA without a GPU is a clear error', () => {
    expect(message(() => torch.zeros([1], { device: 'cuda' }))).toMatch(/CUDA is not available/);
    expect(message(() => torch.ones([1]).to('cuda:0'))).toMatch(/CUDA is not available/);
    expect(message(() => new nn.Linear(1, 1).to('cuda'))).toMatch(/CUDA is not available/);
    expect(message(() => torch.zeros([1], { device: 'tpu' as never }))).toMatch(/invalid device 'tpu'/);
  });

  it('use after dispose', () => {
    const t = torch.ones([1]);
    t.dispose();
    expect(message(() => t.add(1))).toMatch(/disposed/);
    const m = new nn.Linear(1, 1);
    m.dispose();
    expect(message(() => m.parameters())).toMatch(/Module has been disposed/);
    const opt = new optim.SGD([torch.ones([1], { requiresGrad: true })], { lr: 0.1 });
    opt.dispose();
    expect(message(() => opt.step())).toMatch(/Optimizer has been disposed/);
  });

  it('bad arguments from JS', () => {
    expect(message(() => torch.tensor([[1, 2], [3]]))).toMatch(/ragged nested array at \[1\]/);
    expect(message(() => torch.tensor([1, 'a' as never]))).toMatch(/element \[1\] is string/);
    expect(message(() => torch.tensor(new Float32Array(5), { shape: [2, 2] }))).toMatch(/needs 4 elements but the data has 5/);
    expect(message(() => torch.zeros([2, -1]))).toMatch(/invalid dimension -1/);
    expect(message(() => torch.ones([2]).to('float99' as never))).toMatch(/neither a device/);
    expect(message(() => torch.ones([2]).index('a:b'))).toMatch(/cannot parse slice/);
    expect(message(() => torch.ones([2]).index(5))).toMatch(/index 5 is out of bounds/);
    expect(message(() => torch.ones([2]).add({} as never))).toMatch(/other: expected a number/);
    expect(message(() => new nn.Linear(0, 2))).toMatch(/inFeatures must be a positive integer/);
    expect(message(() => new nn.Dropout(2))).toMatch(/probability/);
    expect(message(() => torch.ones([2]).backward())).toMatch(/does not require grad|grad can be implicitly created only for scalar/);
    expect(message(() => torch.setNumThreads(0))).toMatch(/integer >= 1/);
  });

  it('a calling mistake on the raw addon throws instead of crashing', async () => {
    const { native } = await import('../../dist/native/loader.js');
    expect(message(() => native.add({}, 1))).toMatch(/input: expected a Tensor/);
    expect(message(() => native.moduleForward(torch.ones([1]).handle, []))).toMatch(/expected a Module/);
    expect(message(() => new (native.TensorHandle as new () => unknown)())).toMatch(/made by finetorch/);
  });
});

describe('the process survives hostile input', () => {
  it('calls every native function with junk arguments in a child process; it exits normally', () => {
    const script = join(__dirname, 'fuzz-native.mjs');
    const r = spawnSync(process.execPath, [script], { encoding: 'utf8', timeout: 120000 });
    expect(r.signal, r.stderr).toBeNull();
    expect(r.status, r.stderr).toBe(0);
    const summary = JSON.parse(r.stdout.trim().split('\n').pop()!);
    expect(summary.functions).toBeGreaterThan(150);
    expect(summary.calls).toBeGreaterThan(10000);
    expect(summary.thrown).toBeGreaterThan(0);
    expect(summary.nonErrorThrows).toBe(0);
  });
});
