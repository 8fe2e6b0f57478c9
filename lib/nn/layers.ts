// Built-in layers: native torch::nn modules with PyTorch's constructor
// arguments (camelCased) and parameter names.
import { native } from '../native/loader.js';
import { Tensor } from '../tensor/tensor.js';
import { Module, registerKind } from './module.js';

type Pair = number | [number, number];

function posInt(where: string, name: string, v: unknown): number {
  if (!Number.isInteger(v) || (v as number) < 1) throw new TypeError(`${where}: ${name} must be a positive integer, got ${String(v)}`);
  return v as number;
}
function pair(where: string, name: string, v: Pair | undefined, min: number): [number, number] | undefined {
  if (v === undefined) return undefined;
  const p: number[] = Array.isArray(v) ? v : [v, v];
  if (p.length !== 2 || p.some((x) => !Number.isInteger(x) || x < min))
    throw new TypeError(`${where}: ${name} must be an integer >= ${min} or a pair of them, got ${JSON.stringify(v)}`);
  return [p[0], p[1]];
}
function probability(where: string, v: unknown): number {
  if (typeof v !== 'number' || !(v >= 0 && v <= 1)) throw new TypeError(`${where}: p must be a probability in [0, 1], got ${String(v)}`);
  return v;
}

/** y = x W^T + b; weight [outFeatures, inFeatures], bias [outFeatures]. */
export class Linear extends Module {
  constructor(inFeatures: number, outFeatures: number, options: { bias?: boolean } = {}) {
    super(
      native.createModule('Linear', {
        inFeatures: posInt('Linear', 'inFeatures', inFeatures),
        outFeatures: posInt('Linear', 'outFeatures', outFeatures),
        bias: options.bias ?? true,
      }),
    );
  }
}

export interface Conv2dOptions {
  stride?: Pair;
  padding?: Pair;
  dilation?: Pair;
  groups?: number;
  bias?: boolean;
}
export class Conv2d extends Module {
  constructor(inChannels: number, outChannels: number, kernelSize: Pair, options: Conv2dOptions = {}) {
    super(
      native.createModule('Conv2d', {
        inChannels: posInt('Conv2d', 'inChannels', inChannels),
        outChannels: posInt('Conv2d', 'outChannels', outChannels),
        kernelSize: pair('Conv2d', 'kernelSize', kernelSize, 1),
        stride: pair('Conv2d', 'stride', options.stride, 1),
        padding: pair('Conv2d', 'padding', options.padding, 0),
        dilation: pair('Conv2d', 'dilation', options.dilation, 1),
        groups: options.groups === undefined ? undefined : posInt('Conv2d', 'groups', options.groups),
        bias: options.bias ?? true,
      }),
    );
  }
}

export interface BatchNormOptions {
  eps?: number;
  momentum?: number;
  affine?: boolean;
  trackRunningStats?: boolean;
}
function batchNorm(kind: 'BatchNorm1d' | 'BatchNorm2d', numFeatures: number, o: BatchNormOptions) {
  return native.createModule(kind, { numFeatures: posInt(kind, 'numFeatures', numFeatures), ...o });
}
export class BatchNorm1d extends Module {
  constructor(numFeatures: number, options: BatchNormOptions = {}) {
    super(batchNorm('BatchNorm1d', numFeatures, options));
  }
}
export class BatchNorm2d extends Module {
  constructor(numFeatures: number, options: BatchNormOptions = {}) {
    super(batchNorm('BatchNorm2d', numFeatures, options));
  }
}

export class LayerNorm extends Module {
  constructor(normalizedShape: number | number[], options: { eps?: number; elementwiseAffine?: boolean } = {}) {
    const shape = Array.isArray(normalizedShape) ? normalizedShape : [normalizedShape];
    shape.forEach((d) => posInt('LayerNorm', 'normalizedShape', d));
    super(native.createModule('LayerNorm', { normalizedShape: shape, ...options }));
  }
}

export class Embedding extends Module {
  constructor(numEmbeddings: number, embeddingDim: number, options: { paddingIdx?: number } = {}) {
    super(
      native.createModule('Embedding', {
        numEmbeddings: posInt('Embedding', 'numEmbeddings', numEmbeddings),
        embeddingDim: posInt('Embedding', 'embeddingDim', embeddingDim),
        paddingIdx: options.paddingIdx,
      }),
    );
  }
}

