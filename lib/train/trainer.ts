// The trainer: fit() runs epochs of training steps with the heavy parts on
// the torch thread, evaluates, schedules, clips gradients, stops early, keeps
// the best checkpoint, resumes from one and ends holding the best weights;
// evaluate() and predict() for the rest. Progress goes out as events. The
// checkpoint format is in checkpoint.ts, clipGradNorm in nn/utils.ts.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { MetricAccumulator } from '../metrics/index.js';
import { native } from '../native/loader.js';
import type { Module, StateDict } from '../nn/module.js';
import { crossEntropy } from '../nn/functional.js';
import { clipGradNorm } from '../nn/utils.js';
import type { Optimizer } from '../optim/optimizer.js';
import type { LRScheduler } from '../optim/lr-scheduler.js';
import { Tensor } from '../tensor/tensor.js';
import { torch } from '../tensor/index.js';
import type { Batch } from '../data/tensor-loader.js';
import { FinetorchError } from '../errors.js';
import { forwardInput, type ForwardFn } from './forward.js';
import { disposeInput } from '../data/batch.js';
import {
  findCheckpoint,
  loadCheckpoint,
  loadEmaWeights,
  loadModelWeights,
  readBestRecord,
  recoverCheckpoints,
  saveCheckpoint,
  type CheckpointName,
  type Position,
} from './checkpoint.js';
import { trainStepAsync } from './step.js';
import { ENTITY_METRICS, TaggingAccumulator, checkTagging, type EntityMetricName, type EntityScores, type TaggingOptions } from './tagging.js';
import { autocast } from '../amp/autocast.js';
import { GradScaler } from '../amp/grad-scaler.js';
import { autocastFor, checkMemoryFormat, checkPrecision, moveBatch, resolveDevice, type MemoryFormat, type Precision } from './device.js';
import type { Device } from '../tensor/dtype.js';
import { DistributedDataParallel, broadcastModel } from '../distributed/ddp.js';
import { GradientReducer } from '../distributed/reducer.js';
import { allReduce, broadcast, getBackend, getRank, getWorldSize, isInitialized } from '../distributed/process-group.js';
import { shard } from '../distributed/sampler.js';
import { watchLauncher } from '../distributed/launch.js';
import type { DetectionScores } from '../metrics/detection.js';
import { fitDetection, isDetectionFit, type DetectionFitOptions } from './detection-fit.js';

export type { Precision, MemoryFormat } from './device.js';

/** torch.nn.utils.clip_grad_norm_; also nn.utils.clipGradNorm. */
export { clipGradNorm } from '../nn/utils.js';

export type LossFn = (logits: Tensor, target: Tensor) => Tensor;
/** Cross-entropy given as data, so that fit can run it inside the one-call native step. */
export interface CrossEntropyLoss {
  type: 'crossEntropy' /** Per-class weights [C]. */;
  weight?: Tensor /** In [0, 1]. */;
  labelSmoothing?: number;
}
/** A built-in loss: 'crossEntropy' is { type: 'crossEntropy' } (no weights, no smoothing). */
export type BuiltinLoss = 'crossEntropy' | CrossEntropyLoss;

/** The options of a built-in loss, or null for a LossFn function. */
function builtinLossOptions(loss: LossFn | BuiltinLoss | undefined): Omit<CrossEntropyLoss, 'type'> | null {
  if (loss === undefined || loss === 'crossEntropy') return {};
  if (typeof loss === 'function') return null;
  return { weight: loss.weight, labelSmoothing: loss.labelSmoothing };
}

/** A loss option as a function (cross-entropy when none is given); a bad value is a TypeError naming what is expected. */
export function lossFunction(loss: LossFn | BuiltinLoss | undefined, where = 'loss'): LossFn {
  if (typeof loss === 'function') return loss;
  if (loss === undefined || loss === 'crossEntropy') return (l, t) => crossEntropy(l, t);
  if (loss && typeof loss === 'object' && loss.type === 'crossEntropy') {
    const { weight, labelSmoothing } = loss;
    if (weight !== undefined && !(weight instanceof Tensor)) throw new TypeError(`${where}: loss.weight must be a Tensor of per-class weights`);
    if (labelSmoothing !== undefined && !(labelSmoothing >= 0 && labelSmoothing <= 1))
      throw new TypeError(`${where}: loss.labelSmoothing must be in [0, 1], got ${labelSmoothing}`);
    return (l, t) => crossEntropy(l, t, { weight, labelSmoothing });
  }
  throw new TypeError(
    `${where}: loss must be a function (logits, target) => Tensor, 'crossEntropy' or { type: 'crossEntropy', weight?, labelSmoothing? }; got ${typeof loss === 'object' ? JSON.stringify(loss) : String(loss)}`,
  );
}
export interface BatchSource {
  batches(epoch: number): Iterable<Batch> | AsyncIterable<Batch>;
  readonly length?: number;
}
/** The built-in metrics fit can monitor: the loss, a classification metric, or (with the tagging option) an entity metric of val.entities. */
export type BuiltinMetricName = 'loss' | 'accuracy' | 'f1Macro' | 'rocAuc' | EntityMetricName;
/** What fit can monitor: a built-in metric, or the name of one of its custom `metrics` (val.custom[name]). */
export type MetricName = BuiltinMetricName | (string & {});
const BUILTIN_METRICS: readonly string[] = ['loss', 'accuracy', 'f1Macro', 'rocAuc', ...Object.keys(ENTITY_METRICS)];

/**
 * What a custom metric sees of a validation run. Classifiers: the softmax
 * probabilities [N][C], the predicted and the true classes. Taggers (the
 * tagging option): the true and predicted tag sequences, as seqeval takes
 * them (yTrue, yPred), with the three arrays empty. `val`: the built-in results.
 */
export interface MetricInput {
  probabilities: number[][];
  predictions: number[];
  targets: number[];
  val: EvalResult;
  yTrue?: string[][];
  yPred?: string[][];
}
/** A custom validation metric: a finite number from the validation run (its name says whether higher is better: see FitOptions.monitorMode). */
export type MetricFn = (r: MetricInput) => number | Promise<number>;

/** What callbacks see, at each hook. */
export interface CallbackContext {
  model: Module;
  /** Set optimizer.paramGroups[i].lr to change the LR from the next step (a scheduler sets it again after each step). */
  optimizer: Optimizer;
  scheduler?: LRScheduler;
  /** The epoch in progress (onTrainBegin: the first one to run). */
  epoch: number;
  /** Optimizer steps done over the whole run. */
  step: number;
  /** Micro-batches done in this epoch. */
  batch: number;
  history: FitResult['history'];
  /** The last step's training loss (null before the first step). */
  loss: number | null;
  /** The last validation result (null before the first, or without val). */
  val: EvalResult | null;
  /** Ends training: after this step (onStepEnd: the epoch is then closed as usual: validated and checkpointed), after this epoch (onEpochEnd), or before the first epoch (onTrainBegin, onEpochBegin). */
  stop(reason: string): void;
}
/**
 * Hooks that fit calls and awaits: onTrainBegin (after a resume is
 * restored), onEpochBegin, onStepEnd (after each optimizer step and the
 * scheduler's step), onEpochEnd (after validation and the checkpoints),
 * onTrainEnd (also after a stop, not after an error).
 */
