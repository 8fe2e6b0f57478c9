// The seed article's learning-rate table and its advice, as presets, a
// recommender and warnings.

export type Strategy = 'head-only' | 'freeze-lower' | 'differential' | 'full';

/** Learning-rate ranges from the seed: [low, high]. */
export const LR_PRESETS = {
  full: [1e-5, 1e-4],
  headOnly: [1e-4, 1e-3],
  differential: { bottom: [1e-6, 1e-5], top: [1e-4, 1e-3] },
} as const;

export interface Recommendation {
  strategy: Strategy;
  /** How many blocks to freeze (of the model's blocks), when the strategy freezes. */
  freezeFraction: number;
  /** LRs to start from: one for full/head-only, bottom and top for differential. */
  lr: { bottom?: number; top?: number; all?: number };
  warmup: boolean;
  reason: string;
}

/** Picks a strategy from the number of labelled samples (the seed's rule of thumb). */
export function recommend(numSamples: number): Recommendation {
  if (!Number.isFinite(numSamples) || numSamples < 1) throw new TypeError(`finetune.recommend: numSamples must be >= 1, got ${numSamples}`);
  if (numSamples < 1000)
    return { strategy: 'head-only', freezeFraction: 1, lr: { all: 1e-3 }, warmup: true,
      reason: `${numSamples} samples: under ~1,000, full fine-tuning overfits; train only the new head (and augment the data)` };
  if (numSamples < 10000)
    return { strategy: 'freeze-lower', freezeFraction: 0.5, lr: { bottom: 1e-5, top: 1e-3 }, warmup: true,
      reason: `${numSamples} samples: 1,000-10,000 is enough to adapt the upper blocks; freeze the lower half, which holds generic features` };
  if (numSamples < 100000)
    return { strategy: 'differential', freezeFraction: 0, lr: { bottom: 1e-5, top: 1e-4 }, warmup: true,
      reason: `${numSamples} samples: enough to adapt every block, with small LRs at the bottom to keep pretrained features` };
  return { strategy: 'full', freezeFraction: 0, lr: { all: 1e-4 }, warmup: true,
    reason: `${numSamples} samples: 100,000+ supports full fine-tuning at 1e-5..1e-4` };
}

/** The seed's pitfalls that a plan falls into, as warnings (empty when none). */
export function checkPlan(plan: { strategy: Strategy; numSamples: number; backboneLr?: number; pretrained?: boolean; warmup?: boolean }): string[] {
  const out: string[] = [];
  const pretrained = plan.pretrained ?? true;
  if (plan.strategy === 'full' && plan.numSamples < 1000)
    out.push(`full fine-tuning on ${plan.numSamples} samples (< 1,000) tends to overfit: freeze the backbone or most of it, and augment`);
  if (pretrained && plan.backboneLr !== undefined && plan.backboneLr >= 1e-3 && plan.strategy !== 'head-only')
    out.push(`backbone learning rate ${plan.backboneLr} >= 1e-3 can wreck pretrained features: use 1e-6..1e-4 for pretrained blocks`);
  if (plan.warmup === false && plan.strategy !== 'head-only') out.push('no warmup: a few hundred warmup steps protect pretrained weights from the first large updates');
  return out;
}
