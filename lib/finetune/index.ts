// The fine-tuning steps of the seed as small composable functions: swap the
// head, freeze blocks, build parameter groups with per-block learning rates,
// unfreeze gradually, and the seed's learning-rate table and advice.
import { swapHead, resetHead } from './head.js';
import { freeze, unfreeze } from './freeze.js';
import { paramGroups, blockLrs } from './groups.js';
import { LR_PRESETS, recommend, checkPlan } from './strategy.js';
import { blocksOf, headOf } from './blocks.js';
import { unfreezeInto } from './unfreeze.js';
import { adaptInputChannels, adaptConvWeight } from './input-channels.js';

export type { GroupOptions, GroupSpec } from './groups.js';
export type { InputChannelsAdaptation } from './input-channels.js';
export type { FreezeOptions } from './freeze.js';
export type { Strategy, Recommendation } from './strategy.js';

export const finetune = {
  swapHead,
  resetHead,
  freeze,
  unfreeze,
  unfreezeInto,
  paramGroups,
  blockLrs,
  LR_PRESETS,
  recommend,
  checkPlan,
  blocksOf,
  headOf,
  adaptInputChannels,
  adaptConvWeight,
} as const;