export interface Callback {
  onTrainBegin?(ctx: CallbackContext): void | Promise<void>;
  onEpochBegin?(ctx: CallbackContext): void | Promise<void>;
  onStepEnd?(ctx: CallbackContext): void | Promise<void>;
  onEpochEnd?(ctx: CallbackContext): void | Promise<void>;
  onTrainEnd?(ctx: CallbackContext): void | Promise<void>;
}

/**
 * An exponential moving average of the weights, timm's ModelEmaV2: after
 * each optimizer step, ema = decay * ema + (1 - decay) * model for every
 * floating-point entry of the state dict (parameters and BatchNorm's running
 * statistics; integer buffers such as num_batches_tracked are copied, as
 * ModelEmaV3 does). warmup: decay_t = min(decay, (1 + t) / (10 + t)) at the
 * t-th update (t from 0), the num_updates rule of TensorFlow's
 * ExponentialMovingAverage. evaluate (default true): validation, best/ and
 * the model fit returns use the EMA weights.
 */
export interface EmaOptions {
  decay: number;
  warmup?: boolean;
  evaluate?: boolean;
}

export type { TaggingOptions, EntityScores, EntityMetricName } from './tagging.js';

/**
 * An evaluation. With the tagging option (token classification) accuracy,
 * f1Macro and confusionMatrix are over words (tags), rocAuc is null, and
 * `entities` holds the entity-level scores; `samples` counts sequences.
 */
export interface EvalResult {
  loss: number;
  accuracy: number;
  f1Macro: number;
  rocAuc: number | null;
  confusionMatrix: number[][];
  samples: number;
  /** Tagging only: seqeval's entity precision, recall and F1 (micro; macro and weighted F1; per type). */
  entities?: EntityScores;
  /** The custom metrics (fit's and evaluate's `metrics` option), by name. */
  custom?: Record<string, number>;
}

export type TrainEvent =
  /** After every optimizer step. `step` counts over the whole run, `batch` within the epoch (of `batches`, when the source knows its length); `lrs`: the learning rates the step used, per group. */
  /** With gradientAccumulationSteps: one per optimizer step; `batch` is the index of its last micro-batch, `microBatches` how many it summed, `loss` their mean. */
  | {
      type: 'step';
      epoch: number;
      step: number;
      batch: number;
      batches: number | null;
      loss: number;
      lrs: number[];
      samplesPerSecond: number;
      microBatches?: number;
      /** A detection model: each of its losses (loss_classifier, loss_box_reg, loss_objectness, loss_rpn_box_reg), the mean over the step's batches. */
      losses?: Record<string, number>;
    }
  | {
      type: 'epoch';
      epoch: number;
      trainLoss: number;
      val: EvalResult | null;
      seconds: number;
      best: boolean;
      /** A detection model: each of its losses, the mean over the epoch's images. */
      losses?: Record<string, number>;
      /** A detection model with val: COCO mAP of its detections (evaluateDetections). */
      detection?: DetectionScores | null;
    }
  | { type: 'checkpoint'; epoch: number; path: string }
  | { type: 'early-stop'; epoch: number; metric: MetricName; best: number }
  /** Training continues from a checkpoint: at `batch` of `epoch` (0 at an epoch boundary). */
  | { type: 'resumed'; epoch: number; batch: number; step: number; path: string }
  /** The signal stopped training after a step; `path` is the resumable checkpoint (null without checkpointDir). */
  | { type: 'interrupted'; epoch: number; batch: number; step: number; path: string | null }
  /** A callback called ctx.stop(reason). */
  | { type: 'stopped'; epoch: number; step: number; reason: string };

/** The loss became NaN or infinite: training diverged (the message says so, and what to do). */
export class TrainingDivergedError extends FinetorchError {
  constructor(
    readonly epoch: number,
    readonly step: number,
    readonly loss: number,
    /** Distributed training: the rank whose loss it was, when not this one ('on another rank'). */
    where = '',
  ) {
    super('diverged', `fit: the loss became ${loss}${where ? ` ${where}` : ''} at epoch ${epoch}, step ${step} (training diverged: lower the learning rate)`);
    this.name = 'TrainingDivergedError';
  }
}

