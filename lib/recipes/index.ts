// The fine-tuning recipes of the seed, as small composable functions.
import { swapHead, resetHead } from './head.js';
import { freeze, unfreeze } from './freeze.js';
import { paramGroups, blockLrs } from './groups.js';
import { LR_PRESETS, recommend, checkPlan } from './strategy.js';
import { LRScheduler, scheduleFactor } from './schedules.js';
import { blocksOf, headOf } from './blocks.js';
import { unfreezeInto } from './unfreeze.js';

export type { GroupOptions, GroupSpec } from './groups.js';
export type { FreezeOptions } from './freeze.js';
export type { Strategy, Recommendation } from './strategy.js';
export type { ScheduleKind, ScheduleOptions } from './schedules.js';
export { LRScheduler } from './schedules.js';

export const recipes = {
  swapHead, resetHead, freeze, unfreeze, unfreezeInto, paramGroups, blockLrs, LR_PRESETS, recommend, checkPlan,
  LRScheduler, scheduleFactor, blocksOf, headOf,
} as const;
