// pretrain(): a whole pretraining run from a config, the library version of
// `finetorch pretrain`. The kind (text MLM, image reconstruction) provides
// the model, the batches and the loss; fit() trains them with resumable
// checkpoints in `out` (last/ at every epoch end and where a signal stopped
// it), as `finetorch train` does. At the end the held-out metrics are
// computed and the pretrained model is written in its final form (an HF
// folder for text, the backbone for images).
//
// The run folder: pretrain.json (the config and what rebuilds the model),
// last/ and best/ (fit's checkpoints; best/ by training loss), events.jsonl
// (the CLI's), metrics.json, and model/ (text; with vocab.txt when the run
// trained its vocabulary) or backbone.safetensors (images).
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { CheckpointError, ConfigError } from '../errors.js';
import { torch } from '../tensor/index.js';
import { fit, type FitResult, type TrainEvent } from '../train/trainer.js';
import { findCheckpoint, recoverCheckpoints, writeFileAtomic } from '../train/checkpoint.js';
import { checkDevice } from '../recipes/build.js';
import { finetorchVersion } from '../recipes/run-record.js';
import { buildPretrainOptimizer, trainingLength, type KindSetup } from './common.js';
import { parsePretrainConfig, resolvePretrainPaths, type PretrainConfig } from './schema.js';
import { MODEL_DIR, TRAINED_VOCAB, setupMlm } from './text-mlm.js';
import { BACKBONE_FILE, setupReconstruction, type ReconstructionMetrics, type ReconstructionSpec } from './image-reconstruction.js';

/** The record of a run (its config and what rebuilds its model), written before training. */
export const PRETRAIN_FILE = 'pretrain.json';

export interface PretrainRecord {
  format: 1;
  finetorch: string;
  createdAt: string;
  config: PretrainConfig;
  spec: Record<string, unknown>;
}

/** Held-out metrics of text MLM runs: cross-entropy over the masked tokens, its exponential, and how many of them the model predicts exactly. */
export interface MlmMetrics {
  loss: number;
  perplexity: number;
  accuracy: number;
  /** Masked tokens scored. */
  tokens: number;
  samples: number;
}

export type PretrainMetrics = MlmMetrics | ReconstructionMetrics;

export interface PretrainStartEvent {
  type: 'start';
  kind: PretrainConfig['kind'];
  out: string;
  resumeFrom: string | null;
  config: PretrainConfig;
  samples: { train: number; val: number };
  batchesPerEpoch: number;
  epochs: number;
  totalSteps: number;
  model: { arch: string; from: string | null; parameters: number; trainable: number };
  device: string;
  threads: number;
}

/** The held-out metrics of the final weights. */
export type PretrainEvalEvent = { type: 'eval'; split: 'val' } & PretrainMetrics;
/** The pretrained model was written (`path`: the HF folder or the backbone file). */
export interface PretrainSavedEvent {
  type: 'saved';
  path: string;
}

export type PretrainEvent = PretrainStartEvent | TrainEvent | PretrainEvalEvent | PretrainSavedEvent;

export interface PretrainOptions {
  /** Folder that relative paths in the config are relative to (default: the working directory). */
  baseDir?: string;
  /** The run folder (default config.out; one of them is needed). */
  out?: string;
  /** Continue a run: its folder, or its last/ (or best/) checkpoint folder. */
  resumeFrom?: string;
  /** Start over in an `out` folder that already holds a run (default: refuse). */
  force?: boolean;
  /** Stops training after the current step; last/ is then resumable (the result says `interrupted`). */
  signal?: AbortSignal;
  onEvent?: (e: PretrainEvent) => void;
}

export interface PretrainResult {
  status: 'ok' | 'interrupted';
  out: string;
  config: PretrainConfig;
  fit: FitResult;
  /** Held-out metrics of the final weights (null when interrupted or without held-out data). */
  metrics: PretrainMetrics | null;
  /** The written model: the HF folder (mlm) or backbone.safetensors (reconstruction); null when interrupted. */
  output: string | null;
  seconds: number;
}

/** The record of a pretraining run folder, or null when it has none. */
export function readPretrainRecord(dir: string): PretrainRecord | null {
  const file = join(dir, PRETRAIN_FILE);
  if (!existsSync(file)) return null;
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as PretrainRecord;
  } catch (err) {
    throw new CheckpointError(file, `not valid JSON (${(err as Error).message})`);
  }
}

async function setupKind(c: PretrainConfig, spec: Record<string, unknown> | undefined, out: string): Promise<KindSetup<PretrainMetrics>> {
  if (c.kind === 'reconstruction') return setupReconstruction(c, spec as ReconstructionSpec | undefined);
  return setupMlm(c, spec, out);
}

