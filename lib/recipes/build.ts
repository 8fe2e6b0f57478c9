// From a validated recipe to the things fit() needs: the data (split,
// transformed, batched), the model (pretrained weights, new head), the
// optimizer (frozen blocks, parameter groups, schedule) and the loss. Each
// builder works on its own, for scripts that want one part of a recipe;
// runRecipe (run.ts) puts them together, and the CLI calls runRecipe.
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { extname, join } from 'node:path';
import { ArgumentError, ConfigError, DataError, asDataError } from '../errors.js';
import { FASHION_MNIST_CLASSES, FASHION_MNIST_DIR, fashionMnist, fashionMnistClassIds, selectClasses } from '../data/idx.js';
import { IMAGE_EXTENSIONS, IMAGENET_MEAN, IMAGENET_STD, imageFolder, type ImageSample, type Transform } from '../data/images.js';
import { io } from '../io/index.js';
import { inferVisionArchitecture } from '../models/infer.js';
import { HEAD_PATHS, STEM_PATHS } from '../models/vision.js';
import { adaptInputChannels } from '../finetune/input-channels.js';
import { DataLoader, ImageDataset } from '../data/data-loader.js';
import { TensorLoader } from '../data/tensor-loader.js';
import { shard, type ShardOptions } from '../distributed/sampler.js';
import type { Batch, NamedInputs } from '../data/batch.js';
import { split } from '../data/split.js';
import { readCsvDataset, readJsonlDataset, readTextRows } from '../data/text.js';
import { loadTokenizer, type Tokenizer } from '../data/load-tokenizer.js';
import { focalLoss } from '../losses/index.js';
import type { Architecture } from '../models/architecture.js';
import {
  architectures,
  huggingFaceWeights,
  isTextArch,
  load as loadModel,
  misplacedResNetOptions,
  savedArchitecture,
  ARCHITECTURE_NAMES,
  type ArchitectureName,
} from '../models/index.js';
import { TEXT_TASKS, TextModel, textModel, type HfConfig, type TextTask } from '../models/text.js';
import type { Module } from '../nn/module.js';
import { optim, type Optimizer } from '../optim/index.js';
import { LRScheduler } from '../optim/lr-scheduler.js';
import { freeze, unfreeze } from '../finetune/freeze.js';
import { paramGroups } from '../finetune/groups.js';
import { blocksOf } from '../finetune/blocks.js';
import { swapHead } from '../finetune/head.js';
import { torch } from '../tensor/index.js';
import type { Tensor } from '../tensor/tensor.js';
import { cuda } from '../cuda/index.js';
import type { BatchSource, BuiltinLoss, LossFn } from '../train/trainer.js';
import { DETECTOR_ARCH, type DataSpec, type Recipe } from './schema.js';
import { buildTaggerFromSpec, type TokenInputSpec } from './token-classification.js';
import type { DetectionInputSpec } from './detection.js';
import { FasterRCNN, fasterrcnnResnet50Fpn, type FasterRCNNOptions } from '../models/detection/faster-rcnn.js';
import { isTaggerArch } from '../models/taggers.js';

export type Part = 'train' | 'val' | 'test';
export const PARTS: Part[] = ['train', 'val', 'test'];

/** How a raw input becomes a model input: what predict needs to prepare new files like the training data (saved in run.json). */
export type InputSpec =
  | {
      kind: 'image';
      channels: 1 | 3;
      /** Stretch to [height, width] (recipe imageSize). */
      size: [number, number] | null;
      normalize: { mean: number[]; std: number[] } | null;
      /** torchvision's Resize(resize) (shorter side, PIL bilinear) and CenterCrop(crop); absent in run.json files written before they existed. */
      resize?: number | null;
      crop?: number | null;
    }
  | { kind: 'text'; tokenizer: string; lowercase?: boolean; maxLength: number; textColumn: string; labelColumn: string }
  /** Token classification (see token-classification.ts). */
  | TokenInputSpec
  /** Detection (see detection.ts): RGB images of any size in [0, 1]; the detector resizes and normalises them itself. */
  | DetectionInputSpec;

export interface Sized extends BatchSource {
  readonly length: number;
}

export interface DataBundle {
  classes: string[];
  /** Batch sources of the parts asked for (a part with no samples is absent). */
  parts: Partial<Record<Part, Sized>>;
  sizes: Record<Part, number>;
  /** Per-class sample counts of the training part. */
  trainCounts: Record<string, number>;
  input: InputSpec;
  /** Text data: the tokenizer the texts were encoded with. */
  tokenizer?: Tokenizer;
  /** What the builder chose for the recipe (a default transform), to show the user and keep in run.json. */
  notes?: string[];
}

// ---- data

type Normalize = 'imagenet' | 'none' | { mean: number[]; std: number[] };

function normalization(n: Normalize | undefined, channels: 1 | 3, field: string, dflt: 'imagenet' | 'none'): { mean: number[]; std: number[] } | null {
  const v = n ?? dflt;
  if (v === 'none') return null;
  if (v === 'imagenet') {
    if (channels !== 3) throw new ConfigError(field, `'imagenet' needs 3 channels (got channels ${channels}); give {mean: [m], std: [s]} or 'none'`);
    return { mean: IMAGENET_MEAN, std: IMAGENET_STD };
  }
  if (v.mean.length !== channels || v.std.length !== channels)
    throw new ConfigError(field, `mean and std need ${channels} value(s) for ${channels} channel(s), got ${v.mean.length} and ${v.std.length}`);
  return v;
}

