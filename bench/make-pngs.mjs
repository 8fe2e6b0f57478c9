// Writes the first N Fashion-MNIST training images (Debian's dataset-fashion-mnist)
// as 64x64 RGB PNG files in an ImageFolder layout: OUT/class<label>/<i>.png.
//   node bench/make-pngs.mjs N OUT
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { fashionMnist } from '../dist/index.js';

const [count, out] = [Number(process.argv[2]), process.argv[3]];
if (!Number.isInteger(count) || count < 1 || !out) throw new Error('usage: node bench/make-pngs.mjs N OUT');
const { images, labels } = fashionMnist('train');
const y = labels.dataSync();
const all = images.dataSync();
for (let i = 0; i < count; i++) {
  const dir = join(out, `class${y[i]}`);
  mkdirSync(dir, { recursive: true });
  const px = Buffer.from(all.subarray(i * 784, (i + 1) * 784));
  await sharp(px, { raw: { width: 28, height: 28, channels: 1 } })
    .resize(64, 64)
    .toColourspace('srgb')
    .png()
    .toFile(join(dir, `${i}.png`));
}
writeFileSync(join(out, 'done'), '');
