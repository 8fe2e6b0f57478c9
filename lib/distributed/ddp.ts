// nn.parallel.DistributedDataParallel: the model's forward, its parameters and
// buffers broadcast from rank 0 at the start, and gradients averaged across
// ranks after backward by all-reduces of flat buckets (~25 MiB, parameters in
// reverse order, as PyTorch's Reducer buckets them).
import { Module } from '../nn/module.js';
import { torch } from '../tensor/index.js';
import type { Tensor } from '../tensor/tensor.js';
import { broadcast, isInitialized } from './process-group.js';
import { GradientReducer } from './reducer.js';

export interface DistributedDataParallelOptions {
  /** The largest bucket of gradients one all-reduce carries, in MiB (PyTorch's bucket_cap_mb); default 25. */
  bucketCapMb?: number;
  /** Broadcast the buffers (BatchNorm's running statistics) from rank 0 at the start; default true. */
  broadcastBuffers?: boolean;
}

/** Sends rank 0's values of the tensors to every rank: one broadcast per dtype and device, of the tensors flattened into one. */
async function broadcastTensors(tensors: Tensor[]): Promise<void> {
  const groups = new Map<string, Tensor[]>();
  for (const t of tensors) {
    const key = `${t.dtype}@${t.device}`;
    const list = groups.get(key);
    if (list) list.push(t);
    else groups.set(key, [t]);
  }
  for (const list of groups.values()) {
    const flat = torch.noGrad(() => torch.cat(list.map((t) => t.detach().reshape(-1))));
    try {
      await broadcast(flat, { src: 0 });
      torch.noGrad(() => {
        let offset = 0;
        for (const t of list) {
          const n = t.numel();
          const part = flat.narrow(0, offset, n).reshape(t.shape);
          t.copy_(part);
          part.dispose();
          offset += n;
        }
      });
    } finally {
      flat.dispose();
    }
  }
}

/**
 * Wraps a model for data-parallel training across the process group. Await
 * `ready` (the broadcast of rank 0's parameters and buffers) before the first
 * forward, and `syncGradients()` after every backward, before the optimizer
 * step (fit({ distributed: true }) does both). The model is `module`, so the
 * state dict's keys start with 'module.', as PyTorch's.
 */
export class DistributedDataParallel extends Module {
  readonly module: Module;
  /** Settles when rank 0's parameters and buffers are on this rank. */
  readonly ready: Promise<void>;
  /** Averages the gradients across ranks (syncGradients uses it; fit calls its prepare() and finish() itself). */
  readonly reducer: GradientReducer;
  /** Whether rank 0's buffers are sent to every rank at the start and before each training step's forward (fit does the latter). */
  readonly broadcastBuffers: boolean;
  private synced = false;

  constructor(model: Module, options: DistributedDataParallelOptions = {}) {
    super();
    if (!(model instanceof Module)) throw new TypeError('DistributedDataParallel: expected a Module');
    if (!isInitialized()) throw new Error('DistributedDataParallel: no process group; call distributed.initProcessGroup() first');
    const cap = options.bucketCapMb ?? 25;
    if (typeof cap !== 'number' || !(cap > 0))
      throw new TypeError(`DistributedDataParallel: bucketCapMb must be a positive number, got ${JSON.stringify(cap)}`);
    this.module = this.registerModule('module', model);
    this.reducer = new GradientReducer(model, { bucketCapMb: cap });
    this.inputNames = model.inputNames;
    this.broadcastBuffers = options.broadcastBuffers !== false;
    this.ready = broadcastModel(model, { buffers: this.broadcastBuffers }).then(() => {
      this.synced = true;
    });
    // an unawaited failure surfaces at forward() or syncGradients(), not as an unhandled rejection
    this.ready.catch(() => {});
  }

  override forward(...inputs: Tensor[]): Tensor {
    if (!this.synced) throw new Error("DistributedDataParallel: await ddp.ready (the broadcast of rank 0's parameters) before the first forward");
    return this.module.forward(...inputs);
  }

  override async forwardAsync(...inputs: Tensor[]): Promise<Tensor> {
    await this.ready;
    return this.module.forwardAsync(...inputs);
  }

  /**
   * Averages the gradients across ranks, in place. Parameters that do not
   * require grad are skipped (every rank freezes the same ones); a parameter
   * without a gradient on this rank counts as zeros, gets the average when
   * some other rank had a gradient, and stays without one when no rank had.
   * Returns `flags` summed over the ranks (GradientReducer.finish). For the
   * all-reduces to overlap the backward, call `ddp.reducer.prepare()` before it.
   */
  async syncGradients(flags: number[] = []): Promise<number[]> {
    await this.ready;
    return this.reducer.finish(flags);
  }
}

/**
 * Averages the model's gradients across the process group, in place, by
 * all-reduces of flat buckets of up to bucketBytes (parameters in reverse
 * order): a GradientReducer's finish() without flags.
 */
export async function averageGradients(model: Module, bucketBytes = 25 * 1024 * 1024): Promise<void> {
  const reducer = new GradientReducer(model, { bucketCapMb: bucketBytes / (1024 * 1024) });
  try {
    reducer.prepare();
    await reducer.finish();
  } finally {
    reducer.dispose();
  }
}

/** Rank 0's parameters (and buffers, unless buffers is false) on every rank, in place. */
export async function broadcastModel(model: Module, options: { buffers?: boolean } = {}): Promise<void> {
  const tensors = [...model.parameters(), ...(options.buffers === false ? [] : model.buffers())];
  try {
    await broadcastTensors(tensors);
  } finally {
    for (const t of tensors) t.dispose();
  }
}
