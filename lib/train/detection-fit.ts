// fit for a detection model (FasterRCNN): no loss function, the model's own
// losses summed are the loss (torchvision's reference train loop), the step
// and epoch events carry each loss's mean, and validation is COCO mAP over a
// detection loader (evaluateDetections). A loop of its own, kept apart from
// fit's classification paths so they stay as they are; what it does not
// support yet is refused by name (see UNSUPPORTED).
//
// Checkpoints are fit's (checkpoint.ts): best/ and last/ under checkpointDir,
// model + optimizer + trainer.json (epoch, step, seed, scheduler step, best,
// history, the mid-epoch position), written atomically, marked task
// 'detection' so that neither loop resumes the other's. The random state is
// the seed: each step seeds torch with stepSeed(seed, epoch, batch) and the
// loader draws per (its seed, epoch), so a resumed run (mid-epoch too, after
// the signal or checkpointEvery) repeats the straight run's draws.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { StateDict } from '../nn/module.js';
import { FasterRCNN } from '../models/detection/faster-rcnn.js';
import type { DetectionBatch } from '../data/detection/dataset.js';
import { evaluateDetections, type DetectionScores } from '../metrics/detection.js';
import { clipGradNorm } from '../nn/utils.js';
import { torch } from '../tensor/index.js';
import type { Tensor } from '../tensor/tensor.js';
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
import {
  checkCallbacks,
  stepSeed,
  TrainingDivergedError,
  type Callback,
  type CallbackContext,
  type FitOptions,
  type FitResult,
  type TrainEvent,
} from './trainer.js';

/** Batches of images and their targets, as data.detection's DetectionLoader yields them. */
export interface DetectionSource {
  batches(epoch: number): AsyncIterable<DetectionBatch> | Iterable<DetectionBatch>;
  readonly length?: number;
}

/** What a detection fit can monitor: the train loss or a COCO score of the validation. */
export type DetectionMetricName = 'loss' | 'map' | 'map50' | 'map75';
const DETECTION_METRICS: readonly string[] = ['loss', 'map', 'map50', 'map75'];

/** fit's options for a detection model: train/val are detection loaders; the model gives the loss. */
export type DetectionFitOptions = Omit<FitOptions, 'model' | 'train' | 'val' | 'monitor' | 'earlyStopping'> & {
  model: FasterRCNN;
  train: DetectionSource;
  /** Scored with evaluateDetections after each epoch (map, map50, map75 in the epoch's record). */
  val?: DetectionSource;
  /** Default 'map' with val, else 'loss'. */
  monitor?: DetectionMetricName;
  earlyStopping?: { metric: DetectionMetricName; patience: number; mode?: 'max' | 'min' };
};

// fit's options this loop does not handle yet: refused rather than ignored
const UNSUPPORTED = ['loss', 'forward', 'metrics', 'tagging', 'ema', 'gradScaler', 'precision', 'memoryFormat', 'distributed'] as const;

export const isDetectionFit = (o: { model: unknown }): o is DetectionFitOptions => o.model instanceof FasterRCNN;

/** The losses of one batch (train mode, seeded), their sum and each one's value. */
function batchLosses(model: FasterRCNN, batch: DetectionBatch, seed: number): { total: Tensor; values: Record<string, number> } {
  torch.manualSeed(seed); // the samplers' draws: reproducible and the same as a hand-written loop seeded alike
  const losses = model.forward(batch.images, batch.targets) as Record<string, Tensor>;
  const names = Object.keys(losses);
  const total = names.slice(1).reduce((sum, k) => {
    const next = sum.add(losses[k]);
    if (sum !== losses[names[0]]) sum.dispose();
    return next;
  }, losses[names[0]]);
  const values = Object.fromEntries(names.map((k) => [k, losses[k].item() as number]));
  for (const k of names) if (losses[k] !== total) losses[k].dispose();
  return { total, values };
}

function copyStateDict(model: FasterRCNN): StateDict {
  const sd = model.stateDict();
  const copy = torch.noGrad(() => Object.fromEntries(Object.entries(sd).map(([k, t]) => [k, t.clone()])));
  Object.values(sd).forEach((t) => t.dispose());
  return copy;
}

function disposeBatch(batch: DetectionBatch): void {
  for (const t of batch.images) t.dispose();
  for (const t of batch.targets) {
    t.boxes.dispose();
    t.labels.dispose();
  }
}

