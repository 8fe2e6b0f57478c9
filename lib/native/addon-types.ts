// The native addon's entry points as TypeScript sees them, one interface per
// concern (as node-llama-cpp's AddonTypes does), matching native/*.cc. Handles
// are opaque; the facades in lib/tensor, lib/nn, lib/optim and lib/io are what
// users touch. Every function checks its arguments again natively, so a wrong
// call throws a JS error rather than crashing; these types make a misspelled
// name or a wrong argument a compile error first.
import type { Device, DType } from '../tensor/dtype.js';

export interface TensorHandle {
  dispose(): void;
  readonly disposed: boolean;
  readonly __brand?: 'TensorHandle';
}
export interface ModuleHandle {
  dispose(): void;
  readonly __brand?: 'ModuleHandle';
}
export interface OptimizerHandle {
  dispose(): void;
  readonly __brand?: 'OptimizerHandle';
}

/** Creation options; the native side applies requiresGrad after creating the tensor. */
export interface NativeTensorOptions {
  dtype?: DType;
  device?: Device;
  requiresGrad?: boolean;
}
/** A typed array fromData copies from (int64 as BigInt64Array, bool as Uint8Array). */
export type NativeTypedArray = Float32Array | Float64Array | Int32Array | Int16Array | Int8Array | Uint8Array | Uint8ClampedArray | BigInt64Array;
/** A Tensor or a number/boolean operand (broadcast as in PyTorch). */
export type Operand = TensorHandle | number | boolean;
/** One element of index(): position, null (new axis), '...', boolean, index tensor or {slice: [start, stop, step]}. */
export type NativeIndex = number | null | '...' | boolean | TensorHandle | { slice: Array<number | null> };
export type NativeReduction = 'mean' | 'sum' | 'none';
/** dims of a reduction: one, several, or null for all. */
type Dims = number | number[] | null;
/** max/min/topk/sort along a dimension: [values, indices]. */
type Pair = [TensorHandle, TensorHandle];

/** tensor.cc: creation, metadata and data out. */
export interface TensorAddon {
  TensorHandle: new (...args: never[]) => TensorHandle;
  fromData(data: NativeTypedArray, shape: number[], options?: NativeTensorOptions): TensorHandle;
  zeros(shape: number[], options?: NativeTensorOptions): TensorHandle;
  ones(shape: number[], options?: NativeTensorOptions): TensorHandle;
  empty(shape: number[], options?: NativeTensorOptions): TensorHandle;
  full(shape: number[], fillValue: number | boolean, options?: NativeTensorOptions): TensorHandle;
  randn(shape: number[], options?: NativeTensorOptions): TensorHandle;
  rand(shape: number[], options?: NativeTensorOptions): TensorHandle;
  randint(low: number, high: number, shape: number[], options?: NativeTensorOptions): TensorHandle;
  randperm(n: number, options?: NativeTensorOptions): TensorHandle;
  arange(start: number, end: number, step: number, options?: NativeTensorOptions): TensorHandle;
  linspace(start: number, end: number, steps: number, options?: NativeTensorOptions): TensorHandle;
  eye(n: number, options?: NativeTensorOptions): TensorHandle;
  manualSeed(seed: number): void;
  shape(t: TensorHandle): number[];
  dtype(t: TensorHandle): DType;
  device(t: TensorHandle): Device;
  numel(t: TensorHandle): number;
  /** A copy of the data (float16/bfloat16 widen to Float32Array, bool to Uint8Array, int64 to BigInt64Array). */
  toTypedArray(t: TensorHandle): Float32Array | Float64Array | Int32Array | Int16Array | Int8Array | Uint8Array | BigInt64Array;
  item(t: TensorHandle): number | boolean;
  /** Identity of the underlying tensor (many handles, one tensor). */
  tensorId(t: TensorHandle): string;
  /** libtorch's printout of the tensor. */
  format(t: TensorHandle): string;
}

