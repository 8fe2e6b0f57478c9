// Image adaptation by reconstruction: a pretrained CNN (any built-in ResNet,
// VGG or EfficientNet) has its classification head replaced by a small MLP
// decoder, Linear(features, hidden) -> ReLU -> Linear(hidden, C*H*W), and
// learns to rebuild unlabelled images of the new domain from copies with
// random square patches masked out. The decoder only sees the backbone's
// pooled feature vector, exactly what a fine-tuned head will see, so the
// objective pushes that vector to encode the new domain's shapes; it needs no
// upsampling layers. The masks are drawn per batch from (seed, epoch, batch),
// so a resumed run corrupts every image as an uninterrupted one does.
// The output drops the decoder and keeps the backbone's parameter names:
// models.load(file, { numClasses }) gives the adapted backbone with a fresh head.
import { existsSync, readdirSync, statSync } from 'node:fs';
import { extname, join } from 'node:path';
import { ConfigError, DataError, asDataError } from '../errors.js';
import { FASHION_MNIST_CLASSES, FASHION_MNIST_DIR, fashionMnist, fashionMnistClassIds, readIdx, selectClasses } from '../data/idx.js';
import { IMAGE_EXTENSIONS, IMAGENET_MEAN, IMAGENET_STD } from '../data/images.js';
import { DataLoader, ImageDataset } from '../data/data-loader.js';
import { TensorLoader, rng } from '../data/tensor-loader.js';
import type { Batch } from '../data/batch.js';
import { imageTransforms } from '../recipes/build.js';
import { save as saveStateDict } from '../io/index.js';
import { architectures, load as loadModel, savedArchitecture, ARCHITECTURE_NAMES, isTextArch, type ArchitectureName } from '../models/index.js';
import type { Architecture } from '../models/architecture.js';
import { Sequential } from '../nn/containers.js';
import { Linear, ReLU } from '../nn/layers.js';
import { mseLoss } from '../nn/functional.js';
import { torch } from '../tensor/index.js';
import type { Tensor } from '../tensor/tensor.js';
import type { LossFn } from '../train/trainer.js';
import { ArgumentError } from '../errors.js';
import { TRAIN_SALT, VAL_SALT, batchSeed, guardedBatches, limitSteps, splitHeldOut, type KindSetup, type Sized } from './common.js';
import type { ReconstructionPretrainConfig } from './schema.js';

/** The held-out metrics: mean squared error per pixel, over all pixels and over the masked ones (normalised pixel units). */
export interface ReconstructionMetrics {
  mse: number;
  maskedMse: number;
  samples: number;
}

/** What rebuilds the model of a run (pretrain.json): the architecture, its options, the decoder's shape. */
export interface ReconstructionSpec {
  arch: ArchitectureName;
  options: Record<string, unknown>;
  head: string;
  features: number;
  hidden: number;
  imageShape: [number, number, number];
}

const META_ARCH = 'finetorch.arch';
const META_OPTIONS = 'finetorch.options';
/** The output file in the run folder. */
export const BACKBONE_FILE = 'backbone.safetensors';

type Data = ReconstructionPretrainConfig['data'];

function normalization(d: Data): { mean: number[]; std: number[] } | null {
  const v = d.normalize ?? (d.kind === 'imageFolder' && d.channels === 3 ? 'imagenet' : 'none');
  if (v === 'none') return null;
  if (v === 'imagenet') {
    if (d.channels !== 3) throw new ConfigError('pretrain.data.normalize', `'imagenet' needs 3 channels (got channels ${d.channels})`);
    return { mean: IMAGENET_MEAN, std: IMAGENET_STD };
  }
  if (v.mean.length !== d.channels || v.std.length !== d.channels)
    throw new ConfigError(
      'pretrain.data.normalize',
      `mean and std need ${d.channels} value(s) for ${d.channels} channel(s), got ${v.mean.length} and ${v.std.length}`,
    );
  return v;
}

function walkImages(dir: string): string[] {
  return readdirSync(dir)
    .sort()
    .flatMap((n) => {
      const p = join(dir, n);
      return statSync(p).isDirectory() ? walkImages(p) : IMAGE_EXTENSIONS.includes(extname(n).toLowerCase()) ? [p] : [];
    });
}

