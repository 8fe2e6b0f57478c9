// Optimizers with PyTorch's parameter groups: optim.SGD, optim.Adam, optim.AdamW.
// Options are validated here (zod) and handed to libtorch's implementations;
// `foreach` / `fused` choose multi-tensor or fused kernels for the step
// (native/multi_tensor.cc).
import { z } from 'zod';
import { native } from '../native/loader.js';
import type { NativeOptimizerOptions, NativeParamState, OptimizerHandle, TensorHandle } from '../native/binding.js';
import type { StepImplementation } from '../native/addon-types.js';
import { Tensor } from '../tensor/tensor.js';

const nonNeg = z.number().finite().min(0);
const sgdOptions = z
  .object({
    lr: nonNeg,
    momentum: nonNeg,
    dampening: nonNeg,
    weightDecay: nonNeg,
    nesterov: z.boolean(),
  })
  .strict();
const adamOptions = z
  .object({
    lr: nonNeg,
    betas: z.tuple([z.number().min(0).lt(1), z.number().min(0).lt(1)]),
    eps: nonNeg,
    weightDecay: nonNeg,
    amsgrad: z.boolean(),
  })
  .strict();

/**
 * How the step runs, for the whole optimizer (PyTorch's options of the same names):
 * - `foreach`: true runs each param group as multi-tensor `_foreach_*` kernels
 *   (grouped by device and dtype); false runs libtorch's per-parameter loop;
 *   unset (the default, as PyTorch 2.x) is foreach when every parameter is on
 *   CUDA and the loop otherwise, so CPU results stay what they always were.
 * - `fused`: one fused kernel per device and dtype (`_fused_adamw_`, `_fused_adam_`,
 *   `_fused_sgd_`), where this libtorch has one: CUDA from libtorch 2.0 (SGD 2.3),
 *   CPU from 2.4. Asking for it elsewhere throws. Default false.
 * All three keep the same state (stateDict() is the same whichever ran).
 */
export interface StepModeOptions {
  foreach?: boolean;
  fused?: boolean;
}
export interface SGDOptions extends StepModeOptions {
  lr?: number;
  momentum?: number;
  dampening?: number;
  weightDecay?: number;
  nesterov?: boolean;
}
export interface AdamOptions extends StepModeOptions {
  lr?: number;
  betas?: [number, number];
  eps?: number;
  weightDecay?: number;
  amsgrad?: boolean;
}
type AnyOptions = SGDOptions & AdamOptions;
export type { StepImplementation };
/** A parameter group as in PyTorch: its params plus options that override the defaults. */
export type ParamGroupSpec<O> = { params: Tensor[] } & Partial<Omit<O, keyof StepModeOptions>>;

type Kind = 'SGD' | 'Adam' | 'AdamW';
const DEFAULTS: Record<Kind, Record<string, unknown>> = {
  SGD: { momentum: 0, dampening: 0, weightDecay: 0, nesterov: false },
  Adam: { lr: 1e-3, betas: [0.9, 0.999], eps: 1e-8, weightDecay: 0, amsgrad: false },
  AdamW: { lr: 1e-3, betas: [0.9, 0.999], eps: 1e-8, weightDecay: 1e-2, amsgrad: false },
};

function describeIssues(where: string, err: z.ZodError): string {
  return err.issues.map((i) => `${where}${i.path.length ? '.' + i.path.join('.') : ''}: ${i.message}`).join('; ');
}

/**
 * One parameter group, live: reading `lr` asks the optimizer, writing it
 * changes the next step (schedulers do this). Other properties you set (e.g.
 * `initialLr`) are kept on the object, as in PyTorch's group dicts.
 */
