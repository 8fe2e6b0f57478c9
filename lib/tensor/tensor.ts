// The Tensor facade: PyTorch's method names, camelCased, over a native handle.
import { native } from '../native/loader.js';
import type { NativeIndex, TensorHandle } from '../native/binding.js';
import { track } from './scope.js';
import { isDType, isDevice, type Device, type DType } from './dtype.js';

export type Scalar = number | boolean;
export type TensorOrScalar = Tensor | Scalar;
/** Nested number arrays as produced by toArray() (like Python's tolist()). */
export type NestedArray = number | boolean | NestedArray[];
/** An element of index(): a position, null (new axis), '...' , a slice 'a:b:c', {start, stop, step}, a bool or an index Tensor. */
export type IndexSpec = number | null | '...' | string | { start?: number | null; stop?: number | null; step?: number | null } | boolean | Tensor;

function shapeArgs(args: Array<number | readonly number[]>): number[] {
  if (args.length === 1 && Array.isArray(args[0])) return [...args[0]];
  return args as number[];
}

function other(x: TensorOrScalar): TensorHandle | Scalar {
  return x instanceof Tensor ? x.handle : x;
}

function nest(flat: ArrayLike<number | bigint>, shape: number[], bool: boolean): NestedArray {
  const val = (i: number): number | boolean => (bool ? flat[i] !== 0 : Number(flat[i]));
  if (shape.length === 0) return val(0);
  let offset = 0;
  const build = (dim: number): NestedArray[] => {
    const out: NestedArray[] = [];
    for (let i = 0; i < shape[dim]; i++) {
      if (dim === shape.length - 1) out.push(val(offset++));
      else out.push(build(dim + 1));
    }
    return out;
  };
  return build(0);
}

function indexSpec(s: IndexSpec): NativeIndex {
  if (s instanceof Tensor) return s.handle;
  if (typeof s === 'string' && s !== '...') {
    // 'a:b', ':', '::2', '1:' -> slice; a plain integer string is a position
    if (!s.includes(':')) {
      if (/^-?\d+$/.test(s)) return Number(s);
      throw new TypeError(`index: cannot parse '${s}' (expected '...', an integer or a slice like '1:3' or '::2')`);
    }
    const parts = s.split(':');
    if (parts.length > 3) throw new TypeError(`index: cannot parse slice '${s}'`);
    return {
      slice: parts.map((p) => {
        if (p.trim() === '') return null;
        if (!/^-?\d+$/.test(p.trim())) throw new TypeError(`index: cannot parse slice '${s}'`);
        return Number(p);
      }),
    };
  }
  if (s !== null && typeof s === 'object') return { slice: [s.start ?? null, s.stop ?? null, s.step ?? null] };
  return s;
}

export class Tensor {
  /** The native handle; one reference to the libtorch tensor. */
  readonly handle: TensorHandle;

  /** Wraps a native handle (internal; use torch.tensor() and friends). */
  constructor(handle: TensorHandle) {
    this.handle = handle;
    track(this);
  }

  // ---- metadata
  get shape(): number[] {
    return native.shape(this.handle);
  }
  get dtype(): DType {
    return native.dtype(this.handle);
  }
  get device(): Device {
    return native.device(this.handle);
  }
  get ndim(): number {
    return this.shape.length;
  }
  get requiresGrad(): boolean {
    return native.requiresGrad(this.handle);
  }
  set requiresGrad(value: boolean) {
    native.requiresGrad_(this.handle, value);
  }
  get isLeaf(): boolean {
    return native.isLeaf(this.handle);
  }
  /** The accumulated gradient, or null (a new handle each time). */
  get grad(): Tensor | null {
    const g = native.grad(this.handle);
    return g ? new Tensor(g) : null;
  }
  set grad(value: Tensor | null) {
    native.setGrad(this.handle, value ? value.handle : null);
  }
  get isDisposed(): boolean {
    return this.handle.disposed;
  }
  /** Identity of the underlying tensor: equal for two handles on the same tensor. */
  get id(): string {
    return native.tensorId(this.handle);
  }
  size(dim?: number): number | number[] {
    const s = this.shape;
    if (dim === undefined) return s;
    const d = dim < 0 ? dim + s.length : dim;
    if (d < 0 || d >= s.length) throw new RangeError(`size(${dim}): dimension out of range for a ${s.length}-d tensor`);
    return s[d];
  }
  numel(): number {
    return native.numel(this.handle);
  }