/** ops.cc: tensor operations. In-place ones (name_) return a new handle on the same tensor. */
export interface OpsAddon {
  neg(t: TensorHandle): TensorHandle;
  exp(t: TensorHandle): TensorHandle;
  log(t: TensorHandle): TensorHandle;
  log1p(t: TensorHandle): TensorHandle;
  sqrt(t: TensorHandle): TensorHandle;
  rsqrt(t: TensorHandle): TensorHandle;
  abs(t: TensorHandle): TensorHandle;
  sign(t: TensorHandle): TensorHandle;
  sigmoid(t: TensorHandle): TensorHandle;
  tanh(t: TensorHandle): TensorHandle;
  relu(t: TensorHandle): TensorHandle;
  /** In place; the handle returned is another reference to t. */
  relu_(t: TensorHandle): TensorHandle;
  gelu(t: TensorHandle): TensorHandle;
  floor(t: TensorHandle): TensorHandle;
  ceil(t: TensorHandle): TensorHandle;
  round(t: TensorHandle): TensorHandle;
  sin(t: TensorHandle): TensorHandle;
  cos(t: TensorHandle): TensorHandle;
  reciprocal(t: TensorHandle): TensorHandle;
  erf(t: TensorHandle): TensorHandle;
  isnan(t: TensorHandle): TensorHandle;
  logicalNot(t: TensorHandle): TensorHandle;
  contiguous(t: TensorHandle): TensorHandle;
  clone(t: TensorHandle): TensorHandle;
  detach(t: TensorHandle): TensorHandle;
  zero_(t: TensorHandle): TensorHandle;

  mul(t: TensorHandle, other: Operand): TensorHandle;
  div(t: TensorHandle, other: Operand): TensorHandle;
  pow(t: TensorHandle, other: Operand): TensorHandle;
  remainder(t: TensorHandle, other: Operand): TensorHandle;
  eq(t: TensorHandle, other: Operand): TensorHandle;
  ne(t: TensorHandle, other: Operand): TensorHandle;
  lt(t: TensorHandle, other: Operand): TensorHandle;
  le(t: TensorHandle, other: Operand): TensorHandle;
  gt(t: TensorHandle, other: Operand): TensorHandle;
  ge(t: TensorHandle, other: Operand): TensorHandle;
  mul_(t: TensorHandle, other: Operand): TensorHandle;
  fill_(t: TensorHandle, value: Operand): TensorHandle;
  /** t + alpha * other (alpha null = 1). */
  add(t: TensorHandle, other: Operand, alpha?: number | null): TensorHandle;
  sub(t: TensorHandle, other: Operand, alpha?: number | null): TensorHandle;
  add_(t: TensorHandle, other: Operand, alpha?: number | null): TensorHandle;
  maximum(t: TensorHandle, other: Operand): TensorHandle;
  minimum(t: TensorHandle, other: Operand): TensorHandle;
  logicalAnd(t: TensorHandle, other: TensorHandle): TensorHandle;
  logicalOr(t: TensorHandle, other: TensorHandle): TensorHandle;
  matmul(t: TensorHandle, other: TensorHandle): TensorHandle;
  clamp(t: TensorHandle, min: number | null, max: number | null): TensorHandle;
  where(condition: TensorHandle, input: Operand, other: Operand): TensorHandle;
  copy_(destination: TensorHandle, source: TensorHandle): TensorHandle;

  sum(t: TensorHandle, dim?: Dims, keepdim?: boolean): TensorHandle;
  mean(t: TensorHandle, dim?: Dims, keepdim?: boolean): TensorHandle;
  prod(t: TensorHandle, dim?: number | null, keepdim?: boolean): TensorHandle;
  logsumexp(t: TensorHandle, dim: number | number[], keepdim?: boolean): TensorHandle;
  std(t: TensorHandle, dim: Dims, unbiased?: boolean, keepdim?: boolean): TensorHandle;
  var(t: TensorHandle, dim: Dims, unbiased?: boolean, keepdim?: boolean): TensorHandle;
  norm(t: TensorHandle, p: number, dim?: Dims, keepdim?: boolean): TensorHandle;
  max(t: TensorHandle): TensorHandle;
  max(t: TensorHandle, dim: number, keepdim?: boolean): Pair;
  min(t: TensorHandle): TensorHandle;
  min(t: TensorHandle, dim: number, keepdim?: boolean): Pair;
  argmax(t: TensorHandle, dim?: number | null, keepdim?: boolean): TensorHandle;
  argmin(t: TensorHandle, dim?: number | null, keepdim?: boolean): TensorHandle;
  all(t: TensorHandle): TensorHandle;
  any(t: TensorHandle): TensorHandle;
  cumsum(t: TensorHandle, dim: number): TensorHandle;
  topk(t: TensorHandle, k: number, dim?: number | null, largest?: boolean): Pair;
  /** Stable. */
  sort(t: TensorHandle, dim?: number | null, descending?: boolean): Pair;