export class ParamGroup {
  [extra: string]: unknown;
  constructor(
    private readonly optimizer: Optimizer,
    private readonly index: number,
  ) {}
  get params(): Tensor[] {
    return native.groupParams(this.optimizer.handle, this.index).map((h: TensorHandle) => new Tensor(h));
  }
  /** All options of this group as a plain object. */
  options(): Record<string, unknown> {
    return native.groupOptions(this.optimizer.handle, this.index);
  }
  private set(key: string, value: unknown): void {
    this.optimizer.setGroupOption(this.index, key, value);
  }
  get lr(): number {
    return this.options().lr as number;
  }
  set lr(v: number) {
    this.set('lr', v);
  }
  get weightDecay(): number {
    return this.options().weightDecay as number;
  }
  set weightDecay(v: number) {
    this.set('weightDecay', v);
  }
  get momentum(): number | undefined {
    return this.options().momentum as number | undefined;
  }
  set momentum(v: number) {
    this.set('momentum', v);
  }
  get betas(): [number, number] | undefined {
    return this.options().betas as [number, number] | undefined;
  }
  set betas(v: [number, number]) {
    this.set('betas', v);
  }
  get eps(): number | undefined {
    return this.options().eps as number | undefined;
  }
  set eps(v: number) {
    this.set('eps', v);
  }
}

export interface OptimizerStateDict {
  /** Per-parameter state by index (over all groups, in order), PyTorch's layout camelCased. */
  state: Record<number, Record<string, Tensor | number>>;
  paramGroups: Array<Record<string, unknown> & { params: number[] }>;
}

export abstract class Optimizer {
  readonly handle: OptimizerHandle;
  readonly defaults: Record<string, unknown>;
  readonly kind: Kind;
  /** As given (undefined: foreach on CUDA, the loop elsewhere); see StepModeOptions. */
  readonly foreach: boolean | undefined;
  readonly fused: boolean;
  private readonly groups: ParamGroup[] = [];
  private readonly seen = new Set<string>();

  protected constructor(kind: Kind, params: Tensor[] | Array<ParamGroupSpec<AnyOptions>>, options: AnyOptions) {
    this.kind = kind;
    const where = `optim.${kind}`;
    const { foreach, fused, ...groupOptions } = options ?? {};
    for (const [name, value] of [
      ['foreach', foreach],
      ['fused', fused],
    ] as const)
      if (value !== undefined && typeof value !== 'boolean') throw new TypeError(`${where}: ${name} must be a boolean, got ${JSON.stringify(value)}`);
    if (foreach === true && fused === true)
      throw new TypeError(`${where}: foreach and fused cannot both be true (fused is a single kernel, foreach a set of multi-tensor ones)`);
    this.foreach = foreach;
    this.fused = fused ?? false;
    // SGD has no default lr: as in PyTorch, the options may leave it out when every group gives its own
    const given = Object.fromEntries(Object.entries(groupOptions).filter(([, v]) => v !== undefined));
    this.defaults = this.validate(where, { ...DEFAULTS[kind], ...given }, { lrRequired: false });
    if (!Array.isArray(params) || params.length === 0) throw new TypeError(`${where}: params must be a non-empty array of Tensors or of param groups`);
    const plain = params[0] instanceof Tensor;
    const specs: Array<ParamGroupSpec<AnyOptions>> = plain ? [{ params: params as Tensor[] }] : (params as Array<ParamGroupSpec<AnyOptions>>);
    const groups = specs.map((g, i) => this.prepare(plain ? where : `${where}: param group ${i}`, g));
    // libtorch's optimizer wants complete defaults; without a default lr the first group's stands in (every group sets its own below)
    const nativeDefaults = { ...this.defaults, lr: this.defaults.lr ?? groups[0].options.lr } as NativeOptimizerOptions;
    try {
      this.handle = native.createOptimizer(kind, groups, nativeDefaults, { foreach: this.foreach ?? null, fused: this.fused }); // validate() made it
    } catch (e) {
      throw new TypeError(`${where}: ${(e as Error).message}`);
    }
    groups.forEach((g) => this.groups.push(Object.assign(new ParamGroup(this, this.groups.length), g.extra)));
  }

  /** The groups, each with live `lr`, `weightDecay`, ... (PyTorch's param_groups). */
  get paramGroups(): readonly ParamGroup[] {
    return this.groups;
  }

