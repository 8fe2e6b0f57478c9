// Gradual unfreezing (fastai's fine_tune, Lightning's BackboneFinetuning):
// make blocks trainable and add their parameters to the live optimizer as a
// new group with its own LR.
import type { Module } from '../nn/module.js';
import type { Optimizer } from '../optim/optimizer.js';
import { blocksOf } from './blocks.js';
import { unfreeze } from './freeze.js';
import { ArgumentError } from '../errors.js';

export function unfreezeInto(model: Module, optimizer: Optimizer, blocks: string[], options: { lr: number; weightDecay?: number }): number {
  const known = blocksOf(model).map((b) => b.name);
  for (const b of blocks) if (!known.includes(b)) throw new ArgumentError('finetune.unfreezeInto', `no block '${b}' (blocks: ${known.join(', ')})`);
  unfreeze(model, { blocks });
  const inOptimizer = new Set(optimizer.paramGroups.flatMap((g) => g.params.map((p) => p.id)));
  const params = blocksOf(model)
    .filter((b) => blocks.includes(b.name))
    .flatMap((b) => b.modules.flatMap((m) => m.parameters()))
    .filter((p) => !inOptimizer.has(p.id));
  if (params.length) optimizer.addParamGroup({ params, lr: options.lr, ...(options.weightDecay !== undefined ? { weightDecay: options.weightDecay } : {}) });
  return params.length;
}