  reshape(t: TensorHandle, shape: number[]): TensorHandle;
  view(t: TensorHandle, shape: number[]): TensorHandle;
  permute(t: TensorHandle, dims: number[]): TensorHandle;
  transpose(t: TensorHandle, dim0: number, dim1: number): TensorHandle;
  squeeze(t: TensorHandle, dim?: number | null): TensorHandle;
  unsqueeze(t: TensorHandle, dim: number): TensorHandle;
  flatten(t: TensorHandle, startDim?: number | null, endDim?: number | null): TensorHandle;
  expand(t: TensorHandle, shape: number[]): TensorHandle;
  repeat(t: TensorHandle, repeats: number[]): TensorHandle;
  flip(t: TensorHandle, dims: number[]): TensorHandle;
  narrow(t: TensorHandle, dim: number, start: number, length: number): TensorHandle;
  select(t: TensorHandle, dim: number, index: number): TensorHandle;
  index(t: TensorHandle, indices: NativeIndex[]): TensorHandle;
  indexPut_(t: TensorHandle, indices: NativeIndex[], value: Operand): TensorHandle;
  indexSelect(t: TensorHandle, dim: number, index: TensorHandle): TensorHandle;
  gather(t: TensorHandle, dim: number, index: TensorHandle): TensorHandle;
  scatter(t: TensorHandle, dim: number, index: TensorHandle, src: Operand): TensorHandle;
  maskedFill(t: TensorHandle, mask: TensorHandle, value: number | boolean): TensorHandle;
  cat(tensors: TensorHandle[], dim?: number | null): TensorHandle;
  stack(tensors: TensorHandle[], dim?: number | null): TensorHandle;
  chunk(t: TensorHandle, chunks: number, dim?: number | null): TensorHandle[];
  split(t: TensorHandle, splitSize: number, dim?: number | null): TensorHandle[];
  /** null keeps the tensor's device or dtype. */
  to(t: TensorHandle, device: Device | null, dtype?: DType | null): TensorHandle;

  softmax(t: TensorHandle, dim: number): TensorHandle;
  logSoftmax(t: TensorHandle, dim: number): TensorHandle;
  oneHot(t: TensorHandle, numClasses?: number | null): TensorHandle;
  linear(x: TensorHandle, weight: TensorHandle, bias?: TensorHandle | null): TensorHandle;
  dropout(x: TensorHandle, p: number, training: boolean): TensorHandle;
  crossEntropy(
    input: TensorHandle,
    target: TensorHandle,
    options?: { weight?: TensorHandle | null; reduction?: NativeReduction; ignoreIndex?: number; labelSmoothing?: number },
  ): TensorHandle;
  nllLoss(
    input: TensorHandle,
    target: TensorHandle,
    options?: { weight?: TensorHandle | null; reduction?: NativeReduction; ignoreIndex?: number },
  ): TensorHandle;
  bceWithLogits(
    input: TensorHandle,
    target: TensorHandle,
    options?: { weight?: TensorHandle | null; posWeight?: TensorHandle | null; reduction?: NativeReduction },
  ): TensorHandle;
  mseLoss(input: TensorHandle, target: TensorHandle, options?: { reduction?: NativeReduction }): TensorHandle;
}

/** autograd.cc: backward, gradients, leaf flags and the global grad mode. */
export interface AutogradAddon {
  backward(t: TensorHandle, gradient?: TensorHandle | null, retainGraph?: boolean): void;
  grad(t: TensorHandle): TensorHandle | null;
  /** null clears the gradient (set to none). */
  setGrad(t: TensorHandle, grad: TensorHandle | null): void;
  requiresGrad(t: TensorHandle): boolean;
  requiresGrad_(t: TensorHandle, requiresGrad?: boolean): void;
  isLeaf(t: TensorHandle): boolean;
  isGradEnabled(): boolean;
  setGradEnabled(enabled: boolean): void;
}

