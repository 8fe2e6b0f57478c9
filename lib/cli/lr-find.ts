// `finetorch lr-find --config recipe.yaml`: the LR range test (fastai's
// lr_find) on the recipe's model, optimizer and training data; writes
// lr-find.json and the plot lr-find.svg/.png, prints the suggested LR and the
// rule that chose it. The work is lrFindRecipe's (recipes/lr-find.ts).
import { basename, extname, resolve } from 'node:path';
import { lrFindRecipe, formatLr } from '../recipes/lr-find.js';
import { SUGGESTION_RULES, type SuggestionRule } from '../train/lr-find.js';
import { parseArgs, recipeOverrides, usageLines, type FlagSpec } from './args.js';
import { OUTPUT_FLAGS, RECIPE_FLAGS, fail, reporterFor, usageFailure } from './command.js';
import { EXIT, UsageError } from './errors.js';
import { loadRecipe } from './recipe-file.js';

const FLAGS: Record<string, FlagSpec> = {
  config: { type: 'string', arg: 'recipe.json|yaml', help: 'the recipe whose model, optimizer and training data are tested' },
  'start-lr': { type: 'positiveNumber', arg: 'lr', help: 'the first LR (default 1e-7)' },
  'end-lr': { type: 'positiveNumber', arg: 'lr', help: 'the last LR (default 10)' },
  'num-it': { type: 'positiveInt', arg: 'n', help: 'iterations (mini-batches) at most (default 100)' },
  'stop-div': { type: 'boolean', help: 'stop when the smoothed loss passes 4x its minimum (default true; --stop-div=false runs every iteration)' },
  suggest: { type: 'string', arg: 'valley|steep|minimum', help: 'the rule of the suggested LR (default valley, as fastai)' },
  out: { type: 'string', arg: 'dir', help: 'where lr-find.json, lr-find.svg and lr-find.png go (default recipe.out, else runs/<recipe name>)' },
  ...RECIPE_FLAGS,
  ...OUTPUT_FLAGS,
};

export const LR_FIND_USAGE = `usage: finetorch lr-find --config <recipe.json|yaml> [--start-lr 1e-7] [--end-lr 10] [--num-it 100] [--out dir]

The LR range test (Smith 2017; fastai's lr_find): trains on up to num-it
batches while the LR grows exponentially from start-lr to end-lr, stops when
the smoothed loss diverges, and suggests an LR from the curve. The model and
the optimizer are not kept: this changes nothing for a later train.

${usageLines(FLAGS)}
`;

export async function lrFindCommand(argv: string[]): Promise<number> {
  const started = Date.now();
  let args: ReturnType<typeof parseArgs>;
  try {
    args = parseArgs('lr-find', argv, FLAGS);
    if (args.flags.help) {
      process.stdout.write(LR_FIND_USAGE);
      return EXIT.ok;
    }
    if (args.positionals.length) throw new UsageError(`unexpected argument ${JSON.stringify(args.positionals[0])} (the recipe goes after --config)`, 'lr-find');
    if (!args.flags.config) throw new UsageError('give --config <recipe>', 'lr-find');
    const rule = args.flags.suggest;
    if (rule !== undefined && !SUGGESTION_RULES.includes(rule as SuggestionRule))
      throw new UsageError(`--suggest: expected ${SUGGESTION_RULES.join(', ')}, got ${JSON.stringify(rule)}`, 'lr-find');
  } catch (err) {
    return usageFailure('lr-find', argv, err, LR_FIND_USAGE);
  }
  const flags = args.flags;
  const reporter = reporterFor('lr-find', flags);
  try {
    const file = flags.config as string;
    const recipe = loadRecipe({ file }, recipeOverrides(flags));
    const out = resolve((flags.out as string | undefined) ?? recipe.out ?? resolve('runs', basename(file, extname(file))));
    const startLr = flags['start-lr'] as number | undefined;
    const endLr = flags['end-lr'] as number | undefined;
    if (startLr !== undefined && endLr !== undefined && !(endLr > startLr))
      throw new UsageError(`--end-lr (${endLr}) must be above --start-lr (${startLr})`, 'lr-find');
    reporter.emit({
      type: 'start',
      command: 'lr-find',
      config: resolve(file),
      out,
      startLr: startLr ?? 1e-7,
      endLr: endLr ?? 10,
      numIt: flags['num-it'] ?? 100,
    });
    const r = await lrFindRecipe(recipe, {
      startLr,
      endLr,
      numIt: flags['num-it'] as number | undefined,
      stopDiv: flags['stop-div'] as boolean | undefined,
      suggest: flags.suggest as SuggestionRule | undefined,
      out,
    });
    const stopped =
      r.stopped === 'diverged'
        ? 'the smoothed loss passed 4x its minimum'
        : r.stopped === 'nonFinite'
          ? 'the loss became NaN or infinite'
          : 'all iterations ran';
    if (reporter.json) {
      const { lrs, losses, rawLosses, ...summary } = r;
      reporter.emit({ type: 'lr-find', ...summary, iterations: lrs.length });
    } else {
      for (const note of r.notes) reporter.message(note);
      reporter.message(`${r.lrs.length} iterations from ${formatLr(r.lrs[0] ?? startLr ?? 1e-7)} to ${formatLr(r.lrs.at(-1) ?? 0)} (${stopped})`);
      reporter.table(
        'suggested learning rates',
        SUGGESTION_RULES.map((rule) => ({
          rule: rule + (rule === r.rule ? ' (suggested)' : ''),
          lr: r.suggestion[rule] === null ? null : formatLr(r.suggestion[rule]!),
        })),
      );
      reporter.message(
        r.suggested !== null
          ? `suggested LR: ${formatLr(r.suggested)} (rule: ${r.rule}); set it with --set optimizer.lr=${formatLr(r.suggested)}`
          : `no suggestion: only ${r.lrs.length} iterations before the test stopped (${stopped}); lower --start-lr or raise --num-it`,
      );
      reporter.message(`wrote ${r.files.join(', ')}`);
    }
    reporter.emit({
      type: 'end',
      status: 'ok',
      exitCode: EXIT.ok,
      seconds: (Date.now() - started) / 1000,
      suggested: r.suggested,
      rule: r.rule,
      files: r.files,
    });
    reporter.close();
    return EXIT.ok;
  } catch (err) {
    return fail(reporter, err, started);
  }
}