/** Fractions of the parts that are split off the main sample set (parts with their own source or 0 are left out), renormalised. */
export function splitFractions(s: { train: number; val: number; test: number }, separate: Part[]): Array<[Part, number]> {
  const parts = PARTS.filter((p) => !separate.includes(p) && s[p] > 0).map((p) => [p, s[p]] as [Part, number]);
  const total = parts.reduce((a, [, f]) => a + f, 0);
  return parts.map(([p, f]) => [p, f / total]);
}

export function splitIndices(labels: number[], fractions: Array<[Part, number]>, seed: number): Partial<Record<Part, number[]>> {
  if (fractions.length === 1) return { [fractions[0][0]]: labels.map((_, i) => i) };
  const parts = split(
    labels,
    fractions.map(([, f]) => f),
    { seed },
  );
  return Object.fromEntries(fractions.map(([p], i) => [p, parts[i]]));
}

function counts(labels: number[], classes: string[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const l of labels) out[classes[l]] = (out[classes[l]] ?? 0) + 1;
  return out;
}

type ImageInput = Extract<InputSpec, { kind: 'image' }>;

/** The transforms of a recipe's images: resize (or random resized crop), augmentation for training, normalisation. */
export function imageTransforms(input: ImageInput, augment: Extract<DataSpec, { kind: 'imageFolder' }>['augment'] | undefined, train: boolean): Transform[] {
  const t: Transform[] = [];
  const size = input.size;
  const a = train ? augment : undefined;
  if (input.resize || input.crop) {
    // torchvision: evaluation Resize(resize) + CenterCrop(crop); training with augment RandomResizedCrop(crop) when asked,
    // else the same resize and a random crop (after padding, if asked) where evaluation takes the centre
    const crop = input.crop;
    if (a?.randomResizedCrop) {
      if (!crop) throw new ConfigError('recipe.data.augment.randomResizedCrop', 'needs recipe.data.crop (the size of the crop), or imageSize');
      t.push({
        randomResizedCrop: crop,
        scale: a.randomResizedCrop.scale,
        interpolation: 'bilinear',
        ...(a.randomResizedCrop.ratio ? { ratio: a.randomResizedCrop.ratio } : {}),
      });
    } else {
      if (input.resize) t.push({ resize: input.resize, interpolation: 'bilinear' });
      if (crop) t.push(a ? { randomCrop: crop, padding: a.randomCropPadding } : { centerCrop: crop });
      else if (a?.randomCropPadding !== undefined)
        throw new ConfigError('recipe.data.augment.randomCropPadding', 'needs recipe.data.crop (the size of the crop), or imageSize');
    }
  } else if (a?.randomResizedCrop) {
    if (!size) throw new ConfigError('recipe.data.augment.randomResizedCrop', 'needs recipe.data.imageSize');
    t.push({ randomResizedCrop: size, scale: a.randomResizedCrop.scale, ...(a.randomResizedCrop.ratio ? { ratio: a.randomResizedCrop.ratio } : {}) });
  } else if (size) t.push({ resize: size });
  if (a?.randomCropPadding !== undefined && !input.resize && !input.crop) {
    if (!size) throw new ConfigError('recipe.data.augment.randomCropPadding', 'needs recipe.data.imageSize');
    t.push({ randomCrop: size, padding: a.randomCropPadding });
  }
  if (a?.rotation) t.push({ randomRotation: a.rotation });
  if (a?.horizontalFlip) t.push({ horizontalFlip: a.horizontalFlip });
  if (a?.verticalFlip) t.push({ verticalFlip: a.verticalFlip });
  if (a?.colorJitter) t.push({ colorJitter: a.colorJitter });
  if (input.normalize) t.push({ normalize: input.normalize });
  return t;
}

/** Wraps a source so a failure while loading a batch (not while training on it) is a DataError. */
function guarded(source: Sized): Sized & { shard(options: ShardOptions): Sized } {
  return {
    get length() {
      return source.length;
    },
    // distributed: the wrapped loader's own shard (each rank loads only its samples), guarded too
    shard: (options: ShardOptions) => guarded(shard(source, options) as Sized),
    async *batches(epoch: number) {
      const it = (source.batches(epoch) as AsyncIterable<Batch>)[Symbol.asyncIterator]?.() ?? (source.batches(epoch) as Iterable<Batch>)[Symbol.iterator]();
      try {
        for (;;) {
          let r: IteratorResult<Batch>;
          try {
            r = await it.next();
          } catch (err) {
            throw err instanceof DataError ? err : new DataError((err as Error).message, { cause: err });
          }
          if (r.done) return;
          yield r.value;
        }
      } finally {
        await it.return?.();
      }
    },
  };
}

/** ImageNet's evaluation transform in torchvision's reference scripts: Resize(256) + CenterCrop(224). */
export const IMAGENET_RESIZE = 256;
export const IMAGENET_CROP = 224;

/** What a vision checkpoint file tells about itself (read once per file and version). */
interface CheckpointFacts {
  /** The architecture inferred from names and shapes, and the candidates when that is ambiguous. */
  inferred: ReturnType<typeof inferVisionArchitecture>;
  /** Input channels of each architecture's stem weight found in the file, by architecture. */
  stemChannels: Record<string, number>;
  /** Rows of each architecture's head weight found in the file, by architecture. */
  headRows: Record<string, number>;
}
const factsCache = new Map<string, CheckpointFacts>();

