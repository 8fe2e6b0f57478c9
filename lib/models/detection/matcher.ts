// Training-time pieces shared by the RPN and the RoI heads: torchvision's
// Matcher, BalancedPositiveNegativeSampler and the smooth L1 loss.
import type { Tensor } from '../../tensor/tensor.js';
import { torch } from '../../tensor/index.js';
import { nonzero } from './rpn.js';

/** Matches of no ground truth: below the background threshold. */
export const BELOW_LOW_THRESHOLD = -1;
/** Between the thresholds: ignored. */
export const BETWEEN_THRESHOLDS = -2;

/**
 * torchvision's Matcher: for an IoU matrix [G, P] (ground truth x predictions),
 * each prediction's best ground truth (int64 [P]), -1 below `low`, -2 in
 * [low, high). With allowLowQualityMatches, each ground truth's best
 * predictions (every tie) keep their match whatever their IoU.
 */
export function matchBoxes(iou: Tensor, high: number, low: number, allowLowQualityMatches: boolean): Tensor {
  return torch.tidy(() => {
    const [values, matches] = iou.max(0);
    let m = torch.where(values.lt(low), BELOW_LOW_THRESHOLD, matches);
    m = torch.where(values.ge(low).logicalAnd(values.lt(high)), BETWEEN_THRESHOLDS, m);
    if (allowLowQualityMatches) {
      const [highest] = iou.max(1);
      const isBest = iou.eq(highest.unsqueeze(1)).sum(0).gt(0);
      m = torch.where(isBest, matches, m);
    }
    return m;
  });
}

/**
 * torchvision's BalancedPositiveNegativeSampler for one image's labels
 * (>= 1 positive, 0 negative, -1 ignored): at most batchSize * positiveFraction
 * positives, negatives to fill batchSize, drawn with torch.randperm (so
 * reproducible with torch.manualSeed). Returns the sorted indices of the
 * positives and of the negatives taken.
 */
export function sampleBalanced(labels: Tensor, batchSize: number, positiveFraction: number): { positive: Tensor; negative: Tensor } {
  return torch.tidy(() => {
    const positive = nonzero(labels.ge(1));
    const negative = nonzero(labels.eq(0));
    const numPos = Math.min(positive.shape[0], Math.floor(batchSize * positiveFraction));
    const numNeg = Math.min(negative.shape[0], batchSize - numPos);
    const take = (idx: Tensor, n: number) => {
      if (n === idx.shape[0]) return idx;
      const chosen = idx.indexSelect(0, torch.randperm(idx.shape[0]).narrow(0, 0, n).to(idx.device));
      return chosen.sort(0)[0];
    };
    return { positive: take(positive, numPos), negative: take(negative, numNeg) };
  });
}

/** Smooth L1 (Huber with beta), summed: 0.5 x^2 / beta where |x| < beta, |x| - 0.5 beta elsewhere. */
export function smoothL1Sum(input: Tensor, target: Tensor, beta: number): Tensor {
  return torch.tidy(() => {
    const n = input.sub(target).abs();
    return torch.where(n.lt(beta), n.pow(2).mul(0.5 / beta), n.sub(0.5 * beta)).sum();
  });
}
