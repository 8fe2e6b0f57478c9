// Shared test helpers: fixtures from PyTorch (scripts/make-fixtures.py) and comparisons.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'vitest';
import { torch, type Tensor, type DType } from 'finetorch';

export interface Encoded {
  dtype: string;
  shape: number[];
  data: Array<number | boolean>;
}

export function fixture<T = unknown>(name: string): T {
  return JSON.parse(readFileSync(join(__dirname, 'fixtures', name), 'utf8')) as T;
}

/** A tensor from a fixture's encoding, same dtype and shape. */
export function decode(e: Encoded, options: { requiresGrad?: boolean; dtype?: DType } = {}): Tensor {
  const dtype = (options.dtype ?? e.dtype) as DType;
  const values = Float64Array.from(e.data.map(Number));
  return torch.tensor(values, { shape: e.shape, dtype, requiresGrad: options.requiresGrad });
}

export function flat(t: Tensor): number[] {
  return Array.from(t.dataSync() as ArrayLike<number | bigint>, Number);
}

/** Max absolute difference between a tensor and a fixture (shapes must agree). */
export function maxAbsDiff(t: Tensor, e: Encoded): number {
  expect(t.shape).toEqual(e.shape);
  const got = flat(t);
  const want = e.data.map(Number);
  let m = 0;
  for (let i = 0; i < want.length; i++) m = Math.max(m, Math.abs(got[i] - want[i]));
  return m;
}

export function expectClose(t: Tensor, e: Encoded, tol = 1e-5): void {
  const d = maxAbsDiff(t, e);
  expect(d, `max abs diff ${d}`).toBeLessThanOrEqual(tol);
}
