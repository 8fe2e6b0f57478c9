// nn.Module: the base of every layer, container and user-defined network.
// The tree (children, parameters, buffers) lives natively, so names and
// order are PyTorch's; forward is native for built-in layers and written in
// TypeScript for user-defined modules.
import { native } from '../native/loader.js';
import type { ModuleHandle } from '../native/binding.js';
import type { MemoryFormat } from '../native/addon-types.js';
import { Tensor } from '../tensor/tensor.js';
import { isDType, isDevice, type Device, type DType } from '../tensor/dtype.js';

export interface LoadStateDictResult {
  /** Keys the module has that the dict lacks. */
  missingKeys: string[];
  /** Keys in the dict the module does not have. */
  unexpectedKeys: string[];
  /** Keys present in both with different shapes (skipped when strict is false). */
  mismatchedKeys: Array<{ key: string; expected: number[]; got: number[] }>;
}

export type StateDict = Record<string, Tensor>;

// Wrapper classes by native kind, filled in by layers.ts / containers.ts, so a
// child made natively comes back as the right class.
const kinds = new Map<string, new (...args: never[]) => Module>();
export function registerKind(kind: string, cls: new (...args: never[]) => Module): void {
  kinds.set(kind, cls);
}

// Paths of BatchNorm layers that stay in eval mode when the model trains
// (set by finetune.freeze for BatchNorm inside frozen blocks).
const frozenBatchNorm = new WeakMap<object, string[]>();
export function setFrozenBatchNorm(model: Module, paths: string[]): void {
  frozenBatchNorm.set(model, [...paths]);
}
export function getFrozenBatchNorm(model: Module): string[] {
  return frozenBatchNorm.get(model) ?? [];
}

// Wrappers a module made for its own children (released with it).
const ownedWrappers = new WeakSet<object>();

export type { MemoryFormat };
const MEMORY_FORMATS: readonly string[] = ['channelsLast', 'contiguous'];
function checkMemoryFormat(format: unknown, where: string): asserts format is MemoryFormat {
  if (!MEMORY_FORMATS.includes(format as string))
    throw new TypeError(`${where}: memory format must be 'channelsLast' or 'contiguous', got ${JSON.stringify(format)}`);
}

/**
 * A model input in `format`: a 4-D tensor (N, C, H, W) converted (itself when
 * it already is), any other tensor returned as it is, so whole batches can go
 * through it.
 */
export function inputToMemoryFormat(input: Tensor, format: MemoryFormat): Tensor {
  checkMemoryFormat(format, 'inputToMemoryFormat');
  if (!(input instanceof Tensor)) throw new TypeError('inputToMemoryFormat: input must be a Tensor');
  return new Tensor(native.inputInMemoryFormat(input.handle, format));
}

export class Module {
  /** The native module (several wrappers may share one). */
  readonly handle: ModuleHandle;
  // Wrappers of children registered or looked up through this object, so
  // the same child keeps its JS identity and TypeScript-defined forward.
  protected readonly childWrappers = new Map<string, Module>();
  /**
   * The names of forward()'s arguments, for models that take named inputs
   * (text models: inputIds, attentionMask, tokenTypeIds); fit, evaluate and
   * predict pass a batch's named inputs in this order. Undefined: positional only.
   */
  inputNames?: readonly string[];

  /**
   * A user-defined module: subclass, register children in the constructor and
   * write forward(). (Built-in layers pass their native handle.)
   */
  constructor(handle?: ModuleHandle) {
    this.handle = handle ?? native.createModule('Container', { name: new.target.name });
  }

  /** Wraps an existing native module in the class of its kind. */
  static fromHandle(handle: ModuleHandle): Module {
    const cls = kinds.get(native.moduleKind(handle)) ?? Module;
    const m = Object.create(cls.prototype) as Module;
    Object.defineProperty(m, 'handle', { value: handle, enumerable: true });
    Object.defineProperty(m, 'childWrappers', { value: new Map(), enumerable: false });
    return m;
  }

  /** The class name PyTorch would print (Linear, Conv2d, ... or the subclass name). */
  get kind(): string {
    return native.moduleKind(this.handle);
  }

  /** Runs the module. Built-in layers run natively; subclasses override this. */
  forward(...inputs: Tensor[]): Tensor {
    if (!native.moduleHasNativeForward(this.handle))
      throw new Error(`${this.constructor.name}.forward() is not implemented: override forward() in your Module subclass`);
    const out = native.moduleForward(
      this.handle,
      inputs.map((t) => t.handle),
    );
    return new Tensor(out[0]);
  }

  /**
   * Runs forward on a worker thread (built-in layers and Sequentials of them).
   * Calls on one module run one at a time.
   */
  async forwardAsync(...inputs: Tensor[]): Promise<Tensor> {
    if (!native.moduleHasNativeForward(this.handle)) {
      // TypeScript-defined forward: run it here (its layers are still native ops).
      return this.forward(...inputs);
    }
    const out = await native.forwardAsync(
      this.handle,
      inputs.map((t) => t.handle),
    );
    return new Tensor(out[0]);
  }

