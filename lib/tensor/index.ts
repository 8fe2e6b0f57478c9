// The `torch` namespace: tensors, factories, free functions, autograd switches,
// scopes and threads.
import { native } from '../native/loader.js';
import { Tensor, type Scalar, type TensorOrScalar } from './tensor.js';
import * as creation from './creation.js';
import { tidy, keep } from './scope.js';
import { backends, setFloat32MatmulPrecision, getFloat32MatmulPrecision } from '../backends/index.js';
import { autocast, isAutocastEnabled, getAutocastDtype } from '../amp/autocast.js';

export { Tensor } from './tensor.js';
export type { NestedArray, IndexSpec, Scalar, TensorOrScalar } from './tensor.js';
export type { TensorOptions, TensorData } from './creation.js';
export type { DType, Device } from './dtype.js';

function handles(ts: Tensor[], where: string) {
  if (!Array.isArray(ts) || ts.some((t) => !(t instanceof Tensor))) throw new TypeError(`${where}: expected an array of Tensors`);
  return ts.map((t) => t.handle);
}

/**
 * Runs fn with autograd recording off (torch.no_grad()). Only the synchronous
 * part of fn runs without grad; async work it starts captures the mode when
 * it is started.
 */
export function noGrad<T>(fn: () => T): T {
  const previous = native.isGradEnabled();
  native.setGradEnabled(false);
  try {
    return fn();
  } finally {
    native.setGradEnabled(previous);
  }
}

export function setNumThreads(n: number): void {
  if (!Number.isInteger(n) || n < 1) throw new TypeError(`torch.setNumThreads: expected an integer >= 1, got ${n}`);
  native.setNumThreads(n);
}

export const torch = {
  ...creation,
  Tensor,
  cat: (tensors: Tensor[], dim = 0): Tensor => new Tensor(native.cat(handles(tensors, 'torch.cat'), dim)),
  stack: (tensors: Tensor[], dim = 0): Tensor => new Tensor(native.stack(handles(tensors, 'torch.stack'), dim)),
  where: (condition: Tensor, input: TensorOrScalar, other: TensorOrScalar): Tensor =>
    new Tensor(native.where(condition.handle, input instanceof Tensor ? input.handle : input, other instanceof Tensor ? other.handle : other)),
  matmul: (a: Tensor, b: Tensor): Tensor => a.matmul(b),
  softmax: (t: Tensor, dim: number): Tensor => t.softmax(dim),
  logSoftmax: (t: Tensor, dim: number): Tensor => t.logSoftmax(dim),
  sigmoid: (t: Tensor): Tensor => t.sigmoid(),
  exp: (t: Tensor): Tensor => t.exp(),
  log: (t: Tensor): Tensor => t.log(),
  sqrt: (t: Tensor): Tensor => t.sqrt(),
  abs: (t: Tensor): Tensor => t.abs(),
  pow: (t: Tensor, e: TensorOrScalar): Tensor => t.pow(e),
  clamp: (t: Tensor, min?: number | null, max?: number | null): Tensor => t.clamp(min, max),
  maximum: (a: Tensor, b: TensorOrScalar): Tensor => a.maximum(b),
  minimum: (a: Tensor, b: TensorOrScalar): Tensor => a.minimum(b),
  sum: (t: Tensor, dim?: number | number[], keepdim = false): Tensor => t.sum(dim, keepdim),
  mean: (t: Tensor, dim?: number | number[], keepdim = false): Tensor => t.mean(dim, keepdim),
  argmax: (t: Tensor, dim?: number, keepdim = false): Tensor => t.argmax(dim, keepdim),
  /** oneHot(int64 tensor, numClasses = max + 1) as torch.nn.functional.one_hot. */
  oneHot: (t: Tensor, numClasses = -1): Tensor => new Tensor(native.oneHot(t.handle, numClasses)),
  isTensor: (x: unknown): x is Tensor => x instanceof Tensor,
  noGrad,
  isGradEnabled: (): boolean => native.isGradEnabled(),
  /** torch.autocast(deviceType, { dtype, enabled, cacheEnabled }, fn): mixed precision for what fn runs (see amp/autocast.ts). */
  autocast,
  isAutocastEnabled,
  getAutocastDtype,
  setGradEnabled: (enabled: boolean): void => native.setGradEnabled(enabled),
  tidy,
  keep,
  setNumThreads,
  getNumThreads: (): number => native.getNumThreads(),
  /** Large CPU buffers freed recently and kept for reuse (see README, Threads and memory). */
  cpuCacheStats: (): { enabled: boolean; cachedBytes?: number; liveBytes?: number; hits?: number; misses?: number } => native.cpuCacheStats(),
  /** Returns the cached free CPU buffers to the operating system. */
  emptyCpuCache: (): void => native.emptyCpuCache(),
  /** cuDNN and cuBLAS switches (lib/backends). */
  backends,
  setFloat32MatmulPrecision,
  getFloat32MatmulPrecision,
} as const;

export type { Scalar as ScalarValue };