  /** How the next step() runs: 'forLoop', 'foreach' or 'fused' (see StepModeOptions). */
  get stepImplementation(): StepImplementation {
    return native.optimizerStepImplementation(this.handle);
  }

  /** Adds a group to the live optimizer (gradual unfreezing); its options default to the optimizer's. */
  addParamGroup(group: ParamGroupSpec<AnyOptions>): ParamGroup {
    const where = `optim.${this.kind}.addParamGroup`;
    const g = this.prepare(where, group);
    try {
      native.addParamGroup(this.handle, g.params, g.options);
    } catch (e) {
      for (const p of group.params) this.seen.delete(p.id);
      throw new TypeError(`${where}: ${(e as Error).message}`);
    }
    const pg = Object.assign(new ParamGroup(this, this.groups.length), g.extra);
    this.groups.push(pg);
    return pg;
  }

  /** Clears gradients of every parameter; by default sets them to none (PyTorch 2.x). */
  zeroGrad(options: { setToNone?: boolean } = {}): void {
    native.optimizerZeroGrad(this.handle, options.setToNone ?? true);
  }
  step(): void {
    native.optimizerStep(this.handle);
  }
  /** step() on a worker thread. */
  async stepAsync(): Promise<void> {
    await native.stepAsync(this.handle);
  }

  /** Optimizer state for resuming, in PyTorch's layout (state by parameter index, groups with their options). */
  stateDict(): OptimizerStateDict {
    const state: OptimizerStateDict['state'] = {};
    (native.optimizerState(this.handle) as Array<Record<string, unknown> | null>).forEach((s, i) => {
      if (!s) return;
      const entry: Record<string, Tensor | number> = {};
      for (const [k, v] of Object.entries(s)) if (v !== null) entry[k] = typeof v === 'number' ? v : new Tensor(v as TensorHandle);
      state[i] = entry;
    });
    let index = 0;
    const paramGroups = this.groups.map((g) => {
      const n = native.groupParams(this.handle, this.groupIndex(g)).length;
      const params = Array.from({ length: n }, () => index++);
      return { ...g.options(), params };
    });
    return { state, paramGroups };
  }

  /** Restores what stateDict() returned (same parameter layout); the tensors are copied. */
  loadStateDict(dict: OptimizerStateDict): void {
    const where = `optim.${this.kind}.loadStateDict`;
    if (!dict || !Array.isArray(dict.paramGroups) || typeof dict.state !== 'object') throw new TypeError(`${where}: expected {state, paramGroups}`);
    if (dict.paramGroups.length !== this.groups.length)
      throw new Error(`${where}: the state has ${dict.paramGroups.length} param groups, the optimizer ${this.groups.length}`);
    dict.paramGroups.forEach((g, i) => {
      const have = native.groupParams(this.handle, i).length;
      if (!Array.isArray(g.params) || g.params.length !== have)
        throw new Error(`${where}: param group ${i} has ${have} parameters, the state has ${g.params?.length}`);
    });
    const total = this.groups.reduce((n, _g, i) => n + native.groupParams(this.handle, i).length, 0);
    const states = Array.from({ length: total }, (_, i) => {
      const s = dict.state[i];
      if (!s) return null;
      const out: NativeParamState = {};
      for (const [k, v] of Object.entries(s)) out[k] = v instanceof Tensor ? v.handle : v;
      return out;
    });
    native.setOptimizerState(this.handle, states);
    dict.paramGroups.forEach((g, i) => {
      const { params: _p, ...options } = g;
      native.setGroupOptions(this.handle, i, this.validate(`${where}: param group ${i}`, { ...this.groups[i].options(), ...pick(options, this.kind) }));
    });
  }

  /** Releases the native optimizer; idempotent. */
  dispose(): void {
    this.handle.dispose();
  }
  [Symbol.dispose](): void {
    this.dispose();
  }

  /** @internal */
  setGroupOption(index: number, key: string, value: unknown): void {
    const options = { ...native.groupOptions(this.handle, index), [key]: value };
    native.setGroupOptions(this.handle, index, this.validate(`optim.${this.kind}.paramGroups[${index}]`, options));
  }

