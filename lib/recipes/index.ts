// Recipes: a whole fine-tuning run described as data (the object a recipe
// file holds), validated, turned into data, model, optimizer, schedule and
// loss by the builders, and run by runRecipe. The fine-tuning steps
// themselves (head swap, freezing, parameter groups) live in finetune/.
import { finetune } from '../finetune/index.js';
import { LRScheduler, scheduleFactor } from '../optim/lr-scheduler.js';
import { parseRecipe, RecipeSchema, DataSchema } from './schema.js';
import { buildData, buildModel, buildOptimizer, buildLoss, buildFromSpec, prepareInputs, encodeTexts, imageTransforms } from './build.js';
import { runRecipe } from './run.js';
import { loadRun, loadTrainedModel, trainedSpec } from './load-run.js';
import { readRun, resolveCheckpoint } from './run-record.js';
import { resolvePaths, PATH_FIELDS } from './paths.js';
import { buildTokenData, buildTagger, taggerLoss, tagDocuments, evaluateTagger, predictSpans } from './token-classification.js';
import { buildDetectionData, buildDetector, loadDetector, predictDetections } from './detection.js';

export { parseRecipe, RecipeSchema, RecipeError, DataSchema } from './schema.js';
export type { Recipe, DataSpec, RecipeIssue } from './schema.js';
export { runRecipe } from './run.js';
export type { RunRecipeOptions, RecipeResult, RecipeEvent, RecipeStartEvent, RecipeEvalEvent } from './run.js';
export { buildData, buildModel, buildOptimizer, buildLoss, prepareInputs } from './build.js';
export type { DataBundle, InputSpec, ModelSpec, OptimizerParts, Part, PreparedInputs } from './build.js';
export { loadRun } from './load-run.js';
export type { LoadedRun, Prediction } from './load-run.js';
export type { RunRecord, ResolvedCheckpoint } from './run-record.js';
export { buildTokenData, buildTagger, taggerLoss, tagDocuments, evaluateTagger, predictSpans } from './token-classification.js';
export type { TokenInputSpec, TokenDataBundle, TagDocument, TaggerEvaluation, PredictedSpan } from './token-classification.js';
export { buildDetectionData, buildDetector, loadDetector, predictDetections } from './detection.js';
export type { DetectionInputSpec, DetectionDataBundle, DetectionRunResult, FoundBox } from './detection.js';

export const recipes = {
  parseRecipe,
  RecipeSchema,
  DataSchema,
  runRecipe,
  loadRun,
  buildData,
  buildModel,
  buildOptimizer,
  buildLoss,
  buildFromSpec,
  prepareInputs,
  encodeTexts,
  imageTransforms,
  loadTrainedModel,
  trainedSpec,
  readRun,
  resolveCheckpoint,
  resolvePaths,
  // token classification (task: tokenClassification)
  buildTokenData,
  buildTagger,
  taggerLoss,
  tagDocuments,
  evaluateTagger,
  predictSpans,
  // detection (task: detection)
  buildDetectionData,
  buildDetector,
  loadDetector,
  predictDetections,
  PATH_FIELDS,
  // Before 0.2 the fine-tuning steps lived here; they are finetune.* now.
  // These aliases keep old scripts working (README, changelog).
  ...finetune,
  LRScheduler,
  scheduleFactor,
} as const;
