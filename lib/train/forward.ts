// Running a model on a batch's input: one tensor goes in as is; named inputs
// (text: {inputIds, attentionMask, tokenTypeIds}) go in the order the model's
// `inputNames` declare, so text batches need no packing and no custom forward.
import type { Module } from '../nn/module.js';
import { Tensor } from '../tensor/tensor.js';
import type { ModelInput } from '../data/batch.js';

export type ForwardFn = (model: Module, input: ModelInput) => Promise<Tensor>;

/** The positional arguments of model.forward for an input; named inputs are ordered by model.inputNames. */
export function forwardArgs(model: Module, input: ModelInput): Tensor[] {
  if (input instanceof Tensor) return [input];
  const names = model.inputNames;
  const given = Object.keys(input);
  if (!names)
    throw new TypeError(
      `${model.constructor.name} takes positional tensors, not named inputs {${given.join(', ')}}: pass a Tensor, or give fit/evaluate/predict a forward function`,
    );
  const unknown = given.filter((k) => !names.includes(k));
  if (unknown.length) throw new TypeError(`${model.constructor.name} has no input named ${unknown.join(', ')} (its inputs: ${names.join(', ')})`);
  const last = Math.max(...names.map((n, i) => (n in input ? i : -1)));
  const args: Tensor[] = [];
  for (let i = 0; i <= last; i++) {
    const t = input[names[i]];
    if (!t)
      throw new TypeError(
        `${model.constructor.name}: input ${names[i]} is missing but ${names
          .slice(i + 1)
          .filter((n) => n in input)
          .join(', ')} is given`,
      );
    args.push(t);
  }
  return args;
}

/** The default forward of fit, evaluate and predict. */
export const forwardInput: ForwardFn = (model, input) => model.forwardAsync(...forwardArgs(model, input));
