// torch.nn.functional: activations and losses as functions.
import { native } from '../native/loader.js';
import { Tensor } from '../tensor/tensor.js';

export type Reduction = 'mean' | 'sum' | 'none';

function reduction(where: string, r: Reduction | undefined): Reduction | undefined {
  if (r !== undefined && r !== 'mean' && r !== 'sum' && r !== 'none')
    throw new TypeError(`${where}: reduction must be 'mean', 'sum' or 'none', got ${JSON.stringify(r)}`);
  return r;
}

function tensorArg(where: string, name: string, t: unknown): Tensor {
  if (!(t instanceof Tensor)) throw new TypeError(`${where}: ${name} must be a Tensor`);
  return t;
}

export interface CrossEntropyOptions {
  /** Per-class weights [C]. */
  weight?: Tensor;
  reduction?: Reduction;
  /** Target value that is ignored (default -100). */
  ignoreIndex?: number;
  /** In [0, 1]: mixes the target with the uniform distribution (Szegedy et al.). */
  labelSmoothing?: number;
}

/** Cross-entropy of logits [N, C] (or [N, C, ...]) against class indices [N] or class probabilities [N, C]. */
export function crossEntropy(input: Tensor, target: Tensor, options: CrossEntropyOptions = {}): Tensor {
  const w = 'crossEntropy';
  if (options.labelSmoothing !== undefined && !(options.labelSmoothing >= 0 && options.labelSmoothing <= 1))
    throw new TypeError(`${w}: labelSmoothing must be in [0, 1], got ${options.labelSmoothing}`);
  return new Tensor(
    native.crossEntropy(tensorArg(w, 'input', input).handle, tensorArg(w, 'target', target).handle, {
      weight: options.weight?.handle,
      reduction: reduction(w, options.reduction),
      ignoreIndex: options.ignoreIndex,
      labelSmoothing: options.labelSmoothing,
    }),
  );
}

/** Negative log-likelihood of log-probabilities [N, C] against class indices [N]. */
export function nllLoss(input: Tensor, target: Tensor, options: Omit<CrossEntropyOptions, 'labelSmoothing'> = {}): Tensor {
  const w = 'nllLoss';
  return new Tensor(
    native.nllLoss(tensorArg(w, 'input', input).handle, tensorArg(w, 'target', target).handle, {
      weight: options.weight?.handle,
      reduction: reduction(w, options.reduction),
      ignoreIndex: options.ignoreIndex,
    }),
  );
}

/** Binary cross-entropy on logits (PyTorch's binary_cross_entropy_with_logits). */
export function bceWithLogits(input: Tensor, target: Tensor, options: { weight?: Tensor; posWeight?: Tensor; reduction?: Reduction } = {}): Tensor {
  const w = 'bceWithLogits';
  return new Tensor(
    native.bceWithLogits(tensorArg(w, 'input', input).handle, tensorArg(w, 'target', target).handle, {
      weight: options.weight?.handle,
      posWeight: options.posWeight?.handle,
      reduction: reduction(w, options.reduction),
    }),
  );
}

export function mseLoss(input: Tensor, target: Tensor, options: { reduction?: Reduction } = {}): Tensor {
  const w = 'mseLoss';
  return new Tensor(native.mseLoss(tensorArg(w, 'input', input).handle, tensorArg(w, 'target', target).handle, { reduction: reduction(w, options.reduction) }));
}

export const relu = (x: Tensor): Tensor => x.relu();
export const gelu = (x: Tensor): Tensor => new Tensor(native.gelu(x.handle));
export const sigmoid = (x: Tensor): Tensor => x.sigmoid();
export const tanh = (x: Tensor): Tensor => x.tanh();
export const softmax = (x: Tensor, dim: number): Tensor => x.softmax(dim);
export const logSoftmax = (x: Tensor, dim: number): Tensor => x.logSoftmax(dim);
export const oneHot = (x: Tensor, numClasses = -1): Tensor => new Tensor(native.oneHot(x.handle, numClasses));
export const linear = (x: Tensor, weight: Tensor, bias?: Tensor): Tensor => new Tensor(native.linear(x.handle, weight.handle, bias?.handle ?? null));
export const dropout = (x: Tensor, p = 0.5, training = true): Tensor => {
  if (!(p >= 0 && p <= 1)) throw new TypeError(`dropout: p must be in [0, 1], got ${p}`);
  return new Tensor(native.dropout(x.handle, p, training));
};
