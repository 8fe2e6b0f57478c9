// Loaders and devices: TensorLoader indexes each tensor where it lives (a
// shuffled batch of named inputs equals the rows picked by hand), DataLoader's
// device option is checked against the build, and a DataLoader batch moved to
// 'cpu' is the batch as built.
import { describe, it, expect } from 'vitest';
import { torch, data, cuda, TensorLoader, permutation, type Dataset, type Item } from 'finetorch';
import { flat } from '../helpers';

// A dataset of 2x2 "images" whose values encode their index.
const dataset: Dataset = {
  length: 6,
  async get(index: number): Promise<Item> {
    return { data: Float32Array.from([index, index + 0.25, index + 0.5, index + 0.75]), shape: [1, 2, 2], label: index % 2 };
  },
};

describe('loaders and devices', () => {
  it('TensorLoader: shuffled batches of named inputs are the rows of the permutation', () => {
    const ids = torch.arange(0, 10).reshape([5, 2]);
    const mask = torch.arange(100, 110).reshape([5, 2]);
    const y = torch.arange(0, 5);
    const loader = new TensorLoader({ ids, mask }, y, { batchSize: 2, shuffle: true, seed: 4 });
    const order = permutation(5, 4 * 100003 + 1);
    const seen: number[] = [];
    for (const b of loader.batches(1)) {
      const input = b.input as Record<string, typeof ids>;
      const rows = flat(b.target);
      seen.push(...rows);
      expect(flat(input.ids)).toEqual(rows.flatMap((r) => [2 * r, 2 * r + 1]));
      expect(flat(input.mask)).toEqual(rows.flatMap((r) => [100 + 2 * r, 101 + 2 * r]));
    }
    expect(seen).toEqual(order);
  });

  it("DataLoader: device 'cpu' gives the batch as built; 'cuda' on a CPU build is an error naming DataLoader", async () => {
    const loader = new data.DataLoader(dataset, { batchSize: 4, device: 'cpu' });
    const batches = [];
    for await (const b of loader.batches(0)) batches.push(b);
    expect(batches.map((b) => b.input.device)).toEqual(['cpu', 'cpu']);
    expect(flat(batches[1].input as never)).toEqual([4, 4.25, 4.5, 4.75, 5, 5.25, 5.5, 5.75]);
    expect(flat(batches[0].target)).toEqual([0, 1, 0, 1]);
    expect(() => new data.DataLoader(dataset, { batchSize: 4, device: 'tpu' })).toThrow(/DataLoader: device must be 'cpu', 'cuda' or 'cuda:N', got "tpu"/);
    if (!cuda.isAvailable()) expect(() => new data.DataLoader(dataset, { batchSize: 4, device: 'cuda' })).toThrow(/DataLoader: device 'cuda' asked for, but/);
  });
});