  // ---- data out
  /** The values as nested arrays (PyTorch's tolist()); int64 values become numbers. */
  toArray(): NestedArray {
    return nest(native.toTypedArray(this.handle), this.shape, this.dtype === 'bool');
  }
  /** The single value of a one-element tensor. */
  item(): number | boolean {
    return native.item(this.handle);
  }
  /** A TypedArray copy of the data, row-major (float16/bfloat16 as Float32Array, bool as Uint8Array). */
  dataSync(): Float32Array | Float64Array | Int32Array | Int16Array | Int8Array | Uint8Array | BigInt64Array {
    return native.toTypedArray(this.handle);
  }
  toString(): string {
    return native.format(this.handle);
  }

  // ---- memory
  /** Releases this handle's reference now; idempotent. Other handles on the same tensor stay valid. */
  dispose(): void {
    this.handle.dispose();
  }
  [Symbol.dispose](): void {
    this.dispose();
  }

  // ---- conversion
  /** to('cuda:0'), to('float64'), to('cpu', 'float16'). */
  to(deviceOrDtype: Device | DType, dtype?: DType): Tensor {
    if (isDType(deviceOrDtype)) return new Tensor(native.to(this.handle, null, deviceOrDtype));
    if (!isDevice(deviceOrDtype)) throw new TypeError(`to(): '${deviceOrDtype}' is neither a device ('cpu', 'cuda:N') nor a dtype`);
    if (dtype !== undefined && !isDType(dtype)) throw new TypeError(`to(): unknown dtype '${dtype}'`);
    return new Tensor(native.to(this.handle, deviceOrDtype, dtype ?? null));
  }
  cpu(): Tensor {
    return this.to('cpu');
  }
  cuda(index = 0): Tensor {
    return this.to(`cuda:${index}`);
  }
  float(): Tensor {
    return this.to('float32');
  }
  double(): Tensor {
    return this.to('float64');
  }
  long(): Tensor {
    return this.to('int64');
  }
  int(): Tensor {
    return this.to('int32');
  }
  bool(): Tensor {
    return this.to('bool');
  }

  // ---- autograd
  backward(gradient?: Tensor, options: { retainGraph?: boolean } = {}): void {
    native.backward(this.handle, gradient?.handle ?? null, options.retainGraph ?? false);
  }
  /** Runs backward on a worker thread. */
  async backwardAsync(gradient?: Tensor): Promise<void> {
    await native.backwardAsync(this.handle, gradient?.handle ?? null);
  }
  detach(): Tensor {
    return new Tensor(native.detach(this.handle));
  }
  requiresGrad_(requiresGrad = true): this {
    native.requiresGrad_(this.handle, requiresGrad);
    return this;
  }
  clone(): Tensor {
    return new Tensor(native.clone(this.handle));
  }

