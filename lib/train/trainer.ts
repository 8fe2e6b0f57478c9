// The trainer: fit() runs epochs of forward / loss / backward / step with the
// heavy parts on worker threads, evaluates, schedules, clips gradients, stops
// early, keeps the best checkpoint and resumes from one; evaluate() and
// predict() for the rest. Progress goes out as events.
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { io } from '../io/index.js';
import { MetricAccumulator } from '../metrics/index.js';
import type { Module } from '../nn/module.js';
import { crossEntropy } from '../nn/functional.js';
import type { Optimizer, OptimizerStateDict } from '../optim/optimizer.js';
import type { LRScheduler } from '../optim/lr-scheduler.js';
import { Tensor } from '../tensor/tensor.js';
import { torch } from '../tensor/index.js';
import type { Batch } from '../data/tensor-loader.js';
import { FinetorchError } from '../errors.js';

export type LossFn = (logits: Tensor, target: Tensor) => Tensor;
export interface BatchSource { batches(epoch: number): Iterable<Batch> | AsyncIterable<Batch>; readonly length?: number }
export type MetricName = 'loss' | 'accuracy' | 'f1Macro' | 'rocAuc';

export interface EvalResult { loss: number; accuracy: number; f1Macro: number; rocAuc: number | null; confusionMatrix: number[][]; samples: number }

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
  constructor(readonly epoch: number, readonly step: number, readonly loss: number) {
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
  /** Default: cross-entropy. */
  loss?: LossFn;
  scheduler?: LRScheduler;
  /** Clip the global gradient norm to this value (clip_grad_norm_). */
  clipGradNorm?: number;
  earlyStopping?: { metric: MetricName; patience: number; mode?: 'max' | 'min' };
  /** The metric that picks the best epoch (default val accuracy, or train loss without val). */
  monitor?: MetricName;
  /** Folder for the checkpoints: best/ and last/, each resumable. */
  checkpointDir?: string;
  /** A checkpoint folder (best/ or last/) to resume from. */
  resumeFrom?: string;
  seed?: number;
  onEvent?: (e: TrainEvent) => void;
  /**
   * Stops training when aborted: the step in progress finishes, last/ is
   * written with the position inside the epoch, and fit resolves with
   * `interrupted: true`. Resuming from that last/ skips the batches already
   * done, so (with a deterministic batch source) it continues exactly.
   */
  signal?: AbortSignal;
  /** How to run the model on a batch's input (default model.forwardAsync(input)); e.g. to split packed text inputs. */
  forward?: ForwardFn;
}

export type ForwardFn = (model: Module, input: Tensor) => Promise<Tensor>;

export interface FitResult {
  epochs: number;
  history: Array<{ epoch: number; trainLoss: number; val: EvalResult | null }>;
  best: { epoch: number; metric: MetricName; value: number } | null;
  stoppedEarly: boolean;
  /** True when the signal stopped training before the last epoch. */
  interrupted: boolean;
  /** Event-loop delay while fitting, milliseconds. */
  eventLoopDelay: { p50: number; p99: number; max: number };
}

/** clip_grad_norm_: scales all gradients so their global L2 norm is at most maxNorm; returns the norm before. */
export function clipGradNorm(params: Tensor[], maxNorm: number): number {
  return torch.tidy(() => {
    const grads = params.map((p) => p.grad).filter((g): g is Tensor => g !== null);
    if (!grads.length) return 0;
    const total = Math.sqrt(grads.reduce((s, g) => s + (g.pow(2).sum().item() as number), 0));
    const coef = maxNorm / (total + 1e-6);
    if (coef < 1) for (const g of grads) g.mul_(coef);
    return total;
  });
}

/** Loss, accuracy, macro-F1, ROC AUC and the confusion matrix over a data source. */
export async function evaluate(model: Module, data: BatchSource, options: { loss?: LossFn; forward?: ForwardFn } = {}): Promise<EvalResult> {
  const lossFn = options.loss ?? ((l: Tensor, t: Tensor) => crossEntropy(l, t));
  const forward = options.forward ?? ((m: Module, x: Tensor) => m.forwardAsync(x));
  const wasTraining = model.training;
  model.eval();
  const acc = new MetricAccumulator();
  let lossSum = 0;
  let n = 0;
  try {
    for await (const { input, target } of data.batches(0)) {
      const logits = await torch.noGrad(() => forward(model, input));
      const l = torch.noGrad(() => lossFn(logits, target));
      const size = target.shape[0];
      lossSum += (l.item() as number) * size;
      n += size;
      acc.update(logits, target);
      for (const t of [logits, l, input, target]) t.dispose();
    }
  } finally {
    if (wasTraining) model.train();
  }
  if (!n) throw new Error('evaluate: the data source yielded no samples');
  return { loss: lossSum / n, ...acc.compute(), samples: n };
}

