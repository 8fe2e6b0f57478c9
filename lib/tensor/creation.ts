// Making tensors: from JS data (copied) and the factory functions.
import { native } from '../native/loader.js';
import { Tensor, type NestedArray } from './tensor.js';
import { isDType, isDevice, type Device, type DType } from './dtype.js';

export interface TensorOptions {
  dtype?: DType;
  device?: Device;
  requiresGrad?: boolean;
}

type AnyTypedArray = Float32Array | Float64Array | Int32Array | Int16Array | Int8Array | Uint8Array | Uint8ClampedArray | BigInt64Array;
export type TensorData = NestedArray | AnyTypedArray;

function checkOptions(where: string, o: TensorOptions | undefined): TensorOptions {
  if (o === undefined) return {};
  if (o === null || typeof o !== 'object') throw new TypeError(`${where}: options must be an object`);
  if (o.dtype !== undefined && !isDType(o.dtype))
    throw new TypeError(
      `${where}: unknown dtype '${String(o.dtype)}' (expected float32, float64, float16, bfloat16, int64, int32, int16, int8, uint8 or bool)`,
    );
  if (o.device !== undefined && !isDevice(o.device)) throw new TypeError(`${where}: invalid device '${String(o.device)}' (expected 'cpu', 'cuda' or 'cuda:N')`);
  if (o.requiresGrad !== undefined && typeof o.requiresGrad !== 'boolean') throw new TypeError(`${where}: requiresGrad must be a boolean`);
  return o;
}

function checkShape(where: string, shape: readonly number[]): number[] {
  if (!Array.isArray(shape)) throw new TypeError(`${where}: shape must be an array of integers`);
  for (const d of shape) if (!Number.isInteger(d) || d < 0) throw new TypeError(`${where}: shape ${JSON.stringify(shape)} has an invalid dimension ${d}`);
  return [...shape];
}

// Flattens a nested array, checking it is rectangular; infers the dtype as
// PyTorch does (all booleans -> bool, all integers -> int64, else float32).
function flatten(data: NestedArray): { values: number[]; shape: number[]; kind: 'bool' | 'int' | 'float' } {
  const shape: number[] = [];
  for (let d: NestedArray = data; Array.isArray(d); d = d[0]) {
    shape.push(d.length);
    if (d.length === 0) break;
  }
  const values: number[] = [];
  let allBool = true;
  let allInt = true;
  const walk = (x: NestedArray, dim: number, path: string): void => {
    if (dim === shape.length) {
      if (typeof x === 'boolean') {
        values.push(x ? 1 : 0);
        allInt = false;
        return;
      }
      if (typeof x !== 'number') throw new TypeError(`torch.tensor: element ${path || '[]'} is ${Array.isArray(x) ? 'an array' : typeof x}, expected a number`);
      allBool = false;
      // an integer-valued number past 2^53 (1e25) was meant as a float: as int64 it would wrap
      if (!Number.isSafeInteger(x)) allInt = false;
      values.push(x);
      return;
    }
    if (!Array.isArray(x) || x.length !== shape[dim])
      throw new TypeError(
        `torch.tensor: ragged nested array at ${path || 'top level'}: expected ${shape[dim]} elements, got ${Array.isArray(x) ? x.length : 'a scalar'}`,
      );
    x.forEach((v, i) => walk(v, dim + 1, `${path}[${i}]`));
  };
  walk(data, 0, '');
  const kind = values.length === 0 ? 'float' : allBool ? 'bool' : allInt ? 'int' : 'float';
  return { values, shape, kind };
}

/**
 * torch.tensor(data, options): copies `data` (a number, nested arrays, or a
 * TypedArray with `shape`) into a new tensor.
 */
export function tensor(data: TensorData, options: TensorOptions & { shape?: number[] } = {}): Tensor {
  const o = checkOptions('torch.tensor', options);
  if (ArrayBuffer.isView(data)) {
    const shape = checkShape('torch.tensor', options.shape ?? [(data as AnyTypedArray).length]);
    return new Tensor(native.fromData(data, shape, o));
  }
  if (options.shape !== undefined) throw new TypeError('torch.tensor: shape is only for TypedArray data; nested arrays carry their shape');
  const { values, shape, kind } = flatten(data);
  const dtype = o.dtype ?? (kind === 'bool' ? 'bool' : kind === 'int' ? 'int64' : 'float32');
  // float64 carries every integer up to 2^53 exactly; the native side converts to dtype
  const buffer = Float64Array.from(values);
  return new Tensor(native.fromData(buffer, shape, { ...o, dtype }));
}

function factory(name: 'zeros' | 'ones' | 'empty' | 'randn' | 'rand') {
  return (shape: readonly number[], options?: TensorOptions): Tensor =>
    new Tensor(native[name](checkShape(`torch.${name}`, shape), checkOptions(`torch.${name}`, options)));
}

export const zeros = factory('zeros');
export const ones = factory('ones');
export const empty = factory('empty');
/** Standard normal samples. */
export const randn = factory('randn');
/** Uniform samples in [0, 1). */
export const rand = factory('rand');

export function full(shape: readonly number[], fillValue: number | boolean, options?: TensorOptions): Tensor {
  return new Tensor(native.full(checkShape('torch.full', shape), fillValue, checkOptions('torch.full', options)));
}
/** Integers uniform in [low, high). */
export function randint(low: number, high: number, shape: readonly number[], options?: TensorOptions): Tensor {
  return new Tensor(native.randint(low, high, checkShape('torch.randint', shape), checkOptions('torch.randint', options)));
}
export function randperm(n: number, options?: TensorOptions): Tensor {
  return new Tensor(native.randperm(n, checkOptions('torch.randperm', options)));
}
/** arange(end), arange(start, end, step?); integers give int64 as in PyTorch. */
export function arange(startOrEnd: number, end?: number, step = 1, options?: TensorOptions): Tensor {
  const [s, e] = end === undefined ? [0, startOrEnd] : [startOrEnd, end];
  return new Tensor(native.arange(s, e, step, checkOptions('torch.arange', options)));
}
export function linspace(start: number, end: number, steps: number, options?: TensorOptions): Tensor {
  return new Tensor(native.linspace(start, end, steps, checkOptions('torch.linspace', options)));
}
export function eye(n: number, options?: TensorOptions): Tensor {
  return new Tensor(native.eye(n, checkOptions('torch.eye', options)));
}
export function zerosLike(t: Tensor, options?: TensorOptions): Tensor {
  return zeros(t.shape, { dtype: t.dtype, device: t.device, ...options });
}
export function onesLike(t: Tensor, options?: TensorOptions): Tensor {
  return ones(t.shape, { dtype: t.dtype, device: t.device, ...options });
}
export function fullLike(t: Tensor, fillValue: number | boolean, options?: TensorOptions): Tensor {
  return full(t.shape, fillValue, { dtype: t.dtype, device: t.device, ...options });
}
export function randnLike(t: Tensor, options?: TensorOptions): Tensor {
  return randn(t.shape, { dtype: t.dtype, device: t.device, ...options });
}
/** Seeds libtorch's default generators (CPU and CUDA). */
export function manualSeed(seed: number): void {
  if (!Number.isInteger(seed) || seed < 0) throw new TypeError(`torch.manualSeed: seed must be a non-negative integer, got ${seed}`);
  native.manualSeed(seed);
}
