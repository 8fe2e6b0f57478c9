// Differential learning rates: parameter groups by block, with explicit
// per-block LRs, a geometric spread from a bottom to a top LR (fastai's
// slice), or layer-wise decay (timm); biases and norm weights (1-D
// parameters) get no weight decay. Frozen parameters are left out.
import type { Module } from '../nn/module.js';
import type { Tensor } from '../tensor/tensor.js';
import { blocksOf } from './blocks.js';
import { ArgumentError } from '../errors.js';

export interface GroupOptions {
  /** One LR per block, bottom (stem) to top (head). */
  lrs?: number[];
  /** Geometric spread: the first block gets bottom, the last top (fastai `slice(bottom, top)`). */
  bottom?: number;
  top?: number;
  /** Layer-wise decay (timm): block i of L gets baseLr * decay^(L-1-i). */
  baseLr?: number;
  decay?: number;
  weightDecay?: number;
  /** No weight decay on 1-D parameters (biases, norm weights); default true. */
  noDecayOn1d?: boolean;
}

export interface GroupSpec { params: Tensor[]; lr: number; weightDecay: number; block: string }

/** The LR of each of `n` blocks for the given options. */
export function blockLrs(n: number, o: GroupOptions): number[] {
  if (o.lrs) {
    if (o.lrs.length !== n) throw new ArgumentError('finetune.paramGroups', `lrs has ${o.lrs.length} entries but the model has ${n} blocks`);
    return [...o.lrs];
  }
  if (o.bottom !== undefined && o.top !== undefined) {
    if (!(o.bottom > 0 && o.top > 0)) throw new ArgumentError('finetune.paramGroups', 'bottom and top must be > 0');
    if (n === 1) return [o.top];
    return Array.from({ length: n }, (_, i) => o.bottom! * (o.top! / o.bottom!) ** (i / (n - 1)));
  }
  if (o.baseLr !== undefined && o.decay !== undefined) return Array.from({ length: n }, (_, i) => o.baseLr! * o.decay! ** (n - 1 - i));
  throw new ArgumentError('finetune.paramGroups', 'pass {lrs}, {bottom, top} or {baseLr, decay}');
}

/** Param groups (PyTorch style) for an optimizer: one or two per block. */
export function paramGroups(model: Module, options: GroupOptions): GroupSpec[] {
  const blocks = blocksOf(model);
  const lrs = blockLrs(blocks.length, options);
  const wd = options.weightDecay ?? 0;
  const split = options.noDecayOn1d ?? true;
  const groups: GroupSpec[] = [];
  blocks.forEach((b, i) => {
    const params = b.modules.flatMap((m) => m.parameters()).filter((p) => p.requiresGrad);
    const decay = split ? params.filter((p) => p.ndim > 1) : params;
    const noDecay = split ? params.filter((p) => p.ndim <= 1) : [];
    if (decay.length) groups.push({ params: decay, lr: lrs[i], weightDecay: wd, block: b.name });
    if (noDecay.length) groups.push({ params: noDecay, lr: lrs[i], weightDecay: 0, block: b.name });
  });
  if (!groups.length) throw new ArgumentError('finetune.paramGroups', 'every parameter is frozen; nothing to optimize');
  return groups;
}
