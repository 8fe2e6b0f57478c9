// The gradient reducer of DistributedDataParallel (PyTorch's c10d Reducer):
// averages the gradients across the process group by all-reduces of flat
// buckets (~25 MiB, parameters in reverse order, as PyTorch buckets them),
// and carries a few numbers every rank contributes (fit's "my loss was not
// finite", "stop now") in the last bucket, so agreeing on them costs no
// extra collective. The addon's reducer (native/distributed.cc) overlaps the
// all-reduces with the backward through hooks on the gradient accumulators;
// a build without it reduces everything in finish() (the same numbers).
import type { Module } from '../nn/module.js';
import { native } from '../native/loader.js';
import type { DistributedAddon, ReducerHandle } from '../native/addon-types.js';
import { torch } from '../tensor/index.js';
import { Tensor } from '../tensor/tensor.js';
import { allReduce, getWorldSize, isInitialized } from './process-group.js';

export interface GradientReducerOptions {
  /** The largest bucket of gradients one all-reduce carries, in MiB (PyTorch's bucket_cap_mb); default 25. */
  bucketCapMb?: number;
}

const BYTES: Record<string, number> = { float64: 8, float32: 4, float16: 2, bfloat16: 2 };

/**
 * Averages a model's gradients across the process group. Every rank calls
 * prepare() before the backward whose gradients are to be reduced (the last
 * micro-step of an accumulation) and finish() after it, with no other
 * collective in between. Parameters that do not require grad are skipped
 * (every rank must freeze the same ones, at the same step).
 */
export class GradientReducer {
  private readonly model: Module;
  private readonly bucketBytes: number;
  private disposed = false;
  /** The addon's reducer for the parameters that require grad now, and their ids (rebuilt when that set changes). */
  private handle: ReducerHandle | null = null;
  private trainableKey = '';

  constructor(model: Module, options: GradientReducerOptions = {}) {
    if (!isInitialized()) throw new Error('GradientReducer: no process group; call distributed.initProcessGroup() first');
    const cap = options?.bucketCapMb ?? 25;
    if (typeof cap !== 'number' || !(cap > 0)) throw new TypeError(`GradientReducer: bucketCapMb must be a positive number, got ${JSON.stringify(cap)}`);
    this.model = model;
    this.bucketBytes = cap * 1024 * 1024;
  }

  /** Before the backward whose gradients are to be reduced (the last micro-step): arms the reduction. */
  prepare(): void {
    this.check('prepare');
    const handle = this.nativeReducer();
    if (handle) (native as DistributedAddon).distReducerPrepare?.(handle);
  }

  /**
   * After that backward: reduces the gradients, waits, and averages them in
   * place (a parameter without a gradient on this rank counts as zeros, gets
   * the average when some rank had a gradient, and stays without one when no
   * rank had). Returns `flags` summed over the ranks; every rank must pass as
   * many flags (small integers: they travel in the gradients' dtype).
   */
  async finish(flags: number[] = []): Promise<number[]> {
    this.check('finish');
    if (!Array.isArray(flags) || flags.some((f) => typeof f !== 'number' || !Number.isFinite(f)))
      throw new TypeError(`GradientReducer.finish: flags must be an array of finite numbers, got ${JSON.stringify(flags)}`);
    const handle = this.nativeReducer();
    if (handle) {
      const [h] = await (native as Required<DistributedAddon>).distReducerFinishAsync(handle, flags);
      const summed = new Tensor(h);
      try {
        return Array.from(summed.dataSync(), Number);
      } finally {
        summed.dispose();
      }
    }
    const worldSize = getWorldSize();
    const params = this.model.parameters().filter((p) => {
      if (p.requiresGrad) return true;
      p.dispose();
      return false;
    });
    params.reverse();
    try {
      const list = buckets(params, this.bucketBytes);
      if (list.length === 0) return await reduceFlags(flags);
      let summed: number[] = [];
      for (let i = 0; i < list.length; i++) {
        const own = i === list.length - 1 ? flags : [];
        const out = await reduceBucket(list[i], worldSize, own);
        if (own === flags) summed = out;
      }
      return summed;
    } finally {
      for (const p of params) p.dispose();
    }
  }