/** module.cc: the module tree, modes, devices, state dict and forward. */
export interface ModuleAddon {
  /** PyTorch's class name: Linear, Conv2d, ResNet, or the Container's name. */
  moduleKind(m: ModuleHandle): string;
  moduleHasNativeForward(m: ModuleHandle): boolean;
  /** Whether two handles refer to one native module. */
  moduleSame(a: ModuleHandle, b: ModuleHandle): boolean;
  namedParameters(m: ModuleHandle, recurse?: boolean): Array<[string, TensorHandle]>;
  namedBuffers(m: ModuleHandle, recurse?: boolean): Array<[string, TensorHandle]>;
  namedChildren(m: ModuleHandle): Array<[string, ModuleHandle]>;
  /** Parameters and buffers in PyTorch's state_dict order and names. */
  stateDict(m: ModuleHandle): Array<[string, TensorHandle]>;
  registerModule(m: ModuleHandle, name: string, child: ModuleHandle): void;
  replaceChild(m: ModuleHandle, name: string, child: ModuleHandle): void;
  registerParameter(m: ModuleHandle, name: string, tensor: TensorHandle, requiresGrad?: boolean): TensorHandle;
  registerBuffer(m: ModuleHandle, name: string, tensor: TensorHandle): TensorHandle;
  moduleTrain(m: ModuleHandle, mode?: boolean): void;
  /** This module's mode only, not its children's. */
  moduleSetTrainingFlat(m: ModuleHandle, mode: boolean): void;
  moduleIsTraining(m: ModuleHandle): boolean;
  moduleTo(m: ModuleHandle, device: Device | null, dtype?: DType | null): void;
  /** The outputs as a list (LSTM: output, h_n, c_n). */
  moduleForward(m: ModuleHandle, inputs: TensorHandle[]): TensorHandle[];
}

/** Options of the built-in layers (layers.cc); validated in lib/nn. */
export interface LayerOptions {
  Linear: { inFeatures: number; outFeatures: number; bias?: boolean };
  Conv2d: {
    inChannels: number;
    outChannels: number;
    kernelSize?: number | number[];
    stride?: number | number[];
    padding?: number | number[];
    dilation?: number | number[];
    groups?: number;
    bias?: boolean;
  };
  BatchNorm1d: { numFeatures: number; eps?: number; momentum?: number; affine?: boolean; trackRunningStats?: boolean };
  BatchNorm2d: { numFeatures: number; eps?: number; momentum?: number; affine?: boolean; trackRunningStats?: boolean };
  LayerNorm: { normalizedShape: number | number[]; eps?: number; elementwiseAffine?: boolean };
  Embedding: { numEmbeddings: number; embeddingDim: number; paddingIdx?: number | null };
  Dropout: { p?: number };
  ReLU: Record<string, never>;
  GELU: { approximate?: 'none' | 'tanh' };
  Tanh: Record<string, never>;
  SiLU: Record<string, never>;
  Sigmoid: Record<string, never>;
  MaxPool2d: {
    kernelSize?: number | number[];
    stride?: number | number[] | null;
    padding?: number | number[];
    dilation?: number | number[];
    ceilMode?: boolean;
  };
  AdaptiveAvgPool2d: { outputSize?: number | number[] };
  Flatten: { startDim?: number; endDim?: number };
  LSTM: { inputSize: number; hiddenSize: number; numLayers?: number; bias?: boolean; batchFirst?: boolean; dropout?: number; bidirectional?: boolean };
  Sequential: Record<string, never>;
  Identity: Record<string, never>;
  /** A module whose forward is written in TypeScript; name is what moduleKind reports. */
  Container: { name?: string };
}

/** Options of the native architectures (vision.cc, text.cc); validated in lib/models. */
export interface ArchitectureOptions {
  ResNet: { depth?: number; numClasses?: number; width?: number; inChannels?: number; smallStem?: boolean };
  VGG: { depth?: number; batchNorm?: boolean; numClasses?: number; dropout?: number };
  EfficientNetB0: { numClasses?: number; dropout?: number; stochasticDepthProb?: number };
  Bert: TextArchitectureOptions;
  Roberta: TextArchitectureOptions;
  DistilBert: TextArchitectureOptions;
}