  // ---- shape
  reshape(...shape: Array<number | readonly number[]>): Tensor {
    return new Tensor(native.reshape(this.handle, shapeArgs(shape)));
  }
  view(...shape: Array<number | readonly number[]>): Tensor {
    return new Tensor(native.view(this.handle, shapeArgs(shape)));
  }
  permute(...dims: Array<number | readonly number[]>): Tensor {
    return new Tensor(native.permute(this.handle, shapeArgs(dims)));
  }
  transpose(dim0: number, dim1: number): Tensor {
    return new Tensor(native.transpose(this.handle, dim0, dim1));
  }
  /** Transpose of a 2-D tensor. */
  t(): Tensor {
    return this.transpose(0, 1);
  }
  squeeze(dim?: number): Tensor {
    return new Tensor(native.squeeze(this.handle, dim ?? null));
  }
  unsqueeze(dim: number): Tensor {
    return new Tensor(native.unsqueeze(this.handle, dim));
  }
  flatten(startDim = 0, endDim = -1): Tensor {
    return new Tensor(native.flatten(this.handle, startDim, endDim));
  }
  expand(...shape: Array<number | readonly number[]>): Tensor {
    return new Tensor(native.expand(this.handle, shapeArgs(shape)));
  }
  repeat(...repeats: Array<number | readonly number[]>): Tensor {
    return new Tensor(native.repeat(this.handle, shapeArgs(repeats)));
  }
  flip(...dims: Array<number | readonly number[]>): Tensor {
    return new Tensor(native.flip(this.handle, shapeArgs(dims)));
  }
  /** The tensor laid out in memoryFormat ('contiguous', the default, or 'channelsLast' for 4-D); itself when it already is. */
  contiguous(memoryFormat: 'contiguous' | 'channelsLast' = 'contiguous'): Tensor {
    if (memoryFormat === 'contiguous') return new Tensor(native.contiguous(this.handle));
    if (memoryFormat !== 'channelsLast')
      throw new TypeError(`contiguous: memoryFormat must be 'contiguous' or 'channelsLast', got ${JSON.stringify(memoryFormat)}`);
    return new Tensor(native.contiguousAs(this.handle, memoryFormat));
  }
  /** Whether the tensor is laid out in memoryFormat (PyTorch's is_contiguous(memory_format=...)). */
  isContiguous(memoryFormat: 'contiguous' | 'channelsLast' = 'contiguous'): boolean {
    if (memoryFormat !== 'contiguous' && memoryFormat !== 'channelsLast')
      throw new TypeError(`isContiguous: memoryFormat must be 'contiguous' or 'channelsLast', got ${JSON.stringify(memoryFormat)}`);
    return native.isContiguousAs(this.handle, memoryFormat);
  }
  /** Elements to step in each dimension (PyTorch's stride()). */
  stride(): number[] {
    return native.strides(this.handle);
  }
  narrow(dim: number, start: number, length: number): Tensor {
    return new Tensor(native.narrow(this.handle, dim, start, length));
  }
  select(dim: number, index: number): Tensor {
    return new Tensor(native.select(this.handle, dim, index));
  }
  chunk(chunks: number, dim = 0): Tensor[] {
    return native.chunk(this.handle, chunks, dim).map((h: TensorHandle) => new Tensor(h));
  }
  split(splitSize: number, dim = 0): Tensor[] {
    return native.split(this.handle, splitSize, dim).map((h: TensorHandle) => new Tensor(h));
  }

  // ---- indexing
  /** Python's t[...]: t.index(0, '1:3', null, '...', idxTensor). */
  index(...specs: IndexSpec[]): Tensor {
    return new Tensor(native.index(this.handle, specs.map(indexSpec)));
  }
  /** Python's t[...] = value, in place. */
  indexPut_(specs: IndexSpec[], value: TensorOrScalar): this {
    native.indexPut_(this.handle, specs.map(indexSpec), other(value)).dispose();
    return this;
  }
  indexSelect(dim: number, index: Tensor): Tensor {
    return new Tensor(native.indexSelect(this.handle, dim, index.handle));
  }
  gather(dim: number, index: Tensor): Tensor {
    return new Tensor(native.gather(this.handle, dim, index.handle));
  }
  scatter(dim: number, index: Tensor, src: TensorOrScalar): Tensor {
    return new Tensor(native.scatter(this.handle, dim, index.handle, other(src)));
  }
  maskedFill(mask: Tensor, value: Scalar): Tensor {
    return new Tensor(native.maskedFill(this.handle, mask.handle, value));
  }

