// The checkpoint format of fit(): a folder (best/ or last/ under the
// checkpoint folder) holding model.safetensors, optimizer.safetensors and
// trainer.json; with fit's `ema` option also ema.safetensors (the EMA
// weights, timm's state_dict_ema); written with saveOptimizerState: false, a
// best/ has no optimizer.safetensors (trainer.json says so). trainer.json is
// written last, so a folder whose trainer.json is valid is complete.
//
// Surviving kill -9 and power cuts: a checkpoint is written to
// <name>.tmp-PID/ (files fsynced, then the folder), then swapped in with
// rename(<name>, <name>.old-PID) and rename(<name>.tmp-PID, <name>). A kill
// between the two renames leaves no <name>/ but complete copies beside it:
// findCheckpoint and recoverCheckpoints rename the newest complete one back,
// and remove the leftovers of processes that are no longer alive.
//
// Test hook: FINETORCH_TEST_CHECKPOINT_PAUSE=<name>:<phase>[#n] makes the
// writer print "finetorch-test-pause <name>:<phase>#n" on stderr and block
// for 60 s the n-th time (default 1st) it reaches that phase, so a test can
// kill it exactly there. Phases: files-written (tmp has the tensors, no
// trainer.json), tmp-complete, old-moved (between the two renames),
// installed (before the old copy is removed), done; and for files written by
// writeFileAtomic, <file name>:tmp-written (e.g. run.json:tmp-written).
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { z } from 'zod';
import { io } from '../io/index.js';
import type { Module } from '../nn/module.js';
import type { Optimizer, OptimizerStateDict } from '../optim/optimizer.js';
import { Tensor } from '../tensor/tensor.js';
import type { EvalResult, MetricName } from './trainer.js';
import type { GradScalerState } from '../amp/grad-scaler.js';
import { CheckpointError } from '../errors.js';
import { fsyncDir, writeAll, writeAtomic } from '../io/atomic.js';

export { fsyncDir } from '../io/atomic.js';

export { CheckpointError } from '../errors.js';

export const MODEL_FILE = 'model.safetensors';
export const OPTIMIZER_FILE = 'optimizer.safetensors';
export const STATE_FILE = 'trainer.json';
export const EMA_FILE = 'ema.safetensors';

/** The checkpoint folders fit() keeps under its checkpointDir. */
export type CheckpointName = 'best' | 'last';

const evalResult = z
  .object({
    loss: z.number().nullable(), // JSON writes NaN as null
    accuracy: z.number(),
    f1Macro: z.number(),
    rocAuc: z.number().nullable(),
    confusionMatrix: z.array(z.array(z.number())),
    samples: z.number(),
  })
  .passthrough();

// a built-in metric name, or the name of one of fit's custom metrics
const metricName = z.string().min(1);

const TrainerStateSchema = z
  .object({
    format: z.literal(1).optional(),
    task: z.literal('detection').optional(),
    epoch: z.number().int().min(-1),
    step: z.number().int().min(0).optional(),
    seed: z.number(),
    best: z.object({ epoch: z.number().int().min(0), metric: metricName, value: z.number().nullable() }).nullable(),
    sinceBest: z.number().int().min(0).default(0),
    // passthrough: a detection fit's records also hold its losses and COCO scores
    history: z.array(z.object({ epoch: z.number().int().min(0), trainLoss: z.number().nullable(), val: evalResult.nullable() }).passthrough()),
    schedulerStep: z.number().int().nullable().default(null),
    position: z
      .object({
        epoch: z.number().int().min(0),
        batch: z.number().int().min(0),
        lossSum: z.number(),
        seen: z.number().int().min(0),
        losses: z.record(z.string(), z.number()).optional(),
      })
      .optional(),
    scaler: z
      .object({
        scale: z.number().positive(),
        growthFactor: z.number().gt(1),
        backoffFactor: z.number().gt(0).lt(1),
        growthInterval: z.number().int().min(1),
        growthTracker: z.number().int().min(0),
      })
      .optional(),
    /** false: written without the optimizer state (saveOptimizerState: false); the folder cannot be resumed from. */
    optimizerState: z.literal(false).optional(),
    optimizer: z
      .object({
        scalars: z.record(z.string(), z.record(z.string(), z.number())),
        paramGroups: z.array(z.object({ params: z.array(z.number().int()) }).passthrough()),
      })
      .optional(),
    ema: z.object({ decay: z.number().min(0).max(1), warmup: z.boolean(), evaluate: z.boolean(), updates: z.number().int().min(0) }).optional(),
  })
  .refine((s) => s.optimizerState === false || s.optimizer !== undefined, { message: 'Required', path: ['optimizer'] });