/** Reads a (vision) checkpoint's names and shapes; null for folders and files io.load cannot read (models.load reports those). */
function checkpointFacts(path: string): CheckpointFacts | null {
  if (!existsSync(path) || statSync(path).isDirectory()) return null;
  const key = `${path}\0${statSync(path).mtimeMs}`;
  const known = factsCache.get(key);
  if (known) return known;
  let sd: Record<string, Tensor>;
  try {
    sd = io.load(path);
  } catch {
    return null;
  }
  try {
    const stemChannels: Record<string, number> = {};
    const headRows: Record<string, number> = {};
    for (const [arch, p] of Object.entries(STEM_PATHS)) if (sd[`${p}.weight`]?.shape.length === 4) stemChannels[arch] = sd[`${p}.weight`].shape[1];
    for (const [arch, p] of Object.entries(HEAD_PATHS)) if (sd[`${p}.weight`]?.shape.length === 2) headRows[arch] = sd[`${p}.weight`].shape[0];
    const facts = { inferred: inferVisionArchitecture(sd), stemChannels, headRows };
    factsCache.set(key, facts);
    return facts;
  } finally {
    Object.values(sd).forEach((t) => t.dispose());
  }
}

/** The recipe's vision architecture as far as it is known before the model is built: model.arch, a models.save file's, or the inferred one. */
function recipeVisionArch(recipe: Recipe): string | undefined {
  const m = recipe.model;
  const arch =
    m.arch ?? (m.checkpoint && existsSync(m.checkpoint) && !statSync(m.checkpoint).isDirectory() ? savedArchitecture(m.checkpoint)?.arch : undefined);
  return arch ?? (m.checkpoint ? (checkpointFacts(m.checkpoint)?.inferred.arch ?? undefined) : undefined);
}

/** Whether the recipe fine-tunes an ImageNet checkpoint: a vision model whose checkpoint has a 3-channel stem and a 1000-class head. */
export function isImageNetCheckpoint(recipe: Recipe): boolean {
  const file = recipe.model.checkpoint;
  if (!file) return false;
  const arch = recipeVisionArch(recipe);
  if (!arch || !(arch in HEAD_PATHS)) return false;
  const facts = checkpointFacts(file);
  return facts?.headRows[arch] === 1000 && facts.stemChannels[arch] === 3;
}

async function imageFolderData(d: Extract<DataSpec, { kind: 'imageFolder' }>, recipe: Recipe, want: Part[], recorded?: InputSpec): Promise<DataBundle> {
  if (d.imageSize !== undefined && (d.resize !== undefined || d.crop !== undefined))
    throw new ConfigError('recipe.data.imageSize', 'give imageSize (stretch to a square) or resize/crop (torchvision Resize + CenterCrop), not both');
  if (d.resize !== undefined && d.crop !== undefined && d.crop > d.resize)
    throw new ConfigError('recipe.data.crop', `${d.crop} is more than resize ${d.resize}: the crop is cut from the resized image`);
  const main = await asDataError(() => imageFolder(d.root), d.root);
  const separate: Part[] = [];
  const folders: Partial<Record<Part, ImageSample[]>> = {};
  for (const [part, root] of [
    ['val', d.valRoot],
    ['test', d.testRoot],
  ] as const) {
    if (!root) continue;
    separate.push(part);
    const f = await asDataError(() => imageFolder(root), root);
    if (f.classes.join('\n') !== main.classes.join('\n'))
      throw new DataError(`${root}: its classes (${f.classes.join(', ')}) differ from ${d.root}'s (${main.classes.join(', ')})`, { path: root });
    folders[part] = f.samples;
  }
  const labels = main.samples.map((s) => s.label);
  const indices = splitIndices(labels, splitFractions(d.split, separate), d.split.seed ?? recipe.seed);
  for (const p of PARTS) if (indices[p]) folders[p] = indices[p]!.map((i) => main.samples[i]);
  const notes: string[] = [];
  let resize = d.resize ?? null;
  let crop = d.crop ?? null;
  if (!recorded && d.imageSize === undefined && resize === null && crop === null && isImageNetCheckpoint(recipe)) {
    resize = IMAGENET_RESIZE;
    crop = IMAGENET_CROP;
    notes.push(
      `images: resize ${resize} + center crop ${crop} (torchvision's ImageNet evaluation transform), the default for an ImageNet checkpoint; data.imageSize or data.resize/crop change it`,
    );
  }
  // eval and predict prepare images as the run recorded them (run.json), whatever the recipe's checkpoint is now
  const input: InputSpec =
    recorded?.kind === 'image'
      ? { ...recorded, resize: recorded.resize ?? null, crop: recorded.crop ?? null }
      : {
          kind: 'image',
          channels: d.channels,
          size: d.imageSize ? [d.imageSize, d.imageSize] : null,
          normalize: normalization(d.normalize, d.channels, 'recipe.data.normalize', d.channels === 3 ? 'imagenet' : 'none'),
          resize,
          crop,
        };
  const parts: Partial<Record<Part, Sized>> = {};
  for (const p of want) {
    const samples = folders[p];
    if (!samples?.length) continue;
    const dataset = new ImageDataset(samples, { channels: input.channels, transforms: imageTransforms(input, d.augment, p === 'train') });
    parts[p] = guarded(new DataLoader(dataset, { batchSize: recipe.batchSize, shuffle: p === 'train', seed: recipe.seed, prefetch: d.prefetch }));
  }
  const sizes = Object.fromEntries(PARTS.map((p) => [p, folders[p]?.length ?? 0])) as Record<Part, number>;
  return {
    classes: main.classes,
    parts,
    sizes,
    trainCounts: counts(
      (folders.train ?? []).map((s) => s.label),
      main.classes,
    ),
    input,
    notes,
  };
}

