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
import { disposeInput, type ModelInput } from '../data/batch.js';
import {
  findCheckpoint,
  loadCheckpoint,
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
/** What fit can monitor: the loss, a classification metric, or (with the tagging option) an entity metric of val.entities. */
export type MetricName = 'loss' | 'accuracy' | 'f1Macro' | 'rocAuc' | EntityMetricName;

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
}

export type TrainEvent =
  /** After every optimizer step. `step` counts over the whole run, `batch` within the epoch (of `batches`, when the source knows its length); `lrs`: the learning rates the step used, per group. */
  | { type: 'step'; epoch: number; step: number; batch: number; batches: number | null; loss: number; lrs: number[]; samplesPerSecond: number }
  | { type: 'epoch'; epoch: number; trainLoss: number; val: EvalResult | null; seconds: number; best: boolean }
  | { type: 'checkpoint'; epoch: number; path: string }
  | { type: 'early-stop'; epoch: number; metric: MetricName; best: number }
  /** Training continues from a checkpoint: at `batch` of `epoch` (0 at an epoch boundary). */
  | { type: 'resumed'; epoch: number; batch: number; step: number; path: string }
  /** The signal stopped training after a step; `path` is the resumable checkpoint (null without checkpointDir). */
  | { type: 'interrupted'; epoch: number; batch: number; step: number; path: string | null };