/** Where training stopped inside an epoch (the signal): the batches done and their summed loss. */
export interface Position {
  epoch: number;
  batch: number;
  lossSum: number;
  seen: number;
  /** A detection fit's per-loss sums so far (loss_classifier, ...), weighted by images as lossSum is. */
  losses?: Record<string, number>;
}

/** What trainer.json holds: everything fit() needs to continue besides the tensors. */
export interface TrainerState {
  /** 1; absent in checkpoints written before the format had a number. */
  format?: 1;
  /** 'detection': written by fit on a detection model (FasterRCNN); absent for every other model. */
  task?: 'detection';
  /** The last completed epoch (-1: none yet). */
  epoch: number;
  /** Optimizer steps done over the whole run. */
  step: number;
  seed: number;
  /** The best epoch so far. In best/'s own trainer.json it is best/'s own epoch and metric. */
  best: { epoch: number; metric: MetricName; value: number } | null;
  /** Completed epochs since the best one (early stopping). */
  sinceBest: number;
  history: Array<{ epoch: number; trainLoss: number; val: EvalResult | null }>;
  /** The scheduler's step count (null without a scheduler). */
  schedulerStep: number | null;
  /** Set when training stopped inside an epoch: where to continue. */
  position?: Position;
  /** The GradScaler's state (precision 'fp16'), restored on resume. */
  scaler?: GradScalerState;
  /** false: the folder was written without the optimizer state (saveOptimizerState: false) and holds the model only. */
  optimizerState?: false;
  /** The optimizer's non-tensor state (per parameter index) and its param groups; its tensors are in optimizer.safetensors. Absent with optimizerState false. */
  optimizer?: { scalars: Record<string, Record<string, number>>; paramGroups: OptimizerStateDict['paramGroups'] };
  /** fit's ema option and the EMA updates done; the EMA weights are in ema.safetensors. evaluate: true means the checkpoint's metrics are the EMA weights', which loaders then read (checkpointWeightsFile). */
  ema?: EmaRecord;
}

/** What trainer.json says of the EMA weights beside the model. */
export interface EmaRecord {
  decay: number;
  warmup: boolean;
  evaluate: boolean;
  /** EMA updates (optimizer steps) so far: the warmup's step count. */
  updates: number;
}

/** The part of TrainerState that fit() provides; saveCheckpoint adds the format and the optimizer's state. */
export type TrainerProgress = Omit<TrainerState, 'format' | 'optimizer' | 'optimizerState'>;

/** What saveCheckpoint writes besides the model and trainer.json. */
export interface SaveOptions {
  /** false: leave the optimizer's state out (a smaller folder that loads as weights but cannot be resumed from). Default true. */
  optimizerState?: boolean;
  /** The EMA weights, written as ema.safetensors. */
  ema?: Record<string, Tensor>;
}

// ---- atomic files

/** Writes a file atomically (lib/io/atomic.ts), with the test hook's pause point before the rename. */
export function writeFileAtomic(path: string, data: string | Buffer): void {
  writeAtomic(
    path,
    (fd) => writeAll(fd, typeof data === 'string' ? Buffer.from(data, 'utf8') : data),
    () => pausePoint(basename(path), 'tmp-written'),
  );
}

// ---- the test hook (see the top of this file)