/** uint8 [N, H, W] images at `picked` -> float [N, C, H, W] in [0, 1], normalised. */
function prepareImages(images: Tensor, picked: number[], channels: 1 | 3, normalize: { mean: number[]; std: number[] } | null): Tensor {
  return torch.tidy(() => {
    let x = images.indexSelect(0, torch.tensor(picked)).unsqueeze(1).float().div(255);
    if (channels === 3) x = x.repeat([1, 3, 1, 1]);
    if (normalize) x = x.sub(torch.tensor(normalize.mean).reshape([1, -1, 1, 1])).div(torch.tensor(normalize.std).reshape([1, -1, 1, 1]));
    return x;
  });
}

/** The clean image batches of the data (targets are placeholders), split into training and held-out parts. */
async function imageSources(c: ReconstructionPretrainConfig): Promise<{ train: Sized; val: Sized | null; samples: { train: number; val: number } }> {
  const d = c.data;
  const normalize = normalization(d);
  const loaders = (count: number, make: (indices: number[], shuffle: boolean) => Sized) => {
    if (count < 1) throw new DataError('there are no images to pretrain on');
    const parts = splitHeldOut(count, d.val, c.seed);
    if (!parts.train.length) throw new DataError(`all ${count} images are held out (pretrain.data.val ${d.val}); lower it`);
    return {
      train: make(parts.train, true),
      val: parts.val.length ? make(parts.val, false) : null,
      samples: { train: parts.train.length, val: parts.val.length },
    };
  };
  if (d.kind === 'imageFolder') {
    if (!existsSync(d.root) || !statSync(d.root).isDirectory()) throw new DataError(`${d.root} is not a folder (pretrain.data.root)`, { path: d.root });
    const files = await asDataError(() => walkImages(d.root), d.root);
    if (!files.length) throw new DataError(`${d.root} has no images (${IMAGE_EXTENSIONS.join(', ')})`, { path: d.root });
    const input = { kind: 'image' as const, channels: d.channels, size: d.imageSize ? ([d.imageSize, d.imageSize] as [number, number]) : null, normalize };
    const dataset = new ImageDataset(
      files.map((path) => ({ path, label: 0 })),
      { channels: d.channels, transforms: imageTransforms(input, undefined, false) },
    );
    return loaders(files.length, (indices, shuffle) => new DataLoader(dataset.subset(indices), { batchSize: c.batchSize, shuffle, seed: c.seed }));
  }
  let images: Tensor;
  let picked: number[];
  if (d.kind === 'fashionMnist') {
    let classIds: number[];
    try {
      classIds = d.classes ? fashionMnistClassIds(d.classes) : FASHION_MNIST_CLASSES.map((_, i) => i);
    } catch (err) {
      if (!(err instanceof ArgumentError)) throw err;
      throw new ConfigError(err.argument !== undefined ? `pretrain.data.classes.${err.argument}` : 'pretrain.data.classes', err.detail);
    }
    const dir = d.dir ?? FASHION_MNIST_DIR;
    const raw = await asDataError(() => fashionMnist('train', dir), dir);
    picked = selectClasses(raw.labels.toArray() as number[], classIds, { perClass: d.perClass }).indices;
    raw.labels.dispose();
    images = raw.images;
  } else {
    images = await asDataError(() => readIdx(d.path), d.path);
    if (images.ndim !== 3) {
      images.dispose();
      throw new DataError(`${d.path}: expected IDX images [N, height, width], got shape [${images.shape}]`, { path: d.path });
    }
    picked = Array.from({ length: images.shape[0] }, (_, i) => i);
  }
  try {
    return loaders(picked.length, (indices, shuffle) => {
      const x = prepareImages(
        images,
        indices.map((i) => picked[i]),
        d.channels,
        normalize,
      );
      return new TensorLoader(x, torch.zeros([indices.length], { dtype: 'int64' }), { batchSize: c.batchSize, shuffle, seed: c.seed });
    });
  } finally {
    images.dispose();
  }
}

/**
 * Masks for a batch of `n` images: 1 on the masked pixels. Each image has
 * round(ratio x patches) of its patch x patch squares (the last row and
 * column may be cut) masked, at least one, chosen from `seed`.
 */
