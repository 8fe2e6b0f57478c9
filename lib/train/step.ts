// One whole supervised training step on a worker thread: zero grads, forward,
// loss, backward, optimizer step. The event loop stays free meanwhile.
import { native } from '../native/loader.js';
import { Module } from '../nn/module.js';
import { Tensor } from '../tensor/tensor.js';
import type { Optimizer } from '../optim/optimizer.js';

export interface TrainStepOptions {
  model: Module;
  optimizer: Optimizer;
  input: Tensor;
  target: Tensor;
  /** Built-in losses that run natively with the step (default crossEntropy). */
  loss?: 'crossEntropy' | 'bceWithLogits' | 'mse';
  reduction?: 'mean' | 'sum';
  labelSmoothing?: number;
  /** Per-class weights for crossEntropy, per-element for bceWithLogits. */
  weight?: Tensor;
}

export interface TrainStepResult {
  /** The loss value (detached). */
  loss: Tensor;
  /** The model's output (detached), for metrics. */
  output: Tensor;
}

/**
 * Runs a full step off the main thread. The model must have a native forward
 * (built-in layers, Sequentials of them, native architectures); for a model
 * with a TypeScript forward, use forward/backwardAsync/stepAsync instead.
 */
export async function trainStepAsync(o: TrainStepOptions): Promise<TrainStepResult> {
  if (!(o.model instanceof Module)) throw new TypeError('trainStepAsync: model must be an nn.Module');
  if (!(o.input instanceof Tensor) || !(o.target instanceof Tensor)) throw new TypeError('trainStepAsync: input and target must be Tensors');
  if (!native.moduleHasNativeForward(o.model.handle))
    throw new TypeError(`trainStepAsync: ${o.model.constructor.name} has a TypeScript forward(); use forward(), backwardAsync() and stepAsync()`);
  const [loss, output] = await native.trainStepAsync(o.model.handle, o.optimizer.handle, o.input.handle, o.target.handle, {
    loss: o.loss,
    reduction: o.reduction,
    labelSmoothing: o.labelSmoothing,
    weight: o.weight?.handle,
  });
  return { loss: new Tensor(loss), output: new Tensor(output) };
}
