// Pieces both pretraining kinds share: per-batch seeds (so masking and
// corruption depend on (seed, epoch, batch) only, and a resumed run draws
// what an uninterrupted one would), the held-out split, a steps limit over
// epochs, and the AdamW optimizer with its schedule.
import { DataError } from '../errors.js';
import { disposeInput, type Batch } from '../data/batch.js';
import { permutation } from '../data/tensor-loader.js';
import type { Module } from '../nn/module.js';
import { optim, type Optimizer } from '../optim/index.js';
import { LRScheduler } from '../optim/lr-scheduler.js';
import type { BatchSource, LossFn } from '../train/trainer.js';
import type { PretrainConfig } from './schema.js';

export interface Sized extends BatchSource {
  readonly length: number;
}

/** A 32-bit seed from the run's seed and the position of a batch (salt tells the training batches from the held-out ones). */
export function batchSeed(seed: number, salt: number, epoch: number, batch: number): number {
  let h = (seed ^ 0x9e3779b9) >>> 0;
  for (const v of [salt, epoch, batch]) {
    h = Math.imul(h ^ (v >>> 0), 0x85ebca6b) >>> 0;
    h ^= h >>> 13;
    h = Math.imul(h, 0xc2b2ae35) >>> 0;
    h ^= h >>> 16;
  }
  return h >>> 0;
}

/** Salts of batchSeed. */
export const TRAIN_SALT = 1;
export const VAL_SALT = 2;

/** Indices 0..n-1 split into train and held-out parts at random (seeded); the held-out part has round(val * n) items, at least 1 when val > 0 and n > 1. */
export function splitHeldOut(n: number, val: number, seed: number): { train: number[]; val: number[] } {
  const order = permutation(n, seed * 7_919 + 17);
  let k = Math.round(val * n);
  if (val > 0 && n > 1) k = Math.max(1, Math.min(n - 1, k));
  return { val: order.slice(0, k).sort((a, b) => a - b), train: order.slice(k).sort((a, b) => a - b) };
}

/** Turns a failure while producing a batch (reading, decoding, tokenizing) into a DataError. */
export async function* guardedBatches(source: BatchSource, epoch: number): AsyncGenerator<Batch> {
  const b = source.batches(epoch);
  const it = (b as AsyncIterable<Batch>)[Symbol.asyncIterator]?.() ?? (b as Iterable<Batch>)[Symbol.iterator]();
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
}

/**
 * The training length: epochs as given, or from steps (the last epoch cut
 * short, so fit ends after exactly `steps` optimizer steps).
 */
export function trainingLength(c: PretrainConfig, batchesPerEpoch: number): { epochs: number; totalSteps: number } {
  if (c.steps !== undefined) return { epochs: Math.ceil(c.steps / batchesPerEpoch), totalSteps: c.steps };
  return { epochs: c.epochs!, totalSteps: c.epochs! * batchesPerEpoch };
}

/** A source whose epochs together yield at most `steps` batches (the last epoch stops early). */
export function limitSteps(source: Sized, steps: number | undefined): Sized {
  if (steps === undefined) return source;
  return {
    get length() {
      return source.length;
    },
    async *batches(epoch: number) {
      const room = steps - epoch * source.length;
      let i = 0;
      for await (const batch of guardedBatches(source, epoch)) {
        if (i++ >= room) {
          disposeInput(batch.input);
          batch.target.dispose();
          return;
        }
        yield batch;
      }
    },
  };
}

/**
 * AdamW over the trainable parameters: weight decay on weights with two or
 * more dimensions, none on biases and normalisation weights (Hugging Face's
 * Trainer); the schedule over all steps with linear warmup.
 */
export function buildPretrainOptimizer(c: PretrainConfig, model: Module, totalSteps: number): { optimizer: Optimizer; scheduler: LRScheduler } {
  const params = model.parameters().filter((p) => p.requiresGrad);
  const decay = params.filter((p) => p.ndim >= 2);
  const noDecay = params.filter((p) => p.ndim < 2);
  const groups = [
    { params: decay, lr: c.lr, weightDecay: c.weightDecay },
    { params: noDecay, lr: c.lr, weightDecay: 0 },
  ].filter((g) => g.params.length);
  const optimizer = new optim.AdamW(groups, { lr: c.lr, weightDecay: c.weightDecay });
  const warmupSteps = c.warmup >= 1 ? Math.round(c.warmup) : Math.round(c.warmup * totalSteps);
  const scheduler = new LRScheduler(optimizer, { kind: c.schedule, totalSteps, warmupSteps: Math.min(warmupSteps, totalSteps) });
  return { optimizer, scheduler };
}

/** What a kind gives the runner. */
export interface KindSetup<M> {
  /** The module fit trains (for reconstruction: the backbone with the decoder as its head). */
  model: Module;
  train: Sized;
  loss: LossFn;
  samples: { train: number; val: number };
  /** What rebuilds the model for a resumed run (saved in pretrain.json). */
  spec: Record<string, unknown>;
  /** Shown in the start event. */
  describe: { arch: string; from: string | null };
  /** The held-out metrics of the current weights (null without held-out data). */
  evaluate(): Promise<M | null>;
  /** Writes the pretrained model in its final form under `out`; returns its path. */
  save(out: string): string;
  dispose(): void;
}