export function patchMask(n: number, height: number, width: number, o: { patchSize: number; maskRatio: number; seed: number }): Float32Array {
  const rows = Math.ceil(height / o.patchSize);
  const cols = Math.ceil(width / o.patchSize);
  const patches = rows * cols;
  const k = Math.max(1, Math.round(o.maskRatio * patches));
  const random = rng(o.seed);
  const mask = new Float32Array(n * height * width);
  const order = Array.from({ length: patches }, (_, i) => i);
  for (let s = 0; s < n; s++) {
    // the first k of a partial Fisher-Yates shuffle
    for (let i = 0; i < k; i++) {
      const j = i + Math.floor(random() * (patches - i));
      [order[i], order[j]] = [order[j], order[i]];
      const r = Math.floor(order[i] / cols);
      const col = order[i] % cols;
      for (let y = r * o.patchSize; y < Math.min(height, (r + 1) * o.patchSize); y++)
        mask.fill(1, s * height * width + y * width + col * o.patchSize, s * height * width + y * width + Math.min(width, (col + 1) * o.patchSize));
    }
  }
  return mask;
}

/**
 * Batches of corrupted images: input = the image with masked patches set to
 * `fill`, target = [clean, mask] stacked on dimension 1 ([N, 2, C, H, W]).
 */
function corrupted(source: Sized, c: ReconstructionPretrainConfig, salt: number): Sized {
  return {
    get length() {
      return source.length;
    },
    async *batches(epoch: number) {
      let index = 0;
      for await (const batch of guardedBatches(source, epoch)) {
        const clean = batch.input as Tensor;
        batch.target.dispose();
        const [n, channels, height, width] = clean.shape;
        const seed = batchSeed(c.seed, salt, epoch, index++);
        const out = torch.tidy(() => {
          const mask = torch
            .tensor(patchMask(n, height, width, { ...c.corruption, seed }), { shape: [n, 1, height, width] })
            .expand([n, channels, height, width]);
          const input = clean.mul(mask.mul(-1).add(1)).add(mask.mul(c.corruption.fill));
          return { input, target: torch.stack([clean, mask], 1) };
        });
        clean.dispose();
        yield out as Batch;
      }
    },
  };
}

/** The reconstruction loss: mean squared error against the clean image, over all pixels or the masked ones. */
export function reconstructionLoss(lossOn: 'all' | 'masked'): LossFn {
  return (output, target) =>
    torch.tidy(() => {
      const clean = target.select(1, 0).flatten(1);
      if (lossOn === 'all') return mseLoss(output, clean);
      const mask = target.select(1, 1).flatten(1);
      return output.sub(clean).pow(2).mul(mask).sum().div(mask.sum().clamp(1));
    });
}

/** The first convolution's input channels (the first 4-D parameter). */
function inputChannels(model: Architecture): number | null {
  const first = model.namedParameters().find(([, p]) => p.ndim === 4);
  return first ? first[1].shape[1] : null;
}

/** The pretrained model of the config (or of a run being resumed), and its spec. */
function backbone(
  c: ReconstructionPretrainConfig,
  saved: ReconstructionSpec | undefined,
): { model: Architecture; arch: ArchitectureName; options: Record<string, unknown> } {
  if (saved) {
    const model = architectures[saved.arch](saved.options as never);
    return { model, arch: saved.arch, options: saved.options };
  }
  const m = c.model;
  if (!existsSync(m.checkpoint)) throw new ConfigError('pretrain.model.checkpoint', `${m.checkpoint} does not exist`);
  const named = savedArchitecture(m.checkpoint);
  const arch = m.arch ?? named?.arch;
  if (!arch)
    throw new ConfigError('pretrain.model.arch', `missing, and ${m.checkpoint} does not name its architecture (only .safetensors written by models.save do)`);
  if (isTextArch(arch) || !Object.hasOwn(architectures, arch))
    throw new ConfigError(
      'pretrain.model.arch',
      `${JSON.stringify(arch)} is not an image architecture (expected one of ${ARCHITECTURE_NAMES.filter((a) => !isTextArch(a)).join(', ')})`,
    );
  const vision: Record<string, unknown> = {};
  for (const k of ['width', 'inChannels', 'smallStem'] as const) if (m[k] !== undefined) vision[k] = m[k];
  let model: Architecture;
  try {
    model = loadModel(m.checkpoint, { arch: arch as ArchitectureName, ...vision });
  } catch (err) {
    throw new ConfigError('pretrain.model.checkpoint', (err as Error).message, { cause: err });
  }
  const { depth: _depth, ...options } = model.archOptions();
  return { model, arch: arch as ArchitectureName, options };
}

