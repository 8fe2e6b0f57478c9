// Text masked-language modelling (in progress: waits for the MLM heads and the masking collator).
import { ConfigError } from '../errors.js';
import type { KindSetup } from './common.js';
import type { MlmMetrics } from './run.js';
import type { MlmPretrainConfig } from './schema.js';

export async function setupMlm(_c: MlmPretrainConfig, _spec?: Record<string, unknown>): Promise<KindSetup<MlmMetrics>> {
  throw new ConfigError('pretrain.kind', 'mlm is not available yet');
}
