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
  /** Geometric spread: the first block gets bottomLr, the last topLr (fastai `slice(bottom, top)`); a recipe's optimizer.bottomLr / topLr. */
  bottomLr?: number;
  topLr?: number;
  /** Older names of bottomLr and topLr (still accepted). */
  bottom?: number;
  top?: number;
  /** Layer-wise decay (timm): block i of L gets baseLr * decay^(L-1-i). */
  baseLr?: number;
  decay?: number;
  weightDecay?: number;
  /** No weight decay on 1-D parameters (biases, norm weights); default true. */
  noDecayOn1d?: boolean;
}

export interface GroupSpec {
  params: Tensor[];
  lr: number;
  weightDecay: number;
  block: string;
}

/** The LR of each of `n` blocks for the given options. */
export function blockLrs(n: number, o: GroupOptions): number[] {
  if (o.lrs) {
    if (o.lrs.length !== n) throw new ArgumentError('finetune.paramGroups', `lrs has ${o.lrs.length} entries but the model has ${n} blocks`);
    return [...o.lrs];
  }
  const bottom = alias(o, 'bottomLr', 'bottom');
  const top = alias(o, 'topLr', 'top');
  if (bottom !== undefined && top !== undefined) {
    if (!(bottom > 0 && top > 0)) throw new ArgumentError('finetune.paramGroups', `bottomLr and topLr must be > 0, got ${bottom} and ${top}`);
    if (n === 1) return [top];
    return Array.from({ length: n }, (_, i) => bottom * (top / bottom) ** (i / (n - 1)));
  }
  if (o.baseLr !== undefined && o.decay !== undefined) return Array.from({ length: n }, (_, i) => o.baseLr! * o.decay! ** (n - 1 - i));
  if (bottom !== undefined || top !== undefined)
    throw new ArgumentError('finetune.paramGroups', `give both bottomLr and topLr (got only ${bottom !== undefined ? 'bottomLr' : 'topLr'})`);
  throw new ArgumentError('finetune.paramGroups', 'pass {lrs}, {bottomLr, topLr} or {baseLr, decay}');
}

/** An option under its name or its older alias; both with different values is an error. */
function alias(o: GroupOptions, name: 'bottomLr' | 'topLr', old: 'bottom' | 'top'): number | undefined {
  if (o[name] !== undefined && o[old] !== undefined && o[name] !== o[old])
    throw new ArgumentError('finetune.paramGroups', `${name} (${o[name]}) and its older name ${old} (${o[old]}) disagree; give ${name} only`);
  return o[name] ?? o[old];
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
