// runRecipe: a whole fine-tuning run from a recipe object, the library
// version of `finetorch train`. Data, model, optimizer, schedule and loss come
// from the builders (build.ts); fit() trains with checkpoints in `out`; the
// best checkpoint is evaluated on the test part. The run folder it writes
// (run.json, best/, last/, metrics.json) is what loadRun, `finetorch eval`
// and `finetorch predict` read.
import { existsSync, mkdirSync, rmSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { ConfigError, DataError } from '../errors.js';
import { torch } from '../tensor/index.js';
import { evaluate, fit, type EvalResult, type LossFn, type FitResult, type TrainEvent } from '../train/trainer.js';
import { checkpointWeightsFile, findCheckpoint, loadModelWeights, readBestRecord, recoverCheckpoints, writeFileAtomic } from '../train/checkpoint.js';
import { precisionUnsupported } from '../train/device.js';
import { gradualUnfreezing } from '../train/callbacks.js';
import { tta } from '../train/tta.js';
import { TrainingMonitor } from '../reports/training.js';
import { destroyProcessGroup, getRank, initProcessGroup, isInitialized } from '../distributed/process-group.js';
import { watchLauncher } from '../distributed/launch.js';
import type { Architecture } from '../models/architecture.js';
import { checkVocabulary } from '../models/text.js';
import { buildData, buildFromSpec, buildLoss, buildModel, buildOptimizer, checkDevice, type ModelSpec, type Part } from './build.js';
import { parseRecipe, type Recipe } from './schema.js';
import { resolvePaths } from './paths.js';
import { RUN_FILE, modelSummary, readRun, writeRun, type RunRecord } from './run-record.js';
import {
  buildTokenData,
  buildTagger,
  evaluateTagger,
  taggerLoss,
  type TaggerEvaluation,
  type TokenDataBundle,
  type TokenInputSpec,
} from './token-classification.js';
import type { Tagger } from '../models/taggers.js';
import { runDetection } from './detection.js';
import type { DetectionScores } from '../metrics/detection.js';

/** What runRecipe reports before training starts (the CLI's `start` event, less the command's own fields). */
export interface RecipeStartEvent {
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
  /** What the recipe left open and runRecipe chose (inferred architecture, adapted input channels, default image transform), one line each. */
  notes: string[];
}

/** The test part's metrics of the checkpoint the run reports. */
export interface RecipeEvalEvent extends EvalResult {
  type: 'eval';
  split: 'test';
  checkpoint: string;
}

/** task detection: the COCO scores of `checkpoint` on the test part. */
export interface RecipeDetectionEvalEvent {
  type: 'eval';
  split: 'test';
  checkpoint: string;
  samples: number;
  detection: DetectionScores;
}

export type RecipeEvent = RecipeStartEvent | TrainEvent | RecipeEvalEvent | RecipeDetectionEvalEvent;

export interface RunRecipeOptions {
  /** Folder that relative paths in the recipe are relative to (default: the working directory). */
  baseDir?: string;
  /** The run folder (default recipe.out; one of them is needed). */
  out?: string;
  /** Continue a run: its folder, or its best/ or last/ checkpoint folder. */
  resumeFrom?: string;
  /** Start over in an `out` folder that already holds a run (default: refuse). */
  force?: boolean;
  /** Stops training after the current step; last/ is then resumable (the result says `interrupted`). */
  signal?: AbortSignal;
  onEvent?: (e: RecipeEvent) => void;
}

export interface RecipeResult {
  /** 'interrupted' when the signal stopped training (resume from `<out>/last`). */
  status: 'ok' | 'interrupted';
  out: string;
  recipe: Recipe;
  classes: string[];
  /** The trained model, holding the weights of `checkpoint` (the best epoch's when there is a best/). */
  model: Architecture;
  spec: ModelSpec;
  fit: FitResult;
  /** The checkpoint folder whose weights were evaluated (best/, else last/). */
  checkpoint: string;
  /** The validation metrics of the best epoch, if there was validation data. */
  val: EvalResult | null;
  /** Test-part metrics of `checkpoint`, if the data has a test part. */
  test: EvalResult | null;
  /** task detection (val and test are then null): the COCO scores of the best epoch's validation and of `checkpoint` on the test part. */
  detection?: { val: DetectionScores | null; test: DetectionScores | null };
  seconds: number;
}

/**
 * Runs a recipe end to end: validates it (as parseRecipe), reads and splits
 * the data, builds the model (pretrained weights, new head), freezes,
 * groups learning rates, trains with best/ and last/ checkpoints in `out`,
 * and evaluates the best checkpoint on the test part. Writes run.json and
 * metrics.json into `out`.
 */
export async function runRecipe(input: Recipe | Record<string, unknown>, options: RunRecipeOptions = {}): Promise<RecipeResult> {
  const started = Date.now();
  const raw = structuredClone(input) as Record<string, unknown>;
  resolvePaths(raw, resolve(options.baseDir ?? '.'));
  const recipe = parseRecipe(raw);
  const emit = (e: RecipeEvent) => options.onEvent?.(e);
  // task detection: a run of its own (recipes/detection.ts), the same run folder
  if (recipe.task === 'detection') {
    const r = await runDetection(recipe, { ...options, onEvent: options.onEvent as never }, started);
    return { ...r, model: r.model, val: null, test: null, detection: { val: r.val, test: r.test } };
  }

  // One process of a data-parallel run (torchrun's environment, as `finetorch train --nproc-per-node` sets it):
  // join the process group; every rank trains its shard, only rank 0 writes the run folder.
  const distributedRun = Number(process.env.WORLD_SIZE ?? '1') > 1;
  const ownGroup = distributedRun && !isInitialized();
  // a rank that `finetorch train --nproc-per-node` started ends when the launcher is gone (killed with SIGKILL)
  const unwatch = distributedRun ? watchLauncher() : () => {};
  try {
    if (ownGroup) await initProcessGroup();
    return await runRecipeIn(recipe, options, emit, started, distributedRun ? getRank() : 0, distributedRun);
  } finally {
    unwatch();
    if (ownGroup) destroyProcessGroup();
  }
}

async function runRecipeIn(
  recipe: Recipe,
  options: RunRecipeOptions,
  emit: (e: RecipeEvent) => void,
  started: number,
  rank: number,
  distributedRun: boolean,
): Promise<RecipeResult> {
  const writer = rank === 0;
  // the run folder, and the checkpoint to resume from
  let resumeFrom: string | undefined;
  let savedSpec: ModelSpec | undefined;
  let savedRun: RunRecord | null = null;
  let out: string;
  if (options.resumeFrom) {
    resumeFrom = findCheckpoint(options.resumeFrom, 'last');
    out = resolve(options.out ?? recipe.out ?? dirname(resumeFrom));
    savedRun = readRun(dirname(resumeFrom));
    savedSpec = savedRun?.model;
  } else {
    if (!options.out && !recipe.out) throw new ConfigError('recipe.out', 'runRecipe needs an output folder: recipe.out or options.out');
    out = resolve(options.out ?? recipe.out!);
    if (writer && existsSync(join(out, RUN_FILE))) {
      if (!options.force)
        throw new ConfigError('recipe.out', `${out} already holds a run; continue it with resumeFrom ${join(out, 'last')}, or start over with force`);
      for (const f of ['best', 'last', 'events.jsonl', 'metrics.json', 'curves.svg', 'curves.png', 'tensorboard', RUN_FILE])
        rmSync(join(out, f), { recursive: true, force: true });
    }
    // a fresh run does not take up copies a killed run left; it only removes them
    if (writer) recoverCheckpoints(out, { restore: false });
  }
  recipe.out = out;
  mkdirSync(out, { recursive: true });
  checkDevice(recipe.device);
  const noPrecision = precisionUnsupported(recipe.precision, recipe.device);
  if (noPrecision) throw new ConfigError('recipe.precision', noPrecision);

  torch.manualSeed(recipe.seed);
  // token classification: a resumed run keeps its tags and vocabulary
  const tagging = recipe.task === 'tokenClassification';
  const savedTokens = savedRun?.input.kind === 'tokens' ? (savedRun.input as TokenInputSpec) : undefined;
  const data = tagging ? await buildTokenData(recipe, ['train', 'val', 'test'], savedTokens) : await buildData(recipe, ['train', 'val', 'test']);
  const train = data.parts.train;
  if (!train) throw new DataError('the training part of the data is empty');
  const numClasses = data.classes.length;
  const built = savedSpec
    ? { model: buildFromSpec(savedSpec), spec: savedSpec }
    : tagging
      ? buildTagger(recipe, data.classes, (data.input as TokenInputSpec).vocabulary)
      : buildModel(recipe, numClasses, { inChannels: data.input.kind === 'image' ? data.input.channels : undefined });
  const { model, spec } = built;
  // a tokenizer with more ids than the model's embedding would fail at the first step, with libtorch's "index out of range"
  if (data.tokenizer && spec.hfConfig)
    checkVocabulary(data.tokenizer, spec.hfConfig, { field: recipe.model.config ? 'recipe.model.config' : 'recipe.model.checkpoint' });
  if (recipe.device !== 'cpu') model.to(recipe.device);
  const parts = buildOptimizer(recipe, model, train.length);
  const loss = tagging ? taggerLoss(recipe, model as Tagger, numClasses) : buildLoss(recipe, numClasses);
  if (recipe.monitor?.startsWith('entity') && !data.parts.val)
    throw new ConfigError('recipe.monitor', `${recipe.monitor} is measured on validation data, and the data has no val part (data.split.val, valPath)`);
  if (recipe.earlyStopping?.metric.startsWith('entity') && !data.parts.val)
    throw new ConfigError(
      'recipe.earlyStopping.metric',
      `${recipe.earlyStopping.metric} is measured on validation data, and the data has no val part (data.split.val, valPath)`,
    );
  const taggingOptions = tagging ? { tags: data.classes, scheme: (data.input as TokenInputSpec).scheme } : undefined;
  const notes = [...('notes' in data ? (data.notes ?? []) : []), ...('notes' in built ? built.notes : [])];
  if (writer) writeRun(out, { recipe, classes: data.classes, model: spec, input: data.input, ...(notes.length ? { notes } : {}) });

  // curves.svg / curves.png (redrawn each epoch) and, with recipe.tensorboard, TensorBoard event files (rank 0)
  const monitor = writer ? new TrainingMonitor(out, { tensorboard: recipe.tensorboard }) : null;
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
    loss,
    train,
    val: data.parts.val,
    epochs: recipe.epochs,
    clipGradNorm: recipe.clipGradNorm,
    earlyStopping: recipe.earlyStopping,
    monitor: recipe.monitor,
    gradientAccumulationSteps: recipe.gradientAccumulationSteps,
    ema: recipe.ema,
    saveOptimizerState: recipe.checkpoint?.optimizerState,
    // gradual unfreezing: buildOptimizer put every block in the optimizer, the callback makes them trainable in turn
    callbacks: recipe.unfreeze
      ? [gradualUnfreezing({ every: recipe.unfreeze.every, blocks: recipe.unfreeze.blocks, frozen: recipe.freeze!.blocks! })]
      : undefined,
    tagging: taggingOptions,
    checkpointDir: out,
    resumeFrom,
    seed: recipe.seed,
    signal: options.signal,
    onEvent: (e) => {
      monitor?.onEvent(e);
      emit(e);
    },
    distributed: distributedRun,
    device: recipe.device,
    precision: recipe.precision,
    memoryFormat: recipe.memoryFormat,
  }).catch(async (err) => {
    await monitor?.close().catch(() => undefined); // the curves so far; the training error is the one to report
    throw err;
  });
  monitor?.setHistory(result.history);
  await monitor?.close();
  const base = { out, recipe, classes: data.classes, model, spec, fit: result };
  // ranks > 0 end with training: the test numbers and metrics.json are rank 0's (its best/ may still be being written)
  if (!writer)
    return {
      ...base,
      status: result.interrupted ? 'interrupted' : 'ok',
      checkpoint: join(out, 'last'),
      val: null,
      test: null,
      seconds: (Date.now() - started) / 1000,
    };
  if (result.interrupted) {
    return { ...base, status: 'interrupted', checkpoint: join(out, 'last'), val: null, test: null, seconds: (Date.now() - started) / 1000 };
  }

  // the final numbers: best/'s weights (its own record names the epoch), else last/'s
  const bestRecord = readBestRecord(out);
  const checkpoint = bestRecord ? join(out, 'best') : join(out, 'last');
  loadModelWeights(checkpoint, model);
  const bestEpoch = result.best ? result.history.find((h) => h.epoch === result.best!.epoch) : undefined;
  let test: EvalResult | null = null;
  if (data.parts.test) {
    // taggers: whole documents (windows merged back), scored with seqeval
    test = tagging
      ? await evaluateTagger(model as Tagger, data.input as TokenInputSpec, (data as TokenDataBundle).documents.test!, {
          loss: loss as LossFn,
          batchSize: recipe.batchSize,
          device: recipe.device,
          tokenizer: data.tokenizer as never,
        })
      : await evaluate(model, data.parts.test, {
          loss,
          device: recipe.device,
          precision: recipe.precision,
          memoryFormat: recipe.memoryFormat,
          // test-time augmentation: the test numbers of the averaged prediction (validation during fit stays plain)
          forward: recipe.tta ? tta(recipe.tta) : undefined,
        });
    emit({ type: 'eval', split: 'test', checkpoint: checkpointWeightsFile(checkpoint), ...withoutReportText(test) });
  }
  const seconds = (Date.now() - started) / 1000;
  const summary = {
    epochs: result.epochs,
    stoppedEarly: result.stoppedEarly,
    best: result.best,
    checkpoint,
    test,
    classes: data.classes,
    history: result.history,
    seconds,
  };
  writeFileAtomic(join(out, 'metrics.json'), JSON.stringify({ ...summary, test: test && withoutReportText(test) }, null, 2) + '\n');
  return { ...base, status: 'ok', checkpoint, val: bestEpoch?.val ?? null, test, seconds };
}

/** An evaluation as an event: a tagger's report keeps its numbers, not its text table. */
function withoutReportText(r: EvalResult | TaggerEvaluation): EvalResult {
  if (!('report' in r)) return r;
  const { text: _text, ...report } = r.report;
  return { ...r, report } as EvalResult;
}