async function fashionMnistData(d: Extract<DataSpec, { kind: 'fashionMnist' }>, recipe: Recipe, want: Part[]): Promise<DataBundle> {
  let classIds: number[];
  try {
    classIds = d.classes ? fashionMnistClassIds(d.classes) : FASHION_MNIST_CLASSES.map((_, i) => i);
  } catch (err) {
    if (!(err instanceof ArgumentError)) throw err;
    throw new ConfigError(err.argument !== undefined ? `recipe.data.classes.${err.argument}` : 'recipe.data.classes', err.detail);
  }
  if (d.counts && d.counts.length !== classIds.length)
    throw new ConfigError('recipe.data.counts', `has ${d.counts.length} entries for ${classIds.length} classes`);
  const dir = d.dir ?? FASHION_MNIST_DIR;
  const classes = classIds.map((c) => FASHION_MNIST_CLASSES[c]);
  const normalize = normalization(d.normalize, d.channels, 'recipe.data.normalize', 'none');
  const seed = d.seed ?? recipe.seed;
  // images uint8 [N,28,28] -> float [N,C,28,28] in [0,1], normalised
  const prepare = (images: Tensor, picked: number[]) =>
    torch.tidy(() => {
      let x = images.indexSelect(0, torch.tensor(picked)).unsqueeze(1).float().div(255);
      if (d.channels === 3) x = x.repeat([1, 3, 1, 1]);
      if (normalize) x = x.sub(torch.tensor(normalize.mean).reshape([1, -1, 1, 1])).div(torch.tensor(normalize.std).reshape([1, -1, 1, 1]));
      return x;
    });
  const parts: Partial<Record<Part, Sized>> = {};
  const sizes: Record<Part, number> = { train: 0, val: 0, test: 0 };
  let trainCounts: Record<string, number> = {};
  if (want.includes('train') || want.includes('val')) {
    const raw = await asDataError(() => fashionMnist('train', dir), dir);
    const { indices: idx, targets: y } = selectClasses(raw.labels.toArray() as number[], classIds, { perClass: d.counts ?? d.perClass });
    const fractions: Array<[Part, number]> =
      d.val > 0
        ? [
            ['train', 1 - d.val],
            ['val', d.val],
          ]
        : [['train', 1]];
    const at = splitIndices(y, fractions, seed);
    for (const p of ['train', 'val'] as const) {
      const picked = at[p];
      if (!picked?.length) continue;
      sizes[p] = picked.length;
      if (p === 'train')
        trainCounts = counts(
          picked.map((i) => y[i]),
          classes,
        );
      if (!want.includes(p)) continue;
      const x = prepare(
        raw.images,
        picked.map((i) => idx[i]),
      );
      parts[p] = new TensorLoader(x, torch.tensor(picked.map((i) => y[i])), { batchSize: recipe.batchSize, shuffle: p === 'train', seed: recipe.seed });
    }
    raw.images.dispose();
    raw.labels.dispose();
  }
  if (want.includes('test')) {
    const raw = await asDataError(() => fashionMnist('test', dir), dir);
    const { indices: idx, targets: y } = selectClasses(raw.labels.toArray() as number[], classIds, { perClass: d.testPerClass });
    sizes.test = idx.length;
    parts.test = new TensorLoader(prepare(raw.images, idx), torch.tensor(y), { batchSize: recipe.batchSize });
    raw.images.dispose();
    raw.labels.dispose();
  }
  return { classes, parts, sizes, trainCounts, input: { kind: 'image', channels: d.channels, size: [28, 28], normalize } };
}

/** Token ids and attention masks of texts, padded to maxLength: the named inputs of a text model. */
export function encodeTexts(tokenizer: Tokenizer, texts: string[], maxLength: number): NamedInputs {
  const enc = tokenizer.encodeBatch(texts, { maxLength, truncation: true, padding: 'max_length' });
  // token types are all 0 for single texts, the models' default
  (enc as { tokenTypeIds?: Tensor }).tokenTypeIds?.dispose();
  return { inputIds: enc.inputIds, attentionMask: enc.attentionMask };
}

async function textData(d: Extract<DataSpec, { kind: 'csv' | 'jsonl' }>, recipe: Recipe, want: Part[]): Promise<DataBundle> {
  const options = { textColumn: d.textColumn, labelColumn: d.labelColumn, classes: d.classes };
  const ds = await asDataError(() => (d.kind === 'csv' ? readCsvDataset(d.path, options) : readJsonlDataset(d.path, options)), d.path);
  const tokenizer = await asDataError(() => loadTokenizer(d.tokenizer, { lowercase: d.lowercase }), d.tokenizer);
  const indices = splitIndices(ds.labels, splitFractions(d.split, []), d.split.seed ?? recipe.seed);
  const parts: Partial<Record<Part, Sized>> = {};
  for (const p of want) {
    const at = indices[p];
    if (!at?.length) continue;
    const x = encodeTexts(
      tokenizer,
      at.map((i) => ds.texts[i]),
      d.maxLength,
    );
    parts[p] = new TensorLoader(x, torch.tensor(at.map((i) => ds.labels[i])), { batchSize: recipe.batchSize, shuffle: p === 'train', seed: recipe.seed });
  }
  const sizes = Object.fromEntries(PARTS.map((p) => [p, indices[p]?.length ?? 0])) as Record<Part, number>;
  return {
    classes: ds.classes,
    parts,
    sizes,
    trainCounts: counts(
      (indices.train ?? []).map((i) => ds.labels[i]),
      ds.classes,
    ),
    tokenizer,
    input: { kind: 'text', tokenizer: d.tokenizer, lowercase: d.lowercase, maxLength: d.maxLength, textColumn: d.textColumn, labelColumn: d.labelColumn },
  };
}

