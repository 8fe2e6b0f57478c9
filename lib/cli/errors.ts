// Exit codes of the finetorch CLI and the errors that map to them
// (documented in docs/cli.md).
import { RecipeError } from '../recipes/schema.js';

export const EXIT = {
  ok: 0,
  /** Anything unexpected: a bug, a native failure, an unreadable checkpoint. */
  runtime: 1,
  /** Bad command line or bad recipe. */
  usage: 2,
  /** The data is missing, unreadable or does not fit the recipe. */
  data: 3,
  /** The loss became NaN or infinite. */
  diverged: 4,
  /** Stopped by SIGINT (Ctrl-C) or SIGTERM; a resumable checkpoint was written. */
  interrupted: 130,
} as const;

export type ErrorKind = 'usage' | 'config' | 'data' | 'diverged' | 'runtime';

/** A bad command line: unknown flag, missing value, value of the wrong type. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

/** A recipe that validates field by field but does not fit the model or data (e.g. lrs for 4 blocks on a 6-block model). */
export class ConfigError extends Error {
  constructor(readonly field: string, message: string) {
    super(`${field}: ${message}`);
    this.name = 'ConfigError';
  }
}

/** Missing, unreadable or inconsistent data. */
export class DataError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'DataError';
  }
}

export function classify(err: unknown): { kind: ErrorKind; code: number } {
  if (err instanceof UsageError) return { kind: 'usage', code: EXIT.usage };
  if (err instanceof RecipeError || err instanceof ConfigError) return { kind: 'config', code: EXIT.usage };
  if (err instanceof DataError) return { kind: 'data', code: EXIT.data };
  // TrainingDivergedError (lib/train/trainer.ts), matched by name so this file does not load the native addon
  if (err instanceof Error && (err.name === 'TrainingDivergedError' || /training diverged/.test(err.message))) return { kind: 'diverged', code: EXIT.diverged };
  return { kind: 'runtime', code: EXIT.runtime };
}

/** Runs `fn` and turns whatever it throws into a DataError (for code that only reads data). */
export async function asDataError<T>(fn: () => T | Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof DataError || err instanceof ConfigError || err instanceof RecipeError || err instanceof UsageError) throw err;
    throw new DataError((err as Error).message, { cause: err });
  }
}
