// A detection data set over samples from readCoco/readVoc: each item is the
// decoded image (float32 CHW in [0, 1]) after the box-aware transforms, with
// its boxes and labels; and the batches a detection model takes (a list of
// images of their own sizes and a list of targets), prefetched and seeded
// like DataLoader's.
import { torch } from '../../tensor/index.js';
import type { Tensor } from '../../tensor/tensor.js';
import { DataError } from '../../errors.js';
import { loadImage } from '../images.js';
import { permutation, rng } from '../tensor-loader.js';
import type { DetectionSample } from './read.js';
import { applyDetectionTransforms, type DetectionTransform } from './transforms.js';

export interface DetectionItem {
  data: Float32Array;
  /** [channels, height, width] after the transforms. */
  shape: [number, number, number];
  boxes: number[][];
  labels: number[];
  difficult?: boolean[];
  /** The image file. */
  source: string;
}

export interface DetectionDatasetOptions {
  channels?: 1 | 3;
  transforms?: DetectionTransform[];
}

export class DetectionDataset {
  constructor(
    readonly samples: DetectionSample[],
    readonly options: DetectionDatasetOptions = {},
  ) {}

  get length(): number {
    return this.samples.length;
  }

  async get(index: number, random: () => number): Promise<DetectionItem> {
    const s = this.samples[index];
    if (!s) throw new RangeError(`DetectionDataset.get: index ${index} is outside 0..${this.samples.length - 1}`);
    const { data, shape } = await loadImage(s.path, { channels: this.options.channels ?? 3 });
    const [C, H, W] = shape;
    if (H !== s.height || W !== s.width)
      throw new DataError(
        `${s.path}: the image is ${W}x${H} (width x height) but its annotations (image ${JSON.stringify(s.id)}) say ${s.width}x${s.height}: the boxes would not fit it`,
        { path: s.path },
      );
    const out = applyDetectionTransforms(
      { data, channels: C, height: H, width: W, boxes: s.boxes, labels: s.labels, difficult: s.difficult },
      this.options.transforms ?? [],
      random,
      s.path,
    );
    return {
      data: out.data,
      shape: [out.channels, out.height, out.width],
      // copies: the item is the caller's to change, the sample is not
      boxes: out.boxes.map((b) => b.slice()),
      labels: out.labels.slice(),
      ...(out.difficult ? { difficult: out.difficult } : {}),
      source: s.path,
    };
  }

  /** The same samples at the given indices (for splits). */
  subset(indices: number[]): DetectionDataset {
    return new DetectionDataset(
      indices.map((i) => this.samples[i]),
      this.options,
    );
  }
}

export interface DetectionTarget {
  /** [N, 4] float32 x1, y1, x2, y2. */
  boxes: Tensor;
  /** [N] int64. */
  labels: Tensor;
}
export interface DetectionBatch {
  /** One [C, H, W] float32 tensor per image (sizes may differ). */
  images: Tensor[];
  targets: DetectionTarget[];
  sources: string[];
}

/** The tensors of one item: its image and its target (boxes [N, 4] float32, labels [N] int64). */
export function detectionTensors(item: DetectionItem): { image: Tensor; target: DetectionTarget } {
  return {
    image: torch.tensor(item.data, { shape: item.shape }),
    target: {
      boxes: torch.tensor(Float32Array.from(item.boxes.flat()), { shape: [item.boxes.length, 4] }),
      labels: torch.tensor(BigInt64Array.from(item.labels, BigInt), { shape: [item.labels.length] }),
    },
  };
}

export interface DetectionLoaderOptions {
  batchSize: number;
  shuffle?: boolean;
  seed?: number;
  dropLast?: boolean;
  /** Batches loaded ahead of the one being used (default 2). */
  prefetch?: number;
}

/** Batches of a DetectionDataset, seeded per epoch as DataLoader's (same order and per-item random draws for the same seed). */
export class DetectionLoader {
  constructor(
    readonly dataset: DetectionDataset,
    readonly options: DetectionLoaderOptions,
  ) {
    if (!Number.isInteger(options.batchSize) || options.batchSize < 1) throw new TypeError('DetectionLoader: batchSize must be a positive integer');
    if (dataset.length === 0) throw new Error('DetectionLoader: the dataset is empty');
  }

  get length(): number {
    const b = this.options.batchSize;
    return this.options.dropLast ? Math.floor(this.dataset.length / b) : Math.ceil(this.dataset.length / b);
  }

  private async load(indices: number[], epoch: number): Promise<DetectionBatch> {
    const items = await Promise.all(indices.map((i) => this.dataset.get(i, rng(((this.options.seed ?? 0) * 1_000_003 + epoch) * 7_919 + i))));
    const tensors = items.map(detectionTensors);
    return { images: tensors.map((t) => t.image), targets: tensors.map((t) => t.target), sources: items.map((it) => it.source) };
  }

  async *batches(epoch = 0): AsyncGenerator<DetectionBatch> {
    const n = this.dataset.length;
    const order = this.options.shuffle ? permutation(n, (this.options.seed ?? 0) * 100003 + epoch) : Array.from({ length: n }, (_, i) => i);
    const b = this.options.batchSize;
    const ahead = Math.max(1, this.options.prefetch ?? 2);
    const pending: Promise<DetectionBatch>[] = [];
    let next = 0;
    const fill = () => {
      while (pending.length < ahead + 1 && next < this.length) {
        const s = next++ * b;
        const p = this.load(order.slice(s, Math.min(s + b, n)), epoch);
        p.catch(() => {}); // surfaced when awaited
        pending.push(p);
      }
    };
    fill();
    while (pending.length) {
      const batch = await (pending.shift() as Promise<DetectionBatch>);
      fill();
      yield batch;
    }
  }
}