  // ---- arithmetic (broadcasting, scalars allowed)
  add(o: TensorOrScalar, alpha?: number): Tensor {
    return new Tensor(native.add(this.handle, other(o), alpha ?? null));
  }
  sub(o: TensorOrScalar, alpha?: number): Tensor {
    return new Tensor(native.sub(this.handle, other(o), alpha ?? null));
  }
  mul(o: TensorOrScalar): Tensor {
    return new Tensor(native.mul(this.handle, other(o)));
  }
  div(o: TensorOrScalar): Tensor {
    return new Tensor(native.div(this.handle, other(o)));
  }
  pow(o: TensorOrScalar): Tensor {
    return new Tensor(native.pow(this.handle, other(o)));
  }
  remainder(o: TensorOrScalar): Tensor {
    return new Tensor(native.remainder(this.handle, other(o)));
  }
  maximum(o: TensorOrScalar): Tensor {
    return new Tensor(native.maximum(this.handle, other(o)));
  }
  minimum(o: TensorOrScalar): Tensor {
    return new Tensor(native.minimum(this.handle, other(o)));
  }
  matmul(o: Tensor): Tensor {
    return new Tensor(native.matmul(this.handle, o.handle));
  }
  add_(o: TensorOrScalar, alpha?: number): this {
    native.add_(this.handle, other(o), alpha ?? null).dispose();
    return this;
  }
  mul_(o: TensorOrScalar): this {
    native.mul_(this.handle, other(o)).dispose();
    return this;
  }
  fill_(value: Scalar): this {
    native.fill_(this.handle, value).dispose();
    return this;
  }
  zero_(): this {
    native.zero_(this.handle).dispose();
    return this;
  }
  /** Copies src into this tensor in place (no autograd history). */
  copy_(src: Tensor): this {
    native.copy_(this.handle, src.handle).dispose();
    return this;
  }
  neg(): Tensor {
    return new Tensor(native.neg(this.handle));
  }
  exp(): Tensor {
    return new Tensor(native.exp(this.handle));
  }
  log(): Tensor {
    return new Tensor(native.log(this.handle));
  }
  log1p(): Tensor {
    return new Tensor(native.log1p(this.handle));
  }
  sqrt(): Tensor {
    return new Tensor(native.sqrt(this.handle));
  }
  rsqrt(): Tensor {
    return new Tensor(native.rsqrt(this.handle));
  }
  abs(): Tensor {
    return new Tensor(native.abs(this.handle));
  }
  sign(): Tensor {
    return new Tensor(native.sign(this.handle));
  }
  reciprocal(): Tensor {
    return new Tensor(native.reciprocal(this.handle));
  }
  floor(): Tensor {
    return new Tensor(native.floor(this.handle));
  }
  ceil(): Tensor {
    return new Tensor(native.ceil(this.handle));
  }
  round(): Tensor {
    return new Tensor(native.round(this.handle));
  }
  sin(): Tensor {
    return new Tensor(native.sin(this.handle));
  }
  cos(): Tensor {
    return new Tensor(native.cos(this.handle));
  }
  erf(): Tensor {
    return new Tensor(native.erf(this.handle));
  }
  clamp(min?: number | null, max?: number | null): Tensor {
    return new Tensor(native.clamp(this.handle, min ?? null, max ?? null));
  }
  sigmoid(): Tensor {
    return new Tensor(native.sigmoid(this.handle));
  }
  tanh(): Tensor {
    return new Tensor(native.tanh(this.handle));
  }
  relu(): Tensor {
    return new Tensor(native.relu(this.handle));
  }
  /** In place, as torch.relu_ (torchvision's ReLU(inplace=True)). */
  relu_(): this {
    native.relu_(this.handle).dispose();
    return this;
  }
  softmax(dim: number): Tensor {
    return new Tensor(native.softmax(this.handle, dim));
  }
  logSoftmax(dim: number): Tensor {
    return new Tensor(native.logSoftmax(this.handle, dim));
  }

