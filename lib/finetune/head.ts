// Head swap: replace the model's head with a freshly initialised Linear of
// the right size, on the same device and dtype (ResNet `fc`, VGG/EfficientNet
// `classifier.N`, BERT-family `classifier`/`out_proj`). For TorchScript
// modules, whose graph cannot take a new module, the Linear head's
// parameters are replaced instead.
import { jit } from '../io/jit.js';
import { Module } from '../nn/module.js';
import { Linear } from '../nn/layers.js';
import { torch } from '../tensor/index.js';
import { headOf } from './blocks.js';
import { ArgumentError } from '../errors.js';

export function swapHead(model: Module, numClasses: number, options: { path?: string } = {}): Module {
  if (!(model instanceof Module)) throw new ArgumentError('finetune.swapHead', 'model must be an nn.Module');
  if (!Number.isInteger(numClasses) || numClasses < 1) throw new ArgumentError('finetune.swapHead', `numClasses must be a positive integer, got ${numClasses}`);
  // a model whose head is more than one Linear (a tagger's classifier and CRF) swaps it itself
  const own = (model as { swapHead?: (n: number) => Module }).swapHead;
  if (typeof own === 'function' && options.path === undefined) return own.call(model, numClasses);
  const path = options.path ?? headOf(model).path;
  const old = model.getSubmodule(path);
  const weight = Object.fromEntries(old.namedParameters({ recurse: false })).weight;
  if (weight?.ndim !== 2) throw new ArgumentError('finetune.swapHead', `'${path}' is not a Linear layer (no 2-D weight); pass {path} of the Linear head`);
  const inFeatures = weight.shape[1];
  const hasBias = old.namedParameters({ recurse: false }).some(([n]) => n === 'bias');
  const fresh = new Linear(inFeatures, numClasses, { bias: hasBias }).to(weight.device, weight.dtype);
  if (jit.isScriptModule(model)) {
    for (const [name, p] of fresh.namedParameters()) old.registerParameter(name, p.detach().clone());
    fresh.dispose();
    return old;
  }
  model.replaceChild(path, fresh);
  return fresh;
}

/** Kept for symmetry with PyTorch code that re-initialises a head in place. */
export function resetHead(model: Module): void {
  const { module } = headOf(model);
  torch.noGrad(() => {
    const [weight, bias] = module.parameters();
    const bound = 1 / Math.sqrt(weight.shape[1]);
    weight.copy_(
      torch
        .rand(weight.shape, { dtype: weight.dtype })
        .mul(2 * bound)
        .sub(bound),
    );
    bias?.copy_(
      torch
        .rand(bias.shape, { dtype: bias.dtype })
        .mul(2 * bound)
        .sub(bound),
    );
  });
}
