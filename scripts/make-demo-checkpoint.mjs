#!/usr/bin/env node
// Makes the checkpoint `finetorch demo` ships with: a narrow ResNet-18
// (width 16, 1 input channel, 3x3 stem; torchvision's module names)
// pretrained on Fashion-MNIST classes 0-4 (T-shirt/top, Trouser, Pullover,
// Dress, Coat) from Debian's dataset-fashion-mnist. Writes
// assets/fashion-resnet18w16-c0-4.safetensors and a .json with its provenance.
//   node scripts/make-demo-checkpoint.mjs [--per-class 3000] [--epochs 4] [--seed 0]
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { torch, optim, models, fit, evaluate, LRScheduler, loadReport } from '../dist/index.js';
import { subset, FashionLoader, FASHION_MEAN, FASHION_STD } from '../dist/cli/demo/tasks.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const { values } = parseArgs({
  options: {
    'per-class': { type: 'string', default: '3000' },
    epochs: { type: 'string', default: '4' },
    seed: { type: 'string', default: '0' },
    out: { type: 'string', default: join(root, 'assets') },
  },
});
const perClass = Number(values['per-class']);
const epochs = Number(values.epochs);
const seed = Number(values.seed);
const classes = [0, 1, 2, 3, 4];
const name = 'fashion-resnet18w16-c0-4';

const started = Date.now();
torch.manualSeed(seed);
const train = subset(
  'train',
  classes,
  classes.map(() => perClass),
  seed,
);
const test = subset(
  'test',
  classes,
  classes.map(() => 1000),
  seed,
);
const model = models.resnet18({ width: 16, inChannels: 1, smallStem: true, numClasses: classes.length });
const optimizer = new optim.AdamW(model.parameters(), { lr: 2e-3, weightDecay: 0.05 });
const loader = new FashionLoader(train, { batchSize: 128, shuffle: true, augment: true, seed });
const scheduler = new LRScheduler(optimizer, { kind: 'cosine', totalSteps: epochs * loader.length, warmupSteps: Math.round(loader.length / 2) });
await fit({
  model,
  optimizer,
  scheduler,
  train: loader,
  epochs,
  seed,
  onEvent: (e) => {
    if (e.type === 'epoch') console.log(`epoch ${e.epoch + 1}/${epochs}: train loss ${e.trainLoss.toFixed(4)} (${e.seconds.toFixed(0)} s)`);
  },
});
const r = await evaluate(model, new FashionLoader(test, { batchSize: 500 }));
console.log(`test accuracy on classes 0-4 (5,000 images): ${(r.accuracy * 100).toFixed(2)}%`);

mkdirSync(values.out, { recursive: true });
const file = join(values.out, `${name}.safetensors`);
models.save(model, file);
const provenance = {
  file: `${name}.safetensors`,
  sha256: createHash('sha256').update(readFileSync(file)).digest('hex'),
  architecture: { arch: 'resnet18', ...model.archOptions(), parameters: model.parameters().reduce((s, p) => s + p.numel(), 0) },
  data: {
    dataset: 'Fashion-MNIST (Debian dataset-fashion-mnist)',
    classes,
    imagesPerClass: perClass,
    draw: `random, seed ${seed}`,
    normalise: { mean: FASHION_MEAN, std: FASHION_STD },
    augment: 'random horizontal flip',
  },
  training: { epochs, batchSize: 128, optimizer: 'AdamW lr 2e-3 weight decay 0.05', schedule: 'cosine, warmup half an epoch', seed },
  test: { images: 5000, accuracy: r.accuracy, f1Macro: r.f1Macro, loss: r.loss },
  madeWith: {
    command: `node scripts/make-demo-checkpoint.mjs --per-class ${perClass} --epochs ${epochs} --seed ${seed}`,
    libtorch: loadReport.libtorch.version,
    threads: torch.getNumThreads(),
    cores: availableParallelism(),
    seconds: Math.round((Date.now() - started) / 1000),
  },
};
writeFileSync(join(values.out, `${name}.json`), JSON.stringify(provenance, null, 2) + '\n');
console.log(`wrote ${file} (${provenance.architecture.parameters} parameters) in ${provenance.madeWith.seconds} s`);
