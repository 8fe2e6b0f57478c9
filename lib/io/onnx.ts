// ONNX export: onnx.export(module, exampleInputs, path, options) traces the
// module (jit.trace's graph: aten ops over tensors, constants and the named
// parameters) and converts each aten op to ONNX operators (opset 17), then
// writes the ModelProto in protobuf's wire format by hand (onnx.proto's field
// numbers; no protobuf library). libtorch has no C++ ONNX exporter (PyTorch's
// torch.onnx is Python), hence this converter for the ops our models use:
// the vision architectures (convolution, batch norm, activations, pools,
// linear) and the BERT family (embeddings, layer norm, attention, GELU).
import { existsSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { native } from '../native/loader.js';
import type { NativeTracedGraph, NativeTracedNode, NativeValueType } from '../native/addon-types.js';
import type { Module } from '../nn/module.js';
import { Tensor } from '../tensor/tensor.js';
import type { DType } from '../tensor/dtype.js';
import { traceWithGraph } from './jit.js';

export interface OnnxExportOptions {
  /** The ONNX opset (only 17 is written). */
  opsetVersion?: number;
  /** Make the first dimension of every input and output a named symbolic dimension 'batch' (default false). */
  dynamicBatch?: boolean;
  /** Names of the graph's inputs (default: the module's inputNames, else 'input' / 'input0', 'input1', ...). */
  inputNames?: string[];
  /** Names of the graph's outputs (default 'output' / 'output0', ...). */
  outputNames?: string[];
}

export interface OnnxExportResult {
  path: string;
  /** The ONNX operator types used, with counts. */
  ops: Record<string, number>;
  inputNames: string[];
  outputNames: string[];
}

// ---- protobuf wire format -------------------------------------------------

/** Builds one protobuf message: fields appended in order. */
class Proto {
  private readonly parts: Buffer[] = [];

  private varint(value: bigint | number): void {
    // int64 fields: negative values as their 64-bit two's complement (10 bytes)
    let v = BigInt.asUintN(64, BigInt(value));
    const bytes: number[] = [];
    do {
      let b = Number(v & 0x7fn);
      v >>= 7n;
      if (v) b |= 0x80;
      bytes.push(b);
    } while (v);
    this.parts.push(Buffer.from(bytes));
  }

  private key(field: number, wire: number): void {
    this.varint((field << 3) | wire);
  }

  int(field: number, value: number | bigint): this {
    this.key(field, 0);
    this.varint(value);
    return this;
  }

  ints(field: number, values: Array<number | bigint>): this {
    for (const v of values) this.int(field, v);
    return this;
  }

  float(field: number, value: number): this {
    this.key(field, 5);
    const b = Buffer.alloc(4);
    b.writeFloatLE(value);
    this.parts.push(b);
    return this;
  }

  floats(field: number, values: number[]): this {
    for (const v of values) this.float(field, v);
    return this;
  }

  bytes(field: number, value: Buffer | Uint8Array): this {
    this.key(field, 2);
    this.varint(value.length);
    this.parts.push(Buffer.from(value.buffer, value.byteOffset, value.byteLength));
    return this;
  }

  string(field: number, value: string): this {
    return this.bytes(field, Buffer.from(value, 'utf8'));
  }

  message(field: number, value: Proto): this {
    return this.bytes(field, value.finish());
  }

  finish(): Buffer {
    return Buffer.concat(this.parts);
  }
}

// onnx.proto's TensorProto.DataType
const ONNX_DTYPE: Record<DType, number> = {
  float32: 1,
  uint8: 2,
  int8: 3,
  int16: 5,
  int32: 6,
  int64: 7,
  bool: 9,
  float16: 10,
  float64: 11,
  bfloat16: 16,
};

// AttributeProto.AttributeType
const ATTR = { FLOAT: 1, INT: 2, STRING: 3, TENSOR: 4, FLOATS: 6, INTS: 7 } as const;

type AttrValue = number | number[] | string | { float: number } | { floats: number[] } | { tensor: Proto };

function attributeProto(name: string, value: AttrValue): Proto {
  const a = new Proto().string(1, name);
  if (typeof value === 'number') return a.int(3, value).int(20, ATTR.INT);
  if (typeof value === 'string') return a.string(4, value).int(20, ATTR.STRING);
  if (Array.isArray(value)) return a.ints(8, value).int(20, ATTR.INTS);
  if ('float' in value) return a.float(2, value.float).int(20, ATTR.FLOAT);
  if ('floats' in value) return a.floats(7, value.floats).int(20, ATTR.FLOATS);
  return a.message(5, value.tensor).int(20, ATTR.TENSOR);
}

function tensorProto(name: string, dtype: DType, dims: number[], raw: Buffer): Proto {
  return new Proto().ints(1, dims).int(2, ONNX_DTYPE[dtype]).string(8, name).bytes(9, raw);
}

function valueInfo(name: string, dtype: DType, dims: Array<number | string>): Proto {
  const shape = new Proto();
  for (const d of dims) shape.message(1, typeof d === 'number' ? new Proto().int(1, d) : new Proto().string(2, d));
  const tensorType = new Proto().int(1, ONNX_DTYPE[dtype]).message(2, shape);
  return new Proto().string(1, name).message(2, new Proto().message(1, tensorType));
}

// ---- the converter --------------------------------------------------------

interface OnnxNode {
  op: string;
  inputs: string[];
  outputs: string[];
  attrs: Record<string, AttrValue>;
}

/** A constant of the traced graph: a number, bool, string, list, null, or a tensor. */
type Constant = number | boolean | string | null | Array<number | boolean> | Tensor;

class Converter {
  readonly nodes: OnnxNode[] = [];
  readonly initializers: Proto[] = [];
  readonly ops: Record<string, number> = {};
  private readonly constants = new Map<string, Constant>();
  private readonly lists = new Map<string, string[]>();
  private readonly types = new Map<string, NativeValueType>();
  private readonly params = new Map<string, { name: string; tensor: Tensor }>();
  private readonly emitted = new Set<string>();
  private counter = 0;
  /** The node being converted (for error messages and fresh names). */
  private current!: NativeTracedNode;

  constructor(private readonly dynamicBatch: boolean) {}

  fresh(hint: string): string {
    return `${hint}_${this.counter++}`;
  }

  add(op: string, inputs: string[], outputs: string[] | number = 1, attrs: Record<string, AttrValue> = {}): string[] {
    const outs = typeof outputs === 'number' ? Array.from({ length: outputs }, () => this.fresh(op)) : outputs;
    this.nodes.push({ op, inputs, outputs: outs, attrs });
    this.ops[op] = (this.ops[op] ?? 0) + 1;
    return outs;
  }

  fail(why: string): never {
    const n = this.current;
    throw new Error(`onnx.export: ${n.kind}${n.scope ? ` (in module '${n.scope}')` : ' (in the root module)'}: ${why}`);
  }

  /** A constant input of the current node (a number, list, ...). */
  constant(name: string): Constant {
    if (!this.constants.has(name)) this.fail(`expected a constant argument, got a value computed from the inputs (${name})`);
    return this.constants.get(name) as Constant;
  }

  isConstant(name: string): boolean {
    return this.constants.has(name);
  }

  int(name: string): number {
    const v = this.constant(name);
    if (typeof v === 'boolean') return Number(v);
    if (typeof v !== 'number') this.fail(`expected an integer argument, got ${JSON.stringify(v)}`);
    return v;
  }

  intList(name: string): number[] {
    const v = this.constant(name);
    if (typeof v === 'number') return [v];
    if (!Array.isArray(v)) this.fail(`expected a list of integers, got ${JSON.stringify(v)}`);
    return v.map(Number);
  }

  bool(name: string): boolean {
    const v = this.constant(name);
    return Boolean(v);
  }

  type(name: string): NativeValueType {
    return this.types.get(name) ?? null;
  }

  rank(name: string): number {
    const shape = this.type(name)?.shape;
    if (!shape) this.fail(`the rank of ${name} is unknown`);
    return shape.length;
  }

  /** An int64 1-D initializer (axes, shapes, starts, ...). */
  ints64(values: number[], hint = 'const'): string {
    const name = this.fresh(hint);
    const raw = Buffer.alloc(8 * values.length);
    values.forEach((v, i) => raw.writeBigInt64LE(BigInt(v), 8 * i));
    this.initializers.push(tensorProto(name, 'int64', [values.length], raw));
    return name;
  }

  /** A scalar initializer of `dtype`. */
  scalar(value: number | boolean, dtype: DType): string {
    const name = this.fresh('scalar');
    const t = torch_scalar(value, dtype);
    this.initializers.push(tensorProto(name, dtype, [], native.rawBytes(t.handle) as Buffer));
    t.dispose();
    return name;
  }

  /** A tensor input of the current node: a graph value, a parameter (as an initializer) or a constant (as an initializer). */
  tensor(name: string, likeDtype?: DType): string {
    const param = this.params.get(name);
    if (param) {
      if (!this.emitted.has(param.name)) {
        this.emitted.add(param.name);
        const t = param.tensor.cpu().contiguous();
        this.initializers.push(tensorProto(param.name, t.dtype, t.shape, native.rawBytes(t.handle) as Buffer));
      }
      return param.name;
    }
    if (this.constants.has(name)) {
      const c = this.constants.get(name);
      if (c instanceof Tensor) {
        if (!this.emitted.has(name)) {
          this.emitted.add(name);
          const t = c.cpu().contiguous();
          this.initializers.push(tensorProto(name, t.dtype, t.shape, native.rawBytes(t.handle) as Buffer));
        }
        return name;
      }
      if (typeof c === 'number' || typeof c === 'boolean') return this.scalar(c, likeDtype ?? (Number.isInteger(c) ? 'int64' : 'float32'));
      this.fail(`expected a tensor argument, got ${JSON.stringify(c)}`);
    }
    return name;
  }

  /** The dtype of a graph value or parameter. */
  dtypeOf(name: string): DType | undefined {
    const param = this.params.get(name);
    if (param) return param.tensor.dtype;
    const c = this.constants.get(name);
    if (c instanceof Tensor) return c.dtype;
    return this.type(name)?.dtype;
  }

  /** A binary elementwise op whose operands may be numbers: numbers take the other operand's dtype. */
  binary(op: string, a: string, b: string, out: string): void {
    const dtype = (this.isConstant(a) && !(this.constants.get(a) instanceof Tensor) ? this.dtypeOf(b) : this.dtypeOf(a)) ?? this.type(out)?.dtype;
    this.add(op, [this.tensor(a, dtype), this.tensor(b, dtype)], [out]);
  }

  record(n: NativeTracedNode): void {
    n.outputs.forEach((o, i) => this.types.set(o, n.types[i] ?? null));
  }

  defineInput(name: string, type: NativeValueType): void {
    this.types.set(name, type);
  }

  convert(n: NativeTracedNode): void {
    this.current = n;
    this.record(n);
    const [out] = n.outputs;
    const i = n.inputs;
    switch (n.kind) {
      case 'param': {
        const tensor = new Tensor(n.value as Tensor['handle']);
        this.params.set(out, { name: n.name as string, tensor });
        this.types.set(out, { dtype: tensor.dtype, shape: tensor.shape });
        return;
      }
      case 'prim::Constant': {
        const v = n.value;
        if (v !== null && typeof v === 'object' && !Array.isArray(v) && 'unsupported' in v)
          this.fail(`a constant of kind ${(v as { unsupported: string }).unsupported} is not supported`);
        const value = v !== null && typeof v === 'object' && !Array.isArray(v) ? new Tensor(v as Tensor['handle']) : (v as Constant);
        if (value instanceof Tensor) this.types.set(out, { dtype: value.dtype, shape: value.shape });
        this.constants.set(out, value);
        return;
      }
      case 'prim::ListConstruct':
        if (i.every((x) => this.isConstant(x) && !(this.constants.get(x) instanceof Tensor)))
          this.constants.set(
            out,
            i.map((x) => this.constants.get(x) as number),
          );
        else this.lists.set(out, i);
        return;
      case 'prim::NumToTensor':
        this.constants.set(out, this.constant(i[0]) as number);
        return;
      case 'aten::Int':
      case 'aten::Float':
      case 'aten::ScalarImplicit':
        this.constants.set(out, this.constant(i[0]));
        return;
      case 'aten::conv2d':
      case 'aten::_convolution':
      case 'aten::convolution': {
        // conv2d(x, w, b, stride, padding, dilation, groups); _convolution/convolution(x, w, b, stride, padding, dilation, transposed, output_padding, groups, ...)
        const conv2d = n.kind === 'aten::conv2d';
        if (!conv2d && this.bool(i[6])) this.fail('transposed convolutions are not supported');
        if (conv2d && typeof this.constants.get(i[4]) === 'string') this.fail("padding='same'/'valid' is not supported");
        const pads = this.intList(i[4]);
        const inputs = [this.tensor(i[0]), this.tensor(i[1])];
        if (this.constants.get(i[2]) !== null) inputs.push(this.tensor(i[2]));
        this.add('Conv', inputs, [out], {
          strides: this.intList(i[3]),
          pads: [...pads, ...pads],
          dilations: this.intList(i[5]),
          group: this.int(conv2d ? i[6] : i[8]),
        });
        return;
      }
      case 'aten::batch_norm': {
        // batch_norm(x, weight, bias, running_mean, running_var, training, momentum, eps, cudnn_enabled)
        if (this.bool(i[5])) this.fail('batch norm in training mode (export traces in eval mode; this module uses batch statistics)');
        if (this.constants.get(i[1]) === null || this.constants.get(i[3]) === null) this.fail('batch norm without affine weights or running statistics');
        const eps = this.constant(i[7]) as number;
        this.add(
          'BatchNormalization',
          [i[0], i[1], i[2], i[3], i[4]].map((x) => this.tensor(x)),
          [out],
          { epsilon: { float: eps } },
        );
        return;
      }
      case 'aten::layer_norm': {
        // layer_norm(x, normalized_shape, weight, bias, eps, cudnn_enable)
        const dims = this.intList(i[1]).length;
        if (this.constants.get(i[2]) === null) this.fail('layer norm without a weight');
        const inputs = [this.tensor(i[0]), this.tensor(i[2])];
        if (this.constants.get(i[3]) !== null) inputs.push(this.tensor(i[3]));
        this.add('LayerNormalization', inputs, [out], { axis: -dims, epsilon: { float: this.constant(i[4]) as number } });
        return;
      }
      case 'aten::relu':
      case 'aten::relu_':
        this.add('Relu', [this.tensor(i[0])], [out]);
        return;
      case 'aten::sigmoid':
      case 'aten::sigmoid_':
        this.add('Sigmoid', [this.tensor(i[0])], [out]);
        return;
      case 'aten::tanh':
      case 'aten::tanh_':
        this.add('Tanh', [this.tensor(i[0])], [out]);
        return;
      case 'aten::hardswish':
      case 'aten::hardswish_':
        this.add('HardSwish', [this.tensor(i[0])], [out]);
        return;
      case 'aten::hardsigmoid':
      case 'aten::hardsigmoid_':
        this.add('HardSigmoid', [this.tensor(i[0])], [out], { alpha: { float: 1 / 6 }, beta: { float: 0.5 } });
        return;
      case 'aten::silu':
      case 'aten::silu_': {
        // silu(x) = x * sigmoid(x) (ONNX has no SiLU before opset 24)
        const x = this.tensor(i[0]);
        const [s] = this.add('Sigmoid', [x]);
        this.add('Mul', [x, s], [out]);
        return;
      }
      case 'aten::gelu': {
        const approximate = i.length > 1 ? this.constant(i[1]) : 'none';
        const x = this.tensor(i[0]);
        const dtype = this.dtypeOf(i[0]) ?? 'float32';
        if (approximate === 'tanh') {
          // 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
          const [x3] = this.add('Mul', [x, ...this.add('Mul', [x, x])]);
          const [inner] = this.add('Add', [x, ...this.add('Mul', [x3, this.scalar(0.044715, dtype)])]);
          const [t] = this.add('Tanh', this.add('Mul', [inner, this.scalar(Math.sqrt(2 / Math.PI), dtype)]));
          const [half] = this.add('Mul', [x, this.scalar(0.5, dtype)]);
          this.add('Mul', [half, ...this.add('Add', [t, this.scalar(1, dtype)])], [out]);
        } else {
          // 0.5 x (1 + erf(x / sqrt(2))) (ONNX's Gelu arrives in opset 20)
          const [e] = this.add('Erf', this.add('Div', [x, this.scalar(Math.SQRT2, dtype)]));
          const [half] = this.add('Mul', [x, this.scalar(0.5, dtype)]);
          this.add('Mul', [half, ...this.add('Add', [e, this.scalar(1, dtype)])], [out]);
        }
        return;
      }
      case 'aten::max_pool2d': {
        // max_pool2d(x, kernel, stride, padding, dilation, ceil_mode)
        const kernel = this.intList(i[1]);
        const stride = this.intList(i[2]);
        const pads = this.intList(i[3]);
        this.add('MaxPool', [this.tensor(i[0])], [out], {
          kernel_shape: kernel,
          strides: stride.length ? stride : kernel,
          pads: [...pads, ...pads],
          dilations: this.intList(i[4]),
          ceil_mode: Number(this.bool(i[5])),
        });
        return;
      }
      case 'aten::avg_pool2d': {
        // avg_pool2d(x, kernel, stride, padding, ceil_mode, count_include_pad, divisor_override)
        if (i.length > 6 && this.constants.get(i[6]) !== null) this.fail('divisor_override is not supported');
        const kernel = this.intList(i[1]);
        const stride = this.intList(i[2]);
        const pads = this.intList(i[3]);
        this.add('AveragePool', [this.tensor(i[0])], [out], {
          kernel_shape: kernel,
          strides: stride.length ? stride : kernel,
          pads: [...pads, ...pads],
          ceil_mode: Number(this.bool(i[4])),
          count_include_pad: Number(this.bool(i[5])),
        });
        return;
      }
      case 'aten::adaptive_avg_pool2d': {
        const size = this.intList(i[1]);
        if (size.every((s) => s === 1)) {
          this.add('GlobalAveragePool', [this.tensor(i[0])], [out]);
          return;
        }
        // other sizes: an average pool when the traced input divides evenly (the shape is then fixed)
        const shape = this.type(i[0])?.shape;
        const hw = shape?.slice(-2);
        const sizes = size.length === 1 ? [size[0], size[0]] : size;
        if (!hw || hw.some((d, k) => d % sizes[k] !== 0))
          this.fail(`adaptive average pooling to ${sizes.join('x')} from ${hw?.join('x') ?? 'an unknown size'} (only to 1x1, or by a whole factor)`);
        const kernel = hw.map((d, k) => d / sizes[k]);
        this.add('AveragePool', [this.tensor(i[0])], [out], { kernel_shape: kernel, strides: kernel });
        return;
      }
      case 'aten::add':
      case 'aten::add_':
      case 'aten::sub':
      case 'aten::sub_':
      case 'aten::rsub': {
        // add/sub(a, b, alpha): a +- alpha * b; rsub(a, b, alpha): b - alpha * a
        const [a, b] = n.kind === 'aten::rsub' ? [i[1], i[0]] : [i[0], i[1]];
        const alpha = i.length > 2 ? (this.constant(i[2]) as number) : 1;
        const op = n.kind.startsWith('aten::add') ? 'Add' : 'Sub';
        if (alpha === 1) {
          this.binary(op, a, b, out);
        } else {
          const dtype = this.dtypeOf(b) ?? this.type(out)?.dtype;
          const [scaled] = this.add('Mul', [this.tensor(b, dtype), this.scalar(alpha, dtype ?? 'float32')]);
          this.add(op, [this.tensor(a, dtype), scaled], [out]);
        }
        return;
      }
      case 'aten::mul':
      case 'aten::mul_':
        this.binary('Mul', i[0], i[1], out);
        return;
      case 'aten::div':
      case 'aten::div_':
        if (i.length > 2 && this.constants.get(i[2]) !== null) this.fail('div with rounding_mode is not supported');
        this.binary('Div', i[0], i[1], out);
        return;
      case 'aten::matmul':
        this.add('MatMul', [this.tensor(i[0]), this.tensor(i[1])], [out]);
        return;
      case 'aten::linear': {
        // linear(x, w, b) = x w^T + b
        const [wt] = this.add('Transpose', [this.tensor(i[1])], 1, { perm: [1, 0] });
        if (this.constants.get(i[2]) === null) {
          this.add('MatMul', [this.tensor(i[0]), wt], [out]);
        } else {
          const [xw] = this.add('MatMul', [this.tensor(i[0]), wt]);
          this.add('Add', [xw, this.tensor(i[2])], [out]);
        }
        return;
      }
      case 'aten::addmm': {
        // addmm(bias, a, b, beta, alpha) = beta bias + alpha a b
        this.add('Gemm', [this.tensor(i[1]), this.tensor(i[2]), this.tensor(i[0])], [out], {
          alpha: { float: i.length > 4 ? (this.constant(i[4]) as number) : 1 },
          beta: { float: i.length > 3 ? (this.constant(i[3]) as number) : 1 },
        });
        return;
      }
      case 'aten::t': {
        const r = this.rank(i[0]);
        this.add('Transpose', [this.tensor(i[0])], [out], { perm: r < 2 ? [0] : [1, 0] });
        return;
      }
      case 'aten::transpose': {
        const r = this.rank(i[0]);
        const perm = Array.from({ length: r }, (_, k) => k);
        const a = (this.int(i[1]) + r) % r;
        const b = (this.int(i[2]) + r) % r;
        [perm[a], perm[b]] = [perm[b], perm[a]];
        this.add('Transpose', [this.tensor(i[0])], [out], { perm });
        return;
      }
      case 'aten::permute':
        this.add('Transpose', [this.tensor(i[0])], [out], { perm: this.intList(i[1]) });
        return;
      case 'aten::flatten': {
        const r = this.rank(i[0]);
        const start = (this.int(i[1]) + r) % r;
        const end = (this.int(i[2]) + r) % r;
        const shape = this.type(i[0])?.shape ?? [];
        // keep leading dimensions as they come (0), merge start..end (-1), trailing ones from the trace
        const target = [...Array(start).fill(0), -1, ...shape.slice(end + 1)];
        this.add('Reshape', [this.tensor(i[0]), this.ints64(target, 'shape')], [out]);
        return;
      }
      case 'aten::unflatten': {
        const r = this.rank(i[0]);
        const dim = (this.int(i[1]) + r) % r;
        const shape = this.type(i[0])?.shape ?? [];
        const target = [...Array(dim).fill(0), ...this.intList(i[2]), ...shape.slice(dim + 1)];
        this.add('Reshape', [this.tensor(i[0]), this.ints64(target, 'shape')], [out]);
        return;
      }
      case 'aten::view':
      case 'aten::reshape': {
        const target = this.intList(i[1]);
        const shape = this.type(i[0])?.shape;
        // leading dimensions equal to the input's are copied from it (0), so a dynamic batch passes through
        if (this.dynamicBatch && shape) {
          for (let k = 0; k < target.length && k < shape.length && target[k] === shape[k]; k++) target[k] = 0;
        }
        this.add('Reshape', [this.tensor(i[0]), this.ints64(target, 'shape')], [out]);
        return;
      }
      case 'aten::unsqueeze':
        this.add('Unsqueeze', [this.tensor(i[0]), this.ints64([this.int(i[1])], 'axes')], [out]);
        return;
      case 'aten::squeeze':
        if (i.length > 1) this.add('Squeeze', [this.tensor(i[0]), this.ints64([this.int(i[1])], 'axes')], [out]);
        else this.add('Squeeze', [this.tensor(i[0])], [out]);
        return;
      case 'aten::select': {
        // select(x, dim, index): a scalar index drops the dimension
        const index = this.scalar(this.int(i[2]), 'int64');
        this.add('Gather', [this.tensor(i[0]), index], [out], { axis: this.int(i[1]) });
        return;
      }
      case 'aten::slice': {
        // slice(x, dim, start, end, step)
        const start = this.constants.get(i[2]) ?? 0;
        const end = this.constants.get(i[3]) ?? Number.MAX_SAFE_INTEGER;
        const step = i.length > 4 ? this.int(i[4]) : 1;
        this.add(
          'Slice',
          [
            this.tensor(i[0]),
            this.ints64([Number(start)]),
            this.ints64([Math.min(Number(end), Number.MAX_SAFE_INTEGER)]),
            this.ints64([this.int(i[1])]),
            this.ints64([step]),
          ],
          [out],
        );
        return;
      }
      case 'aten::narrow': {
        // narrow(x, dim, start, length)
        const start = this.int(i[2]);
        this.add('Slice', [this.tensor(i[0]), this.ints64([start]), this.ints64([start + this.int(i[3])]), this.ints64([this.int(i[1])])], [out]);
        return;
      }
      case 'aten::cat': {
        const parts = this.lists.get(i[0]);
        if (!parts) this.fail('cat of a list that is not built in the graph');
        this.add(
          'Concat',
          parts.map((p) => this.tensor(p)),
          [out],
          { axis: this.int(i[1]) },
        );
        return;
      }
      case 'aten::dropout':
      case 'aten::dropout_':
      case 'aten::feature_dropout':
      case 'aten::alpha_dropout':
        if (this.bool(i[2])) this.fail('dropout in training mode');
        this.add('Identity', [this.tensor(i[0])], [out]);
        return;
      case 'aten::contiguous':
      case 'aten::clone':
      case 'aten::detach':
        this.add('Identity', [this.tensor(i[0])], [out]);
        return;
      case 'aten::embedding':
        // embedding(weight, indices, padding_idx, scale_grad_by_freq, sparse)
        this.add('Gather', [this.tensor(i[0]), this.tensor(i[1])], [out], { axis: 0 });
        return;
      case 'aten::softmax':
      case 'aten::log_softmax': {
        let x = this.tensor(i[0]);
        const dtype = this.type(out)?.dtype;
        if (dtype && dtype !== this.dtypeOf(i[0])) [x] = this.add('Cast', [x], 1, { to: ONNX_DTYPE[dtype] });
        this.add(n.kind === 'aten::softmax' ? 'Softmax' : 'LogSoftmax', [x], [out], { axis: this.int(i[1]) });
        return;
      }
      case 'aten::to':
      case 'aten::type_as': {
        const dtype = this.type(out)?.dtype;
        if (!dtype) this.fail('the target dtype is unknown');
        this.add('Cast', [this.tensor(i[0])], [out], { to: ONNX_DTYPE[dtype] });
        return;
      }
      case 'aten::ne':
      case 'aten::eq': {
        const dtype = this.dtypeOf(i[0]) ?? this.dtypeOf(i[1]);
        const args = [this.tensor(i[0], dtype), this.tensor(i[1], dtype)];
        if (n.kind === 'aten::eq') this.add('Equal', args, [out]);
        else this.add('Not', this.add('Equal', args), [out]);
        return;
      }
      case 'aten::cumsum': {
        let x = this.tensor(i[0]);
        const dtype = this.type(out)?.dtype;
        if (dtype && dtype !== this.dtypeOf(i[0])) [x] = this.add('Cast', [x], 1, { to: ONNX_DTYPE[dtype] });
        this.add('CumSum', [x, this.ints64([this.int(i[1])], 'axis')], [out]);
        return;
      }
      case 'aten::ones_like':
      case 'aten::zeros_like': {
        const dtype = this.type(out)?.dtype ?? this.dtypeOf(i[0]) ?? 'float32';
        const value = torch_scalar(n.kind === 'aten::ones_like' ? 1 : 0, dtype, [1]);
        const [shape] = this.add('Shape', [this.tensor(i[0])]);
        this.add('ConstantOfShape', [shape], [out], { value: { tensor: tensorProto('value', dtype, [1], native.rawBytes(value.handle) as Buffer) } });
        value.dispose();
        return;
      }
      case 'aten::empty_like': {
        // its contents are undefined: zeros do (libtorch's scalar - tensor is empty_like(t).fill_(s).sub_(t))
        const dtype = this.type(out)?.dtype ?? this.dtypeOf(i[0]) ?? 'float32';
        const zero = torch_scalar(0, dtype, [1]);
        const [shape] = this.add('Shape', [this.tensor(i[0])]);
        this.add('ConstantOfShape', [shape], [out], { value: { tensor: tensorProto('value', dtype, [1], native.rawBytes(zero.handle) as Buffer) } });
        zero.dispose();
        return;
      }
      case 'aten::fill_': {
        const dtype = this.dtypeOf(i[0]) ?? 'float32';
        const [shape] = this.add('Shape', [this.tensor(i[0])]);
        this.add('Expand', [this.tensor(i[1], dtype), shape], [out]);
        return;
      }
      case 'aten::expand_as': {
        const [shape] = this.add('Shape', [this.tensor(i[1])]);
        this.add('Expand', [this.tensor(i[0]), shape], [out]);
        return;
      }
      case 'aten::expand': {
        // -1 keeps a dimension: Expand broadcasts, so 1 there does the same
        const target = this.intList(i[1]).map((d) => (d === -1 ? 1 : d));
        this.add('Expand', [this.tensor(i[0]), this.ints64(target, 'shape')], [out]);
        return;
      }
      case 'aten::scaled_dot_product_attention':
        this.attention(i, out);
        return;
      default:
        this.fail(`no ONNX conversion for this op (onnx.export converts the ops of the vision architectures and the BERT family)`);
    }
  }

  /** scaled_dot_product_attention(q, k, v, attn_mask, dropout_p, is_causal[, scale]) as MatMul/Softmax. */
  private attention(i: string[], out: string): void {
    if (this.bool(i[5])) this.fail('causal attention is not supported');
    const q = this.tensor(i[0]);
    const shape = this.type(i[0])?.shape;
    if (!shape) this.fail('the query shape is unknown');
    const dtype = this.dtypeOf(i[0]) ?? 'float32';
    const scale = i.length > 6 && this.constants.get(i[6]) !== null ? (this.constant(i[6]) as number) : 1 / Math.sqrt(shape[shape.length - 1]);
    const r = shape.length;
    const perm = Array.from({ length: r }, (_, k) => k);
    [perm[r - 2], perm[r - 1]] = [perm[r - 1], perm[r - 2]];
    const [kt] = this.add('Transpose', [this.tensor(i[1])], 1, { perm });
    let [scores] = this.add('Mul', [...this.add('MatMul', [q, kt]), this.scalar(scale, dtype)]);
    const mask = this.constants.get(i[3]) === null ? null : this.tensor(i[3]);
    if (mask) {
      if (this.dtypeOf(i[3]) === 'bool') [scores] = this.add('Where', [mask, scores, this.scalar(-Infinity, dtype)]);
      else [scores] = this.add('Add', [scores, mask]);
    }
    const [probs] = this.add('Softmax', [scores], 1, { axis: -1 });
    this.add('MatMul', [probs, this.tensor(i[2])], [out]);
  }

  /** The name a graph output's value has in the ONNX graph (a parameter or constant output becomes an initializer). */
  outputValue(name: string): string {
    return this.tensor(name);
  }
}

/** A 0-d (or `dims`) tensor of one value in `dtype`, for its bytes. */
function torch_scalar(value: number | boolean, dtype: DType, dims: number[] = []): Tensor {
  return new Tensor(native.full(dims, value, { dtype, device: 'cpu' }));
}

function checkNames(fn: string, what: string, names: unknown, count: number): string[] | undefined {
  if (names === undefined) return undefined;
  if (!Array.isArray(names) || names.length !== count || !names.every((n) => typeof n === 'string' && n.length > 0) || new Set(names).size !== count)
    throw new TypeError(`${fn}: options.${what} must be ${count} distinct non-empty strings`);
  return names as string[];
}

/** Converts a traced graph to an ONNX ModelProto's bytes. */
export function graphToOnnx(
  graph: NativeTracedGraph,
  options: { dynamicBatch?: boolean; inputNames?: string[]; outputNames?: string[]; producer?: string } = {},
): { bytes: Buffer; ops: Record<string, number>; inputNames: string[]; outputNames: string[] } {
  const c = new Converter(Boolean(options.dynamicBatch));
  const inputNames = options.inputNames ?? graph.inputs.map((x) => x.name);
  const outputNames = options.outputNames ?? graph.outputs.map((_, k) => (graph.outputs.length === 1 ? 'output' : `output${k}`));
  for (const x of graph.inputs) c.defineInput(x.name, x.type);
  // graph inputs renamed: an Identity from the public name to the traced one
  graph.inputs.forEach((x, k) => {
    if (inputNames[k] !== x.name) c.add('Identity', [inputNames[k]], [x.name]);
  });
  for (const n of graph.nodes) c.convert(n);
  graph.outputs.forEach((x, k) => c.add('Identity', [c.outputValue(x.name)], [outputNames[k]]));

  const dims = (type: NativeValueType, what: string): Array<number | string> => {
    if (!type?.shape || !type.dtype) throw new Error(`onnx.export: the ${what}'s dtype or shape is unknown`);
    return type.shape.map((d, k) => (k === 0 && options.dynamicBatch ? 'batch' : d));
  };
  const g = new Proto();
  for (const n of c.nodes) {
    const node = new Proto();
    for (const x of n.inputs) node.string(1, x);
    for (const x of n.outputs) node.string(2, x);
    node.string(3, `${n.op}_${n.outputs[0]}`).string(4, n.op);
    for (const [name, value] of Object.entries(n.attrs)) node.message(5, attributeProto(name, value));
    g.message(1, node);
  }
  g.string(2, 'finetorch');
  for (const t of c.initializers) g.message(5, t);
  graph.inputs.forEach((x, k) => g.message(11, valueInfo(inputNames[k], x.type?.dtype as DType, dims(x.type, `input '${inputNames[k]}'`))));
  graph.outputs.forEach((x, k) => g.message(12, valueInfo(outputNames[k], x.type?.dtype as DType, dims(x.type, `output '${outputNames[k]}'`))));

  const model = new Proto()
    .int(1, 8) // IR version 8 (ONNX 1.10+; opset 17 needs >= 8)
    .string(2, 'finetorch')
    .string(3, options.producer ?? '')
    .message(7, g)
    .message(8, new Proto().string(1, '').int(2, 17));
  return { bytes: model.finish(), ops: c.ops, inputNames, outputNames };
}

/**
 * Exports `module` as an ONNX model (opset 17) at `path`: traced on
 * `exampleInputs` in eval mode (see jit.trace), each aten op converted to
 * ONNX operators, the parameters and buffers stored as initializers under
 * their dotted names. An op without a conversion is an error naming it and
 * the module it came from.
 */
function exportOnnx(module: Module, exampleInputs: Tensor | Tensor[], path: string, options: OnnxExportOptions = {}): OnnxExportResult {
  const fn = 'onnx.export';
  if (typeof path !== 'string' || !path) throw new TypeError(`${fn}: path must be a non-empty string`);
  if (options === null || typeof options !== 'object') throw new TypeError(`${fn}: options must be an object`);
  const folder = dirname(resolve(path));
  if (!existsSync(folder) || !statSync(folder).isDirectory()) throw new Error(`${fn}: the folder ${folder} does not exist (path ${path})`);
  const opset = options.opsetVersion ?? 17;
  if (opset !== 17) throw new RangeError(`${fn}: opsetVersion ${JSON.stringify(opset)} is not supported (only 17)`);
  const { graph, module: traced } = traceWithGraph(fn, module, exampleInputs);
  try {
    const inputNames = checkNames(fn, 'inputNames', options.inputNames, graph.inputs.length);
    const outputNames = checkNames(fn, 'outputNames', options.outputNames, graph.outputs.length);
    const result = graphToOnnx(graph, { dynamicBatch: options.dynamicBatch, inputNames, outputNames });
    const tmp = `${path}.tmp-${process.pid}`;
    try {
      writeFileSync(tmp, result.bytes);
      renameSync(tmp, path);
    } finally {
      rmSync(tmp, { force: true });
    }
    return { path, ops: result.ops, inputNames: result.inputNames, outputNames: result.outputNames };
  } finally {
    traced.dispose();
  }
}

export const onnx = { export: exportOnnx } as const;