export interface FitOptions {
  model: Module;
  optimizer: Optimizer;
  train: BatchSource;
  val?: BatchSource;
  epochs: number;
  /**
   * Default: cross-entropy. A function (logits, target) => loss runs in
   * JavaScript; 'crossEntropy' or { type: 'crossEntropy', weight,
   * labelSmoothing } can run in the one-call native step (see fit).
   */
  loss?: LossFn | BuiltinLoss;
  scheduler?: LRScheduler;
  /** Clip the global gradient norm to this value (clip_grad_norm_). */
  clipGradNorm?: number;
  earlyStopping?: { metric: MetricName; patience: number; mode?: 'max' | 'min' };
  /** The metric that picks the best epoch (default val accuracy, val entityF1 with tagging, or train loss without val); a built-in name or one of `metrics`. */
  monitor?: MetricName;
  /** Whether the monitored metric is better higher ('max') or lower ('min'); default earlyStopping.mode, else 'min' for loss and 'max' otherwise. */
  monitorMode?: 'max' | 'min';
  /** Custom validation metrics, by name: computed after each validation into val.custom[name], and usable as monitor and earlyStopping.metric. */
  metrics?: Record<string, MetricFn>;
  /**
   * Sum the gradients of this many batches before each optimizer step
   * (Hugging Face's gradient_accumulation_steps): each batch's loss is divided
   * by the number of batches in its group, clipping, the optimizer and the
   * scheduler step once per group, `step` events and checkpointEvery count
   * optimizer steps. An epoch whose batches do not divide evenly ends with a
   * smaller group, divided by its own size (as transformers' Trainer does).
   * Default 1. Steps then run in parts (not the one-call native step).
   */
  gradientAccumulationSteps?: number;
  /** Keep an exponential moving average of the weights (see EmaOptions), checkpointed as ema.safetensors. */
  ema?: EmaOptions;
  /** Hooks that watch and act on training (see Callback). */
  callbacks?: Callback[];
  /**
   * With checkpointDir: false leaves the optimizer's state out of best/
   * (model weights and trainer.json only: a ResNet-50's best/ shrinks from
   * ~290 MB to ~95 MB); best/ then loads as weights but cannot be resumed
   * from. last/ keeps the optimizer state, which resuming needs. Default true.
   */
  saveOptimizerState?: boolean;
  /**
   * Token classification: validate as a tagger. The model's output is
   * emissions [B, W, tags] and the targets word tag ids [B, W] with -100
   * past the words; each batch is decoded (the model's CRF by Viterbi when
   * it has a `crf`, else argmax) and scored with seqeval into val.entities,
   * so monitor and earlyStopping can name 'entityF1', 'entityPrecision',
   * 'entityRecall' or 'entityF1Macro' (Hugging Face's compute_metrics with
   * seqeval, metric_for_best_model 'f1').
   */
  tagging?: TaggingOptions;
  /**
   * Folder for the checkpoints: best/ (the best epoch by `monitor`) and last/
   * (the latest epoch, or the position where the signal stopped training),
   * each resumable. Written so that a kill at any moment leaves both usable
   * (see train/checkpoint.ts); a later fit() in the folder restores them and
   * removes what killed runs left.
   */
  checkpointDir?: string;
  /**
   * With checkpointDir: also write last/ every this many optimizer steps
   * inside an epoch, holding the position as the signal's checkpoint does,
   * so a killed run with long epochs loses at most this many steps.
   */
  checkpointEvery?: number;
  /** A checkpoint folder (best/ or last/), or a run folder (its last/), to resume from. */
  resumeFrom?: string;
  /**
   * What the model holds after fit. true: the best epoch's weights (from
   * best/, or a copy in memory without checkpointDir), as Hugging Face's
   * load_best_model_at_end and fastai's SaveModelCallback do; false: the
   * last epoch's. Default: true when checkpointDir keeps a best/, else false.
   * Training stopped by the signal keeps the weights where it stopped.
   * FitResult.modelEpoch says which epoch the model holds.
   */
  restoreBest?: boolean;
  seed?: number;
  onEvent?: (e: TrainEvent) => void;
  /**
   * Stops training when aborted: the step in progress finishes, last/ is
   * written with the position inside the epoch, and fit resolves with
   * `interrupted: true`. Resuming from that last/ skips the batches already
   * done, so (with a deterministic batch source) it continues exactly.
   */
  signal?: AbortSignal;
  /** How to run the model on a batch's input (default: forwardInput — a tensor as is, named inputs in the order of model.inputNames). */
  forward?: ForwardFn;
  /**
   * Where the batches go: 'cpu', 'cuda' or 'cuda:N'. The model must already
   * be there (move it before creating the optimizer). Default: the model's
   * device. Batches from anywhere are moved to it (CPU to CUDA through pinned
   * memory, without blocking); a 'cuda' device on a CPU build is an error.
   */
  device?: Device;
  /**
   * Mixed precision: 'bf16' or 'fp16' run the forward and the loss under
   * torch.autocast (bfloat16 / float16 on the model's device type), backward
   * and the optimizer step outside it, as PyTorch's AMP recipe does; 'fp16'
   * scales the loss with a GradScaler. Default 'fp32'. CPU autocast on
   * libtorch 1.13 is bfloat16 only: 'fp16' there is an error.
   */
  precision?: Precision;
  /** The scaler of precision 'fp16' (default: new GradScaler()); its state is saved in checkpoints and restored on resume. */
  gradScaler?: GradScaler;
  /** 'channelsLast': the model is converted with model.toMemoryFormat('channelsLast') and so is every 4-D input batch (also in evaluate and predict). Default 'contiguous' (the model is left as it is). */
  memoryFormat?: MemoryFormat;
  /**
   * Data-parallel training over the process group (distributed.initProcessGroup
   * first), as PyTorch's DistributedDataParallel: rank 0's parameters and
   * buffers are broadcast at the start, train is sharded (distributed.shard),
   * gradients are averaged after backward (the steps run in parts), buffers
   * (BatchNorm's running statistics) are broadcast from rank 0 before each
   * step's forward (DDP's broadcast_buffers), and only rank 0 writes
   * checkpoints. Every rank validates on all of val. A
   * DistributedDataParallel model trains this way without the option.
   * Stops are agreed by all ranks, so none waits for the others: a
   * non-finite loss on any rank skips the step everywhere and fails with
   * TrainingDivergedError on every rank; the signal on any rank stops every
   * rank after the same step (rank 0 writes last/); a callback's ctx.stop()
   * or early stopping on any rank stops every rank at the end of that epoch.
   */
  distributed?: boolean;
}

/** The device, precision and memory format options of evaluate and predict (as in fit). */
export interface RunOptions {
  device?: Device;
  precision?: Precision;
  memoryFormat?: MemoryFormat;
}

export type { ForwardFn } from './forward.js';
export type { DetectionFitOptions, DetectionSource, DetectionMetricName } from './detection-fit.js';

export interface FitResult {
  epochs: number;
  /** A detection model's records also have losses (each loss's epoch mean) and detection (COCO scores with val, else null). */
  history: Array<{ epoch: number; trainLoss: number; val: EvalResult | null; losses?: Record<string, number>; detection?: DetectionScores | null }>;
  best: { epoch: number; metric: MetricName; value: number } | null;
  /** Steps run by the one-call native step (see fit); the others ran in parts. */
  nativeSteps: number;
  /** Steps whose update the GradScaler skipped (precision 'fp16': an inf/NaN gradient). */
  skippedSteps: number;
  /** The epoch whose weights the model holds after fit (the best one with restoreBest); null when the signal stopped training inside an epoch. */
  modelEpoch: number | null;
  /** Which weights the model holds after fit: 'ema' (the ema option with evaluate, unless the signal interrupted training) or the 'trained' ones. */
  modelWeights: 'trained' | 'ema';
  /** The EMA weights at the end of training (the ema option; yours to dispose), else null. */
  ema: StateDict | null;
  stoppedEarly: boolean;
  /** Set when a callback stopped training (ctx.stop). */
  stopped: { epoch: number; step: number; reason: string } | null;
  /** True when the signal stopped training before the last epoch. */
  interrupted: boolean;
  /** Event-loop delay while fitting, milliseconds. */
  eventLoopDelay: { p50: number; p99: number; max: number };
}

/** Loss, accuracy, macro-F1, ROC AUC and the confusion matrix over a data source; with `metrics`, also val.custom. */
export async function evaluate(
  model: Module,
  data: BatchSource,
  options: { loss?: LossFn | BuiltinLoss; forward?: ForwardFn; tagging?: TaggingOptions; metrics?: Record<string, MetricFn> } & RunOptions = {},
): Promise<EvalResult> {
  const lossFn = lossFunction(options.loss, 'evaluate');
  if (options.tagging !== undefined) checkTagging(options.tagging, 'evaluate');
  const metrics = checkMetrics(options.metrics, 'evaluate');
  const tagging = options.tagging ? new TaggingAccumulator(options.tagging) : null;
  const forward = options.forward ?? forwardInput;
  const run = runSettings(model, options, 'evaluate');
  const wasTraining = model.training;
  model.eval();
  const acc = new MetricAccumulator();
  // what custom metrics see (classifiers): kept only when there are some
  const keep = metrics.length > 0 && !tagging;
  const probabilities: number[][] = [];
  const targets: number[] = [];
  let lossSum = 0;
  let n = 0;
  try {
    for await (const batch of data.batches(0)) {
      const { input, target } = moveBatch(batch, run.device, run.memoryFormat);
      const { logits, loss: l } = await run.autocast(async () => {
        const logits = await torch.noGrad(() => forward(model, input));
        return { logits, loss: torch.noGrad(() => lossFn(logits, target)) };
      });
      const size = target.shape[0];
      lossSum += (l.item() as number) * size;
      n += size;
      const wide = logits.to('float32'); // metrics in float32 (under autocast the logits may be bfloat16/float16)
      if (tagging) tagging.update(model, wide, target);
      else acc.update(wide, target);
      if (keep) {
        const p = torch.noGrad(() => wide.softmax(1));
        probabilities.push(...(p.to('cpu', 'float64').toArray() as number[][]));
        targets.push(...(target.to('cpu').toArray() as number[]));
        p.dispose();
      }
      for (const t of [logits, wide, l, target]) t.dispose();
      disposeInput(input);
    }
  } finally {
    if (wasTraining) model.train();
  }
  if (!n) throw new Error('evaluate: the data source yielded no samples');
  const result: EvalResult = { loss: lossSum / n, ...(tagging ? tagging.compute() : acc.compute()), samples: n };
  if (metrics.length) {
    const predictions = probabilities.map((r) => r.indexOf(Math.max(...r)));
    const input: MetricInput = tagging
      ? { probabilities: [], predictions: [], targets: [], val: result, yTrue: tagging.yTrue, yPred: tagging.yPred }
      : { probabilities, predictions, targets, val: result };
    result.custom = {};
    for (const [name, fn] of metrics) {
      const value = await fn(input);
      if (typeof value !== 'number' || Number.isNaN(value)) throw new TypeError(`metrics.${name} returned ${String(value)}; a metric must return a number`);
      result.custom[name] = value;
    }
  }
  return result;
}