export async function setupReconstruction(c: ReconstructionPretrainConfig, saved?: ReconstructionSpec): Promise<KindSetup<ReconstructionMetrics>> {
  const data = await imageSources(c);
  // the image shape, from the first held-out (or training) batch
  let imageShape: [number, number, number] | null = saved?.imageShape ?? null;
  if (!imageShape) {
    for await (const b of guardedBatches(data.val ?? data.train, 0)) {
      const [, ch, h, w] = (b.input as Tensor).shape;
      imageShape = [ch, h, w];
      (b.input as Tensor).dispose();
      b.target.dispose();
      break;
    }
  }
  const [channels, height, width] = imageShape!;
  const { model, arch, options } = backbone(c, saved);
  const takes = inputChannels(model);
  if (takes !== null && takes !== channels) {
    model.dispose();
    throw new ConfigError('pretrain.data.channels', `the images have ${channels} channel(s), the model takes ${takes}`);
  }
  const head = model.head();
  const weight = Object.fromEntries(head.module.namedParameters({ recurse: false })).weight;
  const features = saved?.features ?? weight.shape[1];
  const hidden = saved?.hidden ?? c.decoder.hidden;
  if (!saved && c.corruption.patchSize > Math.max(height, width))
    throw new ConfigError('pretrain.corruption.patchSize', `${c.corruption.patchSize} is larger than the ${height}x${width} images`);
  model.replaceChild(head.path, new Sequential(new Linear(features, hidden), new ReLU(), new Linear(hidden, channels * height * width)));
  const spec: ReconstructionSpec = { arch, options, head: head.path, features, hidden, imageShape: [channels, height, width] };
  const val = data.val ? corrupted(data.val, c, VAL_SALT) : null;

  return {
    model,
    train: limitSteps(corrupted(data.train, c, TRAIN_SALT), c.steps),
    loss: reconstructionLoss(c.lossOn),
    samples: data.samples,
    spec: spec as unknown as Record<string, unknown>,
    describe: { arch, from: saved ? null : c.model.checkpoint },
    async evaluate() {
      if (!val) return null;
      const wasTraining = model.training;
      model.eval();
      let all = 0;
      let masked = 0;
      let pixels = 0;
      let maskedPixels = 0;
      let samples = 0;
      try {
        for await (const b of val.batches(0)) {
          const x = b.input as Tensor;
          const out = await torch.noGrad(() => model.forwardAsync(c.device === 'cpu' ? x : x.to(c.device)));
          const sums = torch.tidy(() => {
            const target = b.target.to(out.device);
            const sq = out.sub(target.select(1, 0).flatten(1)).pow(2);
            const mask = target.select(1, 1).flatten(1);
            return [sq.sum(), sq.mul(mask).sum(), mask.sum()].map((t) => t.item() as number);
          });
          all += sums[0];
          masked += sums[1];
          maskedPixels += sums[2];
          pixels += out.numel();
          samples += x.shape[0];
          for (const t of [x, out, b.target]) t.dispose();
        }
      } finally {
        if (wasTraining) model.train();
      }
      return { mse: all / pixels, maskedMse: masked / Math.max(1, maskedPixels), samples };
    },
    save(out) {
      const file = join(out, BACKBONE_FILE);
      const sd = model.stateDict();
      const backboneOnly = Object.fromEntries(Object.entries(sd).filter(([k]) => !k.startsWith(`${head.path}.`)));
      try {
        saveStateDict(backboneOnly, file, { metadata: { [META_ARCH]: arch, [META_OPTIONS]: JSON.stringify(options) } });
      } finally {
        Object.values(sd).forEach((t) => t.dispose());
      }
      return file;
    },
    dispose() {
      model.dispose();
    },
  };
}