/** A Hugging Face text encoder's config, camelCased (vocab_size -> vocabSize). */
export interface TextArchitectureOptions {
  /** The head: 'sequenceClassification' (default), 'tokenClassification' or 'maskedLM'. */
  task?: 'sequenceClassification' | 'tokenClassification' | 'maskedLM';
  numClasses?: number;
  /** Standard deviation of transformers' normal initialisation (config initializer_range, default 0.02). */
  initializerRange?: number;
  vocabSize?: number;
  hiddenSize?: number;
  numHiddenLayers?: number;
  numAttentionHeads?: number;
  intermediateSize?: number;
  maxPositionEmbeddings?: number;
  typeVocabSize?: number;
  padTokenId?: number;
  hiddenDropoutProb?: number;
  attentionProbsDropoutProb?: number;
  classifierDropout?: number;
  layerNormEps?: number;
}

export type LayerKind = keyof LayerOptions;
export type ArchitectureKind = keyof ArchitectureOptions;
export type ModuleKind = LayerKind | ArchitectureKind;

/** layers.cc, vision.cc, text.cc: building modules by kind. */
export interface LayersAddon {
  createModule<K extends LayerKind>(kind: K, options: LayerOptions[K]): ModuleHandle;
  /** Architectures: lib/models builds their options from configs and checks them natively too. */
  createModule<K extends ArchitectureKind>(kind: K, options: ArchitectureOptions[K] | Record<string, unknown>): ModuleHandle;
}

export type OptimizerKind = 'SGD' | 'Adam' | 'AdamW';
/** One group's complete options (TypeScript merges the defaults in); fields by optimizer kind. */
export type NativeOptimizerOptions = {
  lr: number;
  momentum?: number;
  dampening?: number;
  weightDecay?: number;
  nesterov?: boolean;
  betas?: [number, number];
  eps?: number;
  amsgrad?: boolean;
};
/**
 * How steps run (PyTorch's foreach/fused options, for the whole optimizer).
 * foreach unset: multi-tensor when every parameter is on CUDA, else the for-loop.
 */
export interface NativeStepMode {
  foreach?: boolean | null;
  fused?: boolean;
}
/** forLoop: libtorch's per-parameter loop; foreach: _foreach_* kernels; fused: _fused_adamw_ etc. */
export type StepImplementation = 'forLoop' | 'foreach' | 'fused';
/** Per-parameter state in PyTorch's layout (SGD: momentumBuffer; Adam/AdamW: step, expAvg, expAvgSq, maxExpAvgSq). */
export type NativeParamState = Record<string, TensorHandle | number>;

/** optimizer.cc and multi_tensor.cc: SGD, Adam and AdamW with parameter groups, for-loop, foreach or fused. */
export interface OptimAddon {
  /** Throws when fused is asked for and a parameter's device has no fused kernel in this libtorch. */
  createOptimizer(
    kind: OptimizerKind,
    groups: Array<{ params: TensorHandle[]; options: NativeOptimizerOptions }>,
    defaults: NativeOptimizerOptions,
    mode?: NativeStepMode,
  ): OptimizerHandle;
  /** How the next step() runs. */
  optimizerStepImplementation(o: OptimizerHandle): StepImplementation;
  addParamGroup(o: OptimizerHandle, params: TensorHandle[], options: NativeOptimizerOptions): void;
  groupOptions(o: OptimizerHandle, group: number): NativeOptimizerOptions;
  groupParams(o: OptimizerHandle, group: number): TensorHandle[];
  setGroupOptions(o: OptimizerHandle, group: number, options: NativeOptimizerOptions): void;
  optimizerStep(o: OptimizerHandle): void;
  optimizerZeroGrad(o: OptimizerHandle, setToNone?: boolean): void;
  /** One entry per parameter across all groups; null where no step has run. */
  optimizerState(o: OptimizerHandle): Array<NativeParamState | null>;
  setOptimizerState(o: OptimizerHandle, states: Array<NativeParamState | null>): void;
}

/**
 * async.cc: work on the torch thread, settling a Promise. While a task is
 * pending, what it uses (the module with its parameters and buffers, the
 * optimizer with its parameters, the leaves a backward writes) is refused to
 * synchronous calls with "... is busy with an async task".
 */
export interface AsyncAddon {
  forwardAsync(m: ModuleHandle, inputs: TensorHandle[]): Promise<TensorHandle[]>;
  backwardAsync(t: TensorHandle, gradient?: TensorHandle | null): Promise<[]>;
  stepAsync(o: OptimizerHandle): Promise<[]>;
  /** Zero grads, forward, loss, backward, step; resolves to [loss, logits], both detached. */
  trainStepAsync(
    m: ModuleHandle,
    o: OptimizerHandle,
    input: TensorHandle,
    target: TensorHandle,
    options?: { loss?: 'crossEntropy' | 'bceWithLogits' | 'mse'; reduction?: 'mean' | 'sum'; labelSmoothing?: number; weight?: TensorHandle | null },
  ): Promise<[TensorHandle, TensorHandle]>;
}