/** The custom metrics as [name, fn] pairs, checked: functions, and names that are not built-in ones. */
function checkMetrics(metrics: Record<string, MetricFn> | undefined, where: string): Array<[string, MetricFn]> {
  if (metrics === undefined) return [];
  if (!metrics || typeof metrics !== 'object') throw new TypeError(`${where}: metrics must be an object of name: function`);
  return Object.entries(metrics).map(([name, fn]) => {
    if (typeof fn !== 'function') throw new TypeError(`${where}: metrics.${name} must be a function ({ probabilities, predictions, targets, val }) => number`);
    if (BUILTIN_METRICS.includes(name)) throw new TypeError(`${where}: metrics.${name} has the name of a built-in metric; give it another name`);
    return [name, fn];
  });
}

/** Class probabilities and predicted classes for every sample. */
export async function predict(
  model: Module,
  data: BatchSource,
  options: { forward?: ForwardFn } & RunOptions = {},
): Promise<{ probabilities: number[][]; predictions: number[] }> {
  const forward = options.forward ?? forwardInput;
  const run = runSettings(model, options, 'predict');
  const wasTraining = model.training;
  model.eval();
  const probabilities: number[][] = [];
  try {
    for await (const batch of data.batches(0)) {
      const { input, target } = moveBatch(batch, run.device, run.memoryFormat);
      const logits = await run.autocast(() => torch.noGrad(() => forward(model, input)));
      // softmax in float32 (under autocast the logits may be bfloat16/float16)
      const wide = logits.to('float32');
      const p = wide.softmax(1);
      probabilities.push(...(p.to('cpu', 'float64').toArray() as number[][]));
      for (const t of [logits, wide, p, target]) t.dispose();
      disposeInput(input);
    }
  } finally {
    if (wasTraining) model.train();
  }
  return { probabilities, predictions: probabilities.map((r) => r.indexOf(Math.max(...r))) };
}

/** The checked device, precision and memory format of a run, with the autocast region its forward runs in. */
interface RunSettings {
  device: Device | null;
  precision: Precision;
  memoryFormat: MemoryFormat;
  /** Runs fn under the precision's autocast (as it is for fp32); a Promise keeps the region open until it settles. */
  autocast<T>(fn: () => T): T;
}

function runSettings(model: Module, o: RunOptions, where: string): RunSettings {
  const device = resolveDevice(model, o.device, where);
  const precision = checkPrecision(o.precision, where);
  const memoryFormat = checkMemoryFormat(o.memoryFormat, where);
  const cast = autocastFor(precision, device, where);
  // channels-last: the model's 4-D weights in NHWC too (identity kept, so the optimizer stays valid)
  if (memoryFormat === 'channelsLast') model.toMemoryFormat('channelsLast');
  return {
    device,
    precision,
    memoryFormat,
    autocast: cast ? (fn) => autocast(cast.deviceType, { dtype: cast.dtype }, fn) : (fn) => fn(),
  };
}

function metricOf(r: { trainLoss: number; val: EvalResult | null }, m: MetricName): number | null {
  if (m === 'loss') return r.val ? r.val.loss : r.trainLoss;
  if (!BUILTIN_METRICS.includes(m)) return r.val?.custom?.[m] ?? null;
  if (m in ENTITY_METRICS) return r.val?.entities ? r.val.entities[ENTITY_METRICS[m as EntityMetricName]] : null;
  return r.val ? r.val[m as 'accuracy' | 'f1Macro' | 'rocAuc'] : null;
}

/** The torch seed of one training step: dropout masks depend on (seed, epoch, batch) only, so a resumed run draws the same ones. */
export function stepSeed(seed: number, epoch: number, batch: number): number {
  return ((seed * 1000 + epoch) * 100_003 + batch) % 2 ** 52;
}

/**
 * Trains `model`; see FitOptions. Resolves when done, stopped early or
 * interrupted by the signal.
 *
 * Two ways to run a step, with the same results (checked in
 * test/train/trainer.test.ts, also against PyTorch):
 * - the one-call native step (trainStepAsync: zero grad, forward, loss,
 *   backward and optimizer step in one task on the torch thread) when the
 *   model has a native forward (built-in layers, Sequentials of them, the
 *   vision and text architectures), the batch input is one tensor, the loss
 *   is cross-entropy given as data (default, 'crossEntropy' or
 *   { type: 'crossEntropy', weight, labelSmoothing }), and neither `forward`
 *   nor `clipGradNorm` is given;
 * - otherwise forward, the loss in JavaScript, backwardAsync and stepAsync:
 *   a LossFn function (focal loss, any custom loss), a custom `forward`, named
 *   inputs, a module with a TypeScript forward(), or clipGradNorm.
 * A non-finite loss stops training with TrainingDivergedError either way; the
 * native step has already applied that step's update when it is seen.
 */