  // ---- building the tree
  /** Registers a child under `name` (PyTorch's add_module) and returns it. */
  registerModule<M extends Module>(name: string, module: M): M {
    checkName('registerModule', name);
    if (!(module instanceof Module)) throw new TypeError(`registerModule('${name}'): expected a Module`);
    native.registerModule(this.handle, name, module.handle);
    this.childWrappers.set(name, module);
    return module;
  }

  /** Registers a parameter (a leaf; a tensor with history is detached) and returns it. */
  registerParameter(name: string, tensor: Tensor, options: { requiresGrad?: boolean } = {}): Tensor {
    checkName('registerParameter', name);
    if (!(tensor instanceof Tensor)) throw new TypeError(`registerParameter('${name}'): expected a Tensor`);
    return new Tensor(native.registerParameter(this.handle, name, tensor.handle, options.requiresGrad ?? true));
  }

  /** Registers a buffer (saved in stateDict, not trained) and returns it. */
  registerBuffer(name: string, tensor: Tensor): Tensor {
    checkName('registerBuffer', name);
    if (!(tensor instanceof Tensor)) throw new TypeError(`registerBuffer('${name}'): expected a Tensor`);
    return new Tensor(native.registerBuffer(this.handle, name, tensor.handle));
  }

  /**
   * Replaces a child, addressed by a dotted path ('fc', 'classifier.6',
   * 'layer4.1.conv2'), keeping its place in the order (PyTorch: setattr).
   */
  replaceChild(path: string, module: Module): Module {
    if (!(module instanceof Module)) throw new TypeError(`replaceChild('${path}'): expected a Module`);
    const parts = path.split('.');
    const last = parts.pop()!;
    const parent = parts.length ? this.getSubmodule(parts.join('.')) : this;
    native.replaceChild(parent.handle, last, module.handle);
    parent.childWrappers.set(last, module);
    // Keep a TypeScript property that pointed at the old child in step.
    const self = parent as unknown as Record<string, unknown>;
    if (self[last] instanceof Module) self[last] = module;
    return module;
  }

  // ---- walking the tree
  namedChildren(): Array<[string, Module]> {
    return native.namedChildren(this.handle).map(([name, h]: [string, ModuleHandle]) => [name, this.wrapChild(name, h)]);
  }
  children(): Module[] {
    return this.namedChildren().map(([, m]) => m);
  }

  /** Every module in pre-order with its dotted name; the root is ''. */
  namedModules(): Array<[string, Module]> {
    const out: Array<[string, Module]> = [['', this]];
    for (const [name, child] of this.namedChildren()) for (const [sub, m] of child.namedModules()) out.push([sub ? `${name}.${sub}` : name, m]);
    return out;
  }
  modules(): Module[] {
    return this.namedModules().map(([, m]) => m);
  }

  /** The submodule at a dotted path ('layer1.0.conv1'). */
  getSubmodule(path: string): Module {
    if (path === '') return this;
    let m: Module = this;
    for (const part of path.split('.')) {
      const found = m.namedChildren().find(([n]) => n === part);
      if (!found) throw new Error(`getSubmodule('${path}'): ${m.constructor.name} has no child '${part}'`);
      m = found[1];
    }
    return m;
  }

  /** [name, parameter] pairs in PyTorch's order and names. */
  namedParameters(options: { recurse?: boolean } = {}): Array<[string, Tensor]> {
    return native.namedParameters(this.handle, options.recurse ?? true).map(([n, h]) => [n, new Tensor(h)]);
  }
  parameters(options: { recurse?: boolean } = {}): Tensor[] {
    return this.namedParameters(options).map(([, t]) => t);
  }
  namedBuffers(options: { recurse?: boolean } = {}): Array<[string, Tensor]> {
    return native.namedBuffers(this.handle, options.recurse ?? true).map(([n, h]) => [n, new Tensor(h)]);
  }
  buffers(options: { recurse?: boolean } = {}): Tensor[] {
    return this.namedBuffers(options).map(([, t]) => t);
  }

  // ---- modes and devices
  get training(): boolean {
    return native.moduleIsTraining(this.handle);
  }
  /** Training mode for this module and all below it (PyTorch's train()). */
  train(mode = true): this {
    if (typeof mode !== 'boolean') throw new TypeError('train(mode): mode must be a boolean');
    native.moduleTrain(this.handle, mode);
    if (mode) for (const path of getFrozenBatchNorm(this)) native.moduleSetTrainingFlat(this.getSubmodule(path).handle, false);
    return this;
  }
  eval(): this {
    return this.train(false);
  }
  /** Sets requires_grad on every parameter (PyTorch's requires_grad_()). */
  requiresGrad_(requiresGrad = true): this {
    for (const p of this.parameters()) p.requiresGrad_(requiresGrad);
    return this;
  }
  /** Moves parameters and buffers in place: to('cuda:0'), to('float64'), to('cuda', 'float16'). */
  to(deviceOrDtype: Device | DType, dtype?: DType): this {
    if (isDType(deviceOrDtype)) native.moduleTo(this.handle, null, deviceOrDtype);
    else if (isDevice(deviceOrDtype)) native.moduleTo(this.handle, deviceOrDtype, dtype ?? null);
    else throw new TypeError(`to(): '${deviceOrDtype}' is neither a device ('cpu', 'cuda:N') nor a dtype`);
    return this;
  }
  /**
   * Every 4-D parameter (with its gradient) and buffer in `format`, in place:
   * 'channelsLast' (NHWC strides, PyTorch's model.to(memory_format=torch.channels_last))
   * or 'contiguous' (back to NCHW). The tensors stay the same objects, so an
   * optimizer made before keeps working; feed inputs in the same format
   * (inputToMemoryFormat). Pays off on CUDA with bf16/fp16 convolutions.
   */
  toMemoryFormat(format: MemoryFormat): this {
    checkMemoryFormat(format, 'toMemoryFormat');
    native.moduleToMemoryFormat(this.handle, format);
    return this;
  }
  cpu(): this {
    return this.to('cpu');
  }
  cuda(index = 0): this {
    return this.to(`cuda:${index}`);
  }
  /** Clears the gradients of all parameters (set to none, as PyTorch 2.x). */
  zeroGrad(): void {
    for (const p of this.parameters()) p.grad = null;
  }