const pauseSpec = /^([a-z.]+:[a-z-]+)(?:#(\d+))?$/.exec(process.env.FINETORCH_TEST_CHECKPOINT_PAUSE ?? '');
const pauseCounts = new Map<string, number>();

function pausePoint(name: string, phase: string): void {
  if (!pauseSpec) return;
  const key = `${name}:${phase}`;
  if (key !== pauseSpec[1]) return;
  const n = (pauseCounts.get(key) ?? 0) + 1;
  pauseCounts.set(key, n);
  if (n !== Number(pauseSpec[2] ?? 1)) return;
  writeSync(2, `finetorch-test-pause ${key}#${n}\n`);
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 60_000);
}

// ---- writing

/**
 * Writes a checkpoint folder `dir` (its parent must exist) from the model,
 * the optimizer and the trainer's progress, replacing any previous one only
 * once the new one is complete on disk.
 */
export function saveCheckpoint(dir: string, model: Module, optimizer: Optimizer, progress: TrainerProgress, options: SaveOptions = {}): void {
  const name = basename(dir);
  const tmp = `${dir}.tmp-${process.pid}`;
  const old = `${dir}.old-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true });
  const sd = model.stateDict();
  try {
    io.save(sd, join(tmp, MODEL_FILE));
  } finally {
    Object.values(sd).forEach((t) => t.dispose());
  }
  if (options.ema) io.save(options.ema, join(tmp, EMA_FILE));
  let state: TrainerState;
  if (options.optimizerState === false) {
    state = { format: 1, ...progress, optimizerState: false };
  } else {
    const opt = optimizer.stateDict();
    const tensors: Record<string, Tensor> = {};
    const scalars: Record<string, Record<string, number>> = {};
    for (const [i, s] of Object.entries(opt.state)) {
      for (const [k, v] of Object.entries(s)) {
        if (v instanceof Tensor) tensors[`state.${i}.${k}`] = v;
        else (scalars[i] ??= {})[k] = v;
      }
    }
    try {
      io.save(tensors, join(tmp, OPTIMIZER_FILE));
    } finally {
      Object.values(tensors).forEach((t) => t.dispose());
    }
    state = { format: 1, ...progress, optimizer: { scalars, paramGroups: opt.paramGroups } };
  }
  pausePoint(name, 'files-written');
  writeFileAtomic(join(tmp, STATE_FILE), JSON.stringify(state, null, 2) + '\n'); // fsyncs tmp/ too
  pausePoint(name, 'tmp-complete');
  if (existsSync(dir)) renameSync(dir, old);
  pausePoint(name, 'old-moved');
  renameSync(tmp, dir);
  fsyncDir(dirname(dir));
  pausePoint(name, 'installed');
  rmSync(old, { recursive: true, force: true });
  pausePoint(name, 'done');
}

// ---- reading

/** Reads and checks a checkpoint's trainer.json; errors name the file and the field. */
export function readTrainerState(dir: string): TrainerState {
  const file = join(dir, STATE_FILE);
  if (!existsSync(file)) throw new CheckpointError(dir, `not a finetorch checkpoint (no ${STATE_FILE})`);
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new CheckpointError(file, `not valid JSON (${(err as Error).message})`);
  }
  const r = TrainerStateSchema.safeParse(json);
  if (!r.success) {
    const issue = r.error.issues[0];
    const field = issue.path.length ? issue.path.join('.') : '(top level)';
    throw new CheckpointError(file, `${field}: ${issue.message}`);
  }
  // JSON has no NaN (a diverged loss is written as null); older checkpoints have no step count
  const data = r.data as unknown as TrainerState;
  data.step = r.data.step ?? r.data.schedulerStep ?? 0;
  return data;
}

/** True when `dir` is a complete checkpoint: a valid trainer.json and the tensor files it implies (model, optimizer unless left out, EMA when it has one). */
export function isCompleteCheckpoint(dir: string): boolean {
  if (!existsSync(join(dir, MODEL_FILE))) return false;
  try {
    const s = readTrainerState(dir);
    if (s.optimizerState !== false && !existsSync(join(dir, OPTIMIZER_FILE))) return false;
    return !s.ema || existsSync(join(dir, EMA_FILE));
  } catch {
    return false;
  }
}

/**
 * The weights file that a checkpoint's metrics describe, which evaluation,
 * prediction and export should load: ema.safetensors when fit validated the
 * EMA weights (ema.evaluate), else model.safetensors (the trained weights).
 */
export function checkpointWeightsFile(dir: string): string {
  const state = existsSync(join(dir, STATE_FILE)) ? readTrainerState(dir) : null;
  return state?.ema?.evaluate ? join(dir, EMA_FILE) : join(dir, MODEL_FILE);
}

function loadTensors(file: string): Record<string, Tensor> {
  if (!existsSync(file)) throw new CheckpointError(file, 'missing from the checkpoint');
  try {
    return io.load(file);
  } catch (err) {
    const message = (err as Error).message;
    throw new CheckpointError(file, message.includes(file) ? message.replace(`${file}: `, '') : message);
  }
}

/** Loads a checkpoint folder into the model and the optimizer; returns its trainer state. Errors name the file at fault. task: 'detection' for a detection fit's resume (the checkpoint must say the same). */
export function loadCheckpoint(dir: string, model: Module, optimizer: Optimizer, task?: 'detection'): TrainerState {
  const state = readTrainerState(dir);
  if (state.task !== task)
    throw new CheckpointError(
      join(dir, STATE_FILE),
      state.task === 'detection'
        ? 'is a detection checkpoint (written by fit on a FasterRCNN): resume it into a FasterRCNN, not this model'
        : 'is not a detection checkpoint (it was written by fit on another kind of model): a FasterRCNN cannot resume from it',
    );
  if (state.optimizerState === false || !state.optimizer)
    throw new CheckpointError(
      dir,
      `was written without the optimizer state (saveOptimizerState: false / checkpoint.optimizerState: false), so training cannot resume from it: resume from the run's last/, or load only its weights (models.loadRun, finetorch eval/predict)`,
    );
  loadTrainedWeights(dir, model);
  const file = join(dir, OPTIMIZER_FILE);
  const tensors = loadTensors(file);
  const opt: OptimizerStateDict = { state: {}, paramGroups: state.optimizer.paramGroups };
  for (const [key, t] of Object.entries(tensors)) {
    const [prefix, i, name] = key.split('.');
    if (prefix !== 'state' || !/^\d+$/.test(i ?? '') || !name)
      throw new CheckpointError(file, `unexpected tensor name '${key}' (expected state.<index>.<name>)`);
    (opt.state[Number(i)] ??= {})[name] = t;
  }
  for (const [i, s] of Object.entries(state.optimizer.scalars)) Object.assign((opt.state[Number(i)] ??= {}), s);
  try {
    optimizer.loadStateDict(opt);
  } catch (err) {
    throw new CheckpointError(file, `does not fit the optimizer (${(err as Error).message})`);
  } finally {
    Object.values(tensors).forEach((t) => t.dispose());
  }
  return state;
}

