// Losses for fine-tuning: softmax focal loss (Lin et al.) for imbalanced
// classes (per sample or per token), torchvision's sigmoid focal loss,
// cross-entropy with class weights and label smoothing, and the sequence
// labelling losses of a CRF (crf.ts). All are differentiable tensor expressions.
import { Tensor } from '../tensor/tensor.js';
import { torch } from '../tensor/index.js';
import { bceWithLogits, crossEntropy, type CrossEntropyOptions, type Reduction } from '../nn/functional.js';

export interface FocalLossOptions {
  /** Focusing parameter: (1 - p_t)^gamma down-weights easy samples. 0 gives cross-entropy. */
  gamma?: number;
  /** A number scales every sample; an array is a per-class weight alpha[target]. */
  alpha?: number | number[];
  reduction?: Reduction;
  /** Target value whose samples are left out (they do not count in the mean). */
  ignoreIndex?: number;
}

function check(where: string, logits: Tensor, target: Tensor): void {
  if (!(logits instanceof Tensor) || logits.ndim < 2) throw new TypeError(`${where}: logits must be a [N, C] tensor (or [B, T, C] token logits, classes last)`);
  const lead = logits.shape.slice(0, -1);
  if (!(target instanceof Tensor) || target.ndim !== lead.length || target.shape.some((d, i) => d !== lead[i]))
    throw new TypeError(
      `${where}: target must be a ${lead.length === 1 ? '[N]' : '[B, T]'} tensor of class indices matching logits [${logits.shape}], got ${target instanceof Tensor ? `[${target.shape}]` : typeof target}`,
    );
  if (target.dtype !== 'int64') throw new TypeError(`${where}: target must hold int64 class indices, got ${target.dtype}`);
}

/**
 * Softmax focal loss: per sample -alpha_t (1 - p_t)^gamma log p_t. 'mean' is
 * the plain mean over (non-ignored) samples, not divided by the alpha weights.
 *
 * For token classification (a BERT token classifier, a tagger's emissions)
 * pass logits [B, T, K] (classes last, as the models give them) and target
 * [B, T] with -100 (ignoreIndex) on padding, special tokens and non-first
 * word pieces: the loss is taken per token, 'none' gives [B, T], 'mean' the
 * mean over the labelled tokens. It counters the imbalance of tagging, where
 * most tokens are O: easy O tokens are down-weighted by (1 - p_t)^gamma and
 * alpha can weight the rare tags up.
 */
export function focalLoss(logits: Tensor, target: Tensor, options: FocalLossOptions = {}): Tensor {
  const where = 'losses.focalLoss';
  check(where, logits, target);
  if (logits.ndim > 2) {
    // token logits: one sample per position, classes last
    const shape = target.shape;
    return torch.tidy(() => {
      const loss = focalLoss(logits.reshape([-1, logits.shape[logits.ndim - 1]]), target.reshape([-1]), options);
      return (options.reduction ?? 'mean') === 'none' ? loss.reshape(shape) : loss;
    });
  }
  const gamma = options.gamma ?? 2;
  if (!(gamma >= 0)) throw new TypeError(`${where}: gamma must be >= 0, got ${gamma}`);
  const reduction = options.reduction ?? 'mean';
  if (!['mean', 'sum', 'none'].includes(reduction)) throw new TypeError(`${where}: reduction must be 'mean', 'sum' or 'none'`);
  const C = logits.shape[1];
  if (Array.isArray(options.alpha) && options.alpha.length !== C) throw new TypeError(`${where}: alpha has ${options.alpha.length} entries for ${C} classes`);
  if (options.ignoreIndex !== undefined && !Number.isInteger(options.ignoreIndex))
    throw new TypeError(`${where}: ignoreIndex must be an integer, got ${options.ignoreIndex}`);
  if (target.numel()) {
    // a class index out of range would make gather fail with an opaque message
    const [lo, hi] = torch.tidy(() => {
      const kept = options.ignoreIndex === undefined ? target : torch.where(target.eq(options.ignoreIndex), 0, target);
      return [Number(kept.min().item()), Number(kept.max().item())];
    });
    if (lo < 0 || hi >= C)
      throw new TypeError(
        `${where}: target holds class ${lo < 0 ? lo : hi}, outside 0..${C - 1}${options.ignoreIndex === undefined ? ' (pass ignoreIndex for padding labels such as -100)' : ` (and it is not ignoreIndex ${options.ignoreIndex})`}`,
      );
  }
  return torch.tidy(() => {
    const keep = options.ignoreIndex === undefined ? null : target.ne(options.ignoreIndex);
    const safeTarget = keep ? torch.where(keep, target, 0) : target;
    const logpt = logits.logSoftmax(1).gather(1, safeTarget.unsqueeze(1)).squeeze(1);
    let loss = logpt.neg();
    if (gamma !== 0) loss = logpt.exp().neg().add(1).clamp(0).pow(gamma).mul(loss);
    if (typeof options.alpha === 'number') loss = loss.mul(options.alpha);
    else if (Array.isArray(options.alpha))
      loss = loss.mul(torch.tensor(options.alpha, { dtype: logits.dtype, device: logits.device }).indexSelect(0, safeTarget));
    if (keep) loss = loss.mul(keep.to(logits.dtype));
    if (reduction === 'none') return loss;
    if (reduction === 'sum') return loss.sum();
    return keep ? loss.sum().div(keep.to(logits.dtype).sum().clamp(1)) : loss.mean();
  });
}

/** torchvision.ops.sigmoid_focal_loss: binary/multi-label focal loss on logits. */
export function sigmoidFocalLoss(inputs: Tensor, targets: Tensor, options: { alpha?: number; gamma?: number; reduction?: Reduction } = {}): Tensor {
  const where = 'losses.sigmoidFocalLoss';
  if (!(inputs instanceof Tensor) || !(targets instanceof Tensor)) throw new TypeError(`${where}: inputs and targets must be tensors`);
  const alpha = options.alpha ?? 0.25;
  const gamma = options.gamma ?? 2;
  const reduction = options.reduction ?? 'none';
  return torch.tidy(() => {
    const t = targets.to(inputs.dtype);
    const p = inputs.sigmoid();
    const ce = bceWithLogits(inputs, t, { reduction: 'none' });
    const pt = p.mul(t).add(p.neg().add(1).mul(t.neg().add(1)));
    let loss = ce.mul(pt.neg().add(1).pow(gamma));
    if (alpha >= 0)
      loss = t
        .mul(alpha)
        .add(
          t
            .neg()
            .add(1)
            .mul(1 - alpha),
        )
        .mul(loss);
    if (reduction === 'mean') return loss.mean();
    if (reduction === 'sum') return loss.sum();
    if (reduction !== 'none') throw new TypeError(`${where}: reduction must be 'none', 'mean' or 'sum'`);
    return loss;
  });
}

/** Cross-entropy with class weights, label smoothing and ignoreIndex (PyTorch's semantics). */
export { crossEntropy };
export type { CrossEntropyOptions };

export { crfLoss } from './crf.js';
export type { CrfLike, CrfLossOptions, CrfReduction } from './crf.js';
import { crfLoss } from './crf.js';

export const losses = { focalLoss, sigmoidFocalLoss, crossEntropy, crfLoss } as const;
