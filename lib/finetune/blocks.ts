// The blocks and head of any model: built-in architectures declare them;
// for other modules the children in order are the blocks and the last child
// with parameters is the head.
import type { Module } from '../nn/module.js';

export interface ModelBlock {
  name: string;
  paths: string[];
  modules: Module[];
}

export function blocksOf(model: Module): ModelBlock[] {
  const declared = (model as { blocks?: () => ModelBlock[] }).blocks;
  if (typeof declared === 'function') return declared.call(model);
  return model.namedChildren().map(([name, m]) => ({ name, paths: [name], modules: [m] }));
}

export function headOf(model: Module): { path: string; module: Module } {
  const declared = (model as { head?: () => { path: string; module: Module } }).head;
  if (typeof declared === 'function') return declared.call(model);
  const withParams = model.namedChildren().filter(([, m]) => m.parameters().length > 0);
  if (!withParams.length) throw new Error(`${model.constructor.name} has no child with parameters to use as its head`);
  const [path, module] = withParams[withParams.length - 1];
  return { path, module };
}
