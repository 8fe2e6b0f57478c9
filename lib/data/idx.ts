// IDX files (MNIST, Fashion-MNIST), gzip-compressed or raw: images become a
// uint8 tensor [N, rows, cols], labels an int64 tensor [N].
import { readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import type { Tensor } from '../tensor/tensor.js';
import { torch } from '../tensor/index.js';
import { ArgumentError, DataError } from '../errors.js';

/** Reads one IDX file (ubyte data, any number of dimensions). */
export function readIdx(path: string): Tensor {
  let buf = readFileSync(path);
  if (buf[0] === 0x1f && buf[1] === 0x8b) buf = gunzipSync(buf);
  if (buf.length < 4 || buf[0] !== 0 || buf[1] !== 0) throw new Error(`${path}: not an IDX file (bad magic number)`);
  if (buf[2] !== 0x08) throw new Error(`${path}: IDX element type 0x${buf[2].toString(16)} is not supported (only unsigned bytes)`);
  const dims = buf[3];
  const shape = Array.from({ length: dims }, (_, i) => buf.readUInt32BE(4 + 4 * i));
  const offset = 4 + 4 * dims;
  const count = shape.reduce((a, b) => a * b, 1);
  if (buf.length - offset !== count) throw new Error(`${path}: IDX header says ${count} values but the file has ${buf.length - offset} (truncated?)`);
  return torch.tensor(new Uint8Array(buf.buffer, buf.byteOffset + offset, count), { shape });
}

export const FASHION_MNIST_DIR = '/usr/share/datasets/fashion-mnist';
export const FASHION_MNIST_CLASSES = ['T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot'];

/** Fashion-MNIST from Debian's dataset-fashion-mnist: images uint8 [N, 28, 28], labels int64 [N]. */
export function fashionMnist(split: 'train' | 'test', dir = FASHION_MNIST_DIR): { images: Tensor; labels: Tensor } {
  const prefix = split === 'train' ? 'train' : 't10k';
  const images = readIdx(`${dir}/${prefix}-images-idx3-ubyte.gz`);
  const labels = readIdx(`${dir}/${prefix}-labels-idx1-ubyte.gz`);
  const long = labels.long();
  labels.dispose();
  return { images, labels: long };
}

/** Class ids (0-9) for Fashion-MNIST classes given by id or by name (case-insensitive). */
export function fashionMnistClassIds(classes: Array<number | string>): number[] {
  const ids = classes.map((c, i) => {
    const k =
      typeof c === 'number' ? (Number.isInteger(c) && c >= 0 && c < 10 ? c : -1) : FASHION_MNIST_CLASSES.findIndex((n) => n.toLowerCase() === c.toLowerCase());
    if (k < 0)
      throw new ArgumentError(
        'data.fashionMnistClassIds',
        `unknown Fashion-MNIST class ${JSON.stringify(c)} (classes: ${FASHION_MNIST_CLASSES.join(', ')}, or ids 0-9)`,
        String(i),
      );
    return k;
  });
  if (new Set(ids).size !== ids.length) throw new ArgumentError('data.fashionMnistClassIds', `a class appears twice (${JSON.stringify(classes)})`);
  return ids;
}

export interface ClassSelection {
  /** Images per class: one limit for all, one per class, or none (all of them). */
  perClass?: number | Array<number | undefined>;
  /** The order to draw in (e.g. permutation(n, seed)); default: file order. */
  order?: number[];
  /** Indices not to pick; the picked ones are added, so later selections stay disjoint. */
  exclude?: Set<number>;
  /** Throw when a class has fewer images than asked (default: take what there is). */
  exact?: boolean;
}

/**
 * The indices of the samples of `classIds` (class classIds[k] relabelled k),
 * up to `perClass` each, class by class: how a task is cut out of a labelled set.
 */
export function selectClasses(labels: ArrayLike<number>, classIds: number[], o: ClassSelection = {}): { indices: number[]; targets: number[] } {
  const order = o.order ?? Array.from({ length: labels.length }, (_, i) => i);
  const indices: number[] = [];
  const targets: number[] = [];
  classIds.forEach((c, k) => {
    const limit = (Array.isArray(o.perClass) ? o.perClass[k] : o.perClass) ?? Infinity;
    let n = 0;
    for (const i of order) {
      if (n >= limit) break;
      if (labels[i] !== c || o.exclude?.has(i)) continue;
      indices.push(i);
      targets.push(k);
      o.exclude?.add(i);
      n++;
    }
    if (o.exact && n < limit) throw new DataError(`only ${n} images of class ${c} are left to pick, ${limit} asked`);
  });
  return { indices, targets };
}
