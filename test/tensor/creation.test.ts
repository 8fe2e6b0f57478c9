// Making tensors and reading them back; dtypes against PyTorch's rounding.
import { describe, it, expect } from 'vitest';
import { torch, type DType } from 'finetorch';
import { fixture, flat, type Encoded } from '../helpers';

describe('torch.tensor', () => {
  it('infers dtype as PyTorch does', () => {
    expect(torch.tensor([1, 2, 3]).dtype).toBe('int64');
    expect(torch.tensor([1.5, 2]).dtype).toBe('float32');
    expect(torch.tensor([true, false]).dtype).toBe('bool');
    expect(torch.tensor(new Float64Array([1, 2])).dtype).toBe('float64');
    expect(torch.tensor(new Int32Array([1, 2])).dtype).toBe('int32');
    expect(torch.tensor(new BigInt64Array([1n, 2n])).dtype).toBe('int64');
    expect(torch.tensor(2.5).shape).toEqual([]);
    // integer-valued numbers past 2^53 are floats (as int64, 1e25 would wrap)
    const big = torch.tensor([[0, 4, 1e25]]);
    expect(big.dtype).toBe('float32');
    expect(big.toArray()).toEqual([[0, 4, Math.fround(1e25)]]);
    expect(torch.tensor([2 ** 53 - 1]).dtype).toBe('int64');
  });

  it('round-trips nested arrays, TypedArrays with shape, and item()', () => {
    const t = torch.tensor(
      [
        [1, 2, 3],
        [4, 5, 6],
      ],
      { dtype: 'float32' },
    );
    expect(t.shape).toEqual([2, 3]);
    expect(t.toArray()).toEqual([
      [1, 2, 3],
      [4, 5, 6],
    ]);
    const u = torch.tensor(new Float32Array([1, 2, 3, 4, 5, 6]), { shape: [3, 2] });
    expect(u.toArray()).toEqual([
      [1, 2],
      [3, 4],
      [5, 6],
    ]);
    expect(torch.tensor([[7]]).item()).toBe(7);
    expect(torch.tensor([true]).item()).toBe(true);
    expect(torch.tensor([true, false]).toArray()).toEqual([true, false]);
    expect(torch.tensor([[]]).shape).toEqual([1, 0]);
  });

  it("stores each dtype with PyTorch's rounding", () => {
    const fx = fixture<Record<string, { values: number[]; stored: Encoded }>>('dtypes.json');
    for (const [dtype, { values, stored: want }] of Object.entries(fx)) {
      const t = torch.tensor(values, { dtype: dtype as DType });
      expect(t.dtype).toBe(dtype);
      const got = flat(t.to('float64'));
      want.data.forEach((w, i) => expect(got[i], `${dtype}[${i}]`).toBeCloseTo(Number(w), 12));
    }
  });

  it('factories', () => {
    expect(torch.zeros([2, 3]).toArray()).toEqual([
      [0, 0, 0],
      [0, 0, 0],
    ]);
    expect(torch.ones([2], { dtype: 'int32' }).toArray()).toEqual([1, 1]);
    expect(torch.full([2], 7).toArray()).toEqual([7, 7]);
    expect(torch.arange(4).toArray()).toEqual([0, 1, 2, 3]);
    expect(torch.arange(4).dtype).toBe('int64');
    expect(torch.arange(0, 1, 0.25).toArray()).toEqual([0, 0.25, 0.5, 0.75]);
    expect(torch.linspace(0, 1, 3).toArray()).toEqual([0, 0.5, 1]);
    expect(torch.eye(2).toArray()).toEqual([
      [1, 0],
      [0, 1],
    ]);
    expect(torch.randn([3, 4]).shape).toEqual([3, 4]);
    const r = flat(torch.rand([1000]));
    expect(Math.min(...r)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...r)).toBeLessThan(1);
    const ri = flat(torch.randint(2, 5, [200]));
    expect(new Set(ri)).toEqual(new Set([2, 3, 4]));
    expect(flat(torch.randperm(5)).sort()).toEqual([0, 1, 2, 3, 4]);
  });

  it('manualSeed makes random tensors reproducible', () => {
    torch.manualSeed(42);
    const a = flat(torch.randn([5]));
    torch.manualSeed(42);
    expect(flat(torch.randn([5]))).toEqual(a);
  });

  it('indexing and slicing like Python', () => {
    const t = torch.arange(24).reshape(2, 3, 4);
    expect(t.index(1, 2).toArray()).toEqual([20, 21, 22, 23]);
    expect(t.index('...', -1).toArray()).toEqual([
      [3, 7, 11],
      [15, 19, 23],
    ]);
    expect(t.index(0, '1:', '::2').toArray()).toEqual([
      [4, 6],
      [8, 10],
    ]);
    expect(t.index(null, 0, 0).shape).toEqual([1, 4]);
    expect(t.index(0, 0, torch.tensor([3, 0])).toArray()).toEqual([3, 0]);
    expect(t.index(0, 0, { start: 1, stop: 3 }).toArray()).toEqual([1, 2]);
    const z = torch.zeros([2, 3]);
    z.indexPut_([0, '1:'], 5);
    expect(z.toArray()).toEqual([
      [0, 5, 5],
      [0, 0, 0],
    ]);
  });

  it('to() converts dtype and keeps device', () => {
    const t = torch.tensor([1.7, -1.2]);
    expect(t.to('int64').toArray()).toEqual([1, -1]);
    expect(t.to('cpu').device).toBe('cpu');
    expect(t.double().dtype).toBe('float64');
  });

  it('uses all available cores by default and can change it', async () => {
    const { availableParallelism } = await import('node:os');
    if (!process.env.FINETORCH_NUM_THREADS) expect(torch.getNumThreads()).toBe(availableParallelism());
    torch.setNumThreads(1);
    expect(torch.getNumThreads()).toBe(1);
    torch.setNumThreads(availableParallelism());
  });
});