export async function fit(options: DetectionFitOptions): Promise<FitResult>;
export async function fit(options: FitOptions): Promise<FitResult>;
export async function fit(given: FitOptions | DetectionFitOptions): Promise<FitResult> {
  // a detection model (FasterRCNN) trains on its own losses: see detection-fit.ts
  if (isDetectionFit(given)) return fitDetection(given);
  const options = given as FitOptions;
  // a DistributedDataParallel model trains distributed too
  const o: DistributedFitOptions = options.distributed || options.model instanceof DistributedDataParallel ? await distributedFit(options) : options;
  if (!Number.isInteger(o.epochs) || o.epochs < 1) throw new TypeError(`fit: epochs must be a positive integer, got ${o.epochs}`);
  if (o.checkpointEvery !== undefined && !(Number.isInteger(o.checkpointEvery) && o.checkpointEvery >= 1))
    throw new TypeError(`fit: checkpointEvery must be a positive integer (steps), got ${o.checkpointEvery}`);
  const accumulation = o.gradientAccumulationSteps ?? 1;
  if (!Number.isInteger(accumulation) || accumulation < 1)
    throw new TypeError(`fit: gradientAccumulationSteps must be a positive integer (batches per optimizer step), got ${o.gradientAccumulationSteps}`);
  const ema = checkEma(o.ema);
  const callbacks = checkCallbacks(o.callbacks);
  const metrics = o.metrics;
  checkMetrics(metrics, 'fit');
  const lossFn = lossFunction(o.loss, 'fit');
  const forward = o.forward ?? forwardInput;
  const builtin = builtinLossOptions(o.loss);
  const run = runSettings(o.model, o, 'fit');
  if (o.gradScaler !== undefined && !(o.gradScaler instanceof GradScaler)) throw new TypeError('fit: gradScaler must be a GradScaler');
  // fp16 needs loss scaling; a scaler given with another precision is used as given
  const scaler = o.gradScaler ?? (run.precision === 'fp16' ? new GradScaler() : null);
  const scaling = scaler?.isEnabled() ?? false;
  const nativeStep =
    builtin !== null &&
    o.forward === undefined &&
    o.clipGradNorm === undefined &&
    !scaling &&
    accumulation === 1 &&
    !o.distributed &&
    native.moduleHasNativeForward(o.model.handle);
  const seed = o.seed ?? 0;
  if (o.tagging !== undefined) checkTagging(o.tagging, 'fit');
  const monitor: MetricName = o.monitor ?? o.earlyStopping?.metric ?? (o.val ? (o.tagging ? 'entityF1' : 'accuracy') : 'loss');
  for (const [field, name] of [
    ['monitor', monitor],
    ['earlyStopping.metric', o.earlyStopping?.metric],
  ] as const) {
    if (name === undefined || BUILTIN_METRICS.includes(name)) continue;
    if (!metrics || !(name in metrics))
      throw new TypeError(
        `fit: ${field} '${name}' is neither a built-in metric (${BUILTIN_METRICS.join(', ')}) nor one of metrics (${Object.keys(metrics ?? {}).join(', ') || 'none given'})`,
      );
    if (!o.val) throw new TypeError(`fit: ${field} '${name}' is a custom validation metric: it needs validation data (val)`);
  }
  if (monitor in ENTITY_METRICS && !(o.tagging && o.val))
    throw new TypeError(`fit: monitoring ${monitor} needs validation data (val) and the tagging option (the tag names), which score entities`);
  const mode = o.earlyStopping?.mode ?? o.monitorMode ?? (monitor === 'loss' ? 'min' : 'max');
  const better = (a: number, b: number) => (mode === 'max' ? a > b : a < b);
  const restoreBest = o.restoreBest ?? o.checkpointDir !== undefined;
  const emit = (e: TrainEvent) => o.onEvent?.(e);
  const history: FitResult['history'] = [];
  let best: FitResult['best'] = null;
  let sinceBest = 0;
  let startEpoch = 0;
  let step = 0;
  let position: Position | null = null;
  let modelEpoch: number | null = null; // the completed epoch whose weights the model holds
  let nativeSteps = 0;
  let skippedSteps = 0;
  let emaWeights: StateDict | null = null;
  let emaUpdates = 0;
  // a killed run's checkpoints: when resuming, put best/ and last/ back if a rename was cut short; remove dead runs' leftovers
  if (o.checkpointDir) recoverCheckpoints(o.checkpointDir, { restore: o.resumeFrom !== undefined });
  if (o.resumeFrom) {
    const from = findCheckpoint(o.resumeFrom);
    const state = loadCheckpoint(from, o.model, o.optimizer);
    position = state.position ?? null;
    startEpoch = position ? position.epoch : state.epoch + 1;
    // best/ is the authority on the best epoch: its own record names the weights it holds
    best = (o.checkpointDir && readBestRecord(o.checkpointDir)) || state.best;
    sinceBest = state.sinceBest;
    history.push(...state.history);
    if (o.scheduler && state.schedulerStep !== null) o.scheduler.setStep(state.schedulerStep);
    if (scaler && state.scaler) scaler.loadStateDict(state.scaler, join(from, 'trainer.json'));
    if (ema) {
      // a checkpoint without EMA weights (ema newly asked for) starts the average from the weights it holds, as a fresh run does
      emaWeights = loadEmaWeights(from);
      emaUpdates = emaWeights ? (state.ema?.updates ?? 0) : 0;
    }
    step = state.step;
    modelEpoch = !position && state.epoch >= 0 ? state.epoch : null;
    // distributed: a mid-epoch position holds the sums over every rank; each rank takes its share
    if (position && o.distributed) position = { ...position, lossSum: position.lossSum / getWorldSize(), seen: position.seen / getWorldSize() };
    emit({ type: 'resumed', epoch: startEpoch, batch: position?.batch ?? 0, step, path: from });
  }
  if (ema && !emaWeights) emaWeights = copyStateDict(o.model); // timm: the EMA starts as a copy of the model
  const params = o.model.parameters();
  // distributed: the gradient reducer (the DistributedDataParallel's, or one for this fit), and the stops every rank agrees on
  const reducer = o.distributed ? reducerFor(o.model) : null;
  // where fit's own small collectives live: NCCL reduces CUDA tensors only
  const collectiveDevice: Device = o.distributed && getBackend() === 'nccl' ? ((params[0]?.device as Device | undefined) ?? 'cpu') : 'cpu';
  let stopRequest: FitResult['stopped'] = null; // a callback's stop on this rank, agreed at the epoch's end
  let signalAgreed = false; // some rank's signal, agreed in a step's reduction or at an epoch's end
  const delay = monitorEventLoopDelay({ resolution: 10 });
  delay.enable();
  let stoppedEarly = false;
  let interrupted = false;
  let stopped: FitResult['stopped'] = null;
  let lastLoss: number | null = null;
  let lastVal: EvalResult | null = null;
  let bestInMemory: StateDict | null = null; // restoreBest without checkpointDir
  let modelWeights: FitResult['modelWeights'] = 'trained';
  const save = (name: CheckpointName, epoch: number, at?: Position) => {
    const dir = join(o.checkpointDir!, name);
    saveCheckpoint(
      dir,
      o.model,
      o.optimizer,
      {
        epoch,
        step,
        seed,
        best,
        sinceBest,
        history,
        schedulerStep: o.scheduler?.lastStep ?? null,
        ...(scaling ? { scaler: scaler!.stateDict() } : {}),
        ...(at ? { position: at } : {}),
        ...(ema ? { ema: { ...ema, updates: emaUpdates } } : {}),
      },
      // last/ always keeps the optimizer state: resuming needs it
      { optimizerState: name === 'last' || o.saveOptimizerState !== false, ema: emaWeights ?? undefined },
    );
    return dir;
  };
  let epochNow = startEpoch;
  let batchNow = 0;
  const context = (): CallbackContext => ({
    model: o.model,
    optimizer: o.optimizer,
    scheduler: o.scheduler,
    epoch: epochNow,
    step,
    batch: batchNow,
    history,
    loss: lastLoss,
    val: lastVal,
    stop: (reason: string) => {
      if (o.distributed) stopRequest ??= { epoch: epochNow, step, reason: String(reason) };
      else stopped ??= { epoch: epochNow, step, reason: String(reason) };
    },
  });
  const hook = async (name: keyof Callback) => {
    for (const cb of callbacks) {
      const fn = cb[name];
      if (fn) await fn.call(cb, context());
    }
  };
  const total = typeof o.train.length === 'number' ? o.train.length : null;
  // the epoch so far, for a mid-epoch checkpoint; distributed: the sums over every rank (every rank joins, rank 0 writes)
  const positionAt = async (epoch: number, batch: number, lossSum: number, seen: number): Promise<Position> => {
    if (!o.distributed) return { epoch, batch, lossSum, seen };
    const [s, n] = await reduceOverRanks([lossSum, seen], 'sum', collectiveDevice);
    return { epoch, batch, lossSum: s, seen: n };
  };
  const checkpointing = o.checkpointDir !== undefined || o.checkpointsOnRank0 === true;
  try {
    await hook('onTrainBegin');
    for (let epoch = startEpoch; epoch < o.epochs && !stopped; epoch++) {
      epochNow = epoch;
      batchNow = 0;
      if (o.distributed ? signalAgreed : o.signal?.aborted) {
        // between epochs: last/ already holds the previous epoch
        interrupted = true;
        emit({
          type: 'interrupted',
          epoch,
          batch: 0,
          step,
          path: o.checkpointDir && existsSync(join(o.checkpointDir, 'last')) ? join(o.checkpointDir, 'last') : null,
        });
        break;
      }
      await hook('onEpochBegin');
      if (stopped) break;
      o.model.train();
      const started = Date.now();
      const skip = position && position.epoch === epoch ? position.batch : 0;
      let lossSum = skip ? position!.lossSum : 0;
      let seen = skip ? position!.seen : 0;
      position = null;
      let batch = 0; // micro-batches consumed in this epoch (skipped ones included)
      // one optimizer step over a group of micro-batches (one, without accumulation)
      const runGroup = async (group: Batch[]) => {
        const t0 = Date.now();
        const first = batch - group.length;
        const lrs = o.optimizer.paramGroups.map((g) => g.lr); // the LRs this step uses
        let r: { values: number[]; sizes: number[] };
        if (nativeStep && group.length === 1 && group[0].input instanceof Tensor) {
          const { input, target } = moveBatch(group[0], run.device, run.memoryFormat);
          torch.manualSeed(stepSeed(seed, epoch, first)); // dropout and friends: reproducible and resumable mid-epoch
          try {
            // under autocast, the native step runs forward and loss in the region and backward and step outside it
            const value = await run.autocast(() => nativeTrainStep(o.model, o.optimizer, input as Tensor, target, builtin!));
            nativeSteps++;
            r = { values: [value], sizes: [target.shape[0]] };
          } finally {
            disposeInput(input);
            target.dispose();
          }
        } else {
          const g = await jsTrainGroup(o, run, scaling ? scaler : null, forward, lossFn, params, group, (i) => stepSeed(seed, epoch, first + i), reducer);
          r = g;
          if (!g.stepped) skippedSteps++;
          if (g.stop) signalAgreed = true;
          // distributed: some rank's loss was not finite; every rank skipped the step and ends here
          if (g.diverged && r.values.every((v) => Number.isFinite(v))) throw new TrainingDivergedError(epoch, step, Number.NaN, 'on another rank');
        }
        const bad = r.values.find((v) => !Number.isFinite(v));
        if (bad !== undefined) throw new TrainingDivergedError(epoch, step, bad);
        modelEpoch = null;
        o.scheduler?.step();
        if (ema) emaUpdates = updateEma(emaWeights!, o.model, ema, emaUpdates);
        r.values.forEach((v, i) => {
          lossSum += v * r.sizes[i];
          seen += r.sizes[i];
        });
        // the step's loss: the mean over its micro-batches (the sum of the divided losses, as transformers logs it)
        const loss = r.values.reduce((a, b) => a + b, 0) / r.values.length;
        const size = r.sizes.reduce((a, b) => a + b, 0);
        lastLoss = loss;
        emit({
          type: 'step',
          epoch,
          step: step++,
          batch: batch - 1,
          batches: total,
          loss,
          lrs,
          samplesPerSecond: size / Math.max(1e-3, (Date.now() - t0) / 1000),
          ...(accumulation > 1 ? { microBatches: group.length } : {}),
        });
        batchNow = batch;
        await hook('onStepEnd');
      };
      let group: Batch[] = [];
      try {
        for await (const raw of o.train.batches(epoch)) {
          if (batch < skip) {
            // done before the interruption: the source is deterministic per (seed, epoch), so skip to where it stopped
            disposeInput(raw.input);
            raw.target.dispose();
            batch++;
            continue;
          }
          group.push(raw);
          batch++;
          if (group.length < accumulation) continue;
          const full = group;
          group = [];
          await runGroup(full);
          if (stopped) break;
          if (o.distributed ? signalAgreed : o.signal?.aborted) {
            interrupted = true;
            break;
          }
          if (checkpointing && o.checkpointEvery && step % o.checkpointEvery === 0 && batch !== total) {
            const at = await positionAt(epoch, batch, lossSum, seen);
            if (o.checkpointDir) emit({ type: 'checkpoint', epoch, path: save('last', epoch - 1, at) });
          }
        }
        // the epoch's last, smaller group still steps
        if (group.length && !stopped && !interrupted) {
          const last = group;
          group = [];
          await runGroup(last);
          if ((o.distributed ? signalAgreed : o.signal?.aborted) && !stopped) interrupted = true;
        }
      } finally {
        for (const b of group) {
          disposeInput(b.input);
          b.target.dispose();
        }
      }
      if (interrupted) {
        const at = checkpointing ? await positionAt(epoch, batch, lossSum, seen) : null;
        const path = o.checkpointDir && at ? save('last', epoch - 1, at) : null;
        emit({ type: 'interrupted', epoch, batch, step, path });
        break;
      }
      const val = o.val
        ? await withWeights(o.model, ema?.evaluate ? emaWeights : null, () =>
            evaluate(o.model, o.val!, {
              loss: lossFn,
              forward,
              tagging: o.tagging,
              metrics,
              device: run.device ?? undefined,
              precision: run.precision,
              memoryFormat: run.memoryFormat,
            }),
          )
        : null;
      lastVal = val;
      // distributed: the loss over every rank's samples, so all ranks monitor (and pick the best epoch by) the same number
      const record = { epoch, trainLoss: o.distributed ? await meanOverRanks(lossSum, seen, collectiveDevice) : lossSum / Math.max(1, seen), val };
      history.push(record);
      modelEpoch = epoch;
      const value = metricOf(record, monitor);
      // (best.epoch === epoch: a resumed run replays the epoch that best/ already holds; best/ then takes the replay)
      const isBest = value !== null && (best === null || better(value, best.value) || best.epoch === epoch);
      if (isBest) best = { epoch, metric: monitor, value: value! };
      sinceBest = best ? epoch - best.epoch : sinceBest + 1;
      emit({ type: 'epoch', epoch, trainLoss: record.trainLoss, val, seconds: (Date.now() - started) / 1000, best: isBest });
      if (o.checkpointDir) {
        // best/ before last/: last/trainer.json names the best epoch, so it must never get ahead of best/
        if (isBest) emit({ type: 'checkpoint', epoch, path: save('best', epoch) });
        emit({ type: 'checkpoint', epoch, path: save('last', epoch) });
      } else if (isBest && restoreBest) {
        disposeStateDict(bestInMemory);
        bestInMemory = ema?.evaluate ? cloneStateDict(emaWeights!) : copyStateDict(o.model);
      }
      batchNow = batch;
      await hook('onEpochEnd');
      let earlyStop = !!o.earlyStopping && sinceBest >= o.earlyStopping.patience;
      if (o.distributed) {
        // every rank ends after the same epoch: a stop, early stopping or the signal on any rank counts for all
        const [stopAny, earlyAny, signalAny] = await reduceOverRanks(
          [stopRequest ? 1 : 0, earlyStop ? 1 : 0, o.signal?.aborted ? 1 : 0],
          'max',
          collectiveDevice,
        );
        if (stopAny) stopped = stopRequest ?? { epoch, step, reason: 'another rank stopped training' };
        earlyStop = earlyAny > 0;
        if (signalAny) signalAgreed = true;
      }
      if (stopped) break;
      if (earlyStop) {
        stoppedEarly = true;
        emit({ type: 'early-stop', epoch, metric: monitor, best: best!.value });
        break;
      }
    }
    if (stopped) emit({ type: 'stopped', ...(stopped as NonNullable<FitResult['stopped']>) });
    if (!interrupted) {
      // with ema.evaluate the model ends holding EMA weights: those validated
      const wantsEma = !!ema?.evaluate;
      let restored = false;
      if (restoreBest && best && (best.epoch !== modelEpoch || wantsEma)) {
        if (o.checkpointDir) {
          if (readBestRecord(o.checkpointDir)?.epoch === best.epoch) {
            loadModelWeights(join(o.checkpointDir, 'best'), o.model);
            modelEpoch = best.epoch;
            restored = true;
          }
        } else if (bestInMemory) {
          o.model.loadStateDict(bestInMemory);
          modelEpoch = best.epoch;
          restored = true;
        }
      }
      if (wantsEma && !restored) o.model.loadStateDict(emaWeights!);
      if (wantsEma) modelWeights = 'ema';
    }
    await hook('onTrainEnd');
  } catch (err) {
    disposeStateDict(emaWeights);
    throw err;
  } finally {
    if (reducer && !(o.model instanceof DistributedDataParallel)) reducer.dispose();
    delay.disable();
    disposeStateDict(bestInMemory);
  }
  const ms = (ns: number) => ns / 1e6;
  return {
    epochs: history.length,
    history,
    best,
    modelEpoch,
    modelWeights,
    ema: emaWeights,
    nativeSteps,
    skippedSteps,
    stoppedEarly,
    stopped,
    interrupted,
    eventLoopDelay: { p50: ms(delay.percentile(50)), p99: ms(delay.percentile(99)), max: ms(delay.max) },
  };
}

