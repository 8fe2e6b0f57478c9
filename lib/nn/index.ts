// The `nn` namespace.
import * as functional from './functional.js';
import * as layers from './layers.js';
import * as containers from './containers.js';
import { Module } from './module.js';
import * as utils from './utils.js';

export { Module } from './module.js';
export type { StateDict, LoadStateDictResult } from './module.js';
export * from './layers.js';
export * from './containers.js';
export type { Reduction, CrossEntropyOptions } from './functional.js';

export const nn = { Module, ...layers, ...containers, functional, utils } as const;
