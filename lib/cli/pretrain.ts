// `finetorch pretrain --config pretrain.yaml`: masked-language modelling of a
// text model, or adaptation of an image backbone by reconstruction (see
// lib/pretrain). Progress, JSON Lines, checkpoints, Ctrl-C and --resume work
// as in `finetorch train`: Ctrl-C stops after the current step with a
// resumable last/, `--resume <out>/last` continues exactly.
import { existsSync, mkdirSync } from 'node:fs';
import { basename, dirname, extname, join, resolve } from 'node:path';
import { findCheckpoint } from '../train/checkpoint.js';
import { finetorchVersion } from '../recipes/run-record.js';
import { RecipeError, formatIssue } from '../recipes/schema.js';
import { PRETRAIN_FILE, pretrain, readPretrainRecord, type PretrainMetrics } from '../pretrain/run.js';
import { parsePretrainConfig, resolvePretrainPaths, type PretrainConfig } from '../pretrain/schema.js';
import { parseArgs, parseSet, setPath, usageLines, type FlagSpec, type FlagValues, type Override } from './args.js';
import { OUTPUT_FLAGS, fail, reporterFor, usageFailure } from './command.js';
import { EXIT, UsageError } from './errors.js';
import { readRecipeFile } from './recipe-file.js';
import type { Row } from './progress.js';

const FLAGS: Record<string, FlagSpec> = {
  config: { type: 'string', arg: 'pretrain.json|yaml', help: 'the pretraining config (paths in it are relative to its folder)' },
  resume: { type: 'string', arg: 'dir', help: 'continue a run from its checkpoint (<out>/last or <out>)' },
  out: { type: 'string', arg: 'dir', help: 'output folder (config out; default runs/<config name>)' },
  force: { type: 'boolean', help: 'start over in an output folder that holds a run' },
  epochs: { type: 'positiveInt', arg: 'n', help: 'epochs (replaces steps)' },
  steps: { type: 'positiveInt', arg: 'n', help: 'optimizer steps in all (replaces epochs)' },
  lr: { type: 'positiveNumber', arg: 'lr', help: 'lr' },
  'batch-size': { type: 'positiveInt', arg: 'n', help: 'batchSize' },
  seed: { type: 'int', arg: 'n', help: 'seed' },
  device: { type: 'string', arg: 'cpu|cuda|cuda:N', help: 'device' },
  set: { type: 'string', repeat: true, arg: 'field=value', help: 'any config field, e.g. --set corruption.maskRatio=0.6 (value: JSON or text)' },
  ...OUTPUT_FLAGS,
};

export const PRETRAIN_USAGE = `usage: finetorch pretrain --config <pretrain.json|yaml> [options]
       finetorch pretrain --resume <out>/last [options]

${usageLines(FLAGS)}
`;

const PATH_FLAGS = new Set(['out']);

function overrides(flags: FlagValues): Override[] {
  const out: Override[] = [];
  if (flags.epochs !== undefined) out.push({ path: ['epochs'], value: flags.epochs, from: '--epochs', unset: ['steps'] });
  if (flags.steps !== undefined) out.push({ path: ['steps'], value: flags.steps, from: '--steps', unset: ['epochs'] });
  if (flags.lr !== undefined) out.push({ path: ['lr'], value: flags.lr, from: '--lr' });
  if (flags['batch-size'] !== undefined) out.push({ path: ['batchSize'], value: flags['batch-size'], from: '--batch-size' });
  if (flags.seed !== undefined) out.push({ path: ['seed'], value: flags.seed, from: '--seed' });
  if (flags.out !== undefined) out.push({ path: ['out'], value: flags.out, from: '--out' });
  if (flags.device !== undefined) out.push({ path: ['device'], value: flags.device, from: '--device' });
  for (const s of (flags.set as string[] | undefined) ?? []) out.push(parseSet(s));
  return out;
}

/** The config from a file (or a run's saved config) with the flags applied, validated; a bad field set by a flag names the flag. */
function loadConfig(source: { file?: string; object?: Record<string, unknown> }, changes: Override[]): PretrainConfig {
  const raw = source.file ? readRecipeFile(source.file) : structuredClone(source.object ?? {});
  if (source.file) resolvePretrainPaths(raw, dirname(resolve(source.file)));
  const flagged = new Map<string, string>();
  for (const o of changes) {
    const key = o.path.join('.');
    // paths given by flags: relative to the working directory
    setPath(raw, PATH_FLAGS.has(key) && typeof o.value === 'string' ? { ...o, value: resolve(o.value) } : o);
    flagged.set(key, o.from);
  }
  try {
    return parsePretrainConfig(raw, source.file);
  } catch (err) {
    if (!(err instanceof RecipeError)) throw err;
    const issues = err.issues.map((i) => {
      const key = i.keys.join('.');
      const from = [...flagged.entries()].find(([k]) => key === k || key.startsWith(k + '.') || k.startsWith(key + '.'))?.[1];
      return { ...i, message: from ? `${i.message} [set by ${from}]` : i.message };
    });
    const where = source.file ? ` (${source.file})` : '';
    throw new RecipeError(issues, `invalid pretraining config${where}:\n  ${issues.map(formatIssue).join('\n  ')}`);
  }
}