/**
 * Reads, splits and batches the recipe's data; only the parts in `parts` get
 * loaders (all three by default). `recorded`: how a trained run prepared its
 * images (run.json's input), used instead of the recipe's own choice.
 */
export async function buildData(recipe: Recipe, parts: Part[] = PARTS, recorded?: InputSpec): Promise<DataBundle> {
  const d = recipe.data;
  if (!d) throw new ConfigError('recipe.data', 'the recipe has no data section (see docs/cli.md for imageFolder, fashionMnist, csv, jsonl)');
  if (d.kind === 'conll' || d.kind === 'jsonlSpans' || recipe.task === 'tokenClassification')
    throw new ConfigError('recipe.task', 'token classification data is read by buildTokenData (recipes/token-classification.ts), not buildData');
  if (d.kind === 'coco' || d.kind === 'voc' || recipe.task === 'detection')
    throw new ConfigError('recipe.task', 'detection data is read by buildDetectionData (recipes/detection.ts), not buildData');
  const bundle =
    d.kind === 'imageFolder'
      ? await imageFolderData(d, recipe, parts, recorded)
      : d.kind === 'fashionMnist'
        ? await fashionMnistData(d, recipe, parts)
        : await textData(d, recipe, parts);
  if (bundle.classes.length < 2) {
    const where = d.kind === 'imageFolder' ? d.root : d.kind === 'fashionMnist' ? 'recipe.data.classes' : d.path;
    throw new DataError(
      `${where}: the data has ${bundle.classes.length} class${bundle.classes.length === 1 ? '' : 'es'} (${bundle.classes.join(', ')}); classification needs at least 2`,
      { path: where },
    );
  }
  // (batches stay on the CPU here: fit, evaluate and predict move them to the model's device, recipe.device)
  return bundle;
}

// ---- new inputs, prepared as in training (predict)

export function walkImages(path: string): string[] {
  if (!statSync(path).isDirectory()) return [path];
  return readdirSync(path)
    .sort()
    .flatMap((n) => {
      const p = join(path, n);
      return statSync(p).isDirectory() ? walkImages(p) : IMAGE_EXTENSIONS.includes(extname(n).toLowerCase()) ? [p] : [];
    });
}

export interface PreparedInputs {
  source: Sized;
  /** What each input is: the file, or `file:line` / `text N` for texts. */
  names: string[];
  /** Text inputs: the texts themselves. */
  texts: Array<string | null>;
  /** Labels found next to the inputs (a CSV/JSONL label column), else null. */
  labels: Array<string | null>;
}

/**
 * Turns files (images, folders of images, or CSV/JSONL files of texts) and
 * literal texts into batches prepared as in training. The batches are on the
 * CPU: predict and evaluate move them to the model's device (`device` is
 * accepted for the callers that pass it and changes nothing).
 */
export async function prepareInputs(
  input: InputSpec,
  o: { paths?: string[]; texts?: string[]; batchSize?: number; device?: string } = {},
): Promise<PreparedInputs> {
  const paths = o.paths ?? [];
  const literal = o.texts ?? [];
  const batchSize = o.batchSize ?? 32;
  let out: PreparedInputs;
  if (input.kind === 'tokens') throw new DataError('a tagger (token classification) predicts spans: use predictSpans or finetorch predict');
  if (input.kind === 'detection') throw new DataError('a detector finds boxes: use predictDetections (recipes/detection.ts) or finetorch predict');
  if (input.kind === 'image') {
    if (literal.length) throw new DataError('texts need a text model; this one takes images');
    const files = await asDataError(() =>
      paths.flatMap((p) => {
        if (!existsSync(p)) throw new DataError(`${p} does not exist`, { path: p });
        return walkImages(p);
      }),
    );
    if (!files.length) throw new DataError(`no images (${IMAGE_EXTENSIONS.join(', ')}) in ${paths.join(', ') || 'the inputs'}`);
    const dataset = new ImageDataset(
      files.map((path) => ({ path, label: 0 })),
      { channels: input.channels, transforms: imageTransforms(input, undefined, false) },
    );
    out = { source: guarded(new DataLoader(dataset, { batchSize })), names: files, texts: files.map(() => null), labels: files.map(() => null) };
  } else {
    const names: string[] = [];
    const texts: string[] = [];
    const labels: Array<string | null> = [];
    for (const p of paths) {
      await asDataError(() => {
        if (!existsSync(p)) throw new DataError(`${p} does not exist`, { path: p });
        for (const r of readTextRows(p, { textColumn: input.textColumn, labelColumn: input.labelColumn, labelOptional: true })) {
          if (typeof r.text !== 'string') throw new DataError(`${r.where}: no text in "${input.textColumn}"`, { path: p, row: r.line });
          names.push(r.where);
          texts.push(r.text);
          labels.push(r.label === undefined || r.label === null || r.label === '' ? null : String(r.label));
        }
      }, p);
    }
    literal.forEach((t, i) => {
      names.push(`text ${i + 1}`);
      texts.push(t);
      labels.push(null);
    });
    if (!texts.length) throw new DataError('nothing to predict: give a CSV/JSONL file or texts');
    const tokenizer = await asDataError(() => loadTokenizer(input.tokenizer, { lowercase: input.lowercase }), input.tokenizer);
    const x = encodeTexts(tokenizer, texts, input.maxLength);
    out = { source: new TensorLoader(x, torch.zeros([texts.length], { dtype: 'int64' }), { batchSize }), names, texts, labels };
  }
  return out;
}