function checkEma(e: EmaOptions | undefined): Required<EmaOptions> | null {
  if (e === undefined) return null;
  if (!e || typeof e !== 'object' || !(typeof e.decay === 'number' && e.decay >= 0 && e.decay <= 1))
    throw new TypeError(`fit: ema.decay must be a number in [0, 1] (e.g. 0.999), got ${JSON.stringify(e?.decay)}`);
  for (const k of ['warmup', 'evaluate'] as const)
    if (e[k] !== undefined && typeof e[k] !== 'boolean') throw new TypeError(`fit: ema.${k} must be a boolean, got ${JSON.stringify(e[k])}`);
  return { decay: e.decay, warmup: e.warmup ?? false, evaluate: e.evaluate ?? true };
}

export function checkCallbacks(callbacks: Callback[] | undefined): Callback[] {
  if (callbacks === undefined) return [];
  if (!Array.isArray(callbacks))
    throw new TypeError('fit: callbacks must be an array of objects with onTrainBegin/onEpochBegin/onStepEnd/onEpochEnd/onTrainEnd');
  const hooks = ['onTrainBegin', 'onEpochBegin', 'onStepEnd', 'onEpochEnd', 'onTrainEnd'];
  callbacks.forEach((cb, i) => {
    if (!cb || typeof cb !== 'object') throw new TypeError(`fit: callbacks[${i}] must be an object with hooks (${hooks.join(', ')})`);
    for (const h of hooks) {
      const fn = (cb as Record<string, unknown>)[h];
      if (fn !== undefined && typeof fn !== 'function') throw new TypeError(`fit: callbacks[${i}].${h} must be a function`);
    }
  });
  return callbacks;
}

