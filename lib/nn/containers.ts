// Containers: Sequential (runs its children in order), ModuleList and
// ModuleDict (hold children; your forward uses them).
import { native } from '../native/loader.js';
import type { Tensor } from '../tensor/tensor.js';
import { Module, registerKind } from './module.js';

function childAt(container: Module, i: number): Module {
  const kids = container.children();
  const k = i < 0 ? kids.length + i : i;
  if (!Number.isInteger(k) || k < 0 || k >= kids.length)
    throw new RangeError(`${container.constructor.name}.at(${i}): index out of range (${kids.length} children)`);
  return kids[k];
}

/**
 * new Sequential(a, b, c) names children '0', '1', '2'; new Sequential({conv: a, relu: b})
 * keeps the given names (PyTorch's OrderedDict form).
 */
export class Sequential extends Module {
  constructor(...modules: Module[] | [Record<string, Module>]) {
    super(native.createModule('Sequential', {}));
    const named: Array<[string, Module]> =
      modules.length === 1 && !(modules[0] instanceof Module)
        ? Object.entries(modules[0] as Record<string, Module>)
        : (modules as Module[]).map((m, i) => [String(i), m]);
    for (const [name, m] of named) this.registerModule(name, m);
  }

  /** Runs the children in order: natively in one call when all are built-in layers. */
  override forward(input: Tensor): Tensor {
    if (native.moduleHasNativeForward(this.handle)) return super.forward(input);
    let x = input;
    for (const child of this.children()) {
      const y = child.forward(x);
      if (x !== input) x.dispose();
      x = y;
    }
    return x;
  }

  /** Appends a module under the next index. */
  append(module: Module): this {
    this.registerModule(String(this.length), module);
    return this;
  }
  /** The i-th child (negative counts from the end). */
  at(i: number): Module {
    return childAt(this, i);
  }
  get length(): number {
    return native.namedChildren(this.handle).length;
  }
}

export class ModuleList extends Module {
  constructor(modules: Module[] = []) {
    super(native.createModule('Container', { name: 'ModuleList' }));
    modules.forEach((m) => this.append(m));
  }
  append(module: Module): this {
    this.registerModule(String(this.length), module);
    return this;
  }
  at(i: number): Module {
    return childAt(this, i);
  }
  get length(): number {
    return native.namedChildren(this.handle).length;
  }
  [Symbol.iterator](): Iterator<Module> {
    return this.children()[Symbol.iterator]();
  }
}

export class ModuleDict extends Module {
  constructor(modules: Record<string, Module> = {}) {
    super(native.createModule('Container', { name: 'ModuleDict' }));
    for (const [name, m] of Object.entries(modules)) this.registerModule(name, m);
  }
  get(name: string): Module | undefined {
    return this.namedChildren().find(([n]) => n === name)?.[1];
  }
  keys(): string[] {
    return this.namedChildren().map(([n]) => n);
  }
}

registerKind('Sequential', Sequential);
registerKind('ModuleList', ModuleList);
registerKind('ModuleDict', ModuleDict);