/** The boolean switches of torch.backends (at::globalContext(), process-wide). */
export type BackendFlag = 'cudnn.enabled' | 'cudnn.benchmark' | 'cudnn.deterministic' | 'cudnn.allowTF32' | 'cuda.matmul.allowTF32';
export type Float32MatmulPrecision = 'highest' | 'high' | 'medium';

export interface BuildInfo {
  libtorchVersion: string;
  cuda: boolean;
  parallelInfo: string;
  config: string;
}
export interface CudaMemory {
  allocated: number;
  maxAllocated: number;
  reserved: number;
  maxReserved: number;
}
export interface CpuCacheStats {
  enabled: boolean;
  cachedBytes?: number;
  liveBytes?: number;
  hits?: number;
  misses?: number;
}

/** device.cc and cpu_allocator.cc: devices, threads, build information, the CPU buffer cache. */
export interface DeviceAddon {
  cudaIsAvailable(): boolean;
  cudaDeviceCount(): number;
  cudaSynchronize(device?: number | null): void;
  cudaMemory(device?: number | null): CudaMemory;
  setNumThreads(n: number): void;
  getNumThreads(): number;
  buildInfo(): BuildInfo;
  cpuCacheStats(): CpuCacheStats;
  emptyCpuCache(): void;
  backendFlag(flag: BackendFlag): boolean;
  setBackendFlag(flag: BackendFlag, value: boolean): void;
  float32MatmulPrecision(): Float32MatmulPrecision;
  setFloat32MatmulPrecision(precision: Float32MatmulPrecision): void;
  /** cuDNN's version number, or null where this libtorch has no cuDNN. */
  cudnnVersion(): number | null;
}

/** torch.channels_last and torch.contiguous_format. */
export type MemoryFormat = 'channelsLast' | 'contiguous';

/** memory_format.cc: channels_last models and tensors. */
export interface MemoryFormatAddon {
  /** Every 4-D parameter (and its gradient) and buffer in `format`, in place (set_data: same tensors). */
  moduleToMemoryFormat(m: ModuleHandle, format: MemoryFormat): void;
  /** The tensor in `format` (the same tensor when it already is); channelsLast needs 4-D. */
  contiguousAs(t: TensorHandle, format: MemoryFormat): TensorHandle;
  /** A model input in `format`: 4-D tensors converted, others returned as they are. */
  inputInMemoryFormat(t: TensorHandle, format: MemoryFormat): TensorHandle;
  isContiguousAs(t: TensorHandle, format: MemoryFormat): boolean;
  strides(t: TensorHandle): number[];
}

/** serialization.cc: raw tensor bytes to and from checkpoint files. */
export interface IoAddon {
  /** A 1-D tensor of `nbytes` read from `path` at `offset`. */
  fromFile(path: string, offset: number, nbytes: number, dtype: DType): TensorHandle;
  /** A view on storage's elements, as torch.save records tensors (bounds checked). */
  asStrided(storage: TensorHandle, size: number[], stride: number[], storageOffset: number): TensorHandle;
  /** The tensor's bytes in its own dtype, row-major. */
  rawBytes(t: TensorHandle): Buffer;
}

/** jit.cc: TorchScript modules. */
export interface JitAddon {
  jitLoad(path: string): ModuleHandle;
  jitSave(m: ModuleHandle, path: string): void;
  isJitModule(m: ModuleHandle): boolean;
  /**
   * Traces forward (run in JS on the inputs' handles) into a TorchScript
   * module holding m's very parameters and buffers; also returns the graph.
   */
  jitTrace(
    m: ModuleHandle,
    inputs: TensorHandle[],
    forward: (inputs: TensorHandle[]) => TensorHandle | TensorHandle[],
    argumentNames: string[],
  ): { module: ModuleHandle; graph: NativeTracedGraph };
}

/** A value's dtype and shape as a trace recorded them (null: not a tensor). */
export type NativeValueType = { dtype?: DType; shape?: number[] } | null;