  /** Releases what the reducer holds; it cannot be used afterwards. */
  dispose(): void {
    this.disposed = true;
    this.release();
  }

  /** How many buckets the gradients take, and how many of them the last backward after prepare() sent itself. */
  get stats(): { buckets: number; launchedDuringBackward: number } | null {
    return this.handle ? ((native as DistributedAddon).distReducerStats?.(this.handle) ?? null) : null;
  }

  /**
   * The addon's reducer over the parameters that require grad now; a new one
   * when that set changed since the last call (gradual unfreezing: every rank
   * changes it at the same step). Null when the addon has no reducer.
   */
  private nativeReducer(): ReducerHandle | null {
    const dist = native as DistributedAddon;
    if (typeof dist.distReducerCreate !== 'function') return null;
    const params = this.model.parameters();
    try {
      const trainable = params.filter((p) => p.requiresGrad);
      const key = trainable.map((p) => p.id).join(',');
      if (!this.handle || key !== this.trainableKey) {
        this.release();
        this.handle = dist.distReducerCreate(
          trainable.map((p) => p.handle),
          this.bucketBytes,
        );
        this.trainableKey = key;
      }
      return this.handle;
    } finally {
      for (const p of params) p.dispose();
    }
  }

  private release(): void {
    if (this.handle) (native as DistributedAddon).distReducerDispose?.(this.handle);
    this.handle = null;
    this.trainableKey = '';
  }

  private check(where: string): void {
    if (this.disposed) throw new Error(`GradientReducer.${where}: the reducer was disposed`);
  }
}

/** The flags alone, summed over the ranks (a model without trainable parameters). */
async function reduceFlags(flags: number[]): Promise<number[]> {
  if (flags.length === 0) return [];
  const t = torch.tensor(flags, { dtype: 'float64' });
  try {
    await allReduce(t, { op: 'sum' });
    return Array.from(t.dataSync(), Number);
  } finally {
    t.dispose();
  }
}

/** Consecutive parameters of one dtype and device, up to the bucket size. */
function buckets(params: Tensor[], bucketBytes: number): Tensor[][] {
  const out: Tensor[][] = [];
  let current: Tensor[] = [];
  let bytes = 0;
  let key = '';
  for (const p of params) {
    const k = `${p.dtype}@${p.device}`;
    const size = p.numel() * (BYTES[p.dtype] ?? 4);
    if (current.length && (k !== key || bytes + size > bucketBytes)) {
      out.push(current);
      current = [];
      bytes = 0;
    }
    current.push(p);
    bytes += size;
    key = k;
  }
  if (current.length) out.push(current);
  return out;
}

/** One all-reduce of the bucket's gradients, one had-a-gradient entry per parameter, then `flags`; returns the summed flags. */
async function reduceBucket(params: Tensor[], worldSize: number, flags: number[]): Promise<number[]> {
  const grads = params.map((p) => p.grad);
  const parts = torch.noGrad(() => [
    ...params.map((p, i) => (grads[i] ? (grads[i] as Tensor).reshape(-1) : torch.zeros([p.numel()], { dtype: p.dtype, device: p.device }))),
    torch.tensor([...grads.map((g) => (g ? 1 : 0)), ...flags], { dtype: params[0].dtype, device: params[0].device }),
  ]);
  const flat = torch.cat(parts);
  for (const t of parts) t.dispose();
  try {
    await allReduce(flat, { op: 'sum' });
    const tailLength = params.length + flags.length;
    const tail = flat.narrow(0, flat.numel() - tailLength, tailLength);
    const counts = Array.from(tail.dataSync(), Number);
    tail.dispose();
    torch.noGrad(() => {
      let offset = 0;
      params.forEach((p, i) => {
        const n = p.numel();
        if (counts[i] !== 0) {
          const mean = flat.narrow(0, offset, n).reshape(p.shape).div(worldSize);
          const g = grads[i];
          if (g) g.copy_(mean);
          else p.grad = mean;
          mean.dispose();
        }
        offset += n;
      });
    });
    return counts.slice(params.length);
  } finally {
    flat.dispose();
    for (const g of grads) g?.dispose();
  }
}
