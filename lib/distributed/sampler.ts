// torch.utils.data.DistributedSampler for finetorch's batch sources: each rank
// gets its own shard, every rank the same number of batches (padded by
// repeating from the start, drop_last false), reshuffled per epoch from the seed.
import { TensorLoader, permutation, rng } from '../data/tensor-loader.js';
import { DataLoader, type Dataset } from '../data/data-loader.js';
import { disposeInput, mapInput, type Batch, type ModelInput } from '../data/batch.js';
import { torch } from '../tensor/index.js';
import type { Tensor } from '../tensor/tensor.js';
import { getRank, getWorldSize, isInitialized } from './process-group.js';

export interface ShardOptions {
  /** Default: the process group's rank. */
  rank?: number;
  /** Default: the process group's world size. */
  worldSize?: number;
}

function placement(options: ShardOptions, where: string): { rank: number; worldSize: number } {
  const worldSize = options.worldSize ?? (isInitialized() ? getWorldSize() : undefined);
  const rank = options.rank ?? (isInitialized() ? getRank() : undefined);
  if (worldSize === undefined || rank === undefined)
    throw new Error(`${where}: no process group; call distributed.initProcessGroup() first or pass rank and worldSize`);
  if (!Number.isInteger(worldSize) || worldSize < 1) throw new TypeError(`${where}: worldSize must be a positive integer, got ${JSON.stringify(worldSize)}`);
  if (!Number.isInteger(rank) || rank < 0 || rank >= worldSize)
    throw new RangeError(`${where}: rank must be an integer 0 .. ${worldSize - 1}, got ${JSON.stringify(rank)}`);
  return { rank, worldSize };
}

/**
 * The sample indices rank `rank` sees in `epoch`, as DistributedSampler's:
 * all n indices (shuffled from seed and epoch when `shuffle`), padded to a
 * multiple of worldSize by repeating from the start, then every worldSize-th from rank.
 */
export function distributedIndices(n: number, options: ShardOptions & { shuffle?: boolean; seed?: number; epoch?: number }): number[] {
  const { rank, worldSize } = placement(options, 'distributedIndices');
  if (!Number.isInteger(n) || n < 1) throw new TypeError(`distributedIndices: n must be a positive integer, got ${JSON.stringify(n)}`);
  // the same seed mixing as TensorLoader, so one process and several see one order
  const order = options.shuffle ? permutation(n, (options.seed ?? 0) * 100003 + (options.epoch ?? 0)) : Array.from({ length: n }, (_, i) => i);
  const perRank = Math.ceil(n / worldSize);
  const total = perRank * worldSize;
  for (let i = 0; order.length < total; i++) order.push(order[i % n]);
  const mine: number[] = [];
  for (let i = rank; i < total; i += worldSize) mine.push(order[i]);
  return mine;
}

/** Batches in each rank's shard of `size` samples (padded to a multiple of worldSize, as DistributedSampler). */
function batchesPerRank(size: number, worldSize: number, o: { batchSize: number; dropLast?: boolean }): number {
  const perRank = Math.ceil(size / worldSize);
  return o.dropLast ? Math.floor(perRank / o.batchSize) : Math.ceil(perRank / o.batchSize);
}

/**
 * A TensorLoader's shard for this rank: the samples of distributedIndices
 * (the loader's shuffle and seed) in batches of its batchSize, the last one
 * smaller unless the loader drops it.
 */
class ShardedTensorLoader {
  private readonly placement: { rank: number; worldSize: number };
  constructor(
    readonly loader: TensorLoader,
    options: ShardOptions,
  ) {
    this.placement = placement(options, 'distributed.shard');
  }

  get length(): number {
    return batchesPerRank(this.loader.size, this.placement.worldSize, this.loader.options);
  }

  *batches(epoch = 0): Generator<Batch> {
    const { shuffle, seed, batchSize } = this.loader.options;
    const indices = distributedIndices(this.loader.size, { ...this.placement, shuffle, seed, epoch });
    for (let i = 0; i < this.length * batchSize; i += batchSize) {
      const part = indices.slice(i, i + batchSize);
      // the index lives where the data does (a CUDA tensor needs a CUDA index)
      const byDevice = new Map<string, Tensor>();
      const select = (t: Tensor) => {
        let idx = byDevice.get(t.device);
        if (!idx) byDevice.set(t.device, (idx = torch.tensor(part, { dtype: 'int64', device: t.device })));
        return t.indexSelect(0, idx);
      };
      const batch = { input: mapInput(this.loader.input as ModelInput, select), target: select(this.loader.target) };
      for (const idx of byDevice.values()) idx.dispose();
      yield batch;
    }
  }
}