/** Loads the weights a checkpoint's metrics describe (see checkpointWeightsFile: the EMA weights when fit validated them). */
export function loadModelWeights(dir: string, model: Module): void {
  loadWeightsFile(checkpointWeightsFile(dir), model);
}

/** Loads the trained weights of a checkpoint (model.safetensors), what resuming continues from. */
export function loadTrainedWeights(dir: string, model: Module): void {
  loadWeightsFile(join(dir, MODEL_FILE), model);
}

/** The EMA weights of a checkpoint (ema.safetensors), or null when it has none. */
export function loadEmaWeights(dir: string): Record<string, Tensor> | null {
  const file = join(dir, EMA_FILE);
  return existsSync(file) ? loadTensors(file) : null;
}

function loadWeightsFile(file: string, model: Module): void {
  const sd = loadTensors(file);
  try {
    model.loadStateDict(sd);
  } catch (err) {
    throw new CheckpointError(file, `does not fit the model (${(err as Error).message})`);
  } finally {
    Object.values(sd).forEach((t) => t.dispose());
  }
}

// ---- finding and recovering

const LEFTOVER = /^(best|last|run\.json|metrics\.json)\.(tmp|old)-(\d+)$/;

/** Whether the process that wrote a leftover may still be writing it: alive, and (where /proc tells) a Node.js process like us. */
function isAlive(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'; // exists, owned by someone else
  }
  // after a reboot the id may belong to another program
  try {
    const argv0 = basename(readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0')[0]);
    return argv0.includes('node') || argv0 === basename(process.execPath);
  } catch {
    return true; // no /proc: trust the id
  }
}