/** One node of a traced graph (jit.cc describeGraph). */
export interface NativeTracedNode {
  /** 'aten::conv2d', 'prim::Constant', 'prim::ListConstruct', ... or 'param' (a parameter or buffer read). */
  kind: string;
  inputs: string[];
  outputs: string[];
  types: NativeValueType[];
  /** The dotted path of the module that recorded it ('' for the root). */
  scope: string;
  /** A constant's value (tensors as handles), or a param's tensor. */
  value?: unknown;
  /** A param's dotted name ('layer1.0.conv1.weight'). */
  name?: string;
}

export interface NativeTracedGraph {
  inputs: Array<{ name: string; type: NativeValueType }>;
  outputs: Array<{ name: string; type: NativeValueType }>;
  nodes: NativeTracedNode[];
}

/** The thread-local autocast state (torch.is_autocast_enabled and friends); dtypes are 'bfloat16' or 'float16'. */
export interface NativeAutocastState {
  cpuEnabled: boolean;
  cpuDtype: DType;
  cudaEnabled: boolean;
  cudaDtype: DType;
  cacheEnabled: boolean;
}

/** autocast.cc and transfer.cc: mixed precision and batches on their way to the device. */
export interface AmpAddon {
  autocastState(): NativeAutocastState;
  setAutocastState(state: NativeAutocastState): void;
  /** One more autocast nesting level on this thread; returns the level. */
  autocastEnter(): number;
  /** One level less; at 0 the cast caches (this thread's and the torch thread's) are cleared. Returns the level. */
  autocastExit(): number;
  /** cpuFloat16: float16 autocast on the CPU (libtorch 2.3+); cpuAmpKernels: the scaler's fused kernels on the CPU (2.3+). */
  autocastSupport(): { cpuFloat16: boolean; cpuAmpKernels: boolean };
  /** Multiplies the gradients by invScale in place; true when any held an inf or NaN. */
  ampUnscale(grads: TensorHandle[], invScale: number): boolean;
  /** The tensor on `device` (pinned and non-blocking from CPU to CUDA), 4-D ones channels-last when asked. */
  moveBatchTensor(t: TensorHandle, device: Device, options?: { channelsLast?: boolean }): TensorHandle;
  pinMemoryAvailable(): boolean;
}

/** crf.cc: the linear-chain CRF (nn.CRF); inputs are checked natively (shapes, dtypes, tag range, mask prefix). */
export interface CrfAddon {
  /** A CRF module with start_transitions, end_transitions and transitions, uniform(-0.1, 0.1). */
  createCrf(numTags: number, batchFirst: boolean): ModuleHandle;
  crfOptions(m: ModuleHandle): { numTags: number; batchFirst: boolean };
  /** The gold paths' log-likelihood, reduced: 'none' [B], else a scalar. mask null: all on. */
  crfLogLikelihood(
    m: ModuleHandle,
    emissions: TensorHandle,
    tags: TensorHandle,
    mask: TensorHandle | null,
    reduction: 'none' | 'sum' | 'mean' | 'token_mean',
  ): TensorHandle;
  /** Viterbi paths, each trimmed to its sequence's length. */
  crfDecode(m: ModuleHandle, emissions: TensorHandle, mask: TensorHandle | null): number[][];
}

/**
 * distributed.cc: one c10d process group per process (module-level state, like
 * torch.distributed's default group), Gloo over TCP (TCPStore on masterAddr:masterPort,
 * rank 0 serves it). Every call that waits on other ranks returns a Promise and waits on
 * a libuv worker; collectives are launched in call order on the main thread, so every
 * rank must call them in the same order. A timeout, a refused connection or a peer that
 * died rejects with an Error naming this rank and masterAddr:masterPort.
 * A build without Gloo's headers (see scripts/get-gloo-headers.mjs): distInit rejects
 * with "built without c10d/Gloo"; distAvailable() is false.
 */