/**
 * A DataLoader's shard for this rank (image datasets): only this rank's
 * samples of distributedIndices are loaded (decoded and augmented), in
 * batches of the loader's batchSize, prefetched as the loader does. A
 * sample's augmentation draws from the same seed as in one process (the
 * loader's seed, the epoch and the sample's index).
 */
class ShardedDataLoader {
  private readonly placement: { rank: number; worldSize: number };
  constructor(
    readonly loader: DataLoader,
    options: ShardOptions,
  ) {
    this.placement = placement(options, 'distributed.shard');
  }

  get length(): number {
    return batchesPerRank(this.loader.dataset.length, this.placement.worldSize, this.loader.options);
  }

  batches(epoch = 0): AsyncGenerator<Batch> {
    const { dataset, options } = this.loader;
    const indices = distributedIndices(dataset.length, { ...this.placement, shuffle: options.shuffle, seed: options.seed, epoch });
    // DataLoader's per-sample seed, of the sample's index in the whole dataset
    const view: Dataset = {
      length: indices.length,
      get: (k) => dataset.get(indices[k], rng(((options.seed ?? 0) * 1_000_003 + epoch) * 7_919 + indices[k])),
    };
    return new DataLoader(view, { ...options, shuffle: false }).batches(epoch);
  }
}

interface Source {
  batches(epoch: number): Iterable<Batch> | AsyncIterable<Batch>;
  readonly length?: number;
  /** A source that knows how to split itself (a wrapper of a DataLoader): its shard for the rank. */
  shard?(options: ShardOptions): Source;
}

function disposeBatch(batch: Batch): void {
  disposeInput(batch.input);
  batch.target.dispose();
}

/**
 * Any other batch source, split by batch: batch i goes to rank i % worldSize,
 * and a rank short of ceil(batches / worldSize) repeats batches from the start
 * (read again from the source), as DistributedSampler pads.
 */
class ShardedBatches {
  private readonly placement: { rank: number; worldSize: number };
  constructor(
    readonly source: Source,
    options: ShardOptions,
  ) {
    this.placement = placement(options, 'distributed.shard');
  }

  get length(): number | undefined {
    return typeof this.source.length === 'number' ? Math.ceil(this.source.length / this.placement.worldSize) : undefined;
  }

  async *batches(epoch = 0): AsyncGenerator<Batch> {
    const { rank, worldSize } = this.placement;
    let total = 0;
    for await (const batch of this.source.batches(epoch)) {
      if (total++ % worldSize === rank) yield batch;
      else disposeBatch(batch);
    }
    if (total === 0) return;
    const perRank = Math.ceil(total / worldSize);
    // padded positions total .. perRank*worldSize-1 repeat batches 0, 1, ...; this rank's are those ≡ rank (mod worldSize)
    const wanted = new Set<number>();
    for (let p = total; p < perRank * worldSize; p++) if (p % worldSize === rank) wanted.add((p - total) % total);
    if (wanted.size === 0) return;
    let i = 0;
    for await (const batch of this.source.batches(epoch)) {
      if (wanted.has(i++)) yield batch;
      else disposeBatch(batch);
      if (i > Math.max(...wanted)) break;
    }
  }
}

/**
 * This rank's shard of a batch source (DistributedSampler): a TensorLoader or
 * a DataLoader is split by sample (each rank loads only its samples, in
 * batches of the loader's batchSize), a source with its own shard(options)
 * splits itself, any other source is split by batch (every rank reads it
 * all). Every rank gets the same number of batches.
 */
export function shard(source: Source, options: ShardOptions = {}): Source {
  if (source === null || typeof source !== 'object' || typeof (source as Source).batches !== 'function')
    throw new TypeError('distributed.shard: expected a batch source (an object with batches(epoch))');
  if (source instanceof TensorLoader) return new ShardedTensorLoader(source, options);
  if (source instanceof DataLoader) return new ShardedDataLoader(source, options);
  if (typeof source.shard === 'function') return source.shard(options);
  return new ShardedBatches(source, options);
}
