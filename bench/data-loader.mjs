// Data loading on real files: PNG images on disk, decoded and augmented by the
// prefetching DataLoader while ResNet-18 (64x64, batch 32, AdamW with two param
// groups) trains. Reports the loader's own throughput and the share of step
// time spent waiting for data. Usage: node bench/data-loader.mjs [images]
import { mkdirSync, existsSync, writeFileSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import { torch, models, optim, finetune, data, fit, fashionMnist } from '../dist/index.js';

const here = dirname(fileURLToPath(import.meta.url));
const count = Number(process.argv[2] ?? 1024);
const root = join(here, '.cache', `png64-${count}`);
if (!existsSync(join(root, 'done'))) {
  const { images, labels } = fashionMnist('train');
  const y = labels.dataSync();
  for (let i = 0; i < count; i++) {
    const dir = join(root, `class${y[i]}`);
    mkdirSync(dir, { recursive: true });
    const px = Buffer.from(images.index(i).dataSync());
    await sharp(px, { raw: { width: 28, height: 28, channels: 1 } })
      .resize(64, 64)
      .toColourspace('srgb')
      .png()
      .toFile(join(dir, `${i}.png`));
  }
  writeFileSync(join(root, 'done'), '');
}
const folder = data.imageFolder(root);
const transforms = [{ randomResizedCrop: 64, scale: [0.8, 1] }, { horizontalFlip: 0.5 }, { normalize: { mean: data.IMAGENET_MEAN, std: data.IMAGENET_STD } }];
const dataset = new data.ImageDataset(folder.samples, { channels: 3, transforms });

// 1. the loader alone
const loader = new data.DataLoader(dataset, { batchSize: 32, shuffle: true, seed: 1, prefetch: 4 });
let t0 = performance.now();
let n = 0;
for await (const b of loader.batches(0)) {
  n += b.target.shape[0];
  b.input.dispose();
  b.target.dispose();
}
const loaderImagesPerSecond = n / ((performance.now() - t0) / 1000);

// 2. training with the loader feeding it
torch.manualSeed(0);
const model = models.resnet18({ numClasses: 10 });
const groups = finetune.paramGroups(model, { lrs: [1e-4, 1e-4, 1e-4, 1e-4, 1e-3, 1e-3] });
const optimizer = new optim.AdamW(groups);
t0 = performance.now();
const result = await fit({ model, optimizer, train: loader, epochs: 1, seed: 1 });
const trainMs = performance.now() - t0;
const out = {
  machine: `${(await import('node:os')).cpus()[0].model}, ${(await import('node:os')).availableParallelism()} cores`,
  images: folder.samples.length,
  threads: torch.getNumThreads(),
  loaderImagesPerSecond: +loaderImagesPerSecond.toFixed(1),
  trainImagesPerSecond: +(loader.stats.samples / (trainMs / 1000)).toFixed(1),
  dataWaitShare: +(loader.stats.waitMs / trainMs).toFixed(4),
  dataWaitMs: +loader.stats.waitMs.toFixed(1),
  trainMs: +trainMs.toFixed(1),
  eventLoopDelayMs: result.eventLoopDelay,
};
console.log(JSON.stringify(out, null, 2));
mkdirSync(join(here, 'results'), { recursive: true });
writeFileSync(join(here, 'results', 'data-loader.json'), JSON.stringify(out, null, 2) + '\n');