const FLOATING = new Set(['float32', 'float64', 'float16', 'bfloat16']);

/** timm's ModelEmaV2 update of `ema` from the model's state dict (see EmaOptions); returns the new update count. */
function updateEma(ema: StateDict, model: Module, o: Required<EmaOptions>, updates: number): number {
  const decay = o.warmup ? Math.min(o.decay, (1 + updates) / (10 + updates)) : o.decay;
  const sd = model.stateDict();
  try {
    torch.noGrad(() => {
      for (const [k, v] of Object.entries(sd)) {
        const e = ema[k];
        if (!e) throw new Error(`fit (ema): the model has an entry '${k}' that the EMA weights lack`);
        if (FLOATING.has(v.dtype)) e.mul_(decay).add_(v, 1 - decay);
        else e.copy_(v);
      }
    });
  } finally {
    Object.values(sd).forEach((t) => t.dispose());
  }
  return updates + 1;
}

/** Runs fn with `weights` loaded into the model (its own put back afterwards); with null, as it is. */
async function withWeights<T>(model: Module, weights: StateDict | null, fn: () => Promise<T>): Promise<T> {
  if (!weights) return fn();
  const own = copyStateDict(model);
  try {
    model.loadStateDict(weights);
    return await fn();
  } finally {
    model.loadStateDict(own);
    disposeStateDict(own);
  }
}

/** One step with the one-call native step; returns the loss. */
async function nativeTrainStep(model: Module, optimizer: Optimizer, input: Tensor, target: Tensor, loss: Omit<CrossEntropyLoss, 'type'>): Promise<number> {
  const r = await trainStepAsync({ model, optimizer, input, target, loss: 'crossEntropy', weight: loss.weight, labelSmoothing: loss.labelSmoothing });
  const value = r.loss.item() as number;
  r.loss.dispose();
  r.output.dispose();
  return value;
}

