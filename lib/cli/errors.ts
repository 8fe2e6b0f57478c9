// Exit codes of the finetorch CLI and how errors map to them (documented in
// docs/cli.md). The library's errors carry their kind (lib/errors.ts); only
// UsageError, a bad command line, is the CLI's own.
import { FinetorchError } from '../errors.js';

export { ConfigError, DataError, CheckpointError, asDataError } from '../errors.js';

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

/** A bad command line: unknown flag, missing value, value of the wrong type, a path argument that is not what the command needs. */
export class UsageError extends Error {
  /** The message without the command; the message is `finetorch <command>: <detail>` when the command is given. */
  readonly detail: string;
  constructor(
    detail: string,
    readonly command?: string,
  ) {
    super(command ? `finetorch ${command}: ${detail}` : detail);
    this.detail = detail;
    this.name = 'UsageError';
  }
}

export function classify(err: unknown): { kind: ErrorKind; code: number } {
  if (err instanceof UsageError) return { kind: 'usage', code: EXIT.usage };
  if (err instanceof FinetorchError) {
    switch (err.code) {
      case 'config':
      case 'argument':
        return { kind: 'config', code: EXIT.usage };
      // a checkpoint named on the command line that cannot be used: the user's argument is at fault
      case 'checkpoint':
        return { kind: 'usage', code: EXIT.usage };
      case 'data':
        return { kind: 'data', code: EXIT.data };
      case 'diverged':
        return { kind: 'diverged', code: EXIT.diverged };
    }
  }
  return { kind: 'runtime', code: EXIT.runtime };
}
