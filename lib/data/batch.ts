// What a batch holds. A model input is one tensor (images: [N, C, H, W]) or
// named tensors (text: {inputIds, attentionMask, tokenTypeIds}, each
// [N, sequence]), so text batches need no packing; fit, evaluate and predict
// pass named inputs to the model in the order its `inputNames` declare.
import { Tensor } from '../tensor/tensor.js';

/** Named model inputs, e.g. what a tokenizer's encodeBatch returns. */
export type NamedInputs = { [name: string]: Tensor };
export type ModelInput = Tensor | NamedInputs;

export interface Batch {
  input: ModelInput;
  target: Tensor;
}

/** The tensors of an input, in insertion order. */
export function inputTensors(input: ModelInput): Tensor[] {
  return input instanceof Tensor ? [input] : Object.values(input);
}

/** Applies `fn` to every tensor of an input, keeping its shape (one tensor or the same names). */
export function mapInput(input: ModelInput, fn: (t: Tensor) => Tensor): ModelInput {
  if (input instanceof Tensor) return fn(input);
  return Object.fromEntries(Object.entries(input).map(([k, t]) => [k, fn(t)]));
}

export function disposeInput(input: ModelInput): void {
  for (const t of inputTensors(input)) t.dispose();
}

/** Checks an input given to a loader: a tensor or an object of tensors with the same first dimension; returns that size. */
export function inputSize(input: unknown, where: string): number {
  if (input instanceof Tensor) return input.shape[0];
  if (!input || typeof input !== 'object' || Array.isArray(input))
    throw new TypeError(
      `${where}: input must be a Tensor or an object of named Tensors ({inputIds, attentionMask}), got ${Array.isArray(input) ? 'an array' : typeof input}`,
    );
  const entries = Object.entries(input);
  if (!entries.length) throw new TypeError(`${where}: input has no tensors`);
  let size: number | null = null;
  for (const [name, t] of entries) {
    if (!(t instanceof Tensor)) throw new TypeError(`${where}: input.${name} must be a Tensor`);
    if (size === null) size = t.shape[0];
    else if (t.shape[0] !== size) throw new TypeError(`${where}: input.${name} has ${t.shape[0]} rows, input.${entries[0][0]} has ${size}`);
  }
  return size!;
}
