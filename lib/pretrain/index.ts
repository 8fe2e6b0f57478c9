// Pretraining and domain adaptation: pretrain() runs a config of kind 'mlm'
// (masked-language modelling of a BERT-family model) or 'reconstruction'
// (a CNN backbone adapted on unlabelled images); `finetorch pretrain` is its CLI.
export { pretrain, readPretrainRecord, PRETRAIN_FILE } from './run.js';
export { MODEL_DIR, maskedLMLoss, maskedPositions, packDocuments } from './text-mlm.js';
export type { MlmSpec } from './text-mlm.js';
export type {
  PretrainOptions,
  PretrainResult,
  PretrainEvent,
  PretrainStartEvent,
  PretrainEvalEvent,
  PretrainSavedEvent,
  PretrainMetrics,
  MlmMetrics,
  PretrainRecord,
} from './run.js';
export { PretrainSchema, parsePretrainConfig, resolvePretrainPaths } from './schema.js';
export type { PretrainConfig, MlmPretrainConfig, ReconstructionPretrainConfig } from './schema.js';
export { BACKBONE_FILE, patchMask, reconstructionLoss } from './image-reconstruction.js';
export type { ReconstructionMetrics, ReconstructionSpec } from './image-reconstruction.js';
