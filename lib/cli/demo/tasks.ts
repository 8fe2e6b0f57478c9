// The demo's data: Fashion-MNIST (Debian's dataset-fashion-mnist) cut into
// the pretraining task (classes 0-4), the fine-tuning task (classes 5-9 from
// a few hundred labels) and a 1:20 imbalanced binary task. Deterministic:
// the same seed picks the same images.
import { fashionMnist, selectClasses, FASHION_MNIST_CLASSES } from '../../data/idx.js';
import { permutation, TensorLoader } from '../../data/tensor-loader.js';
import { torch } from '../../tensor/index.js';
import type { Tensor } from '../../tensor/tensor.js';

/** Fashion-MNIST's pixel mean and standard deviation (training set). */
export const FASHION_MEAN = 0.286;
export const FASHION_STD = 0.353;

export interface Subset {
  x: Tensor;
  y: Tensor;
  classNames: string[];
}

export interface FashionData {
  images: Tensor;
  labels: Tensor;
  labelArray: Int32Array;
}

const cache = new Map<string, FashionData>();

export function fashion(split: 'train' | 'test'): FashionData {
  let d = cache.get(split);
  if (!d) {
    const { images, labels } = fashionMnist(split);
    d = { images, labels, labelArray: Int32Array.from(labels.dataSync() as BigInt64Array, Number) };
    cache.set(split, d);
  }
  return d;
}

/** uint8 [N,28,28] -> float [N,1,28,28], normalised. */
export function prepare(images: Tensor): Tensor {
  return torch.tidy(() => images.unsqueeze(1).float().div(255).sub(FASHION_MEAN).div(FASHION_STD));
}

/**
 * `counts[k]` images of class `classes[k]` (relabelled k), drawn at random
 * with `seed` from the split, skipping the indices in `exclude` (which are
 * then added to it, so later draws stay disjoint).
 */
export function subset(split: 'train' | 'test', classes: number[], counts: number[], seed: number, exclude = new Set<number>()): Subset {
  const d = fashion(split);
  let picked: number[];
  let labels: number[];
  try {
    ({ indices: picked, targets: labels } = selectClasses(d.labelArray, classes, {
      perClass: counts,
      order: permutation(d.labelArray.length, seed),
      exclude,
      exact: true,
    }));
  } catch (err) {
    throw new Error(`demo: Fashion-MNIST ${split}: ${(err as Error).message}`);
  }
  const idx = torch.tensor(picked);
  const raw = d.images.indexSelect(0, idx);
  idx.dispose();
  const x = prepare(raw);
  raw.dispose();
  return { x, y: torch.tensor(labels), classNames: classes.map((c) => FASHION_MNIST_CLASSES[c]) };
}

/** Random horizontal flips, per sample and epoch: the only augmentation the demo uses (the seed: augment small data). */
export function flipHalf(x: Tensor, seed: number): Tensor {
  return torch.tidy(() => {
    const n = x.shape[0];
    const flips = permutation(n, seed).slice(0, Math.floor(n / 2));
    if (!flips.length) return x.clone();
    const idx = torch.tensor(flips);
    const out = x.clone();
    out.indexPut_([idx], x.indexSelect(0, idx).flip([3]));
    return out;
  });
}

/** TensorLoader's batches, with random horizontal flips when `augment` (seeded per epoch and batch). */
export class FashionLoader {
  private readonly loader: TensorLoader;
  constructor(
    readonly data: Subset,
    readonly options: { batchSize: number; shuffle?: boolean; augment?: boolean; seed?: number },
  ) {
    this.loader = new TensorLoader(data.x, data.y, options);
  }

  get length(): number {
    return this.loader.length;
  }

  *batches(epoch = 0): Generator<{ input: Tensor; target: Tensor }> {
    const seed = (this.options.seed ?? 0) * 100003 + epoch;
    let offset = 0;
    for (const batch of this.loader.batches(epoch)) {
      const input = batch.input as Tensor; // the demo's loader holds one image tensor
      const target = batch.target;
      const first = offset;
      offset += target.shape[0];
      if (!this.options.augment) {
        yield { input, target };
        continue;
      }
      const flipped = flipHalf(input, seed * 7919 + first);
      input.dispose();
      yield { input: flipped, target };
    }
  }
}
