// `finetorch train --config recipe.yaml`: runs a recipe end to end (data,
// pretrained model, new head, freezing, LR groups, schedule, loss, fit with
// checkpoints, test evaluation of the best checkpoint). Ctrl-C stops after
// the current step with a resumable last/; `--resume <out>/last` continues.
import { existsSync, mkdirSync, rmSync } from 'node:fs';
import { basename, dirname, extname, join, resolve } from 'node:path';
import { io } from '../io/index.js';
import { torch } from '../tensor/index.js';
import { evaluate, fit, type EvalResult } from '../train/trainer.js';
import { findCheckpoint, writeFileAtomic } from '../train/checkpoint.js';
import type { Recipe } from '../recipes/schema.js';
import { parseArgs, recipeOverrides, usageLines, type FlagSpec } from './args.js';
import { OUTPUT_FLAGS, RECIPE_FLAGS, fail, reporterFor, usageFailure } from './command.js';
import { DataError, EXIT, UsageError } from './errors.js';
import { buildData, buildFromSpec, buildModel, buildTraining, checkDevice, type ModelSpec } from './pipeline.js';
import { loadRecipe } from './recipe-file.js';
import { RUN_FILE, finetorchVersion, readRun, writeRun } from '../recipes/run-record.js';
import type { Row } from './progress.js';

const FLAGS: Record<string, FlagSpec> = {
  config: { type: 'string', arg: 'recipe.json|yaml', help: 'the recipe (paths in it are relative to its folder)' },
  resume: { type: 'string', arg: 'dir', help: 'continue a run from its checkpoint (<out>/last, <out>/best or <out>)' },
  out: { type: 'string', arg: 'dir', help: 'output folder (recipe.out; default runs/<recipe name>)' },
  force: { type: 'boolean', help: 'start over in an output folder that holds a run' },
  ...RECIPE_FLAGS,
  ...OUTPUT_FLAGS,
};

export const TRAIN_USAGE = `usage: finetorch train --config <recipe.json|yaml> [options]
       finetorch train --resume <out>/last [options]

${usageLines(FLAGS)}
`;

const metricsRow = (split: string, r: EvalResult): Row => ({ split, samples: r.samples, loss: r.loss, accuracy: r.accuracy, f1Macro: r.f1Macro, rocAuc: r.rocAuc });

