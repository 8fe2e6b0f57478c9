// The errors finetorch's library throws on purpose, with structured fields so
// that programs (the CLI among them) can tell them apart with instanceof and
// read what was wrong and where, instead of parsing messages. No native
// import here: the CLI loads this before libtorch.

export type ErrorCode = 'argument' | 'config' | 'data' | 'checkpoint' | 'diverged';

/** Base class of finetorch's own errors. `code` says which kind; the subclasses add where. */
export class FinetorchError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'FinetorchError';
  }
}

/**
 * A bad argument to a library function. The message is `fn: detail`;
 * `detail` alone is there for callers that report it under their own name
 * (a recipe field, a flag).
 */
export class ArgumentError extends FinetorchError {
  readonly detail: string;
  constructor(
    readonly fn: string,
    detail: string,
    readonly argument?: string,
  ) {
    super('argument', `${fn}: ${detail}`);
    this.detail = detail;
    this.name = 'ArgumentError';
  }
}

/** A recipe (or other configuration) field whose value does not fit the model or the data; `field` is its path, e.g. `recipe.freeze.blocks`. */
export class ConfigError extends FinetorchError {
  readonly detail: string;
  constructor(
    readonly field: string,
    detail: string,
    options?: { cause?: unknown },
  ) {
    super('config', `${field}: ${detail}`, options);
    this.detail = detail;
    this.name = 'ConfigError';
  }
}

/** Missing, unreadable or inconsistent data; `path` (and `row`, 1-based) say where when known. */
export class DataError extends FinetorchError {
  readonly path?: string;
  readonly row?: number;
  constructor(message: string, options: { path?: string; row?: number; cause?: unknown } = {}) {
    super('data', message, { cause: options.cause });
    this.path = options.path;
    this.row = options.row;
    this.name = 'DataError';
  }
}

/** A checkpoint or run folder (or one of its files) that is missing, incomplete or unreadable. The message is `path: detail`. */
export class CheckpointError extends FinetorchError {
  readonly detail: string;
  constructor(
    readonly path: string,
    detail: string,
    options?: { cause?: unknown },
  ) {
    super('checkpoint', `${path}: ${detail}`, options);
    this.detail = detail;
    this.name = 'CheckpointError';
  }
}

/** Runs `fn` and turns an unexpected failure into a DataError (for code that only reads data); finetorch's own errors pass through. */
export async function asDataError<T>(fn: () => T | Promise<T>, path?: string): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof FinetorchError) throw err;
    throw new DataError((err as Error).message, { path, cause: err });
  }
}