export interface DistributedAddon {
  distAvailable(): boolean;
  /** Rendezvous of all ranks (up to timeoutMs, default 30 min as PyTorch); resolves when the group is up. */
  distInit(options: { backend: 'gloo' | 'nccl'; rank: number; worldSize: number; masterAddr: string; masterPort: number; timeoutMs?: number }): Promise<void>;
  /** In place on every tensor; 'avg' is a sum divided by the world size. Resolves to the same tensors. */
  distAllReduceAsync(tensors: TensorHandle[], op: 'sum' | 'avg' | 'max' | 'min'): Promise<TensorHandle[]>;
  /** In place: every tensor takes rank src's values. */
  distBroadcastAsync(tensors: TensorHandle[], src: number): Promise<TensorHandle[]>;
  /** One new tensor per rank, in rank order (same shape and dtype on every rank). */
  distAllGatherAsync(tensor: TensorHandle): Promise<TensorHandle[]>;
  distBarrierAsync(): Promise<[]>;
  /** Drops the group (no-op when none); a later distInit may start another. */
  distDestroy(): void;
  /** -1 when no group is up. */
  distRank(): number;
  /** -1 when no group is up. */
  distWorldSize(): number;
  /**
   * A gradient reducer over `params` (leaves that require grad, in the model's order):
   * buckets of up to bucketCapBytes in reverse order, a post hook on each gradient
   * accumulator. Old builds lack these entries.
   */
  distReducerCreate?(params: TensorHandle[], bucketCapBytes: number): ReducerHandle;
  /** Arms the hooks: the next backward's gradients go into the buckets, complete buckets are all-reduced at once. */
  distReducerPrepare?(reducer: ReducerHandle): void;
  /** Reduces the rest (flags in the last bucket), waits, writes the averaged gradients; resolves to [the flags summed, float64]. */
  distReducerFinishAsync?(reducer: ReducerHandle, flags: number[]): Promise<TensorHandle[]>;
  /** How many buckets, and how many of them the last backward launched itself (before finish). */
  distReducerStats?(reducer: ReducerHandle): { buckets: number; launchedDuringBackward: number };
  /** The hooks go quiet; the reducer lets go of the parameters. */
  distReducerDispose?(reducer: ReducerHandle): void;
}

/** distributed.cc's gradient reducer. */
export interface ReducerHandle {
  readonly __brand?: 'ReducerHandle';
}

/**
 * detection.cc: torchvision.ops' detection ops. RoIAlign and NMS run as C++ loops on CPU
 * tensors and as ATen tensor ops elsewhere ('tensorOps' picks those on the CPU too, to check
 * them); inputs are checked natively (shapes, dtypes, devices, box rows).
 */
export interface DetectionAddon {
  /** [K, C, outputH, outputW]; boxes a [K, 5] (batch index, x1, y1, x2, y2) or one [Ki, 4] per image. */
  roiAlign(
    input: TensorHandle,
    boxes: TensorHandle | TensorHandle[],
    outputH: number,
    outputW: number,
    spatialScale: number,
    samplingRatio: number,
    aligned: boolean,
    implementation: 'auto' | 'loops' | 'tensorOps',
  ): TensorHandle;
  /** torchvision's MultiScaleRoIAlign with the levels' scales given (finest first); [K, C, outputH, outputW]. */
  multiScaleRoiAlign(
    features: TensorHandle[],
    boxes: TensorHandle[],
    scales: number[],
    outputH: number,
    outputW: number,
    samplingRatio: number,
    canonicalScale: number,
    canonicalLevel: number,
    implementation: 'auto' | 'loops' | 'tensorOps',
  ): TensorHandle;
  /** int64 indices of the boxes kept, by decreasing score. */
  nms(boxes: TensorHandle, scores: TensorHandle, iouThreshold: number, implementation: 'auto' | 'loops' | 'tensorOps'): TensorHandle;
  batchedNms(boxes: TensorHandle, scores: TensorHandle, idxs: TensorHandle, iouThreshold: number, implementation: 'auto' | 'loops' | 'tensorOps'): TensorHandle;
  boxArea(boxes: TensorHandle): TensorHandle;
  boxIou(boxes1: TensorHandle, boxes2: TensorHandle): TensorHandle;
  clipBoxesToImage(boxes: TensorHandle, height: number, width: number): TensorHandle;
  /** int64 indices of the boxes at least minSize wide and high. */
  removeSmallBoxes(boxes: TensorHandle, minSize: number): TensorHandle;
}

export interface NativeBinding
  extends TensorAddon,
    DistributedAddon,
    DetectionAddon,
    CrfAddon,
    OpsAddon,
    AutogradAddon,
    ModuleAddon,
    LayersAddon,
    OptimAddon,
    AsyncAddon,
    DeviceAddon,
    IoAddon,
    JitAddon,
    MemoryFormatAddon,
    AmpAddon {}
