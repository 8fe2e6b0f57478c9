// TorchScript: jit.load(path) gives a Module with the usual interface
// (namedParameters, stateDict, train/eval, to, forward) running the scripted
// graph; jit.save writes it back (atomically).
import { existsSync, renameSync, rmSync } from 'node:fs';
import { native } from '../native/loader.js';
import { Module } from '../nn/module.js';

function load(path: string): Module {
  if (typeof path !== 'string') throw new TypeError('jit.load(path): path must be a string');
  if (!existsSync(path)) throw new Error(`jit.load: ${path} does not exist`);
  return Module.fromHandle(native.jitLoad(path));
}

function save(module: Module, path: string): void {
  if (!(module instanceof Module)) throw new TypeError('jit.save: expected a Module loaded with jit.load');
  const tmp = `${path}.tmp-${process.pid}`;
  try {
    native.jitSave(module.handle, tmp);
    renameSync(tmp, path);
  } finally {
    rmSync(tmp, { force: true });
  }
}

/** True for modules that came from jit.load. */
function isScriptModule(module: Module): boolean {
  return module instanceof Module && native.isJitModule(module.handle);
}

export const jit = { load, save, isScriptModule } as const;