/** Class probabilities and predicted classes for every sample. */
export async function predict(model: Module, data: BatchSource, options: { forward?: ForwardFn } = {}): Promise<{ probabilities: number[][]; predictions: number[] }> {
  const forward = options.forward ?? ((m: Module, x: Tensor) => m.forwardAsync(x));
  const wasTraining = model.training;
  model.eval();
  const probabilities: number[][] = [];
  try {
    for await (const { input, target } of data.batches(0)) {
      const logits = await torch.noGrad(() => forward(model, input));
      const p = logits.softmax(1);
      probabilities.push(...(p.to('cpu', 'float64').toArray() as number[][]));
      for (const t of [logits, p, input, target]) t.dispose();
    }
  } finally {
    if (wasTraining) model.train();
  }
  return { probabilities, predictions: probabilities.map((r) => r.indexOf(Math.max(...r))) };
}

// ---- checkpoints: model.safetensors, optimizer.safetensors, trainer.json ----

function saveCheckpoint(dir: string, model: Module, optimizer: Optimizer, state: Record<string, unknown>): void {
  const tmp = `${dir}.tmp-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true });
  io.save(model.stateDict(), join(tmp, 'model.safetensors'));
  const sd = optimizer.stateDict();
  const tensors: Record<string, Tensor> = {};
  const scalars: Record<string, Record<string, number>> = {};
  for (const [i, s] of Object.entries(sd.state)) {
    for (const [k, v] of Object.entries(s)) {
      if (v instanceof Tensor) tensors[`state.${i}.${k}`] = v;
      else (scalars[i] ??= {})[k] = v;
    }
  }
  io.save(tensors, join(tmp, 'optimizer.safetensors'));
  writeFileSync(join(tmp, 'trainer.json'), JSON.stringify({ ...state, optimizer: { scalars, paramGroups: sd.paramGroups } }, null, 2));
  // replace the previous checkpoint only once the new one is complete
  const old = `${dir}.old-${process.pid}`;
  if (existsSync(dir)) renameSync(dir, old);
  renameSync(tmp, dir);
  rmSync(old, { recursive: true, force: true });
}

function loadCheckpoint(dir: string, model: Module, optimizer: Optimizer): Record<string, unknown> {
  if (!existsSync(join(dir, 'trainer.json'))) throw new Error(`resume: ${dir} is not a finetorch checkpoint (no trainer.json)`);
  const state = JSON.parse(readFileSync(join(dir, 'trainer.json'), 'utf8'));
  model.loadStateDict(io.load(join(dir, 'model.safetensors')));
  const tensors = io.load(join(dir, 'optimizer.safetensors'));
  const opt: OptimizerStateDict = { state: {}, paramGroups: state.optimizer.paramGroups };
  for (const [key, t] of Object.entries(tensors)) {
    const [, i, name] = key.split('.');
    (opt.state[Number(i)] ??= {})[name] = t;
  }
  for (const [i, s] of Object.entries(state.optimizer.scalars as Record<string, Record<string, number>>)) Object.assign((opt.state[Number(i)] ??= {}), s);
  optimizer.loadStateDict(opt);
  return state;
}

function metricOf(r: { trainLoss: number; val: EvalResult | null }, m: MetricName): number | null {
  if (m === 'loss') return r.val ? r.val.loss : r.trainLoss;
  return r.val ? r.val[m] : null;
}

/** The torch seed of one training step: dropout masks depend on (seed, epoch, batch) only, so a resumed run draws the same ones. */
export function stepSeed(seed: number, epoch: number, batch: number): number {
  return ((seed * 1000 + epoch) * 100_003 + batch) % 2 ** 52;
}

interface Position { epoch: number; batch: number; lossSum: number; seen: number }

/** Trains `model`; see FitOptions. Resolves when done, stopped early or interrupted by the signal. */
export async function fit(o: FitOptions): Promise<FitResult> {
  if (!Number.isInteger(o.epochs) || o.epochs < 1) throw new TypeError(`fit: epochs must be a positive integer, got ${o.epochs}`);
  const lossFn = o.loss ?? ((l: Tensor, t: Tensor) => crossEntropy(l, t));
  const forward = o.forward ?? ((m: Module, x: Tensor) => m.forwardAsync(x));
  const seed = o.seed ?? 0;
  const monitor: MetricName = o.monitor ?? o.earlyStopping?.metric ?? (o.val ? 'accuracy' : 'loss');
  const mode = o.earlyStopping?.mode ?? (monitor === 'loss' ? 'min' : 'max');
  const better = (a: number, b: number) => (mode === 'max' ? a > b : a < b);
  const emit = (e: TrainEvent) => o.onEvent?.(e);
  const history: FitResult['history'] = [];
  let best: FitResult['best'] = null;
  let sinceBest = 0;
  let startEpoch = 0;
  let step = 0;
  let position: Position | null = null;
  if (o.resumeFrom) {
    const state = loadCheckpoint(o.resumeFrom, o.model, o.optimizer);
    position = (state.position as Position | undefined) ?? null;
    startEpoch = position ? position.epoch : (state.epoch as number) + 1;
    best = (state.best as FitResult['best']) ?? null;
    sinceBest = typeof state.sinceBest === 'number' ? state.sinceBest : 0;
    history.push(...((state.history as FitResult['history']) ?? []));
    if (o.scheduler && typeof state.schedulerStep === 'number') o.scheduler.setStep(state.schedulerStep);
    step = typeof state.step === 'number' ? state.step : typeof state.schedulerStep === 'number' ? state.schedulerStep : 0;
    emit({ type: 'resumed', epoch: startEpoch, batch: position?.batch ?? 0, step, path: o.resumeFrom });
  }
  const params = o.model.parameters();
  const delay = monitorEventLoopDelay({ resolution: 10 });
  delay.enable();
  let stoppedEarly = false;
  let interrupted = false;
  const save = (name: 'last' | 'best', epoch: number, extra: Record<string, unknown> = {}) => {
    const dir = join(o.checkpointDir!, name);
    saveCheckpoint(dir, o.model, o.optimizer, { epoch, seed, best, sinceBest, history, step, schedulerStep: o.scheduler?.lastStep ?? null, ...extra });
    return dir;
  };
  const total = typeof o.train.length === 'number' ? o.train.length : null;
  try {
    for (let epoch = startEpoch; epoch < o.epochs; epoch++) {
      if (o.signal?.aborted) {
        // between epochs: last/ already holds the previous epoch
        interrupted = true;
        emit({ type: 'interrupted', epoch, batch: 0, step, path: o.checkpointDir && existsSync(join(o.checkpointDir, 'last')) ? join(o.checkpointDir, 'last') : null });
        break;
      }
      o.model.train();
      const started = Date.now();
      const skip = position && position.epoch === epoch ? position.batch : 0;
      let lossSum = skip ? position!.lossSum : 0;
      let seen = skip ? position!.seen : 0;
      position = null;
      let batch = 0;
      for await (const { input, target } of o.train.batches(epoch)) {
        if (batch < skip) {
          // done before the interruption: the source is deterministic per (seed, epoch), so skip to where it stopped
          input.dispose();
          target.dispose();
          batch++;
          continue;
        }
        const t0 = Date.now();
        torch.manualSeed(stepSeed(seed, epoch, batch)); // dropout and friends: reproducible and resumable mid-epoch
        o.optimizer.zeroGrad();
        const logits = await forward(o.model, input);
        const loss = lossFn(logits, target);
        const value = loss.item() as number;
        if (!Number.isFinite(value)) {
          for (const t of [logits, loss, input, target]) t.dispose();
          throw new TrainingDivergedError(epoch, step, value);
        }
        await loss.backwardAsync();
        if (o.clipGradNorm !== undefined) clipGradNorm(params, o.clipGradNorm);
        const lrs = o.optimizer.paramGroups.map((g) => g.lr); // the LRs this step uses
        await o.optimizer.stepAsync();
        o.scheduler?.step();
        const size = target.shape[0];
        lossSum += value * size;
        seen += size;
        for (const t of [logits, loss, input, target]) t.dispose();
        emit({ type: 'step', epoch, step: step++, batch, batches: total, loss: value, lrs, samplesPerSecond: size / Math.max(1e-3, (Date.now() - t0) / 1000) });
        batch++;
        if (o.signal?.aborted) {
          interrupted = true;
          break;
        }
      }
      if (interrupted) {
        const path = o.checkpointDir ? save('last', epoch - 1, { position: { epoch, batch, lossSum, seen } satisfies Position }) : null;
        emit({ type: 'interrupted', epoch, batch, step, path });
        break;
      }
      const val = o.val ? await evaluate(o.model, o.val, { loss: lossFn, forward }) : null;
      const record = { epoch, trainLoss: lossSum / Math.max(1, seen), val };
      history.push(record);
      const value = metricOf(record, monitor);
      const isBest = value !== null && (best === null || better(value, best.value));
      if (isBest) {
        best = { epoch, metric: monitor, value: value! };
        sinceBest = 0;
      } else sinceBest++;
      emit({ type: 'epoch', epoch, trainLoss: record.trainLoss, val, seconds: (Date.now() - started) / 1000, best: isBest });
      if (o.checkpointDir) {
        emit({ type: 'checkpoint', epoch, path: save('last', epoch) });
        if (isBest) emit({ type: 'checkpoint', epoch, path: save('best', epoch) });
      }
      if (o.earlyStopping && sinceBest >= o.earlyStopping.patience) {
        stoppedEarly = true;
        emit({ type: 'early-stop', epoch, metric: monitor, best: best!.value });
        break;
      }
    }
  } finally {
    delay.disable();
  }
  const ms = (ns: number) => ns / 1e6;
  return {
    epochs: history.length, history, best, stoppedEarly, interrupted,
    eventLoopDelay: { p50: ms(delay.percentile(50)), p99: ms(delay.percentile(99)), max: ms(delay.max) },
  };
}
