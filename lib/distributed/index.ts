// torch.distributed for finetorch: process groups on c10d, collectives,
// DistributedDataParallel and DistributedSampler-like sharding.
import { DistributedDataParallel } from './ddp.js';
import { GradientReducer } from './reducer.js';
import {
  allGather,
  allReduce,
  barrier,
  broadcast,
  destroyProcessGroup,
  getBackend,
  getRank,
  getWorldSize,
  initProcessGroup,
  isInitialized,
} from './process-group.js';
import { distributedIndices, shard } from './sampler.js';
import { launch } from './launch.js';

export type { Backend, ReduceOp, InitProcessGroupOptions } from './process-group.js';
export type { DistributedDataParallelOptions } from './ddp.js';
export type { GradientReducerOptions } from './reducer.js';
export type { ShardOptions } from './sampler.js';
export type { LaunchOptions, LaunchResult, OutputLine, RankExit } from './launch.js';
export { DistributedDataParallel, GradientReducer };

export const distributed = {
  initProcessGroup,
  isInitialized,
  getRank,
  getWorldSize,
  getBackend,
  barrier,
  allReduce,
  broadcast,
  allGather,
  destroyProcessGroup,
  DistributedDataParallel,
  GradientReducer,
  shard,
  distributedIndices,
  /** Starts this node's processes with torchrun's environment (what `finetorch train --nproc-per-node` does). */
  launch,
};