  // ---- state
  /** Parameters and buffers by dotted name, in PyTorch's state_dict order. The tensors are the live ones. */
  stateDict(): StateDict {
    const out: StateDict = {};
    for (const [name, h] of native.stateDict(this.handle) as Array<[string, never]>) out[name] = new Tensor(h);
    return out;
  }

  /**
   * Copies values from `dict` into this module's parameters and buffers. With
   * strict (the default) any missing, unexpected or shape-mismatched key is an
   * error listing all of them and nothing is copied; otherwise they are
   * reported and skipped.
   */
  loadStateDict(dict: StateDict | Map<string, Tensor>, options: { strict?: boolean } = {}): LoadStateDictResult {
    const strict = options.strict ?? true;
    const entries = dict instanceof Map ? [...dict.entries()] : Object.entries(dict ?? {});
    const given = new Map(entries);
    const own = this.stateDict();
    const result: LoadStateDictResult = { missingKeys: [], unexpectedKeys: [], mismatchedKeys: [] };
    const copies: Array<[Tensor, Tensor]> = [];
    for (const [key, target] of Object.entries(own)) {
      const source = given.get(key);
      if (source === undefined) {
        result.missingKeys.push(key);
        continue;
      }
      if (!(source instanceof Tensor)) throw new TypeError(`loadStateDict: value for '${key}' is not a Tensor`);
      const [a, b] = [target.shape, source.shape];
      if (a.length !== b.length || a.some((d, i) => d !== b[i])) result.mismatchedKeys.push({ key, expected: a, got: b });
      else copies.push([target, source]);
    }
    for (const key of given.keys()) if (!(key in own)) result.unexpectedKeys.push(key);
    // the handles made here are internal: release them now rather than at GC
    const release = () => Object.values(own).forEach((t) => t.dispose());
    if (strict && (result.missingKeys.length || result.unexpectedKeys.length || result.mismatchedKeys.length)) {
      release();
      const lines: string[] = [];
      if (result.missingKeys.length) lines.push(`missing keys: ${result.missingKeys.join(', ')}`);
      if (result.unexpectedKeys.length) lines.push(`unexpected keys: ${result.unexpectedKeys.join(', ')}`);
      for (const m of result.mismatchedKeys) lines.push(`size mismatch for ${m.key}: checkpoint has [${m.got}], the model has [${m.expected}]`);
      throw new Error(`Error(s) in loading state dict for ${this.constructor.name}:\n  ${lines.join('\n  ')}`);
    }
    for (const [target, source] of copies) native.copy_(target.handle, source.handle).dispose(); // in-place; the returned handle is not needed
    release();
    return result;
  }

  /**
   * Releases this wrapper's reference to the native module, and those of the
   * child wrappers it made itself (from namedChildren, getSubmodule, ...);
   * idempotent. Children you registered yourself stay usable.
   */
  dispose(): void {
    for (const child of this.childWrappers.values()) if (ownedWrappers.has(child)) child.dispose();
    this.handle.dispose();
  }
  [Symbol.dispose](): void {
    this.dispose();
  }

  toString(): string {
    return describe(this, '');
  }

  private wrapChild(name: string, h: ModuleHandle): Module {
    const known = this.childWrappers.get(name);
    if (known && native.moduleSame(known.handle, h)) return known;
    const m = Module.fromHandle(h);
    ownedWrappers.add(m);
    this.childWrappers.set(name, m);
    return m;
  }
}

function checkName(where: string, name: string): void {
  if (typeof name !== 'string' || name === '' || name.includes('.'))
    throw new TypeError(`${where}: name must be a non-empty string without '.', got ${JSON.stringify(name)}`);
}

function describe(m: Module, indent: string): string {
  const kids = m.namedChildren();
  const head = m.constructor === Module ? m.kind : m.constructor.name;
  if (!kids.length) return head + '()';
  const inner = kids.map(([n, c]) => `${indent}  (${n}): ${describe(c, indent + '  ')}`).join('\n');
  return `${head}(\n${inner}\n${indent})`;
}