function metricsRow(m: PretrainMetrics): Row {
  return 'perplexity' in m
    ? { split: 'val', samples: m.samples, maskedTokens: m.tokens, loss: m.loss, perplexity: m.perplexity, accuracy: m.accuracy }
    : { split: 'val', samples: m.samples, mse: m.mse, maskedMse: m.maskedMse };
}

export async function pretrainCommand(argv: string[]): Promise<number> {
  const started = Date.now();
  let args: ReturnType<typeof parseArgs>;
  try {
    args = parseArgs('pretrain', argv, FLAGS);
    if (args.flags.help) {
      process.stdout.write(PRETRAIN_USAGE);
      return EXIT.ok;
    }
    if (args.positionals.length)
      throw new UsageError(`unexpected argument ${JSON.stringify(args.positionals[0])} (the config goes after --config)`, 'pretrain');
    if (!args.flags.config && !args.flags.resume) throw new UsageError('give --config <pretrain.yaml> (or --resume <out>/last)', 'pretrain');
    if (args.flags.epochs !== undefined && args.flags.steps !== undefined) throw new UsageError('give --epochs or --steps, not both', 'pretrain');
  } catch (err) {
    return usageFailure('pretrain', argv, err, PRETRAIN_USAGE);
  }
  const flags = args.flags;
  let reporter = reporterFor('pretrain', flags);
  const onSignal: Array<[NodeJS.Signals, () => void]> = [];
  try {
    const changes = overrides(flags);
    let config: PretrainConfig;
    let resumeFrom: string | undefined;
    if (flags.resume) {
      resumeFrom = findCheckpoint(flags.resume as string, 'last');
      const runDir = dirname(resumeFrom);
      const record = readPretrainRecord(runDir);
      if (!record) throw new UsageError(`--resume: no ${PRETRAIN_FILE} in ${runDir}; it is not a pretraining run`);
      const out = flags.out ? [] : [{ path: ['out'], value: runDir, from: '--resume' }];
      config = flags.config
        ? loadConfig({ file: flags.config as string }, [...out, ...changes])
        : loadConfig({ object: record.config as unknown as Record<string, unknown> }, [...out, ...changes]);
    } else {
      const file = flags.config as string;
      config = loadConfig({ file }, changes);
      if (!config.out) config.out = resolve('runs', basename(file, extname(file)));
      if (existsSync(join(config.out, PRETRAIN_FILE)) && !flags.force)
        throw new UsageError(`${config.out} already holds a run; continue it with --resume ${join(config.out, 'last')}, or start over with --force`);
    }
    const out = resolve(config.out!);
    mkdirSync(out, { recursive: true });
    reporter = reporterFor('pretrain', flags, join(out, 'events.jsonl'));

    // Ctrl-C: finish the step, write last/, exit 130; a second Ctrl-C quits at once
    const controller = new AbortController();
    for (const sig of ['SIGINT', 'SIGTERM'] as const) {
      const handler = () => {
        if (controller.signal.aborted) {
          reporter.close();
          process.stderr.write('finetorch pretrain: stopped without a checkpoint\n');
          process.exit(EXIT.interrupted);
        }
        controller.abort();
        if (!reporter.json) reporter.message('stopping after this step (Ctrl-C again to quit at once)...');
      };
      process.on(sig, handler);
      onSignal.push([sig, handler]);
    }

    const result = await pretrain(config, {
      resumeFrom,
      force: !!flags.force,
      signal: controller.signal,
      onEvent: (e) => {
        if (e.type === 'start') {
          reporter.emit({ ...e, command: 'pretrain', finetorch: finetorchVersion() });
          if (!reporter.json) {
            reporter.message(
              `${e.kind === 'mlm' ? 'masked-language modelling' : 'reconstruction'}: model ${e.model.arch}${e.model.from ? ` from ${e.model.from}` : ''}, ${e.model.parameters.toLocaleString('en')} parameters`,
            );
            reporter.message(
              `data: ${e.samples.train} train / ${e.samples.val} held-out samples; ${e.batchesPerEpoch} batches of ${e.config.batchSize} per epoch, ${e.totalSteps} steps`,
            );
            reporter.message(`output: ${e.out}`);
          }
          reporter.stage(null, { epochs: e.epochs });
        } else if (e.type === 'eval' || e.type === 'saved') {
          reporter.emit({ ...e });
          if (e.type === 'saved' && !reporter.json) reporter.message(`pretrained model: ${e.path}`);
        } else reporter.train(e);
      },
    });
    if (result.status === 'interrupted') {
      const resume = `finetorch pretrain --resume ${join(out, 'last')}`;
      if (!reporter.json) reporter.message(`interrupted; continue with: ${resume}`);
      reporter.emit({
        type: 'end',
        status: 'interrupted',
        exitCode: EXIT.interrupted,
        seconds: (Date.now() - started) / 1000,
        checkpoint: join(out, 'last'),
        resume,
      });
      reporter.close();
      return EXIT.interrupted;
    }
    if (result.metrics) reporter.table('held-out metrics (final weights)', [metricsRow(result.metrics)]);
    reporter.emit({
      type: 'end',
      status: 'ok',
      exitCode: EXIT.ok,
      seconds: (Date.now() - started) / 1000,
      epochs: result.fit.epochs,
      output: result.output,
      val: result.metrics,
    });
    reporter.close();
    return EXIT.ok;
  } catch (err) {
    return fail(reporter, err, started);
  } finally {
    for (const [sig, h] of onSignal) process.off(sig, h);
  }
}
