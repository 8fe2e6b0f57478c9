// nn.CRF: a linear-chain conditional random field with pytorch-crf's
// semantics and parameter names, so its checkpoints and expectations carry
// over. The forward algorithm (log partition), the gold path score and
// Viterbi run natively (native/crf.cc), batched, one call each.
import { native } from '../native/loader.js';
import { Tensor } from '../tensor/tensor.js';
import { ArgumentError } from '../errors.js';
import { Module, registerKind } from './module.js';

/** pytorch-crf's reductions of the per-sequence log-likelihoods. */
export type CRFReduction = 'none' | 'sum' | 'mean' | 'token_mean';
const REDUCTIONS: readonly string[] = ['none', 'sum', 'mean', 'token_mean'];

export interface CRFForwardOptions {
  /** How the per-sequence log-likelihoods are combined (default 'sum', as pytorch-crf). */
  reduction?: CRFReduction;
}

export interface CRFOptions {
  /** Inputs are [batch, time, ...] instead of [time, batch, ...] (default false, as pytorch-crf). */
  batchFirst?: boolean;
}

function tensorArg(fn: string, name: string, v: unknown, optional = false): Tensor | undefined {
  if (v === undefined || v === null) {
    if (optional) return undefined;
    throw new ArgumentError(fn, `${name} is required (a Tensor)`, name);
  }
  if (!(v instanceof Tensor)) throw new ArgumentError(fn, `${name} must be a Tensor, got ${typeof v}`, name);
  return v;
}

/**
 * A linear-chain CRF over `numTags` tags (pytorch-crf's torchcrf.CRF).
 * Parameters: start_transitions [K], end_transitions [K], transitions [K, K]
 * (from -> to), initialised uniform(-0.1, 0.1). The score of a tag path is
 * start[y0] + sum of its emissions + sum of transitions[y(t-1), y(t)] +
 * end[y_last].
 *
 * Shapes (time-first by default; batchFirst swaps the first two dimensions):
 * emissions float [T, B, K], tags int64 [T, B], mask bool or uint8 [T, B].
 * The mask must be a left-aligned prefix in each sequence (on for the first
 * timestep, and never on again after an off); anything else is an error.
 * Tags under the mask's off positions are ignored (padding such as -100 is fine).
 */
export class CRF extends Module {
  constructor(numTags: number, options: CRFOptions = {}) {
    if (!Number.isInteger(numTags) || numTags < 1) throw new ArgumentError('nn.CRF', `numTags must be a positive integer, got ${String(numTags)}`, 'numTags');
    const batchFirst = options.batchFirst ?? false;
    if (typeof batchFirst !== 'boolean') throw new ArgumentError('nn.CRF', `batchFirst must be a boolean, got ${String(batchFirst)}`, 'batchFirst');
    super(native.createCrf(numTags, batchFirst));
  }

  /** The number of tags K. */
  get numTags(): number {
    return native.crfOptions(this.handle).numTags;
  }
  /** Whether inputs are [batch, time, ...]. */
  get batchFirst(): boolean {
    return native.crfOptions(this.handle).batchFirst;
  }

  /**
   * The log-likelihood of the gold tag paths (differentiable; the loss is its
   * negative). reduction: 'none' gives one value per sequence [B]; 'sum'
   * (the default, as pytorch-crf) their sum; 'mean' their mean over the
   * batch; 'token_mean' the sum divided by the number of masked-in tokens.
   */
  override forward(emissions: Tensor, tags: Tensor, mask?: Tensor | null, options?: CRFForwardOptions): Tensor;
  // (Module's positional signature, so a CRF is a Module to TypeScript.)
  override forward(...inputs: Tensor[]): Tensor;
  override forward(emissions: Tensor, tags: Tensor, mask?: Tensor | null, options?: CRFForwardOptions | Tensor): Tensor {
    const fn = 'CRF.forward';
    if (options instanceof Tensor) throw new ArgumentError(fn, 'takes (emissions, tags, mask?, { reduction? }); got a fourth Tensor', 'options');
    tensorArg(fn, 'emissions', emissions);
    tensorArg(fn, 'tags', tags);
    tensorArg(fn, 'mask', mask, true);
    const reduction = options?.reduction ?? 'sum';
    if (!REDUCTIONS.includes(reduction))
      throw new ArgumentError(fn, `reduction must be one of ${REDUCTIONS.map((r) => `'${r}'`).join(', ')}, got ${JSON.stringify(reduction)}`, 'reduction');
    return new Tensor(native.crfLogLikelihood(this.handle, emissions.handle, tags.handle, mask?.handle ?? null, reduction));
  }

  /** The log-likelihood of the gold paths; same as forward (pytorch-crf calls it by calling the module). */
  logLikelihood(emissions: Tensor, tags: Tensor, mask?: Tensor | null, options: CRFForwardOptions = {}): Tensor {
    return this.forward(emissions, tags, mask, options);
  }

  /** The most likely tag path of each sequence (Viterbi), trimmed to the sequence's length (the mask's count). */
  decode(emissions: Tensor, mask?: Tensor | null): number[][] {
    const fn = 'CRF.decode';
    tensorArg(fn, 'emissions', emissions);
    tensorArg(fn, 'mask', mask, true);
    return native.crfDecode(this.handle, emissions.handle, mask?.handle ?? null);
  }
}

registerKind('CRF', CRF);
