// `finetorch train --config recipe.yaml`: runs a recipe end to end (data,
// pretrained model, new head, freezing, LR groups, schedule, loss, fit with
// checkpoints, test evaluation of the best checkpoint). Ctrl-C stops after
// the current step with a resumable last/; `--resume <out>/last` continues.
import { existsSync, mkdirSync } from 'node:fs';
import { basename, dirname, extname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { EvalResult } from '../train/trainer.js';
import type { DetectionScores } from '../metrics/detection.js';
import { findCheckpoint } from '../train/checkpoint.js';
import type { Recipe } from '../recipes/schema.js';
import { runRecipe } from '../recipes/run.js';
import { RUN_FILE, finetorchVersion, readRun } from '../recipes/run-record.js';
import { parseArgs, recipeOverrides, usageLines, type FlagSpec } from './args.js';
import { OUTPUT_FLAGS, RECIPE_FLAGS, fail, reporterFor, usageFailure } from './command.js';
import { EXIT, UsageError } from './errors.js';
import { loadRecipe } from './recipe-file.js';
import type { Reporter, Row } from './progress.js';
import { DEFAULT_PORT, dashboardOptions, startDashboard } from './dashboard.js';
import type { Dashboard } from '../dashboard/index.js';
import { LAUNCH_FLAGS, launchCli, wantsLaunch } from './launch.js';

/** How long `train --dashboard` keeps serving after training when nobody can press Ctrl-C (output not a terminal), so an open page gets the last events. */
const DASHBOARD_LINGER_MS = 5000;

const FLAGS: Record<string, FlagSpec> = {
  config: { type: 'string', arg: 'recipe.json|yaml', help: 'the recipe (paths in it are relative to its folder)' },
  resume: { type: 'string', arg: 'dir', help: 'continue a run from its checkpoint (<out>/last, <out>/best or <out>)' },
  out: { type: 'string', arg: 'dir', help: 'output folder (recipe.out; default runs/<recipe name>)' },
  force: { type: 'boolean', help: 'start over in an output folder that holds a run' },
  tensorboard: { type: 'boolean', help: 'also write TensorBoard event files into <out>/tensorboard (recipe.tensorboard)' },
  dashboard: { type: 'boolean', help: 'serve the live dashboard of this run (URL printed; see finetorch dashboard)' },
  'dashboard-port': { type: 'int', arg: 'n', help: `its port (default ${DEFAULT_PORT} or the next free one; 0: any)` },
  'dashboard-host': { type: 'string', arg: 'address', help: 'its address (default 127.0.0.1; another gets a generated token)' },
  ...RECIPE_FLAGS,
  ...OUTPUT_FLAGS,
};

export const TRAIN_USAGE = `usage: finetorch train --config <recipe.json|yaml> [options]
       finetorch train --resume <out>/last [options]

${usageLines(FLAGS)}

several processes (data-parallel; every other flag goes to each of them):
${usageLines(LAUNCH_FLAGS)}
`;

const metricsRow = (split: string, r: EvalResult): Row =>
  r.entities
    ? {
        split,
        samples: r.samples,
        loss: r.loss,
        entityPrecision: r.entities.precision,
        entityRecall: r.entities.recall,
        entityF1: r.entities.f1,
        entityF1Macro: r.entities.f1Macro,
        wordAccuracy: r.accuracy,
      }
    : classificationRow(split, r);

const classificationRow = (split: string, r: EvalResult): Row => ({
  split,
  samples: r.samples,
  loss: r.loss,
  accuracy: r.accuracy,
  f1Macro: r.f1Macro,
  rocAuc: r.rocAuc,
});

const detectionRow = (split: string, d: DetectionScores): Row => ({
  split,
  map: d.map,
  map50: d.map50,
  map75: d.map75,
  mapSmall: d.mapSmall,
  mapMedium: d.mapMedium,
  mapLarge: d.mapLarge,
  ar100: d.ar100,
});

export async function trainCommand(argv: string[]): Promise<number> {
  // the launcher: this process starts the training processes and does not train itself
  if (wantsLaunch(argv))
    return launchCli('train', argv, TRAIN_USAGE, (rest) => ({
      command: process.execPath,
      args: [...process.execArgv, fileURLToPath(new URL('./main.js', import.meta.url)), 'train', ...rest],
    }));
  const started = Date.now();
  // a launched rank > 0 logs to <out>/<this file> and leaves the run folder's files to rank 0
  const rankLog = process.env.FINETORCH_RANK_LOG;
  let args: ReturnType<typeof parseArgs>;
  try {
    args = parseArgs('train', argv, FLAGS);
    if (args.flags.help) {
      process.stdout.write(TRAIN_USAGE);
      return EXIT.ok;
    }
    if (args.positionals.length) throw new UsageError(`unexpected argument ${JSON.stringify(args.positionals[0])} (the recipe goes after --config)`, 'train');
    if (!args.flags.config && !args.flags.resume) throw new UsageError('give --config <recipe> (or --resume <out>/last)', 'train');
  } catch (err) {
    return usageFailure('train', argv, err, TRAIN_USAGE);
  }
  const flags = args.flags;
  let reporter = reporterFor('train', flags);
  const onSignal: Array<[NodeJS.Signals, () => void]> = [];
  let board: Dashboard | null = null;
  let trained = false; // training ran to its end: the dashboard stays a while

  try {
    // the recipe: from --config, or the run being resumed; flags on top
    const overrides = recipeOverrides(flags);
    if (flags.tensorboard) overrides.push({ path: ['tensorboard'], value: true, from: '--tensorboard' });
    let recipe: Recipe;
    let resumeFrom: string | undefined;
    if (flags.resume) {
      resumeFrom = findCheckpoint(flags.resume as string, 'last');
      const runDir = dirname(resumeFrom);
      const run = readRun(runDir);
      if (!run && !flags.config) throw new UsageError(`--resume: no ${RUN_FILE} in ${runDir}; give --config too`);
      const out = flags.out ? [] : [{ path: ['out'], value: runDir, from: '--resume' }];
      recipe = flags.config
        ? loadRecipe({ file: flags.config as string }, [...out, ...overrides])
        : loadRecipe({ object: run!.recipe as unknown as Record<string, unknown> }, [...out, ...overrides]);
    } else {
      const file = flags.config as string;
      recipe = loadRecipe({ file }, overrides);
      if (!recipe.out) recipe.out = resolve('runs', basename(file, extname(file)));
      if (!rankLog && existsSync(join(recipe.out, RUN_FILE)) && !flags.force)
        throw new UsageError(`${recipe.out} already holds a run; continue it with --resume ${join(recipe.out, 'last')}, or start over with --force`);
    }
    const out = resolve(recipe.out!);
    mkdirSync(out, { recursive: true });
    reporter = reporterFor('train', flags, join(out, rankLog ? basename(rankLog) : 'events.jsonl'));
    if (flags.dashboard && !rankLog) {
      board = await startDashboard(dashboardOptions([out], { host: flags['dashboard-host'], port: flags['dashboard-port'] }));
      reporter.message(`dashboard: ${board.url}`);
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

    const result = await runRecipe(recipe, {
      resumeFrom,
      force: !!flags.force,
      signal: controller.signal,
      onEvent: (e) => {
        if (e.type === 'start') {
          reporter.emit({ ...e, command: 'train', finetorch: finetorchVersion() });
          if (!reporter.json) {
            reporter.message(
              `model ${e.model.arch}${e.model.checkpoint && !resumeFrom ? ` from ${e.model.checkpoint}` : ''}: ${e.model.parameters.toLocaleString('en')} parameters, ${e.model.trainable.toLocaleString('en')} trainable`,
            );
            const tagging = e.recipe.task === 'tokenClassification';
            const detecting = e.recipe.task === 'detection';
            reporter.message(
              tagging
                ? `data: ${e.classes.length} tags (${Object.entries(e.trainCounts)
                    .map(([t, n]) => `${t} ${n}`)
                    .join(
                      ', ',
                    )} training entities), ${e.samples.train} train / ${e.samples.val} val / ${e.samples.test} test documents; ${e.batchesPerEpoch} batches of ${e.recipe.batchSize} windows per epoch`
                : detecting
                  ? `data: ${e.classes.length - 1} classes (${Object.values(e.trainCounts).reduce((a, b) => a + b, 0)} training boxes), ${e.samples.train} train / ${e.samples.val} val / ${e.samples.test} test images; ${e.batchesPerEpoch} batches of ${e.recipe.batchSize} per epoch`
                  : `data: ${e.classes.length} classes, ${e.samples.train} train / ${e.samples.val} val / ${e.samples.test} test samples; ${e.batchesPerEpoch} batches of ${e.recipe.batchSize} per epoch`,
            );
            for (const note of e.notes ?? []) reporter.message(note);
            reporter.message(`output: ${e.out}`);
          }
          reporter.stage(null, { epochs: e.recipe.epochs });
        } else if (e.type === 'eval') {
          // an event in JSON mode and in events.jsonl; the table below shows it on a terminal
          reporter.emit({ ...e });
        } else reporter.train(e);
      },
    });
    if (result.status === 'interrupted') {
      const resume = `finetorch train --resume ${join(out, 'last')}`;
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

    trained = true;
    const rows: Row[] = [];
    const best = result.fit.best;
    if (best && result.val) rows.push(metricsRow(`val (epoch ${best.epoch + 1})`, result.val));
    if (result.test) rows.push(metricsRow('test', result.test));
    // a detector: COCO mAP of the best epoch's validation and of the checkpoint on the test part
    const det = result.detection;
    if (best && det?.val) rows.push(detectionRow(`val (epoch ${best.epoch + 1})`, det.val));
    if (det?.test) rows.push(detectionRow('test', det.test));
    if (rows.length) reporter.table(`results (${basename(result.checkpoint)} checkpoint)`, rows);
    if (!reporter.json) {
      const tb = result.recipe.tensorboard;
      const tbDir = tb ? (typeof tb === 'string' ? tb : join(out, 'tensorboard')) : null;
      reporter.message(`curves: ${join(out, 'curves.png')}${tbDir ? `; TensorBoard: tensorboard --logdir ${tbDir}` : ''}`);
    }
    const test = result.test;
    reporter.emit({
      type: 'end',
      status: 'ok',
      exitCode: EXIT.ok,
      seconds: (Date.now() - started) / 1000,
      epochs: result.fit.epochs,
      best,
      checkpoint: result.checkpoint,
      test: test && {
        loss: test.loss,
        accuracy: test.accuracy,
        f1Macro: test.f1Macro,
        rocAuc: test.rocAuc,
        samples: test.samples,
        ...(test.entities ? { entities: test.entities } : {}),
      },
      ...(result.detection ? { detection: result.detection } : {}),
    });
    reporter.close();
    return EXIT.ok;
  } catch (err) {
    return fail(reporter, err, started);
  } finally {
    for (const [sig, h] of onSignal) process.off(sig, h);
    if (board) await closeDashboard(board, reporter, trained);
  }
}

/**
 * After training, as TensorBoard users expect, the dashboard keeps serving:
 * on a terminal until Ctrl-C; otherwise (scripts, CI) a few seconds, so an
 * open page shows the end. A run stopped by Ctrl-C or an error closes it at once.
 */
async function closeDashboard(board: Dashboard, reporter: Reporter, linger: boolean): Promise<void> {
  if (linger) {
    const interactive = !reporter.json && !!process.stdout.isTTY;
    if (interactive) reporter.message(`training done; the dashboard stays at ${board.url} until Ctrl-C`);
    await new Promise<void>((done) => {
      const stop = () => {
        clearTimeout(timer);
        process.off('SIGINT', stop);
        process.off('SIGTERM', stop);
        done();
      };
      const timer = interactive ? undefined : setTimeout(stop, DASHBOARD_LINGER_MS);
      process.on('SIGINT', stop);
      process.on('SIGTERM', stop);
    });
  }
  await board.close();
}