function stepOf(dir: string): number {
  const s = readTrainerState(dir);
  return s.step ?? s.epoch;
}

/**
 * Makes `<checkpointDir>/best` and `/last` reachable after a kill, and tidies
 * up: when a folder is missing, the newest complete copy left by a dead
 * process (<name>.tmp-PID, the new one; <name>.old-PID, the previous one) is
 * renamed into place; then the temporary and old copies of dead processes
 * are removed. Copies of live processes (this one included) are left alone.
 * restore: false only removes (a fresh run must not take up a killed run's copies).
 */
export function recoverCheckpoints(checkpointDir: string, options: { restore?: boolean } = {}): void {
  const restore = options.restore ?? true;
  if (!existsSync(checkpointDir) || !statSync(checkpointDir).isDirectory()) return;
  const stale = readdirSync(checkpointDir)
    .map((entry) => ({ entry, m: LEFTOVER.exec(entry) }))
    .filter((x): x is { entry: string; m: RegExpExecArray } => x.m !== null && !isAlive(Number(x.m[3])));
  let changed = false;
  for (const name of ['best', 'last'] as const) {
    const dir = join(checkpointDir, name);
    if (!restore || existsSync(dir)) continue;
    const candidates = stale
      .filter((x) => x.m[1] === name && isCompleteCheckpoint(join(checkpointDir, x.entry)))
      .map((x) => ({ path: join(checkpointDir, x.entry), step: stepOf(join(checkpointDir, x.entry)), tmp: x.m[2] === 'tmp' }))
      .sort((a, b) => b.step - a.step || Number(b.tmp) - Number(a.tmp));
    if (!candidates.length) continue;
    renameSync(candidates[0].path, dir);
    changed = true;
  }
  for (const { entry } of stale) {
    const path = join(checkpointDir, entry);
    if (existsSync(path)) {
      rmSync(path, { recursive: true, force: true });
      changed = true;
    }
  }
  if (changed) fsyncDir(checkpointDir);
}

/**
 * The checkpoint folder that a path names: a checkpoint folder itself, or a
 * run / checkpoint folder holding `which` (default last/). A missing
 * best/ or last/ is recovered first (see recoverCheckpoints); a last/ that
 * was never written (killed between the first best/ and the first last/)
 * gives best/. Errors name the path and what was expected.
 */
export function findCheckpoint(path: string, which: CheckpointName = 'last'): string {
  const full = resolve(path);
  const name = basename(full);
  if (!existsSync(full) && (name === 'best' || name === 'last')) {
    recoverCheckpoints(dirname(full));
    // killed after the first best/ was written, before the first last/: best/ is the latest checkpoint
    const best = join(dirname(full), 'best');
    if (!existsSync(full) && name === 'last' && isCompleteCheckpoint(best)) return best;
  }
  if (!existsSync(full)) throw new CheckpointError(full, 'does not exist');
  if (!statSync(full).isDirectory()) throw new CheckpointError(full, `is a file; give the checkpoint folder (with ${STATE_FILE}) or the run folder`);
  if (existsSync(join(full, STATE_FILE))) {
    readTrainerState(full); // a clear error now rather than a JSON error later
    return full;
  }
  recoverCheckpoints(full);
  const inner = join(full, which);
  if (existsSync(join(inner, STATE_FILE))) {
    readTrainerState(inner);
    return inner;
  }
  if (which === 'last' && isCompleteCheckpoint(join(full, 'best'))) return join(full, 'best'); // as above
  throw new CheckpointError(full, `is neither a checkpoint folder (${STATE_FILE}) nor a run folder with a complete ${which}/`);
}

/** best/'s own record of its epoch and metric, when `<checkpointDir>/best` is a complete checkpoint. */
export function readBestRecord(checkpointDir: string): TrainerState['best'] {
  const dir = join(checkpointDir, 'best');
  if (!isCompleteCheckpoint(dir)) return null;
  const s = readTrainerState(dir);
  return s.best && s.best.epoch === s.epoch ? s.best : null;
}