// ---- model

/** What rebuilds the trained model without its pretrained checkpoint (saved in run.json). */
export interface ModelSpec {
  arch: string;
  /**
   * Vision: the builder's options (numClasses, width, ...). Text: {task,
   * numClasses} (no numClasses for maskedLM; no task, in run.json files
   * written before tasks existed, means sequenceClassification).
   */
  options: Record<string, unknown>;
  /** Text architectures: the Hugging Face config.json. */
  hfConfig?: HfConfig;
  /** The pretrained stem convolution was adapted to other input channels (timm's adapt_input_conv): its path, channels before and after. */
  stemAdapted?: { path: string; from: number; to: number };
  /** The architecture was inferred from this checkpoint's tensors (the recipe named none). */
  archInferredFrom?: string;
}

function readHfConfig(path: string): HfConfig {
  try {
    return JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new ConfigError('recipe.model.config', `cannot read ${path}: ${(err as Error).message}`, { cause: err });
  }
}

/**
 * The config.json of a text recipe's model: recipe.model.config, else the
 * checkpoint folder's config.json, else the one a models.save checkpoint
 * file carries; undefined when there is none.
 */
export function recipeHfConfig(recipe: Recipe): HfConfig | undefined {
  const m = recipe.model;
  if (m.config) return readHfConfig(m.config);
  if (!m.checkpoint || !existsSync(m.checkpoint)) return undefined;
  if (statSync(m.checkpoint).isDirectory()) {
    const inFolder = join(m.checkpoint, 'config.json');
    return existsSync(inFolder) ? readHfConfig(inFolder) : undefined;
  }
  return savedArchitecture(m.checkpoint)?.config;
}

function checkArch(arch: string): void {
  if (!ARCHITECTURE_NAMES.includes(arch))
    throw new ConfigError('recipe.model.arch', `unknown architecture ${JSON.stringify(arch)} (expected one of ${ARCHITECTURE_NAMES.join(', ')})`);
}

/** The task of a text model's spec (sequenceClassification when it names none, as older run.json files do); `field` names it in errors. */
export function specTask(spec: ModelSpec, field = 'model.options.task'): TextTask {
  const task = spec.options.task ?? 'sequenceClassification';
  if (typeof task !== 'string' || !(TEXT_TASKS as readonly string[]).includes(task))
    throw new ConfigError(field, `must be one of ${TEXT_TASKS.join(', ')}, got ${JSON.stringify(task)}`);
  return task as TextTask;
}

/** Builds a model from a spec, freshly initialised. */
export function buildFromSpec(spec: ModelSpec): Architecture {
  if (isTaggerArch(spec.arch)) return buildTaggerFromSpec(spec);
  if (spec.arch === DETECTOR_ARCH) return fasterrcnnResnet50Fpn(spec.options as FasterRCNNOptions);
  checkArch(spec.arch);
  if (isTextArch(spec.arch)) {
    if (!spec.hfConfig) throw new ConfigError('model.hfConfig', `a ${spec.arch} model needs its config.json (recipe.model.config)`);
    return textModel(spec.arch, spec.hfConfig, { task: specTask(spec), numClasses: spec.options.numClasses as number | undefined });
  }
  const inChannels = spec.options.inChannels;
  // only ResNets build other input channels natively; the others get their stem rebuilt (its weights are loaded after)
  if (spec.arch.startsWith('resnet') || inChannels === undefined || inChannels === 3)
    return architectures[spec.arch as ArchitectureName](spec.options as never);
  const { inChannels: _, ...options } = spec.options;
  const model = architectures[spec.arch as ArchitectureName](options as never);
  adaptInputChannels(model, inChannels as number);
  return model;
}

export function specOf(model: Architecture, hfConfig?: HfConfig): ModelSpec {
  if (model instanceof TextModel) {
    const options: Record<string, unknown> = { task: model.task };
    // the head's own size: swapHead may have replaced it since the model was built
    if (model.task !== 'maskedLM') options.numClasses = Object.fromEntries(model.head().module.namedParameters({ recurse: false })).weight.shape[0];
    return { arch: model.arch, options, hfConfig };
  }
  const { depth: _d, ...options } = model.archOptions();
  return { arch: model.arch, options };
}

/**
 * The model of a recipe: pretrained weights when it names a checkpoint, the
 * head swapped for numClasses. A checkpoint without model.arch: a models.save
 * file names its architecture, else it is inferred from the tensors' names
 * and shapes (refused, naming the candidates, when several fit). Input
 * channels: model.inChannels, else the data's (`options.inChannels`); a
 * pretrained stem with other channels is adapted (timm's adapt_input_conv).
 * `notes` says what was inferred or adapted.
 */
