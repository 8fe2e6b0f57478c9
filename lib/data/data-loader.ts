// Batches from a dataset whose items load asynchronously (images decoded and
// augmented by sharp on libvips threads): the next batches are prefetched
// while the current one trains, so a step waits on data only when data is
// the bottleneck. Shuffle and augmentation are seeded per epoch.
import type { Tensor } from '../tensor/tensor.js';
import { torch } from '../tensor/index.js';
import type { Device } from '../tensor/dtype.js';
import { checkDevice, moveBatch } from '../train/device.js';
import { permutation, rng, type Batch } from './tensor-loader.js';
import { loadImage, type ImageSample, type Transform } from './images.js';
import { DataError } from '../errors.js';

export interface Item {
  data: Float32Array;
  shape: number[];
  label: number;
  /** Where the item came from (an image's path), for errors. */
  source?: string;
}
export interface Dataset {
  readonly length: number;
  get(index: number, random: () => number): Promise<Item>;
}

/** An image dataset over samples from imageFolder (or any {path, label} list). */
export class ImageDataset implements Dataset {
  constructor(
    readonly samples: ImageSample[],
    readonly options: { channels?: 1 | 3; transforms?: Transform[] } = {},
  ) {}
  get length(): number {
    return this.samples.length;
  }
  async get(index: number, random: () => number): Promise<Item> {
    const s = this.samples[index];
    const { data, shape } = await loadImage(s.path, { channels: this.options.channels, transforms: this.options.transforms, random });
    return { data, shape, label: s.label, source: s.path };
  }
  /** The same samples at the given indices (for splits). */
  subset(indices: number[]): ImageDataset {
    return new ImageDataset(
      indices.map((i) => this.samples[i]),
      this.options,
    );
  }
}

export interface DataLoaderOptions {
  batchSize: number;
  shuffle?: boolean;
  seed?: number;
  dropLast?: boolean;
  /** Batches loaded ahead of the one being used (default 2). */
  prefetch?: number;
  /** Move batches to this device ('cpu', 'cuda', 'cuda:N'); to CUDA through pinned memory without blocking. fit/evaluate/predict also move batches to the model's device, so this is optional. */
  device?: string;
}

export class DataLoader {
  /** Milliseconds the consumer waited for data in the last epoch, and batches served. */
  readonly stats = { waitMs: 0, batches: 0, samples: 0 };

  constructor(
    readonly dataset: Dataset,
    readonly options: DataLoaderOptions,
  ) {
    if (!Number.isInteger(options.batchSize) || options.batchSize < 1) throw new TypeError('DataLoader: batchSize must be a positive integer');
    if (dataset.length === 0) throw new Error('DataLoader: the dataset is empty');
    this.device = options.device === undefined ? null : checkDevice(options.device, 'DataLoader');
  }
  private readonly device: Device | null;

  get length(): number {
    const b = this.options.batchSize;
    return this.options.dropLast ? Math.floor(this.dataset.length / b) : Math.ceil(this.dataset.length / b);
  }

  private async load(indices: number[], epoch: number): Promise<Batch> {
    const items = await Promise.all(indices.map((i) => this.dataset.get(i, rng(((this.options.seed ?? 0) * 1_000_003 + epoch) * 7_919 + i))));
    const shape = items[0].shape;
    const per = items[0].data.length;
    const all = new Float32Array(per * items.length);
    const name = (k: number) => items[k].source ?? `item ${indices[k]}`;
    const size = (s: number[]) => `${s.join('x')} (${s.length === 3 ? 'channels x height x width' : 'shape'})`;
    items.forEach((it, k) => {
      if (it.data.length !== per || it.shape.length !== shape.length || it.shape.some((d, i) => d !== shape[i]))
        throw new DataError(
          `DataLoader: ${name(k)} is ${size(it.shape)} but ${name(0)} in the same batch is ${size(shape)}: a batch needs one size, so resize the images (recipe data.imageSize, or a resize/crop transform)`,
          { path: it.source },
        );
      all.set(it.data, k * per);
    });
    const input = torch.tensor(all, { shape: [items.length, ...shape] });
    const target = torch.tensor(items.map((it) => it.label));
    // to CUDA through pinned memory, without blocking (as fit's device option does)
    return this.device ? moveBatch({ input, target }, this.device, 'contiguous') : { input, target };
  }

  async *batches(epoch = 0): AsyncGenerator<Batch> {
    const n = this.dataset.length;
    const order = this.options.shuffle ? permutation(n, (this.options.seed ?? 0) * 100003 + epoch) : Array.from({ length: n }, (_, i) => i);
    const b = this.options.batchSize;
    const starts = Array.from({ length: this.length }, (_, k) => k * b);
    const ahead = Math.max(1, this.options.prefetch ?? 2);
    const pending: Array<Promise<Batch>> = [];
    let next = 0;
    const fill = () => {
      while (pending.length < ahead + 1 && next < starts.length) {
        const s = starts[next++];
        const p = this.load(order.slice(s, Math.min(s + b, n)), epoch);
        p.catch(() => {}); // surfaced when awaited
        pending.push(p);
      }
    };
    this.stats.waitMs = 0;
    this.stats.batches = 0;
    this.stats.samples = 0;
    fill();
    while (pending.length) {
      const t0 = performance.now();
      const batch = await pending.shift()!;
      this.stats.waitMs += performance.now() - t0;
      this.stats.batches++;
      this.stats.samples += batch.target.shape[0];
      fill();
      yield batch;
    }
  }
}

export type { Tensor };