/** The loss became NaN or infinite: training diverged (the message says so, and what to do). */
export class TrainingDivergedError extends FinetorchError {
  constructor(
    readonly epoch: number,
    readonly step: number,
    readonly loss: number,
  ) {
    super('diverged', `fit: the loss became ${loss} at epoch ${epoch}, step ${step} (training diverged: lower the learning rate)`);
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
  /** The metric that picks the best epoch (default val accuracy, val entityF1 with tagging, or train loss without val). */
  monitor?: MetricName;
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
}

/** The device, precision and memory format options of evaluate and predict (as in fit). */
export interface RunOptions {
  device?: Device;
  precision?: Precision;
  memoryFormat?: MemoryFormat;
}

export type { ForwardFn } from './forward.js';

export interface FitResult {
  epochs: number;
  history: Array<{ epoch: number; trainLoss: number; val: EvalResult | null }>;
  best: { epoch: number; metric: MetricName; value: number } | null;
  /** Steps run by the one-call native step (see fit); the others ran in parts. */
  nativeSteps: number;
  /** Steps whose update the GradScaler skipped (precision 'fp16': an inf/NaN gradient). */
  skippedSteps: number;
  /** The epoch whose weights the model holds after fit (the best one with restoreBest); null when the signal stopped training inside an epoch. */
  modelEpoch: number | null;
  stoppedEarly: boolean;
  /** True when the signal stopped training before the last epoch. */
  interrupted: boolean;
  /** Event-loop delay while fitting, milliseconds. */
  eventLoopDelay: { p50: number; p99: number; max: number };
}

/** Loss, accuracy, macro-F1, ROC AUC and the confusion matrix over a data source. */
export async function evaluate(
  model: Module,
  data: BatchSource,
  options: { loss?: LossFn | BuiltinLoss; forward?: ForwardFn; tagging?: TaggingOptions } & RunOptions = {},
): Promise<EvalResult> {
  const lossFn = lossFunction(options.loss, 'evaluate');
  if (options.tagging !== undefined) checkTagging(options.tagging, 'evaluate');
  const tagging = options.tagging ? new TaggingAccumulator(options.tagging) : null;
  const forward = options.forward ?? forwardInput;
  const run = runSettings(model, options, 'evaluate');
  const wasTraining = model.training;
  model.eval();
  const acc = new MetricAccumulator();
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
      for (const t of [logits, wide, l, target]) t.dispose();
      disposeInput(input);
    }
  } finally {
    if (wasTraining) model.train();
  }
  if (!n) throw new Error('evaluate: the data source yielded no samples');
  return { loss: lossSum / n, ...(tagging ? tagging.compute() : acc.compute()), samples: n };
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
export async function fit(o: FitOptions): Promise<FitResult> {
  if (!Number.isInteger(o.epochs) || o.epochs < 1) throw new TypeError(`fit: epochs must be a positive integer, got ${o.epochs}`);
  if (o.checkpointEvery !== undefined && !(Number.isInteger(o.checkpointEvery) && o.checkpointEvery >= 1))
    throw new TypeError(`fit: checkpointEvery must be a positive integer (steps), got ${o.checkpointEvery}`);
  const lossFn = lossFunction(o.loss, 'fit');
  const forward = o.forward ?? forwardInput;
  const builtin = builtinLossOptions(o.loss);
  const run = runSettings(o.model, o, 'fit');
  if (o.gradScaler !== undefined && !(o.gradScaler instanceof GradScaler)) throw new TypeError('fit: gradScaler must be a GradScaler');
  // fp16 needs loss scaling; a scaler given with another precision is used as given
  const scaler = o.gradScaler ?? (run.precision === 'fp16' ? new GradScaler() : null);
  const scaling = scaler?.isEnabled() ?? false;
  const nativeStep = builtin !== null && o.forward === undefined && o.clipGradNorm === undefined && !scaling && native.moduleHasNativeForward(o.model.handle);
  const seed = o.seed ?? 0;
  if (o.tagging !== undefined) checkTagging(o.tagging, 'fit');
  const monitor: MetricName = o.monitor ?? o.earlyStopping?.metric ?? (o.val ? (o.tagging ? 'entityF1' : 'accuracy') : 'loss');
  if (monitor in ENTITY_METRICS && !(o.tagging && o.val))
    throw new TypeError(`fit: monitoring ${monitor} needs validation data (val) and the tagging option (the tag names), which score entities`);
  const mode = o.earlyStopping?.mode ?? (monitor === 'loss' ? 'min' : 'max');
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
    step = state.step;
    modelEpoch = !position && state.epoch >= 0 ? state.epoch : null;
    emit({ type: 'resumed', epoch: startEpoch, batch: position?.batch ?? 0, step, path: from });
  }
  const params = o.model.parameters();
  const delay = monitorEventLoopDelay({ resolution: 10 });
  delay.enable();
  let stoppedEarly = false;
  let interrupted = false;
  let bestInMemory: StateDict | null = null; // restoreBest without checkpointDir
  const save = (name: CheckpointName, epoch: number, at?: Position) => {
    const dir = join(o.checkpointDir!, name);
    saveCheckpoint(dir, o.model, o.optimizer, {
      epoch,
      step,
      seed,
      best,
      sinceBest,
      history,
      schedulerStep: o.scheduler?.lastStep ?? null,
      ...(scaling ? { scaler: scaler!.stateDict() } : {}),
      ...(at ? { position: at } : {}),
    });
    return dir;
  };
  const total = typeof o.train.length === 'number' ? o.train.length : null;
  try {
    for (let epoch = startEpoch; epoch < o.epochs; epoch++) {
      if (o.signal?.aborted) {
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
      o.model.train();
      const started = Date.now();
      const skip = position && position.epoch === epoch ? position.batch : 0;
      let lossSum = skip ? position!.lossSum : 0;
      let seen = skip ? position!.seen : 0;
      position = null;
      let batch = 0;
      for await (const raw of o.train.batches(epoch)) {
        if (batch < skip) {
          const { input, target } = raw;
          // done before the interruption: the source is deterministic per (seed, epoch), so skip to where it stopped
          disposeInput(input);
          target.dispose();
          batch++;
          continue;
        }
        const t0 = Date.now();
        const { input, target } = moveBatch(raw, run.device, run.memoryFormat);
        torch.manualSeed(stepSeed(seed, epoch, batch)); // dropout and friends: reproducible and resumable mid-epoch
        const lrs = o.optimizer.paramGroups.map((g) => g.lr); // the LRs this step uses
        let value: number;
        try {
          if (nativeStep && input instanceof Tensor) {
            // under autocast, the native step runs forward and loss in the region and backward and step outside it
            value = await run.autocast(() => nativeTrainStep(o.model, o.optimizer, input, target, builtin!));
            nativeSteps++;
          } else {
            const r = await jsTrainStep(o, run, scaling ? scaler : null, forward, lossFn, params, input, target);
            value = r.value;
            if (!r.stepped) skippedSteps++;
          }
        } finally {
          disposeInput(input);
        }
        if (!Number.isFinite(value)) {
          target.dispose();
          throw new TrainingDivergedError(epoch, step, value);
        }
        modelEpoch = null;
        o.scheduler?.step();
        const size = target.shape[0];
        lossSum += value * size;
        seen += size;
        target.dispose();
        emit({ type: 'step', epoch, step: step++, batch, batches: total, loss: value, lrs, samplesPerSecond: size / Math.max(1e-3, (Date.now() - t0) / 1000) });
        batch++;
        if (o.signal?.aborted) {
          interrupted = true;
          break;
        }
        if (o.checkpointDir && o.checkpointEvery && step % o.checkpointEvery === 0 && batch !== total)
          emit({ type: 'checkpoint', epoch, path: save('last', epoch - 1, { epoch, batch, lossSum, seen }) });
      }
      if (interrupted) {
        const path = o.checkpointDir ? save('last', epoch - 1, { epoch, batch, lossSum, seen }) : null;
        emit({ type: 'interrupted', epoch, batch, step, path });
        break;
      }
      const val = o.val
        ? await evaluate(o.model, o.val, {
            loss: lossFn,
            forward,
            tagging: o.tagging,
            device: run.device ?? undefined,
            precision: run.precision,
            memoryFormat: run.memoryFormat,
          })
        : null;
      const record = { epoch, trainLoss: lossSum / Math.max(1, seen), val };
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
        bestInMemory = copyStateDict(o.model);
      }
      if (o.earlyStopping && sinceBest >= o.earlyStopping.patience) {
        stoppedEarly = true;
        emit({ type: 'early-stop', epoch, metric: monitor, best: best!.value });
        break;
      }
    }
    if (restoreBest && !interrupted && best && best.epoch !== modelEpoch) {
      if (o.checkpointDir) {
        if (readBestRecord(o.checkpointDir)?.epoch === best.epoch) {
          loadModelWeights(join(o.checkpointDir, 'best'), o.model);
          modelEpoch = best.epoch;
        }
      } else if (bestInMemory) {
        o.model.loadStateDict(bestInMemory);
        modelEpoch = best.epoch;
      }
    }
  } finally {
    delay.disable();
    disposeStateDict(bestInMemory);
  }
  const ms = (ns: number) => ns / 1e6;
  return {
    epochs: history.length,
    history,
    best,
    modelEpoch,
    nativeSteps,
    skippedSteps,
    stoppedEarly,
    interrupted,
    eventLoopDelay: { p50: ms(delay.percentile(50)), p99: ms(delay.percentile(99)), max: ms(delay.max) },
  };
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
 * One step in parts: forward and the loss in JavaScript (under the run's
 * autocast), backward, clipping, optimizer step, outside it. With a scaler
 * (fp16): backward from the scaled loss, unscale before clipping, the step
 * skipped on an inf/NaN gradient, the scale updated. Returns the loss (no
 * update when it is not finite) and whether the optimizer stepped.
 */
