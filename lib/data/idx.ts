// IDX files (MNIST, Fashion-MNIST), gzip-compressed or raw: images become a
// uint8 tensor [N, rows, cols], labels an int64 tensor [N].
import { readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { Tensor } from '../tensor/tensor.js';
import { torch } from '../tensor/index.js';

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