export function buildModel(
  recipe: Recipe,
  numClasses: number,
  options: { inChannels?: number } = {},
): { model: Architecture; spec: ModelSpec; pretrained: boolean; notes: string[] } {
  const m = recipe.model;
  const notes: string[] = [];
  if (m.numClasses !== undefined && m.numClasses !== numClasses)
    throw new ConfigError('recipe.model.numClasses', `is ${m.numClasses} but the data has ${numClasses} classes`);
  let arch = m.arch;
  const visionOptions: Record<string, unknown> = {};
  for (const k of ['width', 'smallStem', 'dropout'] as const) if (m[k] !== undefined) visionOptions[k] = m[k];
  if (m.checkpoint !== undefined && !existsSync(m.checkpoint)) throw new ConfigError('recipe.model.checkpoint', `${m.checkpoint} does not exist`);
  if (!arch) {
    const saved = savedArchitecture(m.checkpoint!);
    if (saved) arch = saved.arch;
    else {
      const file = m.checkpoint!;
      const facts = checkpointFacts(file);
      // a file the readers refuse: their error (it names the file and what is wrong), not a guess
      if (!facts && !statSync(file).isDirectory()) io.load(file);
      const inferred = facts?.inferred;
      if (!inferred?.arch) {
        const why = inferred?.candidates.length
          ? `its tensors fit several architectures (${inferred.candidates.join(', ')}): only part of a network is there`
          : 'it does not name its architecture (only .safetensors written by models.save do), and its tensors match none of the built-in image architectures';
        throw new ConfigError('recipe.model.arch', `missing, and ${m.checkpoint} cannot tell: ${why}; give model.arch`);
      }
      arch = inferred.arch;
      // a ResNet's size comes from the file too (width, stem); the recipe's own values win
      for (const k of ['width', 'smallStem'] as const)
        if (inferred.options[k] !== undefined && visionOptions[k] === undefined) visionOptions[k] = inferred.options[k];
      const size =
        arch.startsWith('resnet') && inferred.options.width !== 64
          ? ` (width ${inferred.options.width}${inferred.options.smallStem ? ', small stem' : ''})`
          : '';
      notes.push(`architecture inferred: ${arch}${size} from ${m.checkpoint}`);
    }
  }
  checkArch(arch);
  const text = isTextArch(arch);
  const misplaced = misplacedResNetOptions(arch, m).filter((k) => k !== 'inChannels');
  if (!text && misplaced.length) throw new ConfigError('recipe.model', `${misplaced.join(', ')} apply to ResNets only (arch ${arch})`);
  if (text && m.inChannels !== undefined) throw new ConfigError('recipe.model.inChannels', `applies to image models (arch ${arch})`);
  let hfConfig: HfConfig | undefined;
  if (text) {
    hfConfig = recipeHfConfig(recipe);
    if (!hfConfig) throw new ConfigError('recipe.model.config', `text architectures (${arch}) need the model's config.json`);
  }
  // the input channels the model must take: the recipe's, else the data's
  const inChannels = text ? undefined : (m.inChannels ?? options.inChannels);
  let model: Architecture;
  let adapted: { path: string; from: number; to: number } | null = null;
  if (!m.checkpoint) {
    const channels = inChannels !== undefined && inChannels !== 3 ? { inChannels } : {};
    model = buildFromSpec({ arch, options: { ...visionOptions, ...channels, numClasses }, hfConfig });
  } else {
    let file = m.checkpoint;
    if (statSync(file).isDirectory()) {
      const found = huggingFaceWeights(file);
      if (!found) throw new ConfigError('recipe.model.checkpoint', `folder ${file} has neither model.safetensors nor pytorch_model.bin`);
      file = found;
    }
    // recipes train one label per input: a masked-LM or token-classification checkpoint gives its encoder to a new sequence classifier
    const task = text ? { task: 'sequenceClassification' as const } : {};
    // the weights load with the stem they have (a ResNet's input channels are read off the file), then the stem is adapted
    const stemChannels = !text && arch.startsWith('resnet') ? checkpointFacts(file)?.stemChannels[arch] : undefined;
    const channels = stemChannels !== undefined ? { inChannels: stemChannels } : {};
    model = loadModel(file, { arch: arch as ArchitectureName, config: hfConfig, numClasses, ...task, ...visionOptions, ...channels });
    if (recipe.head.swap) swapHead(model, numClasses);
    if (inChannels !== undefined && model.stemConv()) {
      try {
        adapted = adaptInputChannels(model, inChannels);
      } catch (err) {
        model.dispose();
        if (err instanceof ArgumentError)
          throw new ConfigError(m.inChannels !== undefined ? 'recipe.model.inChannels' : 'recipe.data.channels', `${file}: ${err.detail}`);
        throw err;
      }
      if (adapted.from === adapted.to) adapted = null;
      else
        notes.push(
          `input channels: the pretrained stem ${adapted.path} adapted from ${adapted.from} to ${adapted.to} channels (timm's adapt_input_conv: ${adapted.to === 1 ? 'RGB filters summed' : `RGB filters repeated, scaled by 3/${adapted.to}`})${m.inChannels === undefined ? ', as the data has' : ''}`,
        );
    }
  }
  const spec = specOf(model, hfConfig);
  if (adapted || (!text && inChannels !== undefined && inChannels !== 3)) spec.options.inChannels = inChannels;
  if (adapted) spec.stemAdapted = adapted;
  if (notes.some((n) => n.startsWith('architecture inferred'))) spec.archInferredFrom = m.checkpoint;
  return { model, spec, pretrained: !!m.checkpoint, notes };
}

// ---- optimizer and schedule, loss

export interface OptimizerParts {
  optimizer: Optimizer;
  scheduler?: LRScheduler;
  /** Names of the frozen parameters. */
  frozen: string[];
  groups: Array<{ block: string; lr: number; params: number }>;
}

/**
 * The recipe's training setup on a model: freezes what `freeze` says, builds
 * one parameter group per block with the recipe's learning rates (no weight
 * decay on biases and norms), the optimizer, and the schedule over
 * epochs x ceil(stepsPerEpoch / gradientAccumulationSteps) optimizer steps
 * (stepsPerEpoch: batches per epoch). With `unfreeze` (gradual unfreezing)
 * the groups cover the frozen blocks too, each with its LR, so a block that
 * is unfrozen later trains at its own LR under the schedule (frozen
 * parameters have no gradient, and the optimizer leaves them alone until then).
 */