export async function trainCommand(argv: string[]): Promise<number> {
  const started = Date.now();
  let args;
  try {
    args = parseArgs('train', argv, FLAGS);
    if (args.flags.help) {
      process.stdout.write(TRAIN_USAGE);
      return EXIT.ok;
    }
    if (args.positionals.length) throw new UsageError(`finetorch train: unexpected argument ${JSON.stringify(args.positionals[0])} (the recipe goes after --config)`);
    if (!args.flags.config && !args.flags.resume) throw new UsageError('finetorch train: give --config <recipe> (or --resume <out>/last)');
  } catch (err) {
    return usageFailure('train', argv, err, TRAIN_USAGE);
  }
  const flags = args.flags;
  let reporter = reporterFor('train', flags);
  const onSignal: Array<[NodeJS.Signals, () => void]> = [];
  try {
    // the recipe: from --config, or the run being resumed; flags on top
    let resumeFrom: string | undefined;
    let savedSpec: ModelSpec | undefined;
    let recipe: Recipe;
    const overrides = recipeOverrides(flags);
    if (flags.resume) {
      let dir: string;
      try {
        dir = findCheckpoint(flags.resume as string); // also puts back a last/ that a kill left between two renames
      } catch (err) {
        throw new UsageError(`--resume: ${(err as Error).message}`);
      }
      const ck = { dir, runDir: dirname(dir), run: readRun(dirname(dir)) };
      if (!ck.run && !flags.config) throw new UsageError(`--resume: no ${RUN_FILE} in ${ck.runDir}; give --config too`);
      resumeFrom = dir;
      savedSpec = ck.run?.model;
      const out = flags.out ? [] : [{ path: ['out'], value: ck.runDir, from: '--resume' }];
      recipe = flags.config ? loadRecipe({ file: flags.config as string }, [...out, ...overrides]) : loadRecipe({ object: ck.run!.recipe as unknown as Record<string, unknown> }, [...out, ...overrides]);
    } else {
      const file = flags.config as string;
      recipe = loadRecipe({ file }, overrides);
      if (!recipe.out) recipe.out = resolve('runs', basename(file, extname(file)));
    }
    const out = recipe.out!;
    if (!resumeFrom && existsSync(join(out, RUN_FILE))) {
      if (!flags.force) throw new UsageError(`${out} already holds a run; continue it with --resume ${join(out, 'last')}, or start over with --force`);
      for (const f of ['best', 'last', 'events.jsonl', 'metrics.json', RUN_FILE]) rmSync(join(out, f), { recursive: true, force: true });
    }
    mkdirSync(out, { recursive: true });
    reporter = reporterFor('train', flags, join(out, 'events.jsonl'));
    checkDevice(recipe.device);

    torch.manualSeed(recipe.seed);
    const data = await buildData(recipe, ['train', 'val', 'test']);
    const train = data.parts.train;
    if (!train) throw new DataError('the training part of the data is empty');
    const numClasses = data.classes.length;
    const built = savedSpec && !flags.config
      ? { model: buildFromSpec(savedSpec), spec: savedSpec, pretrained: false }
      : buildModel(recipe, numClasses);
    const { model, spec } = built;
    if (recipe.device !== 'cpu') model.to(recipe.device);
    const parts = buildTraining(recipe, model, numClasses, train.length);
    writeRun(out, { recipe, classes: data.classes, model: spec, input: data.input });

    const params = model.parameters();
    const total = params.reduce((n, p) => n + p.numel(), 0);
    const trainable = params.filter((p) => p.requiresGrad).reduce((n, p) => n + p.numel(), 0);
    reporter.emit({
      type: 'start', command: 'train', finetorch: finetorchVersion(), out, resumeFrom: resumeFrom ?? null, recipe,
      classes: data.classes, samples: data.sizes, trainCounts: data.trainCounts, batchesPerEpoch: train.length,
      model: { arch: spec.arch, checkpoint: recipe.model.checkpoint ?? null, parameters: total, trainable },
      groups: parts.groups, device: recipe.device, threads: torch.getNumThreads(),
    });
    if (!reporter.json) {
      reporter.message(`model ${spec.arch}${recipe.model.checkpoint && !resumeFrom ? ` from ${recipe.model.checkpoint}` : ''}: ${total.toLocaleString('en')} parameters, ${trainable.toLocaleString('en')} trainable`);
      reporter.message(`data: ${data.classes.length} classes, ${data.sizes.train} train / ${data.sizes.val} val / ${data.sizes.test} test samples; ${train.length} batches of ${recipe.batchSize} per epoch`);
      reporter.message(`output: ${out}`);
    }

    // Ctrl-C: finish the step, write last/, exit 130; a second Ctrl-C quits at once
    const controller = new AbortController();
    for (const sig of ['SIGINT', 'SIGTERM'] as const) {
      const handler = () => {
        if (controller.signal.aborted) {
          reporter.close();
          process.stderr.write('finetorch train: stopped without a checkpoint\n');
          process.exit(EXIT.interrupted);
        }
        controller.abort();
        if (!reporter.json) reporter.message('stopping after this step (Ctrl-C again to quit at once)...');
      };
      process.on(sig, handler);
      onSignal.push([sig, handler]);
    }

    reporter.stage(null, { epochs: recipe.epochs });
    const result = await fit({
      model, optimizer: parts.optimizer, scheduler: parts.scheduler, loss: parts.loss, forward: data.forward,
      train, val: data.parts.val, epochs: recipe.epochs, clipGradNorm: recipe.clipGradNorm, earlyStopping: recipe.earlyStopping,
      checkpointDir: out, resumeFrom, seed: recipe.seed, signal: controller.signal, onEvent: (e) => reporter.train(e),
    });
    if (result.interrupted) {
      const resume = `finetorch train --resume ${join(out, 'last')}`;
      if (!reporter.json) reporter.message(`interrupted; continue with: ${resume}`);
      reporter.emit({ type: 'end', status: 'interrupted', exitCode: EXIT.interrupted, seconds: (Date.now() - started) / 1000, checkpoint: join(out, 'last'), resume });
      reporter.close();
      return EXIT.interrupted;
    }

    // the final numbers: the best checkpoint on the test part
    const rows: Row[] = [];
    const bestEpoch = result.best ? result.history.find((h) => h.epoch === result.best!.epoch) : undefined;
    if (bestEpoch?.val) rows.push(metricsRow(`val (epoch ${bestEpoch.epoch + 1})`, bestEpoch.val));
    let test: EvalResult | null = null;
    const bestDir = join(out, 'best');
    const weights = existsSync(join(bestDir, 'model.safetensors')) ? bestDir : join(out, 'last');
    if (data.parts.test) {
      const sd = io.load(join(weights, 'model.safetensors'));
      model.loadStateDict(sd);
      Object.values(sd).forEach((t) => t.dispose());
      test = await evaluate(model, data.parts.test, { loss: parts.loss, forward: data.forward });
      // an event in JSON mode and in events.jsonl; the table below shows it on a terminal
      reporter.emit({ type: 'eval', split: 'test', checkpoint: join(weights, 'model.safetensors'), ...test });
      rows.push(metricsRow('test', test));
    }
    if (rows.length) reporter.table(`results (${basename(weights)} checkpoint)`, rows);
    const summary = {
      epochs: result.epochs, stoppedEarly: result.stoppedEarly, best: result.best, checkpoint: weights, test,
      classes: data.classes, history: result.history, seconds: (Date.now() - started) / 1000,
    };
    writeFileAtomic(join(out, 'metrics.json'), JSON.stringify(summary, null, 2) + '\n');
    reporter.emit({ type: 'end', status: 'ok', exitCode: EXIT.ok, seconds: summary.seconds, epochs: result.epochs, best: result.best, checkpoint: weights, test: test && { loss: test.loss, accuracy: test.accuracy, f1Macro: test.f1Macro, rocAuc: test.rocAuc, samples: test.samples } });
    reporter.close();
    return EXIT.ok;
  } catch (err) {
    return fail(reporter, err, started);
  } finally {
    for (const [sig, h] of onSignal) process.off(sig, h);
  }
}