  private groupIndex(g: ParamGroup): number {
    return this.groups.indexOf(g);
  }

  private validate(where: string, options: Record<string, unknown>, { lrRequired = true } = {}): NativeOptimizerOptions {
    const schema = this.kind === 'SGD' ? sgdOptions : adamOptions;
    if (options.lr === undefined && lrRequired)
      throw new TypeError(
        /param group|addParamGroup/.test(where)
          ? `${where} has no lr, and the optimizer's options give no default lr: give lr in this group or in the options`
          : `${where}: lr is required for ${this.kind} (in the options, or in every param group)`,
      );
    const r = (lrRequired ? schema : schema.extend({ lr: nonNeg.optional() })).safeParse(options);
    if (!r.success) throw new TypeError(describeIssues(where, r.error));
    if (this.kind === 'SGD' && options.nesterov && (!((options.momentum as number) > 0) || options.dampening !== 0))
      throw new TypeError(`${where}: nesterov needs momentum > 0 and dampening 0`);
    return r.data as NativeOptimizerOptions;
  }

  private prepare(
    where: string,
    group: ParamGroupSpec<AnyOptions>,
  ): { params: TensorHandle[]; options: NativeOptimizerOptions; extra: Record<string, unknown> } {
    if (!group || !Array.isArray(group.params)) throw new TypeError(`${where}: expected {params: Tensor[], ...options}`);
    for (const name of ['foreach', 'fused'])
      if (name in group) throw new TypeError(`${where}: ${name} applies to the whole optimizer; pass it in the optimizer's options, not in a param group`);
    const { params, ...rest } = group;
    // keys that are not options of this optimizer stay on the group object (PyTorch keeps them in the dict)
    const known = Object.keys(this.kind === 'SGD' ? sgdOptions.shape : adamOptions.shape);
    const overrides = Object.fromEntries(Object.entries(rest).filter(([k]) => known.includes(k)));
    const extra = Object.fromEntries(Object.entries(rest).filter(([k]) => !known.includes(k)));
    params.forEach((p, i) => {
      if (!(p instanceof Tensor)) throw new TypeError(`${where}: params[${i}] is not a Tensor`);
      if (!p.isLeaf) throw new TypeError(`${where}: params[${i}] is not a leaf tensor (it has autograd history); optimizers update leaves`);
      const id = p.id;
      if (this.seen.has(id)) throw new TypeError(`${where}: params[${i}] already appears in a param group; each parameter may be in one group only`);
      this.seen.add(id);
    });
    return { params: params.map((p) => p.handle), options: this.validate(where, { ...this.defaults, ...overrides }), extra };
  }
}

function pick(options: Record<string, unknown>, kind: Kind): Record<string, unknown> {
  const keys = kind === 'SGD' ? Object.keys(sgdOptions.shape) : Object.keys(adamOptions.shape);
  return Object.fromEntries(Object.entries(options).filter(([k]) => keys.includes(k)));
}

/** Stochastic gradient descent with momentum, dampening, Nesterov and L2 weight decay. */
export class SGD extends Optimizer {
  /** `options.lr` may be left out when every param group gives its own lr (as PyTorch). */
  constructor(params: Tensor[] | Array<ParamGroupSpec<SGDOptions>>, options: SGDOptions = {}) {
    super('SGD', params, options);
  }
}
/** Adam (Kingma & Ba) with L2 weight decay added to the gradient. */
export class Adam extends Optimizer {
  constructor(params: Tensor[] | Array<ParamGroupSpec<AdamOptions>>, options: AdamOptions = {}) {
    super('Adam', params, options);
  }
}
/** AdamW (Loshchilov & Hutter): decoupled weight decay, default 0.01. */
export class AdamW extends Optimizer {
  constructor(params: Tensor[] | Array<ParamGroupSpec<AdamOptions>>, options: AdamOptions = {}) {
    super('AdamW', params, options);
  }
}