export function buildOptimizer(recipe: Recipe, model: Module, stepsPerEpoch: number): OptimizerParts {
  let frozen: string[] = [];
  const o = recipe.optimizer;
  const makeGroups = () => {
    try {
      const lrs = o.lrs ? { lrs: o.lrs } : o.bottomLr !== undefined ? { bottom: o.bottomLr, top: o.topLr! } : { lrs: [] as number[] };
      // headLr: the last block (the head; a tagger's classifier and CRF) apart from the rest
      if (o.lr !== undefined) lrs.lrs = blocksOf(model).map((_, i, all) => (o.headLr !== undefined && i === all.length - 1 ? o.headLr : o.lr!));
      return paramGroups(model, { ...lrs, weightDecay: o.weightDecay });
    } catch (err) {
      if (err instanceof ArgumentError) throw new ConfigError(o.lrs ? 'recipe.optimizer.lrs' : 'recipe.freeze', err.detail);
      throw err;
    }
  };
  let groups: ReturnType<typeof paramGroups> | undefined;
  if (recipe.unfreeze) {
    if (!recipe.freeze?.blocks)
      throw new ConfigError('recipe.unfreeze', 'gradual unfreezing starts from frozen blocks: give freeze.blocks (how many of the first blocks start frozen)');
    unfreeze(model);
    groups = makeGroups(); // every block, the frozen ones included
  }
  if (recipe.freeze && (recipe.freeze.blocks !== undefined || recipe.freeze.patterns?.length)) {
    try {
      frozen = freeze(model, { blocks: recipe.freeze.blocks, patterns: recipe.freeze.patterns, trainBatchNorm: recipe.freeze.trainBatchNorm });
    } catch (err) {
      if (err instanceof ArgumentError)
        throw new ConfigError(recipe.freeze.blocks !== undefined ? 'recipe.freeze.blocks' : 'recipe.freeze.patterns', err.detail);
      throw err;
    }
  } else if (!(model instanceof FasterRCNN)) unfreeze(model); // a detector's trainableBackboneLayers chose what trains (torchvision's); freeze adds to it
  groups ??= makeGroups();
  const specs = groups.map((g) => ({ params: g.params, lr: g.lr, weightDecay: g.weightDecay, block: g.block }));
  const optimizer =
    o.type === 'SGD'
      ? new optim.SGD(specs, { lr: groups[0].lr, momentum: o.momentum ?? 0, weightDecay: o.weightDecay })
      : o.type === 'Adam'
        ? new optim.Adam(specs, { weightDecay: o.weightDecay })
        : new optim.AdamW(specs, { weightDecay: o.weightDecay });
  let scheduler: LRScheduler | undefined;
  if (recipe.schedule) {
    const accumulation = recipe.gradientAccumulationSteps ?? 1;
    const updatesPerEpoch = Math.ceil(stepsPerEpoch / accumulation); // an epoch's last, smaller group steps too
    const totalSteps = recipe.epochs * updatesPerEpoch;
    const warmupSteps = recipe.schedule.warmupSteps ?? Math.round((recipe.schedule.warmupRatio ?? 0) * totalSteps);
    if (warmupSteps > totalSteps)
      throw new ConfigError(
        'recipe.schedule.warmupSteps',
        `${warmupSteps} is more than the ${totalSteps} steps of training (${recipe.epochs} epochs x ${updatesPerEpoch} optimizer steps${accumulation > 1 ? ` of ${accumulation} batches` : ''})`,
      );
    scheduler = new LRScheduler(optimizer, { kind: recipe.schedule.kind, totalSteps, warmupSteps });
  }
  return { optimizer, scheduler, frozen, groups: groups.map((g) => ({ block: g.block, lr: g.lr, params: g.params.reduce((n, p) => n + p.numel(), 0) })) };
}

/**
 * The recipe's loss: cross-entropy (class weights, label smoothing) as fit's
 * built-in loss, which lets fit run whole steps natively; focal loss as a function.
 */
export function buildLoss(recipe: Recipe, numClasses: number): LossFn | BuiltinLoss {
  const l = recipe.loss;
  const perClass = (field: string, v: number[] | undefined) => {
    if (v && v.length !== numClasses) throw new ConfigError(field, `has ${v.length} entries for ${numClasses} classes`);
    return v;
  };
  if (l.type === 'focal') {
    const alpha = Array.isArray(l.alpha) ? perClass('recipe.loss.alpha', l.alpha) : l.alpha;
    return (logits, target) => focalLoss(logits, target, { gamma: l.gamma, alpha });
  }
  const weights = perClass('recipe.loss.classWeights', l.classWeights);
  const weight = weights ? torch.tensor(weights, { dtype: 'float32', device: recipe.device }) : undefined;
  return { type: 'crossEntropy', weight, labelSmoothing: l.labelSmoothing };
}

/** Checks a device string against this machine. */
export function checkDevice(device: string): void {
  if (device === 'cpu') return;
  if (!cuda.isAvailable())
    throw new ConfigError(
      'recipe.device',
      `${device} asked for, but ${cuda.builtWithCuda() ? 'no CUDA device is visible' : 'this libtorch is a CPU build'} (run finetorch doctor)`,
    );
  const n = Number(device.split(':')[1] ?? 0);
  if (n >= cuda.deviceCount()) throw new ConfigError('recipe.device', `${device} asked for, but there are ${cuda.deviceCount()} CUDA devices`);
}