/**
 * Runs a pretraining config end to end (see the top of this file). Resuming
 * (options.resumeFrom) rebuilds the model from the run's pretrain.json and
 * continues exactly where it stopped: masking, corruption and shuffling
 * depend on (seed, epoch, batch) only.
 */
export async function pretrain(input: PretrainConfig | Record<string, unknown>, options: PretrainOptions = {}): Promise<PretrainResult> {
  const started = Date.now();
  const raw = structuredClone(input) as Record<string, unknown>;
  resolvePretrainPaths(raw, resolve(options.baseDir ?? '.'));
  const config = parsePretrainConfig(raw);
  const emit = (e: PretrainEvent) => options.onEvent?.(e);

  let resumeFrom: string | undefined;
  let spec: Record<string, unknown> | undefined;
  let out: string;
  if (options.resumeFrom) {
    resumeFrom = findCheckpoint(options.resumeFrom, 'last');
    out = resolve(options.out ?? config.out ?? dirname(resumeFrom));
    const record = readPretrainRecord(dirname(resumeFrom));
    if (!record) throw new CheckpointError(dirname(resumeFrom), `has no ${PRETRAIN_FILE}: not a pretraining run`);
    if (record.config.kind !== config.kind) throw new ConfigError('pretrain.kind', `is ${config.kind}, but the run being resumed is ${record.config.kind}`);
    spec = record.spec;
  } else {
    if (!options.out && !config.out) throw new ConfigError('pretrain.out', 'pretrain needs an output folder: config.out or options.out');
    out = resolve(options.out ?? config.out!);
    if (existsSync(join(out, PRETRAIN_FILE))) {
      if (!options.force)
        throw new ConfigError('pretrain.out', `${out} already holds a run; continue it with resumeFrom ${join(out, 'last')}, or start over with force`);
      for (const f of ['best', 'last', 'events.jsonl', 'metrics.json', MODEL_DIR, TRAINED_VOCAB, BACKBONE_FILE, PRETRAIN_FILE])
        rmSync(join(out, f), { recursive: true, force: true });
    }
    recoverCheckpoints(out, { restore: false });
  }
  config.out = out;
  mkdirSync(out, { recursive: true });
  checkDevice(config.device);

  torch.manualSeed(config.seed);
  const setup = await setupKind(config, spec, out);
  try {
    const { model, train } = setup;
    if (config.device !== 'cpu') model.to(config.device);
    const { epochs, totalSteps } = trainingLength(config, train.length);
    const { optimizer, scheduler } = buildPretrainOptimizer(config, model, totalSteps);
    if (!resumeFrom) {
      const record: PretrainRecord = { format: 1, finetorch: finetorchVersion(), createdAt: new Date().toISOString(), config, spec: setup.spec };
      writeFileAtomic(join(out, PRETRAIN_FILE), JSON.stringify(record, null, 2) + '\n');
    }
    const params = model.parameters();
    emit({
      type: 'start',
      kind: config.kind,
      out,
      resumeFrom: resumeFrom ?? null,
      config,
      samples: setup.samples,
      batchesPerEpoch: train.length,
      epochs,
      totalSteps,
      model: {
        arch: setup.describe.arch,
        from: setup.describe.from,
        parameters: params.reduce((n, p) => n + p.numel(), 0),
        trainable: params.filter((p) => p.requiresGrad).reduce((n, p) => n + p.numel(), 0),
      },
      device: config.device,
      threads: torch.getNumThreads(),
    });

    const result = await fit({
      model,
      optimizer,
      scheduler,
      loss: setup.loss,
      train,
      epochs,
      clipGradNorm: config.clipGradNorm,
      checkpointDir: out,
      checkpointEvery: config.checkpointEvery,
      resumeFrom,
      seed: config.seed,
      signal: options.signal,
      onEvent: (e) => emit(e),
      device: config.device,
      // the final weights are the pretrained model, not those of the epoch with the lowest training loss
      restoreBest: false,
    });
    if (result.interrupted) return { status: 'interrupted', out, config, fit: result, metrics: null, output: null, seconds: (Date.now() - started) / 1000 };

    const metrics = await setup.evaluate();
    if (metrics) emit({ type: 'eval', split: 'val', ...metrics });
    const output = setup.save(out);
    emit({ type: 'saved', path: output });
    const seconds = (Date.now() - started) / 1000;
    const summary = { kind: config.kind, epochs: result.epochs, steps: totalSteps, val: metrics, output, history: result.history, seconds };
    writeFileAtomic(join(out, 'metrics.json'), JSON.stringify(summary, null, 2) + '\n');
    return { status: 'ok', out, config, fit: result, metrics, output, seconds };
  } finally {
    setup.dispose();
  }
}
