// The `nn` namespace.
import * as functional from './functional.js';
import * as layers from './layers.js';
import * as containers from './containers.js';
import { Module, inputToMemoryFormat } from './module.js';
import * as utils from './utils.js';

export { Module, inputToMemoryFormat } from './module.js';
export type { StateDict, LoadStateDictResult, MemoryFormat } from './module.js';
export * from './layers.js';
export * from './containers.js';
export type { Reduction, CrossEntropyOptions } from './functional.js';

export const nn = { Module, inputToMemoryFormat, ...layers, ...containers, functional, utils } as const;
