// The output folder of `finetorch train`: run.json (the resolved recipe, the
// classes, how to rebuild the model and prepare inputs), best/ and last/
// (resumable checkpoints), events.jsonl and metrics.json. eval and predict
// find everything they need from a checkpoint path through it.
import { existsSync, readFileSync, statSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Recipe } from './schema.js';
import { checkpointWeightsFile, recoverCheckpoints, writeFileAtomic } from '../train/checkpoint.js';
import { CheckpointError } from '../errors.js';
import type { InputSpec, ModelSpec } from './build.js';
import type { Module } from '../nn/module.js';

export const RUN_FILE = 'run.json';

// the package root (lib/recipes/ and dist/recipes/ are two levels down); not from the native loader, which loads libtorch
const packageRoot = fileURLToPath(new URL('../../', import.meta.url));

export interface RunRecord {
  format: 1;
  finetorch: string;
  createdAt: string;
  recipe: Recipe;
  classes: string[];
  model: ModelSpec;
  input: InputSpec;
  /** What runRecipe chose where the recipe left it open (as the start event's notes). */
  notes?: string[];
}

export function finetorchVersion(): string {
  try {
    return JSON.parse(readFileSync(join(packageRoot, 'package.json'), 'utf8')).version;
  } catch {
    return 'unknown';
  }
}

/** The start event's model entry: architecture, checkpoint, and parameter counts (all, and those that train). */
export function modelSummary(model: Module, arch: string, recipe: Recipe) {
  const params = model.parameters();
  return {
    arch,
    checkpoint: recipe.model.checkpoint ?? null,
    parameters: params.reduce((n, p) => n + p.numel(), 0),
    trainable: params.filter((p) => p.requiresGrad).reduce((n, p) => n + p.numel(), 0),
  };
}

export function writeRun(dir: string, run: Omit<RunRecord, 'format' | 'finetorch' | 'createdAt'>): void {
  const record: RunRecord = { format: 1, finetorch: finetorchVersion(), createdAt: new Date().toISOString(), ...run };
  writeFileAtomic(join(dir, RUN_FILE), JSON.stringify(record, null, 2) + '\n'); // a kill mid-write leaves the old or the new file, never an empty one
}

export function readRun(dir: string): RunRecord | null {
  const file = join(dir, RUN_FILE);
  if (!existsSync(file)) return null;
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as RunRecord;
  } catch (err) {
    throw new CheckpointError(file, `not valid JSON (${(err as Error).message})`);
  }
}

const isCheckpointDir = (d: string) => existsSync(join(d, 'model.safetensors')) && existsSync(join(d, 'trainer.json'));

export interface ResolvedCheckpoint {
  /** The weights file (a checkpoint folder's EMA weights when fit validated them: checkpointWeightsFile). */
  weights: string;
  /** The checkpoint folder (best/, last/) when the weights are in one. */
  dir: string | null;
  /** The run folder holding run.json, if any. */
  runDir: string | null;
  run: RunRecord | null;
}

/**
 * A checkpoint argument: a run folder (its best/, else last/), a checkpoint
 * folder (best/, last/), or a weights file (.safetensors, .pth).
 */
export function resolveCheckpoint(arg: string, flag = '--checkpoint'): ResolvedCheckpoint {
  const path = resolve(arg);
  // a best/ or last/ that a killed training left between two renames comes back first
  if (!existsSync(path) && (basename(path) === 'best' || basename(path) === 'last')) recoverCheckpoints(dirname(path));
  if (!existsSync(path)) throw new CheckpointError(path, `does not exist (${flag} ${arg})`);
  if (statSync(path).isDirectory()) {
    if (!isCheckpointDir(path)) recoverCheckpoints(path);
    if (isCheckpointDir(path)) {
      const runDir = existsSync(join(dirname(path), RUN_FILE)) ? dirname(path) : null;
      return { weights: checkpointWeightsFile(path), dir: path, runDir, run: runDir ? readRun(runDir) : null };
    }
    const inner = ['best', 'last'].map((n) => join(path, n)).find(isCheckpointDir);
    if (inner) return { weights: checkpointWeightsFile(inner), dir: inner, runDir: path, run: readRun(path) };
    throw new CheckpointError(path, `(${flag}) is neither a run folder (with best/ or last/) nor a checkpoint folder (model.safetensors + trainer.json)`);
  }
  const parent = dirname(path);
  if (basename(path) === 'model.safetensors' && isCheckpointDir(parent)) return resolveCheckpoint(parent, flag);
  return { weights: path, dir: null, runDir: null, run: null };
}