  // ---- comparison and logic
  eq(o: TensorOrScalar): Tensor {
    return new Tensor(native.eq(this.handle, other(o)));
  }
  ne(o: TensorOrScalar): Tensor {
    return new Tensor(native.ne(this.handle, other(o)));
  }
  lt(o: TensorOrScalar): Tensor {
    return new Tensor(native.lt(this.handle, other(o)));
  }
  le(o: TensorOrScalar): Tensor {
    return new Tensor(native.le(this.handle, other(o)));
  }
  gt(o: TensorOrScalar): Tensor {
    return new Tensor(native.gt(this.handle, other(o)));
  }
  ge(o: TensorOrScalar): Tensor {
    return new Tensor(native.ge(this.handle, other(o)));
  }
  logicalAnd(o: Tensor): Tensor {
    return new Tensor(native.logicalAnd(this.handle, o.handle));
  }
  logicalOr(o: Tensor): Tensor {
    return new Tensor(native.logicalOr(this.handle, o.handle));
  }
  logicalNot(): Tensor {
    return new Tensor(native.logicalNot(this.handle));
  }
  isnan(): Tensor {
    return new Tensor(native.isnan(this.handle));
  }

  // ---- reductions (dim: a dimension or a list; omitted = all)
  sum(dim?: number | number[], keepdim = false): Tensor {
    return new Tensor(native.sum(this.handle, dim ?? null, keepdim));
  }
  mean(dim?: number | number[], keepdim = false): Tensor {
    return new Tensor(native.mean(this.handle, dim ?? null, keepdim));
  }
  prod(dim?: number, keepdim = false): Tensor {
    return new Tensor(native.prod(this.handle, dim ?? null, keepdim));
  }
  std(dim?: number | number[], options: { unbiased?: boolean; keepdim?: boolean } = {}): Tensor {
    return new Tensor(native.std(this.handle, dim ?? null, options.unbiased ?? true, options.keepdim ?? false));
  }
  var(dim?: number | number[], options: { unbiased?: boolean; keepdim?: boolean } = {}): Tensor {
    return new Tensor(native.var(this.handle, dim ?? null, options.unbiased ?? true, options.keepdim ?? false));
  }
  norm(p = 2, dim?: number | number[], keepdim = false): Tensor {
    return new Tensor(native.norm(this.handle, p, dim ?? null, keepdim));
  }
  logsumexp(dim: number | number[], keepdim = false): Tensor {
    return new Tensor(native.logsumexp(this.handle, dim, keepdim));
  }
  /** max() is the overall maximum; max(dim) gives [values, indices] like PyTorch. */
  max(): Tensor;
  max(dim: number, keepdim?: boolean): [Tensor, Tensor];
  max(dim?: number, keepdim = false): Tensor | [Tensor, Tensor] {
    if (dim === undefined) return new Tensor(native.max(this.handle));
    const [v, i] = native.max(this.handle, dim, keepdim);
    return [new Tensor(v), new Tensor(i)];
  }
  min(): Tensor;
  min(dim: number, keepdim?: boolean): [Tensor, Tensor];
  min(dim?: number, keepdim = false): Tensor | [Tensor, Tensor] {
    if (dim === undefined) return new Tensor(native.min(this.handle));
    const [v, i] = native.min(this.handle, dim, keepdim);
    return [new Tensor(v), new Tensor(i)];
  }
  argmax(dim?: number, keepdim = false): Tensor {
    return new Tensor(native.argmax(this.handle, dim ?? null, keepdim));
  }
  argmin(dim?: number, keepdim = false): Tensor {
    return new Tensor(native.argmin(this.handle, dim ?? null, keepdim));
  }
  all(): Tensor {
    return new Tensor(native.all(this.handle));
  }
  any(): Tensor {
    return new Tensor(native.any(this.handle));
  }
  cumsum(dim: number): Tensor {
    return new Tensor(native.cumsum(this.handle, dim));
  }
  topk(k: number, dim = -1, largest = true): [Tensor, Tensor] {
    const [v, i] = native.topk(this.handle, k, dim, largest);
    return [new Tensor(v), new Tensor(i)];
  }
  /** Stable sort: [values, indices]. */
  sort(dim = -1, descending = false): [Tensor, Tensor] {
    const [v, i] = native.sort(this.handle, dim, descending);
    return [new Tensor(v), new Tensor(i)];
  }
  argsort(dim = -1, descending = false): Tensor {
    const [v, i] = this.sort(dim, descending);
    v.dispose();
    return i;
  }
}