/** COCO scores of the model's detections on every batch of `data` (eval mode). */
export async function evaluateDetector(model: FasterRCNN, data: DetectionSource): Promise<DetectionScores> {
  const wasTraining = model.training;
  model.eval();
  const predictions: { boxes: number[]; scores: number[]; labels: number[] }[] = [];
  const truths: { boxes: number[]; labels: number[] }[] = [];
  const plain = (t: Tensor) => Array.from(t.to('cpu', 'float64').dataSync() as Float64Array);
  try {
    for await (const batch of data.batches(0)) {
      try {
        for (const d of model.detect(batch.images)) {
          predictions.push({ boxes: plain(d.boxes), scores: plain(d.scores), labels: plain(d.labels) });
          d.boxes.dispose();
          d.scores.dispose();
          d.labels.dispose();
        }
        for (const t of batch.targets) truths.push({ boxes: plain(t.boxes), labels: plain(t.labels) });
      } finally {
        disposeBatch(batch);
      }
    }
  } finally {
    if (wasTraining) model.train();
  }
  if (!truths.length) throw new Error('fit: the detection validation data yielded no images');
  return evaluateDetections(predictions, truths);
}

export async function fitDetection(o: DetectionFitOptions): Promise<FitResult> {
  const given = UNSUPPORTED.filter((k) => (o as Record<string, unknown>)[k] !== undefined);
  if (given.length) throw new TypeError(`fit: a detection model (FasterRCNN) does not take ${given.join(', ')} yet (the model's own losses are the loss)`);
  // this loop does not move the model's batches to another device yet: the CPU only, said rather than ignored
  if (o.device !== undefined && o.device !== 'cpu')
    throw new TypeError(
      `fit: a detection model (FasterRCNN) trains on the CPU only yet: device ${JSON.stringify(o.device)} is not supported (give 'cpu' or leave device out)`,
    );
  if (!Number.isInteger(o.epochs) || o.epochs < 1) throw new TypeError(`fit: epochs must be a positive integer, got ${o.epochs}`);
  if (o.checkpointEvery !== undefined && !(Number.isInteger(o.checkpointEvery) && o.checkpointEvery >= 1))
    throw new TypeError(`fit: checkpointEvery must be a positive integer (steps), got ${o.checkpointEvery}`);
  const accumulation = o.gradientAccumulationSteps ?? 1;
  if (!Number.isInteger(accumulation) || accumulation < 1)
    throw new TypeError(`fit: gradientAccumulationSteps must be a positive integer (batches per optimizer step), got ${o.gradientAccumulationSteps}`);
  const monitor = o.monitor ?? o.earlyStopping?.metric ?? (o.val ? 'map' : 'loss');
  if (!DETECTION_METRICS.includes(monitor))
    throw new TypeError(`fit: a detection model monitors one of ${DETECTION_METRICS.join(', ')}, got ${JSON.stringify(monitor)}`);
  if (monitor !== 'loss' && !o.val) throw new TypeError(`fit: monitoring ${monitor} needs validation data (val, a detection loader)`);
  const mode = o.earlyStopping?.mode ?? o.monitorMode ?? (monitor === 'loss' ? 'min' : 'max');
  const better = (a: number, b: number) => (mode === 'max' ? a > b : a < b);
  const restoreBest = o.restoreBest ?? o.checkpointDir !== undefined;
  const emit = (e: TrainEvent) => o.onEvent?.(e);
  let seed = o.seed ?? 0;
  const params = o.model.parameters();
  const total = typeof o.train.length === 'number' ? o.train.length : null;
  const history: FitResult['history'] = [];
  let best: FitResult['best'] = null;
  let sinceBest = 0;
  let startEpoch = 0;
  let step = 0;
  let position: Position | null = null;
  let modelEpoch: number | null = null; // the completed epoch whose weights the model holds
  // a killed run's checkpoints: when resuming, put best/ and last/ back if a rename was cut short; remove dead runs' leftovers
  if (o.checkpointDir) recoverCheckpoints(o.checkpointDir, { restore: o.resumeFrom !== undefined });
  if (o.resumeFrom) {
    const from = findCheckpoint(o.resumeFrom);
    const state = loadCheckpoint(from, o.model, o.optimizer, 'detection');
    position = state.position ?? null;
    startEpoch = position ? position.epoch : state.epoch + 1;
    // best/ is the authority on the best epoch: its own record names the weights it holds
    best = (o.checkpointDir && readBestRecord(o.checkpointDir)) || state.best;
    sinceBest = state.sinceBest;
    history.push(...state.history);
    if (o.scheduler && state.schedulerStep !== null) o.scheduler.setStep(state.schedulerStep);
    seed = o.seed ?? state.seed; // the run's seed, unless another is asked for
    step = state.step;
    modelEpoch = !position && state.epoch >= 0 ? state.epoch : null;
    emit({ type: 'resumed', epoch: startEpoch, batch: position?.batch ?? 0, step, path: from });
  }
  let stoppedEarly = false;
  let interrupted = false;
  let stopped: FitResult['stopped'] = null;
  let epochNow = startEpoch;
  let batchNow = 0;
  let lastLoss: number | null = null;
  let bestInMemory: StateDict | null = null; // restoreBest without checkpointDir
  const save = (name: CheckpointName, epoch: number, at?: Position) => {
    const dir = join(o.checkpointDir!, name);
    saveCheckpoint(
      dir,
      o.model,
      o.optimizer,
      {
        task: 'detection',
        epoch,
        step,
        seed,
        best,
        sinceBest,
        history,
        schedulerStep: o.scheduler?.lastStep ?? null,
        ...(at ? { position: at } : {}),
      },
      // last/ always keeps the optimizer state: resuming needs it
      { optimizerState: name === 'last' || o.saveOptimizerState !== false },
    );
    return dir;
  };
  const callbacks = checkCallbacks(o.callbacks);
  const context = (): CallbackContext => ({
    model: o.model,
    optimizer: o.optimizer,
    scheduler: o.scheduler,
    epoch: epochNow,
    step,
    batch: batchNow,
    history,
    loss: lastLoss,
    val: null, // a detection model's validation is in history's detection
    stop: (reason: string) => {
      stopped ??= { epoch: epochNow, step, reason: String(reason) };
    },
  });
  const hook = async (name: keyof Callback) => {
    for (const cb of callbacks) {
      const fn = cb[name];
      if (fn) await fn.call(cb, context());
    }
  };
  try {
    await hook('onTrainBegin');
    for (let epoch = startEpoch; epoch < o.epochs && !stopped; epoch++) {
      epochNow = epoch;
      batchNow = 0;
      if (o.signal?.aborted) {
        // between epochs: last/ already holds the previous epoch
        interrupted = true;
        const last = o.checkpointDir ? join(o.checkpointDir, 'last') : null;
        emit({ type: 'interrupted', epoch, batch: 0, step, path: last && existsSync(last) ? last : null });
        break;
      }
      await hook('onEpochBegin');
      if (stopped) break;
      o.model.train();
      const started = Date.now();
      // a mid-epoch resume: the batches done before the interruption count in the epoch's means
      const skip = position && position.epoch === epoch ? position.batch : 0;
      const sums: Record<string, number> = skip ? { ...(position!.losses ?? {}) } : {};
      let lossSum = skip ? position!.lossSum : 0;
      let seen = skip ? position!.seen : 0;
      position = null;
      let batch = 0; // batches consumed in this epoch (skipped ones included)
      const positionNow = (): Position => ({ epoch, batch, lossSum, seen, losses: { ...sums } });
      // one optimizer step over a group of batches: each one's loss divided by the group's size, so the gradients sum to its mean
      const runGroup = async (group: DetectionBatch[]) => {
        const t0 = Date.now();
        const first = batch - group.length;
        const lrs = o.optimizer.paramGroups.map((g) => g.lr);
        o.optimizer.zeroGrad();
        const stepLosses: Record<string, number> = {};
        let stepLoss = 0;
        let images = 0;
        for (let i = 0; i < group.length; i++) {
          const { total: loss, values } = batchLosses(o.model, group[i], stepSeed(seed, epoch, first + i));
          try {
            const value = loss.item() as number;
            if (!Number.isFinite(value)) throw new TrainingDivergedError(epoch, step, value);
            const n = group[i].images.length;
            for (const [k, v] of Object.entries(values)) {
              stepLosses[k] = (stepLosses[k] ?? 0) + v / group.length;
              sums[k] = (sums[k] ?? 0) + v * n;
            }
            stepLoss += value / group.length;
            lossSum += value * n;
            seen += n;
            images += n;
            const divided = group.length > 1 ? loss.div(group.length) : loss;
            try {
              await divided.backwardAsync();
            } finally {
              if (divided !== loss) divided.dispose();
            }
          } finally {
            loss.dispose();
          }
        }
        if (o.clipGradNorm !== undefined) clipGradNorm(params, o.clipGradNorm);
        await o.optimizer.stepAsync();
        modelEpoch = null;
        o.scheduler?.step();
        emit({
          type: 'step',
          epoch,
          step: step++,
          batch: batch - 1,
          batches: total,
          loss: stepLoss,
          losses: stepLosses,
          lrs,
          samplesPerSecond: images / Math.max(1e-3, (Date.now() - t0) / 1000),
          ...(accumulation > 1 ? { microBatches: group.length } : {}),
        });
        lastLoss = stepLoss;
        batchNow = batch;
        await hook('onStepEnd');
      };
      let group: DetectionBatch[] = [];
      try {
        for await (const b of o.train.batches(epoch)) {
          if (batch < skip) {
            // done before the interruption: the loader is deterministic per (seed, epoch), so skip to where it stopped
            disposeBatch(b);
            batch++;
            continue;
          }
          group.push(b);
          batch++;
          if (group.length < accumulation) continue;
          const full = group;
          group = [];
          try {
            await runGroup(full);
          } finally {
            full.forEach(disposeBatch);
          }
          if (stopped) break;
          if (o.signal?.aborted) {
            interrupted = true;
            break;
          }
          if (o.checkpointDir && o.checkpointEvery && step % o.checkpointEvery === 0 && batch !== total)
            emit({ type: 'checkpoint', epoch, path: save('last', epoch - 1, positionNow()) });
        }
        // the epoch's last, smaller group still steps
        if (group.length && !interrupted && !stopped) {
          const last = group;
          group = [];
          try {
            await runGroup(last);
          } finally {
            last.forEach(disposeBatch);
          }
          if (o.signal?.aborted && !stopped) interrupted = true;
        }
      } finally {
        group.forEach(disposeBatch);
      }
      if (interrupted) {
        const path = o.checkpointDir ? save('last', epoch - 1, positionNow()) : null;
        emit({ type: 'interrupted', epoch, batch, step, path });
        break;
      }
      const detection = o.val ? await evaluateDetector(o.model, o.val) : null;
      const losses = Object.fromEntries(Object.entries(sums).map(([k, v]) => [k, v / Math.max(1, seen)]));
      const record = { epoch, trainLoss: lossSum / Math.max(1, seen), val: null, losses, detection };
      history.push(record);
      modelEpoch = epoch;
      const value = monitor === 'loss' ? record.trainLoss : detection![monitor as 'map' | 'map50' | 'map75'];
      // (best.epoch === epoch: a resumed run replays the epoch that best/ already holds; best/ then takes the replay)
      const isBest = best === null || better(value, best.value) || best.epoch === epoch;
      if (isBest) best = { epoch, metric: monitor, value };
      sinceBest = epoch - best!.epoch;
      emit({ type: 'epoch', epoch, trainLoss: record.trainLoss, val: null, losses, detection, seconds: (Date.now() - started) / 1000, best: isBest });
      if (o.checkpointDir) {
        // best/ before last/: last/trainer.json names the best epoch, so it must never get ahead of best/
        if (isBest) emit({ type: 'checkpoint', epoch, path: save('best', epoch) });
        emit({ type: 'checkpoint', epoch, path: save('last', epoch) });
      } else if (isBest && restoreBest) {
        if (bestInMemory) Object.values(bestInMemory).forEach((t) => t.dispose());
        bestInMemory = copyStateDict(o.model);
      }
      batchNow = batch;
      await hook('onEpochEnd');
      if (stopped) break;
      if (o.earlyStopping && sinceBest >= o.earlyStopping.patience) {
        stoppedEarly = true;
        emit({ type: 'early-stop', epoch, metric: monitor, best: best!.value });
        break;
      }
    }
    if (stopped) emit({ type: 'stopped', ...(stopped as NonNullable<FitResult['stopped']>) });
    // the model ends holding the best epoch's weights (restoreBest), unless the signal stopped training
    if (!interrupted && restoreBest && best && best.epoch !== modelEpoch) {
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
    await hook('onTrainEnd');
  } finally {
    if (bestInMemory) Object.values(bestInMemory).forEach((t) => t.dispose());
  }
  return {
    epochs: history.length,
    history,
    best,
    modelEpoch: interrupted ? null : modelEpoch,
    modelWeights: 'trained',
    ema: null,
    nativeSteps: 0,
    skippedSteps: 0,
    stoppedEarly,
    stopped,
    interrupted,
    eventLoopDelay: { p50: 0, p99: 0, max: 0 },
  };
}
