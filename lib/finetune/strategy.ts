// The seed article's learning-rate table and its advice, as presets, a
// recommender and warnings; where the project's own measurements disagree
// with the seed (small data), the recommender follows the measurements.

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
  /** The optimizer settings in a recipe's names: one lr, or bottomLr..topLr (geometric across blocks). */
  optimizer: { lr: number } | { bottomLr: number; topLr: number };
  /** The same LRs under their older names: `all` for one LR, `bottom` and `top` for a spread. */
  lr: { bottom?: number; top?: number; all?: number };
  warmup: boolean;
  reason: string;
}

function plan(strategy: Strategy, freezeFraction: number, optimizer: Recommendation['optimizer'], warmup: boolean, reason: string): Recommendation {
  const lr = 'lr' in optimizer ? { all: optimizer.lr } : { bottom: optimizer.bottomLr, top: optimizer.topLr };
  return { strategy, freezeFraction, optimizer, lr, warmup, reason };
}

/**
 * Picks a strategy from the number of labelled samples: the seed's rule of
 * thumb, except below ~1,000 samples, where this project's own measurements
 * (the Fashion-MNIST demo, README) disagree with the seed's "head only".
 */
export function recommend(numSamples: number): Recommendation {
  if (!Number.isFinite(numSamples) || numSamples < 1) throw new TypeError(`finetune.recommend: numSamples must be >= 1, got ${numSamples}`);
  if (numSamples < 1000)
    return plan(
      'freeze-lower',
      2 / 3,
      { lr: 3e-3 },
      false,
      `${numSamples} samples: under ~1,000, freeze the lower two thirds of the blocks (a ResNet's stem and layer1-3) and train the upper blocks and the head at one LR ` +
        "(3e-3 for the ~100 steps of the demo; lower it for longer runs). The seed advises training only the head here, but in this project's demo " +
        '(200 labels, new classes unlike the pretraining ones) head only was worst (63% accuracy) and freezing 4 of 6 blocks best (91%), ahead of full fine-tuning (90%)',
    );
  if (numSamples < 10000)
    return plan(
      'freeze-lower',
      0.5,
      { bottomLr: 1e-5, topLr: 1e-3 },
      true,
      `${numSamples} samples: 1,000-10,000 is enough to adapt the upper blocks; freeze the lower half, which holds generic features`,
    );
  if (numSamples < 100000)
    return plan(
      'differential',
      0,
      { bottomLr: 1e-5, topLr: 1e-4 },
      true,
      `${numSamples} samples: enough to adapt every block, with small LRs at the bottom to keep pretrained features`,
    );
  return plan('full', 0, { lr: 1e-4 }, true, `${numSamples} samples: 100,000+ supports full fine-tuning at 1e-5..1e-4`);
}

/** The seed's pitfalls that a plan falls into, as warnings (empty when none). */
export function checkPlan(plan: { strategy: Strategy; numSamples: number; backboneLr?: number; pretrained?: boolean; warmup?: boolean }): string[] {
  const out: string[] = [];
  const pretrained = plan.pretrained ?? true;
  if (plan.strategy === 'full' && plan.numSamples < 1000)
    out.push(
      `full fine-tuning on ${plan.numSamples} samples (< 1,000) risks overfitting (the seed's pitfall): freezing the lower blocks did as well in the demo with fewer trainable parameters; augment the data`,
    );
  // both warnings protect the lower, generic blocks, which only 'full' and 'differential' train
  const trainsLowerBlocks = plan.strategy === 'full' || plan.strategy === 'differential';
  if (pretrained && plan.backboneLr !== undefined && plan.backboneLr >= 1e-3 && trainsLowerBlocks)
    out.push(`backbone learning rate ${plan.backboneLr} >= 1e-3 can wreck pretrained features: use 1e-6..1e-4 for pretrained blocks`);
  if (plan.warmup === false && trainsLowerBlocks) out.push('no warmup: a few hundred warmup steps protect pretrained weights from the first large updates');
  return out;
}