async function jsTrainStep(
  o: FitOptions,
  run: RunSettings,
  scaler: GradScaler | null,
  forward: ForwardFn,
  lossFn: LossFn,
  params: Tensor[],
  input: ModelInput,
  target: Tensor,
): Promise<{ value: number; stepped: boolean }> {
  o.optimizer.zeroGrad();
  const { logits, loss } = await run.autocast(async () => {
    const logits = await forward(o.model, input);
    return { logits, loss: lossFn(logits, target) };
  });
  try {
    const value = loss.item() as number;
    if (!Number.isFinite(value)) return { value, stepped: false };
    if (!scaler) {
      await loss.backwardAsync();
      if (o.clipGradNorm !== undefined) clipGradNorm(params, o.clipGradNorm);
      await o.optimizer.stepAsync();
      return { value, stepped: true };
    }
    const scaled = scaler.scale(loss);
    try {
      await scaled.backwardAsync();
    } finally {
      if (scaled !== loss) scaled.dispose();
    }
    if (o.clipGradNorm !== undefined) {
      scaler.unscale(o.optimizer);
      clipGradNorm(params, o.clipGradNorm);
    }
    const stepped = await scaler.step(o.optimizer);
    scaler.update();
    return { value, stepped };
  } finally {
    logits.dispose();
    loss.dispose();
  }
}

function copyStateDict(model: Module): StateDict {
  const sd = model.stateDict();
  const copy = Object.fromEntries(Object.entries(sd).map(([k, t]) => [k, t.clone()]));
  Object.values(sd).forEach((t) => t.dispose());
  return copy;
}

function disposeStateDict(sd: StateDict | null): void {
  if (sd) Object.values(sd).forEach((t) => t.dispose());
}
