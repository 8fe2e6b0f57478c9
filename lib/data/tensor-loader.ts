// Batches from in-memory tensors, with a seeded shuffle per epoch (the same
// seed and epoch give the same order, also after resuming).
import { Tensor } from '../tensor/tensor.js';
import { torch } from '../tensor/index.js';
import { inputSize, mapInput, type Batch, type ModelInput } from './batch.js';

export type { Batch } from './batch.js';

/** A deterministic PRNG (mulberry32) for shuffling. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function permutation(n: number, seed: number): number[] {
  const r = rng(seed);
  const p = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(r() * (i + 1));
    [p[i], p[j]] = [p[j], p[i]];
  }
  return p;
}

/**
 * Batches of in-memory tensors: `input` is one tensor or named tensors (a
 * tokenizer's {inputIds, attentionMask}), `target` the labels; all share the
 * first dimension. Shuffled per epoch from the seed when `shuffle`.
 */
export class TensorLoader {
  readonly size: number;
  constructor(
    readonly input: ModelInput,
    readonly target: Tensor,
    readonly options: { batchSize: number; shuffle?: boolean; seed?: number; dropLast?: boolean },
  ) {
    if (!(target instanceof Tensor)) throw new TypeError('TensorLoader: target must be a Tensor');
    const n = inputSize(input, 'TensorLoader');
    if (n !== target.shape[0]) throw new TypeError(`TensorLoader: ${n} inputs but ${target.shape[0]} targets`);
    if (!Number.isInteger(options?.batchSize) || options.batchSize < 1)
      throw new TypeError(`TensorLoader: batchSize must be a positive integer, got ${options?.batchSize}`);
    this.size = n;
  }

  /** Number of batches per epoch. */
  get length(): number {
    const b = this.options.batchSize;
    return this.options.dropLast ? Math.floor(this.size / b) : Math.ceil(this.size / b);
  }

  *batches(epoch = 0): Generator<Batch> {
    const order = this.options.shuffle ? permutation(this.size, (this.options.seed ?? 0) * 100003 + epoch) : null;
    const b = this.options.batchSize;
    for (let i = 0; i < this.length * b; i += b) {
      const n = Math.min(b, this.size - i);
      if (order) {
        // the index lives where the data does (a CUDA tensor needs a CUDA index); inputs and target may be on different devices
        const indices = new Map<string, Tensor>();
        const select = (t: Tensor) => {
          let idx = indices.get(t.device);
          if (!idx) indices.set(t.device, (idx = torch.tensor(order.slice(i, i + n), { dtype: 'int64', device: t.device })));
          return t.indexSelect(0, idx);
        };
        const batch = { input: mapInput(this.input, select), target: select(this.target) };
        for (const idx of indices.values()) idx.dispose();
        yield batch;
      } else {
        yield { input: mapInput(this.input, (t) => t.narrow(0, i, n)), target: this.target.narrow(0, i, n) };
      }
    }
  }
}
