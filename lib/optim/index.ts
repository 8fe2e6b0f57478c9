import { Optimizer, SGD, Adam, AdamW, ParamGroup } from './optimizer.js';
import { LRScheduler, scheduleFactor } from './lr-scheduler.js';
export { Optimizer, SGD, Adam, AdamW, ParamGroup } from './optimizer.js';
export { LRScheduler, scheduleFactor } from './lr-scheduler.js';
export type { SGDOptions, AdamOptions, StepModeOptions, StepImplementation, ParamGroupSpec, OptimizerStateDict } from './optimizer.js';
export type { ScheduleKind, ScheduleOptions } from './lr-scheduler.js';
// PyTorch keeps schedulers with the optimizers (torch.optim.lr_scheduler).
export const optim = { Optimizer, SGD, Adam, AdamW, ParamGroup, LRScheduler, scheduleFactor } as const;
