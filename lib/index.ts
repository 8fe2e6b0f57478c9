// finetorch: fine-tune pretrained PyTorch models from Node.js on libtorch.
//   import { torch, nn, optim, cuda } from 'finetorch'
export { torch, Tensor, noGrad } from './tensor/index.js';
export type { DType, Device, NestedArray, IndexSpec, TensorOptions, TensorData } from './tensor/index.js';
export { nn, Module } from './nn/index.js';
export type { StateDict, LoadStateDictResult, Reduction, CrossEntropyOptions } from './nn/index.js';
export { optim } from './optim/index.js';
export type { Optimizer, SGD, Adam, AdamW, ParamGroup, SGDOptions, AdamOptions, ParamGroupSpec, OptimizerStateDict } from './optim/index.js';
export { cuda } from './cuda/index.js';
export type { CudaMemoryStats } from './cuda/index.js';
export { loadReport } from './native/loader.js';
export type { LoadReport } from './native/loader.js';
export { trainStepAsync } from './train/step.js';
export type { TrainStepOptions, TrainStepResult } from './train/step.js';
export { io } from './io/index.js';
export type { CheckpointFormat } from './io/index.js';
export { models, Architecture } from './models/index.js';
export type { ArchitectureName, Block, VisionOptions } from './models/index.js';
export { jit } from './io/jit.js';
export { metrics } from './metrics/index.js';
export type { Labels, Scores, Average, PrfOptions, Prf, ClassReport } from './metrics/index.js';
export { losses } from './losses/index.js';
export type { FocalLossOptions } from './losses/index.js';
export { recipes, LRScheduler } from './recipes/index.js';
export type { GroupOptions, GroupSpec, FreezeOptions, Strategy, Recommendation, ScheduleKind, ScheduleOptions } from './recipes/index.js';