export class Dropout extends Module {
  constructor(p = 0.5) {
    super(native.createModule('Dropout', { p: probability('Dropout', p) }));
  }
}
export class ReLU extends Module {
  constructor() {
    super(native.createModule('ReLU', {}));
  }
}
export class GELU extends Module {
  constructor(options: { approximate?: 'none' | 'tanh' } = {}) {
    if (options.approximate !== undefined && options.approximate !== 'none' && options.approximate !== 'tanh')
      throw new TypeError(`GELU: approximate must be 'none' or 'tanh', got ${String(options.approximate)}`);
    super(native.createModule('GELU', options));
  }
}
export class Tanh extends Module {
  constructor() {
    super(native.createModule('Tanh', {}));
  }
}
export class Sigmoid extends Module {
  constructor() {
    super(native.createModule('Sigmoid', {}));
  }
}
export class Identity extends Module {
  constructor() {
    super(native.createModule('Identity', {}));
  }
}

export class MaxPool2d extends Module {
  constructor(kernelSize: Pair, options: { stride?: Pair; padding?: Pair; dilation?: Pair; ceilMode?: boolean } = {}) {
    super(
      native.createModule('MaxPool2d', {
        kernelSize: pair('MaxPool2d', 'kernelSize', kernelSize, 1),
        stride: pair('MaxPool2d', 'stride', options.stride, 1),
        padding: pair('MaxPool2d', 'padding', options.padding, 0),
        dilation: pair('MaxPool2d', 'dilation', options.dilation, 1),
        ceilMode: options.ceilMode,
      }),
    );
  }
}

export class AdaptiveAvgPool2d extends Module {
  constructor(outputSize: Pair) {
    super(native.createModule('AdaptiveAvgPool2d', { outputSize: pair('AdaptiveAvgPool2d', 'outputSize', outputSize, 1) }));
  }
}

export class Flatten extends Module {
  constructor(startDim = 1, endDim = -1) {
    super(native.createModule('Flatten', { startDim, endDim }));
  }
}

export interface LSTMOptions {
  numLayers?: number;
  bias?: boolean;
  batchFirst?: boolean;
  dropout?: number;
  bidirectional?: boolean;
}
/**
 * Long short-term memory, optionally bidirectional. Parameter names follow
 * PyTorch (weight_ih_l0, ..., *_reverse).
 */
export class LSTM extends Module {
  constructor(inputSize: number, hiddenSize: number, options: LSTMOptions = {}) {
    super(
      native.createModule('LSTM', {
        inputSize: posInt('LSTM', 'inputSize', inputSize),
        hiddenSize: posInt('LSTM', 'hiddenSize', hiddenSize),
        numLayers: options.numLayers === undefined ? undefined : posInt('LSTM', 'numLayers', options.numLayers),
        bias: options.bias,
        batchFirst: options.batchFirst,
        dropout: options.dropout === undefined ? undefined : probability('LSTM', options.dropout),
        bidirectional: options.bidirectional,
      }),
    );
  }
  /** The output sequence only; use forwardWithState for (h_n, c_n). */
  override forward(input: Tensor, ...rest: Tensor[]): Tensor {
    const [output, h, c] = this.forwardWithState(input, ...(rest as [Tensor, Tensor]));
    h.dispose();
    c.dispose();
    return output;
  }
  /** PyTorch's LSTM call: [output, h_n, c_n], with optional initial h_0, c_0. */
  forwardWithState(input: Tensor, h0?: Tensor, c0?: Tensor): [Tensor, Tensor, Tensor] {
    if ((h0 === undefined) !== (c0 === undefined)) throw new TypeError('LSTM: pass both h0 and c0, or neither');
    const inputs = h0 && c0 ? [input.handle, h0.handle, c0.handle] : [input.handle];
    const out = native.moduleForward(this.handle, inputs);
    return [new Tensor(out[0]), new Tensor(out[1]), new Tensor(out[2])];
  }
}

for (const [kind, cls] of Object.entries({
  Linear,
  Conv2d,
  BatchNorm1d,
  BatchNorm2d,
  LayerNorm,
  Embedding,
  Dropout,
  ReLU,
  GELU,
  Tanh,
  Sigmoid,
  Identity,
  MaxPool2d,
  AdaptiveAvgPool2d,
  Flatten,
  LSTM,
}))
  registerKind(kind, cls);
