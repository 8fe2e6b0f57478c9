// The `nn` namespace.
import * as functional from './functional.js';
import * as layers from './layers.js';
import * as containers from './containers.js';
import { CRF } from './crf.js';
import { Module, inputToMemoryFormat } from './module.js';
import * as utils from './utils.js';

export { Module, inputToMemoryFormat } from './module.js';
export type { StateDict, LoadStateDictResult, MemoryFormat } from './module.js';
export * from './layers.js';
export * from './containers.js';
export { CRF } from './crf.js';
export type { CRFOptions, CRFForwardOptions, CRFReduction } from './crf.js';
export type { Reduction, CrossEntropyOptions } from './functional.js';

export const nn = { Module, inputToMemoryFormat, ...layers, ...containers, CRF, functional, utils } as const;
