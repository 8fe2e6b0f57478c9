// Pieces every finetorch subcommand shares: the recipe-override and output
// flags, choosing text or JSON Lines output, and turning an outcome or an
// error into the closing event and the exit code.
import type { FlagSpec, FlagValues } from './args.js';
import { classify, UsageError } from './errors.js';
import { createReporter, type Reporter } from './progress.js';

export const RECIPE_FLAGS: Record<string, FlagSpec> = {
  epochs: { type: 'positiveInt', arg: 'n', help: 'recipe.epochs' },
  lr: { type: 'positiveNumber', arg: 'lr', help: 'recipe.optimizer.lr: one LR for every group (replaces bottomLr/topLr/lrs)' },
  'batch-size': { type: 'positiveInt', arg: 'n', help: 'recipe.batchSize' },
  seed: { type: 'int', arg: 'n', help: 'recipe.seed' },
  device: { type: 'string', arg: 'cpu|cuda|cuda:N', help: 'recipe.device' },
  set: {
    type: 'string',
    repeat: true,
    arg: 'field=value',
    help: 'any recipe field, e.g. --set optimizer.lr=1e-4 --set data.imageSize=64 (value: JSON or text)',
  },
};

export const OUTPUT_FLAGS: Record<string, FlagSpec> = {
  json: { type: 'boolean', help: 'JSON Lines events on stdout (the default when stdout is not a terminal)' },
  pretty: { type: 'boolean', help: 'human-readable output even when stdout is not a terminal' },
  help: { type: 'boolean', help: 'this help' },
};

export function reporterFor(command: string, flags: FlagValues, logFile?: string): Reporter {
  const json = flags.json ? true : flags.pretty ? false : !process.stdout.isTTY;
  return createReporter({ json, command, logFile });
}

/** Reports an error thrown by a command; returns its exit code. */
export function fail(reporter: Reporter, err: unknown, started: number): number {
  const { kind, code } = classify(err);
  const message = err instanceof Error ? (kind === 'runtime' && process.env.FINETORCH_DEBUG ? (err.stack ?? err.message) : err.message) : String(err);
  reporter.close();
  reporter.error(message, kind, code);
  reporter.emit({ type: 'end', status: kind === 'diverged' ? 'diverged' : 'error', exitCode: code, seconds: (Date.now() - started) / 1000 });
  return code;
}

/** A command line that does not parse: the message and usage on stderr, and in JSON mode an error and an end event on stdout. */
export function usageFailure(command: string, argv: string[], err: unknown, usage: string): number {
  const message = (err as Error).message;
  const json = argv.includes('--json') || (!argv.includes('--pretty') && !process.stdout.isTTY);
  if (json) {
    const reporter = createReporter({ json: true, command, errorStream: { write: () => true } });
    reporter.error(message, 'usage', 2);
    reporter.emit({ type: 'end', status: 'error', exitCode: 2, seconds: 0 });
  }
  const detail = err instanceof UsageError ? err.detail : message;
  process.stderr.write(`finetorch ${command}: ${detail}\n\n${usage}`);
  return 2;
}
