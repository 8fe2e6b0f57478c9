// Recipes with task: detection. The data (COCO JSON or Pascal VOC folders,
// split into train / val / test), the Faster R-CNN (fasterrcnn_resnet50_fpn,
// from a checkpoint with a new box predictor for the data's classes, or from
// scratch), the run (fit with checkpoints, the best checkpoint's COCO mAP on
// the test part), and what eval and predict do with a trained detector.
import { existsSync, mkdirSync, rmSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { ConfigError, DataError } from '../errors.js';
import { readCoco, readVoc, type DetectionData, type DetectionSample } from '../data/detection/read.js';
import { DetectionDataset, DetectionLoader } from '../data/detection/dataset.js';
import type { DetectionTransform } from '../data/detection/transforms.js';
import { loadImage } from '../data/images.js';
import { type FasterRCNN, fasterrcnnResnet50Fpn, loadFasterRcnn, type FasterRCNNOptions } from '../models/detection/faster-rcnn.js';
import { evaluateDetector } from '../train/detection-fit.js';
import { fit, type FitResult, type TrainEvent } from '../train/trainer.js';
import { checkpointWeightsFile, findCheckpoint, loadModelWeights, readBestRecord, recoverCheckpoints, writeFileAtomic } from '../train/checkpoint.js';
import type { DetectionScores } from '../metrics/detection.js';
import { torch } from '../tensor/index.js';
import { io } from '../io/index.js';
import { TrainingMonitor } from '../reports/training.js';
import { buildFromSpec, buildOptimizer, splitFractions, splitIndices, walkImages, type ModelSpec, type Part, PARTS } from './build.js';
import { DETECTION_MODEL_FIELDS, DETECTOR_ARCH, type DataSpec, type Recipe } from './schema.js';
import { RUN_FILE, modelSummary, readRun, resolveCheckpoint, writeRun, type RunRecord } from './run-record.js';

/** How a detector's inputs are prepared (run.json's input): RGB images of any size in [0, 1]; the model resizes and normalises them. */
export interface DetectionInputSpec {
  kind: 'detection';
  channels: 3;
}

type DetectionDataSpec = Extract<DataSpec, { kind: 'coco' | 'voc' }>;

export interface DetectionDataBundle {
  /** classes[label]; classes[0] is '__background__'. */
  classes: string[];
  parts: Partial<Record<Part, DetectionLoader>>;
  /** Images per part. */
  sizes: Record<Part, number>;
  /** Boxes per class in the training part. */
  trainCounts: Record<string, number>;
  input: DetectionInputSpec;
  /** Boxes left out by the recipe's outside / emptyBoxes: 'drop'. */
  droppedBoxes: number;
}

function detectionDataSpec(recipe: Recipe): DetectionDataSpec {
  const d = recipe.data;
  if (!d) throw new ConfigError('recipe.data', 'the recipe has no data section (task detection reads coco or voc data, see docs/cli.md)');
  if (d.kind !== 'coco' && d.kind !== 'voc') throw new ConfigError('recipe.data.kind', `task detection reads coco or voc data, got ${d.kind}`);
  return d;
}

/** The annotation sets a detection recipe names: the main one, and the val / test ones given apart from it. */
function readSets(d: DetectionDataSpec): { main: DetectionData; separate: Partial<Record<Part, DetectionData>>; files: Partial<Record<Part, string>> } {
  const checks = { outside: d.outside, emptyBoxes: d.emptyBoxes };
  if (d.kind === 'coco') {
    const main = readCoco(d.annotations, d.images, checks);
    const separate: Partial<Record<Part, DetectionData>> = {};
    const files: Partial<Record<Part, string>> = { train: d.annotations };
    for (const [part, ann, images, field] of [
      ['val', d.valAnnotations, d.valImages, 'valImages'],
      ['test', d.testAnnotations, d.testImages, 'testImages'],
    ] as const) {
      if (images !== undefined && ann === undefined)
        throw new ConfigError(`recipe.data.${field}`, `goes with ${part}Annotations (the annotation file of those images)`);
      if (ann === undefined) continue;
      separate[part] = readCoco(ann, images ?? d.images, checks);
      files[part] = ann;
    }
    return { main, separate, files };
  }
  const options = { ...checks, difficult: d.difficult };
  const main = readVoc(d.root, { ...options, split: d.imageSet, classes: d.classes });
  const separate: Partial<Record<Part, DetectionData>> = {};
  const files: Partial<Record<Part, string>> = { train: d.root };
  // val and test sets name the training set's classes, in its order
  for (const [part, set] of [
    ['val', d.valImageSet],
    ['test', d.testImageSet],
  ] as const) {
    if (set === undefined) continue;
    separate[part] = readVoc(d.root, { ...options, split: set, classes: main.classes.slice(1) });
    files[part] = join(d.root, 'ImageSets', 'Main', `${set}.txt`);
  }
  return { main, separate, files };
}

/**
 * The data of a detection recipe: the annotation sets read, the parts not
 * given apart split off the main set (a seeded shuffle, data.split's
 * fractions), and a DetectionLoader per part (the training part shuffled and
 * flipped as data.augment says).
 */
export async function buildDetectionData(recipe: Recipe, want: Part[] = PARTS, recorded?: { classes: string[] }): Promise<DetectionDataBundle> {
  const d = detectionDataSpec(recipe);
  const { main, separate, files } = readSets(d);
  const classes = main.classes;
  if (classes.length < 2) throw new DataError(`${files.train}: the annotations name no classes (categories)`, { path: files.train });
  for (const [part, set] of Object.entries(separate) as Array<[Part, DetectionData]>)
    if (set.classes.join('\n') !== classes.join('\n'))
      throw new DataError(
        `${files[part]}: its classes (${set.classes.slice(1).join(', ')}) differ from the training set's (${classes.slice(1).join(', ')}, ${files.train})`,
        { path: files[part] },
      );
  if (recorded && recorded.classes.join('\n') !== classes.join('\n'))
    throw new DataError(
      `the data's classes (${classes.slice(1).join(', ')}) differ from those the model was trained on (${recorded.classes.slice(1).join(', ')})`,
      { path: files.train },
    );
  const samples: Partial<Record<Part, DetectionSample[]>> = {};
  for (const [part, set] of Object.entries(separate) as Array<[Part, DetectionData]>) samples[part] = set.samples;
  const fractions = splitFractions(d.split, Object.keys(separate) as Part[]);
  if (!fractions.some(([p]) => p === 'train')) throw new ConfigError('recipe.data.split.train', 'must be above 0: the training images come from the main set');
  const seed = d.split.seed ?? recipe.seed;
  // one "class" per image: a seeded shuffle, not stratified (an image holds boxes of several classes)
  const indices = splitIndices(
    main.samples.map(() => 0),
    fractions,
    seed,
  );
  for (const [part] of fractions) samples[part] = (indices[part] ?? []).map((i) => main.samples[i]);
  const sizes = { train: 0, val: 0, test: 0 } as Record<Part, number>;
  for (const p of PARTS) sizes[p] = samples[p]?.length ?? 0;
  const trainCounts: Record<string, number> = Object.fromEntries(classes.slice(1).map((c) => [c, 0]));
  for (const s of samples.train ?? []) for (const l of s.labels) trainCounts[classes[l]]++;
  const parts: Partial<Record<Part, DetectionLoader>> = {};
  for (const part of want) {
    const list = samples[part];
    if (!list?.length) continue;
    const train = part === 'train';
    const transforms: DetectionTransform[] = train && d.augment?.horizontalFlip ? [{ horizontalFlip: d.augment.horizontalFlip }] : [];
    parts[part] = new DetectionLoader(new DetectionDataset(list, { channels: 3, transforms }), {
      batchSize: recipe.batchSize,
      shuffle: train,
      seed: recipe.seed,
      prefetch: d.prefetch,
    });
  }
  return { classes, parts, sizes, trainCounts, input: { kind: 'detection', channels: 3 }, droppedBoxes: main.droppedBoxes };
}

/** The detector options a recipe sets (model.minSize, ..., model.boxDetectionsPerImg). */
export function detectorOptions(recipe: Recipe): FasterRCNNOptions {
  const options: Record<string, unknown> = {};
  for (const f of DETECTION_MODEL_FIELDS) if (recipe.model[f] !== undefined) options[f] = recipe.model[f];
  return options as FasterRCNNOptions;
}

/**
 * The Faster R-CNN of a recipe for `numClasses` classes (background
 * included): the checkpoint's weights (a torchvision .pth, a models.save
 * file, or a run / checkpoint folder of finetorch) with a new box predictor
 * when its class count differs, else randomly initialised.
 */
export function buildDetector(recipe: Recipe, numClasses: number): { model: FasterRCNN; spec: ModelSpec; notes: string[] } {
  const m = recipe.model;
  if (m.numClasses !== undefined && m.numClasses !== numClasses)
    throw new ConfigError(
      'recipe.model.numClasses',
      `is ${m.numClasses} but the data has ${numClasses} (${numClasses - 1} classes and the background, which Faster R-CNN counts as class 0)`,
    );
  const options = detectorOptions(recipe);
  const notes: string[] = [];
  let model: FasterRCNN;
  if (m.checkpoint === undefined) {
    model = fasterrcnnResnet50Fpn({ ...options, numClasses });
    notes.push(`${DETECTOR_ARCH} from scratch (no model.checkpoint)`);
  } else {
    if (!existsSync(m.checkpoint)) throw new ConfigError('recipe.model.checkpoint', `${m.checkpoint} does not exist`);
    // a finetorch run or checkpoint folder: its weights file
    const file = statSync(m.checkpoint).isDirectory() ? resolveCheckpoint(m.checkpoint, 'recipe.model.checkpoint').weights : m.checkpoint;
    let loaded: FasterRCNN;
    try {
      loaded = loadFasterRcnn(file, options);
    } catch (err) {
      throw new ConfigError('recipe.model.checkpoint', (err as Error).message);
    }
    model = loaded;
    const had = model.settings.numClasses;
    if (had !== numClasses) {
      if (!recipe.head.swap) {
        model.dispose();
        throw new ConfigError(
          'recipe.head.swap',
          `is false, but ${file} predicts ${had} classes and the data has ${numClasses} (background included): the box predictor must be replaced`,
        );
      }
      model.swapHead(numClasses);
      notes.push(`box predictor (roi_heads.box_predictor) replaced: ${had} -> ${numClasses} classes (background included)`);
    }
  }
  return { model, spec: { arch: DETECTOR_ARCH, options: { ...model.archOptions() } }, notes };
}

/** A trained detector rebuilt from its spec, with the weights of `weights` (eval mode). */
export function loadDetector(spec: ModelSpec, weights: string): FasterRCNN {
  const model = buildFromSpec(spec) as FasterRCNN;
  const sd = io.load(weights);
  try {
    model.loadStateDict(sd);
  } catch (err) {
    model.dispose();
    throw new DataError(`${weights} does not fit ${DETECTOR_ARCH} with ${String(spec.options.numClasses)} classes: ${(err as Error).message}`, {
      path: weights,
    });
  } finally {
    Object.values(sd).forEach((t) => t.dispose());
  }
  model.eval();
  return model;
}

/** The spec of a detector trained by a recipe whose run.json is not at hand (a bare weights file and its recipe). */
export function detectorSpec(recipe: Recipe, numClasses: number): ModelSpec {
  return { arch: DETECTOR_ARCH, options: { ...detectorOptions(recipe), numClasses } };
}

// ---- the run

export interface DetectionRunResult {
  status: 'ok' | 'interrupted';
  out: string;
  recipe: Recipe;
  classes: string[];
  model: FasterRCNN;
  spec: ModelSpec;
  fit: FitResult;
  checkpoint: string;
  /** COCO scores of the best epoch's validation, and of the checkpoint on the test part. */
  val: DetectionScores | null;
  test: DetectionScores | null;
  seconds: number;
}

/** What runRecipe reports of a detection run (its start event, then fit's events, then the test scores). */
export type DetectionRunEvent =
  | {
      type: 'start';
      out: string;
      resumeFrom: string | null;
      recipe: Recipe;
      classes: string[];
      samples: Record<Part, number>;
      trainCounts: Record<string, number>;
      batchesPerEpoch: number;
      model: { arch: string; checkpoint: string | null; parameters: number; trainable: number };
      groups: Array<{ block: string; lr: number; params: number }>;
      device: string;
      threads: number;
      notes: string[];
    }
  | TrainEvent
  | { type: 'eval'; split: 'test'; checkpoint: string; samples: number; detection: DetectionScores };

export interface DetectionRunOptions {
  out?: string;
  resumeFrom?: string;
  force?: boolean;
  signal?: AbortSignal;
  onEvent?: (e: DetectionRunEvent) => void;
}

/** A detection recipe end to end (runRecipe calls it for task detection): see runRecipe. */
export async function runDetection(recipe: Recipe, options: DetectionRunOptions, started: number): Promise<DetectionRunResult> {
  const emit = (e: DetectionRunEvent) => options.onEvent?.(e);
  if (Number(process.env.WORLD_SIZE ?? '1') > 1)
    throw new ConfigError(
      'recipe.task',
      'detection trains in one process (data-parallel training of a detector is not supported): run without --nproc-per-node',
    );
  let resumeFrom: string | undefined;
  let savedRun: RunRecord | null = null;
  let out: string;
  if (options.resumeFrom) {
    resumeFrom = findCheckpoint(options.resumeFrom, 'last');
    const runDir = resolve(resumeFrom, '..');
    out = resolve(options.out ?? recipe.out ?? runDir);
    savedRun = readRun(runDir);
    if (savedRun && savedRun.model.arch !== DETECTOR_ARCH)
      throw new ConfigError('resumeFrom', `${join(runDir, RUN_FILE)} is a ${savedRun.model.arch} run, not a detection run (${DETECTOR_ARCH})`);
  } else {
    if (!options.out && !recipe.out) throw new ConfigError('recipe.out', 'runRecipe needs an output folder: recipe.out or options.out');
    out = resolve(options.out ?? recipe.out!);
    if (existsSync(join(out, RUN_FILE))) {
      if (!options.force)
        throw new ConfigError('recipe.out', `${out} already holds a run; continue it with resumeFrom ${join(out, 'last')}, or start over with force`);
      for (const f of ['best', 'last', 'events.jsonl', 'metrics.json', 'curves.svg', 'curves.png', 'tensorboard', RUN_FILE])
        rmSync(join(out, f), { recursive: true, force: true });
    }
    recoverCheckpoints(out, { restore: false });
  }
  recipe.out = out;
  mkdirSync(out, { recursive: true });
  torch.manualSeed(recipe.seed);
  const data = await buildDetectionData(recipe, PARTS, savedRun ? { classes: savedRun.classes } : undefined);
  const train = data.parts.train;
  if (!train) throw new DataError('the training part of the detection data is empty');
  const built = savedRun
    ? { model: buildFromSpec(savedRun.model) as FasterRCNN, spec: savedRun.model, notes: [] as string[] }
    : buildDetector(recipe, data.classes.length);
  const { model, spec } = built;
  const monitorName = recipe.monitor ?? recipe.earlyStopping?.metric ?? (data.parts.val ? 'map' : 'loss');
  if (monitorName !== 'loss' && !data.parts.val)
    throw new ConfigError(
      recipe.monitor ? 'recipe.monitor' : 'recipe.earlyStopping.metric',
      `${monitorName} is measured on validation data, and the data has no val part (data.split.val, valAnnotations, valImageSet)`,
    );
  const parts = buildOptimizer(recipe, model, train.length);
  const notes = [...built.notes, ...(data.droppedBoxes ? [`${data.droppedBoxes} boxes dropped (data.outside / data.emptyBoxes: drop)`] : [])];
  writeRun(out, { recipe, classes: data.classes, model: spec, input: data.input, ...(notes.length ? { notes } : {}) });
  const monitor = new TrainingMonitor(out, { tensorboard: recipe.tensorboard });
  emit({
    type: 'start',
    out,
    resumeFrom: resumeFrom ?? null,
    recipe,
    classes: data.classes,
    samples: data.sizes,
    trainCounts: data.trainCounts,
    batchesPerEpoch: train.length,
    model: modelSummary(model, spec.arch, recipe),
    groups: parts.groups,
    device: recipe.device,
    threads: torch.getNumThreads(),
    notes,
  });
  const result = await fit({
    model,
    optimizer: parts.optimizer,
    scheduler: parts.scheduler,
    train,
    val: data.parts.val,
    epochs: recipe.epochs,
    clipGradNorm: recipe.clipGradNorm,
    earlyStopping: recipe.earlyStopping as never,
    monitor: monitorName as never,
    gradientAccumulationSteps: recipe.gradientAccumulationSteps,
    saveOptimizerState: recipe.checkpoint?.optimizerState,
    checkpointDir: out,
    resumeFrom,
    seed: recipe.seed,
    signal: options.signal,
    onEvent: (e: TrainEvent) => {
      monitor.onEvent(e);
      emit(e);
    },
  } as never).catch(async (err) => {
    await monitor.close().catch(() => undefined);
    throw err;
  });
  monitor.setHistory(result.history);
  await monitor.close();
  const base = { out, recipe, classes: data.classes, model, spec, fit: result };
  if (result.interrupted)
    return { ...base, status: 'interrupted', checkpoint: join(out, 'last'), val: null, test: null, seconds: (Date.now() - started) / 1000 };
  const checkpoint = readBestRecord(out) ? join(out, 'best') : join(out, 'last');
  loadModelWeights(checkpoint, model);
  const bestEpoch = result.best ? result.history.find((h) => h.epoch === result.best!.epoch) : undefined;
  let test: DetectionScores | null = null;
  if (data.parts.test) {
    test = await evaluateDetector(model, data.parts.test);
    emit({ type: 'eval', split: 'test', checkpoint: checkpointWeightsFile(checkpoint), samples: data.sizes.test, detection: test });
  }
  const seconds = (Date.now() - started) / 1000;
  writeFileAtomic(
    join(out, 'metrics.json'),
    JSON.stringify(
      {
        epochs: result.epochs,
        stoppedEarly: result.stoppedEarly,
        best: result.best,
        checkpoint,
        test,
        classes: data.classes,
        history: result.history,
        seconds,
      },
      null,
      2,
    ) + '\n',
  );
  return { ...base, status: 'ok', checkpoint, val: bestEpoch?.detection ?? null, test, seconds };
}

// ---- detections of new images

export interface FoundBox {
  /** The class name and its label (1..K). */
  class: string;
  label: number;
  score: number;
  /** [x1, y1, x2, y2] in the image's pixels. */
  box: [number, number, number, number];
}

/** The image files of predict's arguments: files as given, folders walked (sorted, image extensions only). */
export function imageFiles(paths: string[]): string[] {
  const files: string[] = [];
  for (const p of paths) {
    if (!existsSync(p)) throw new DataError(`${p} does not exist`, { path: p });
    files.push(...walkImages(p));
  }
  if (!files.length) throw new DataError(`no images (.png, .jpg, .jpeg, .webp) in ${paths.join(', ')}`);
  return files;
}

/** The boxes a detector finds in each image file (scores at least `scoreThresh`), in batches of `batchSize`. */
export async function predictDetections(
  model: FasterRCNN,
  classes: string[],
  files: string[],
  options: { scoreThresh?: number; batchSize?: number } = {},
): Promise<Array<{ input: string; width: number; height: number; boxes: FoundBox[] }>> {
  const thresh = options.scoreThresh ?? 0;
  const batchSize = options.batchSize ?? 4;
  model.eval();
  const out: Array<{ input: string; width: number; height: number; boxes: FoundBox[] }> = [];
  for (let s = 0; s < files.length; s += batchSize) {
    const chunk = files.slice(s, s + batchSize);
    const images = await Promise.all(
      chunk.map(async (f) => {
        const { data, shape } = await loadImage(f, { channels: 3 });
        return torch.tensor(data, { shape });
      }),
    );
    try {
      const found = model.detect(images);
      found.forEach((d, i) => {
        const plain = (t: typeof d.boxes) => Array.from(t.to('cpu', 'float64').dataSync() as Float64Array);
        const boxes = plain(d.boxes);
        const scores = plain(d.scores);
        const labels = plain(d.labels);
        const list: FoundBox[] = [];
        scores.forEach((score, k) => {
          if (score < thresh) return;
          const label = labels[k];
          list.push({ class: classes[label] ?? String(label), label, score, box: boxes.slice(4 * k, 4 * k + 4) as FoundBox['box'] });
        });
        out.push({ input: chunk[i], width: images[i].shape[2], height: images[i].shape[1], boxes: list });
        d.boxes.dispose();
        d.scores.dispose();
        d.labels.dispose();
      });
    } finally {
      images.forEach((t) => t.dispose());
    }
  }
  return out;
}
