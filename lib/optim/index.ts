import { Optimizer, SGD, Adam, AdamW, ParamGroup } from './optimizer.js';
export { Optimizer, SGD, Adam, AdamW, ParamGroup } from './optimizer.js';
export type { SGDOptions, AdamOptions, ParamGroupSpec, OptimizerStateDict } from './optimizer.js';
export const optim = { Optimizer, SGD, Adam, AdamW, ParamGroup } as const;