/**
 * One optimizer step in parts over a group of micro-batches (one without
 * accumulation): for each, forward and the loss in JavaScript (under the
 * run's autocast) and backward from the loss divided by the group's size, so
 * the gradients sum to the group's mean (transformers' Trainer); then
 * clipping and the optimizer step, outside autocast. With a scaler (fp16):
 * backward from the scaled losses, unscale before clipping, the step skipped
 * on an inf/NaN gradient, the scale updated once. Returns the micro-batches'
 * losses and sizes (no update when one is not finite) and whether the
 * optimizer stepped.
 *
 * Distributed (a reducer): rank 0's buffers first; the reducer armed before
 * the last micro-batch's backward, and every rank joins its reduction, also
 * one whose loss was not finite, with two flags summed over the ranks: a
 * non-finite loss (no rank steps: `diverged`) and the signal (`stop`: every
 * rank stops after this step).
 */
async function jsTrainGroup(
  o: FitOptions,
  run: RunSettings,
  scaler: GradScaler | null,
  forward: ForwardFn,
  lossFn: LossFn,
  params: Tensor[],
  group: Batch[],
  seedOf: (i: number) => number,
  reducer: Reducer | null,
): Promise<{ values: number[]; sizes: number[]; stepped: boolean; diverged: boolean; stop: boolean }> {
  const values: number[] = [];
  const sizes: number[] = [];
  let finite = true;
  o.optimizer.zeroGrad();
  if (reducer && !(o.model instanceof DistributedDataParallel && !o.model.broadcastBuffers)) await broadcastBuffers(o.model);
  for (let i = 0; i < group.length && finite; i++) {
    const { input, target } = moveBatch(group[i], run.device, run.memoryFormat);
    torch.manualSeed(seedOf(i)); // dropout and friends: reproducible and resumable mid-epoch
    try {
      const { logits, loss } = await run.autocast(async () => {
        const logits = await forward(o.model, input);
        return { logits, loss: lossFn(logits, target) };
      });
      try {
        const value = loss.item() as number;
        values.push(value);
        sizes.push(target.shape[0]);
        finite = Number.isFinite(value);
        if (!finite) continue;
        const divided = group.length > 1 ? loss.div(group.length) : loss;
        const scaled = scaler ? scaler.scale(divided) : divided;
        if (reducer && i === group.length - 1) reducer.prepare();
        try {
          await scaled.backwardAsync();
        } finally {
          if (scaled !== divided) scaled.dispose();
          if (divided !== loss) divided.dispose();
        }
      } finally {
        logits.dispose();
        loss.dispose();
      }
    } finally {
      disposeInput(input);
      target.dispose();
    }
  }
  let stop = false;
  if (reducer) {
    if (!finite) reducer.prepare(); // this rank skipped the last backward: the reduction still pairs with the others'
    const [nonFinite, signal] = await reducer.finish([finite ? 0 : 1, o.signal?.aborted ? 1 : 0]);
    stop = signal > 0;
    if (nonFinite > 0) return { values, sizes, stepped: false, diverged: true, stop };
  } else if (!finite) return { values, sizes, stepped: false, diverged: true, stop };
  if (!scaler) {
    if (o.clipGradNorm !== undefined) clipGradNorm(params, o.clipGradNorm);
    await o.optimizer.stepAsync();
    return { values, sizes, stepped: true, diverged: false, stop };
  }
  if (o.clipGradNorm !== undefined) {
    scaler.unscale(o.optimizer);
    clipGradNorm(params, o.clipGradNorm);
  }
  const stepped = await scaler.step(o.optimizer);
  scaler.update();
  return { values, sizes, stepped, diverged: false, stop };
}

/** fit's options on a rank of a distributed fit; checkpointsOnRank0: rank 0 writes checkpoints (the others join the reductions they need). */
type DistributedFitOptions = FitOptions & { checkpointsOnRank0?: boolean };

/** What fit needs of a gradient reducer (distributed.GradientReducer). */
interface Reducer {
  prepare(): void;
  finish(flags?: number[]): Promise<number[]>;
  dispose(): void;
}

/** The DistributedDataParallel's reducer, or one for this model. */
function reducerFor(model: Module): Reducer {
  if (model instanceof DistributedDataParallel) return model.reducer;
  return new GradientReducer(model);
}

/** sum / count over every rank's sums and counts (the epoch's train loss). */
async function meanOverRanks(sum: number, count: number, device: Device): Promise<number> {
  const [s, n] = await reduceOverRanks([sum, count], 'sum', device);
  return s / Math.max(1, n);
}

/** The numbers reduced over every rank, in one float64 all-reduce (on the model's device under NCCL, which takes CUDA tensors only). */
async function reduceOverRanks(values: number[], op: 'sum' | 'max', device: Device = 'cpu'): Promise<number[]> {
  const t = torch.tensor(values, { dtype: 'float64', device });
  try {
    await allReduce(t, { op });
    return Array.from(t.dataSync(), Number);
  } finally {
    t.dispose();
  }
}

/**
 * Rank 0's buffers (BatchNorm's running statistics) on every rank before a
 * step's forward, as PyTorch's DDP does (broadcast_buffers); nothing when the
 * model has none. All of them in one float64 broadcast, exact for float32,
 * float16, bfloat16 and counts below 2^53.
 */
async function broadcastBuffers(model: Module): Promise<void> {
  const buffers = model.buffers();
  if (!buffers.length) return;
  try {
    const flat = torch.tidy(() => torch.noGrad(() => torch.cat(buffers.map((b) => b.detach().reshape(-1).to('float64')))));
    try {
      await broadcast(flat, { src: 0 });
      torch.tidy(() =>
        torch.noGrad(() => {
          let offset = 0;
          for (const b of buffers) {
            const n = b.numel();
            b.copy_(flat.narrow(0, offset, n).reshape(b.shape));
            offset += n;
          }
        }),
      );
    } finally {
      flat.dispose();
    }
  } finally {
    for (const b of buffers) b.dispose();
  }
}

/** fit's options on this rank: rank 0's weights, this rank's shard of train, checkpoints written by rank 0 only. */
async function distributedFit(o: FitOptions): Promise<DistributedFitOptions> {
  if (!isInitialized())
    throw new TypeError('fit: distributed needs a process group: call distributed.initProcessGroup() first (or launch with finetorch train --nproc-per-node)');
  // a rank started by `finetorch train --nproc-per-node` (distributed.launch) ends when the launcher is gone
  watchLauncher();
  // a DistributedDataParallel has broadcast rank 0's weights already
  if (o.model instanceof DistributedDataParallel) await o.model.ready;
  else await broadcastModel(o.model);
  const writes = getRank() === 0;
  return {
    ...o,
    distributed: true,
    train: shard(o.train),
    checkpointDir: writes ? o.checkpointDir : undefined,
    checkpointsOnRank0: o.checkpointDir !== undefined,
    restoreBest: o.restoreBest ?? o.checkpointDir !== undefined,
  };
}

function cloneStateDict(sd: StateDict): StateDict {
  return torch.noGrad(() => Object.fromEntries(Object.entries(sd).map(([k, t]) => [k, t.clone()])));
}

function copyStateDict(model: Module): StateDict {
  const sd = model.stateDict();
  const copy = torch.noGrad(() => Object.fromEntries(Object.entries(sd).map(([k, t]) => [k, t.clone()])));
  Object.values(sd).forEach((t) => t.dispose());
  return copy;
}

function disposeStateDict(sd: StateDict | null): void {
  if (sd) Object.values(sd).forEach((t) => t.dispose());
}
