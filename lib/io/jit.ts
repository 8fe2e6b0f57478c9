// TorchScript: jit.load(path) gives a Module with the usual interface
// (namedParameters, stateDict, train/eval, to, forward) running the scripted
// graph; jit.save writes it back (atomically). jit.trace(module, inputs)
// records one forward of a finetorch module (native architectures and
// TypeScript-defined modules alike) into a TorchScript module that Python's
// torch.jit.load reads.
import { existsSync, renameSync, rmSync } from 'node:fs';
import { native } from '../native/loader.js';
import type { NativeTracedGraph } from '../native/addon-types.js';
import type { TensorHandle } from '../native/binding.js';
import { Module } from '../nn/module.js';
import { Tensor } from '../tensor/tensor.js';

function load(path: string): Module {
  if (typeof path !== 'string') throw new TypeError('jit.load(path): path must be a string');
  if (!existsSync(path)) throw new Error(`jit.load: ${path} does not exist`);
  return Module.fromHandle(native.jitLoad(path));
}

function save(module: Module, path: string): void {
  if (!(module instanceof Module)) throw new TypeError('jit.save: expected a Module from jit.load or jit.trace');
  const tmp = `${path}.tmp-${process.pid}`;
  try {
    native.jitSave(module.handle, tmp);
    renameSync(tmp, path);
  } finally {
    rmSync(tmp, { force: true });
  }
}

/** True for modules that came from jit.load or jit.trace. */
function isScriptModule(module: Module): boolean {
  return module instanceof Module && native.isJitModule(module.handle);
}

export type { NativeTracedGraph as TracedGraph };

/** The example inputs as a list, checked. */
function inputList(fn: string, exampleInputs: Tensor | Tensor[]): Tensor[] {
  const inputs = exampleInputs instanceof Tensor ? [exampleInputs] : exampleInputs;
  if (!Array.isArray(inputs) || inputs.length === 0 || !inputs.every((t) => t instanceof Tensor))
    throw new TypeError(`${fn}: exampleInputs must be a Tensor or a non-empty array of Tensors`);
  return inputs;
}

/**
 * Why a module cannot be traced faithfully (a trace records the ops of one
 * run: anything that depends on the data's values is frozen into it), or null.
 */
function untraceable(module: Module, inputs: Tensor[]): string | null {
  const m = module as Module & { emissionsAndMask?: unknown; lstm?: unknown; arch?: string };
  if (typeof m.emissionsAndMask === 'function') {
    if (m.lstm)
      return `${m.arch ?? module.constructor.name} runs its BiLSTM packed by each sequence's length (read from the data), which a trace would freeze; taggers without a BiLSTM (bertTagger with head 'linear' or 'crf') trace`;
    if (inputs.length > 2)
      return 'a tagger with firstPieceIndex gathers words by positions read from the data, which a trace would freeze; trace it with inputIds and attentionMask only';
  }
  return null;
}

/**
 * Traces `module` on `exampleInputs` (in eval mode, as torch.onnx.export does;
 * the module's mode is restored afterwards) and returns the TorchScript module
 * and the recorded graph. The TorchScript module shares the module's
 * parameter and buffer tensors, under the same dotted names.
 */
export function traceWithGraph(fn: string, module: Module, exampleInputs: Tensor | Tensor[]): { module: Module; graph: NativeTracedGraph } {
  if (!(module instanceof Module)) throw new TypeError(`${fn}: module must be a finetorch Module`);
  const inputs = inputList(fn, exampleInputs);
  const why = untraceable(module, inputs);
  if (why) throw new Error(`${fn}: cannot trace ${module.constructor.name}: ${why}`);
  const names = inputs.map((_, i) => module.inputNames?.[i] ?? (inputs.length === 1 ? 'input' : `input${i}`));
  const wasTraining = module.training;
  module.eval();
  try {
    const traced = native.jitTrace(
      module.handle,
      inputs.map((t) => t.handle),
      (handles: TensorHandle[]) => {
        const out: unknown = module.forward(...handles.map((h) => new Tensor(h)));
        if (out instanceof Tensor) return out.handle;
        if (Array.isArray(out) && out.length > 0 && out.every((t) => t instanceof Tensor)) return out.map((t: Tensor) => t.handle);
        throw new TypeError(`${fn}: ${module.constructor.name}.forward must return a Tensor or an array of Tensors to be traced`);
      },
      names,
    );
    return { module: Module.fromHandle(traced.module), graph: traced.graph };
  } finally {
    if (wasTraining) module.train();
  }
}

/**
 * torch.jit.trace for finetorch modules: records one forward on
 * `exampleInputs` (a Tensor, or the forward's inputs in order, e.g. inputIds
 * and attentionMask for text models) in eval mode, and returns a TorchScript
 * module holding the same parameters and buffers under the same names (they
 * are shared, not copied). jit.save writes it; Python's torch.jit.load reads
 * it. Control flow that depends on the data is frozen as it ran, as in PyTorch.
 */
function trace(module: Module, exampleInputs: Tensor | Tensor[]): Module {
  return traceWithGraph('jit.trace', module, exampleInputs).module;
}

export const jit = { load, save, trace, isScriptModule } as const;
