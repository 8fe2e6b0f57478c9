// finetorch: fine-tune pretrained PyTorch models from Node.js on libtorch.
//   import { torch, nn, optim, cuda } from 'finetorch'
export { torch, Tensor, noGrad } from './tensor/index.js';
export type { DType, Device, NestedArray, IndexSpec, TensorOptions, TensorData } from './tensor/index.js';
export { nn, Module } from './nn/index.js';
export type { StateDict, LoadStateDictResult, Reduction, CrossEntropyOptions } from './nn/index.js';
export { optim, LRScheduler } from './optim/index.js';
export type {
  Optimizer,
  SGD,
  Adam,
  AdamW,
  ParamGroup,
  SGDOptions,
  AdamOptions,
  ParamGroupSpec,
  OptimizerStateDict,
  ScheduleKind,
  ScheduleOptions,
} from './optim/index.js';
export { cuda } from './cuda/index.js';
export { amp, GradScaler } from './amp/index.js';
export type { AutocastDeviceType, AutocastDtype, AutocastOptions, GradScalerOptions, GradScalerState } from './amp/index.js';
export type { CudaMemoryStats } from './cuda/index.js';
export { loadReport } from './native/loader.js';
export type { LoadReport } from './native/loader.js';
export { trainStepAsync } from './train/step.js';
export { fit, evaluate, predict, clipGradNorm, TrainingDivergedError } from './train/trainer.js';
export { lrFind, suggestLrs } from './train/lr-find.js';
export type { LrFindOptions, LrFindResult, SuggestionRule } from './train/lr-find.js';
export { tta } from './train/tta.js';
export type { TtaOptions } from './train/tta.js';
export { lrFindRecipe } from './recipes/lr-find.js';
export type { LrFindRecipeOptions, LrFindRecipeResult } from './recipes/lr-find.js';
export type {
  FitOptions,
  FitResult,
  TrainEvent,
  EvalResult,
  LossFn,
  BuiltinLoss,
  CrossEntropyLoss,
  BatchSource,
  MetricName,
  ForwardFn,
  Callback,
  CallbackContext,
  MetricFn,
  MetricInput,
  EmaOptions,
  DetectionFitOptions,
  DetectionSource,
  DetectionMetricName,
} from './train/trainer.js';
export { gradualUnfreezing } from './train/callbacks.js';
export type { GradualUnfreezing, GradualUnfreezingOptions } from './train/callbacks.js';
export type { TaggingOptions, EntityScores } from './train/tagging.js';
export {
  recipes,
  parseRecipe,
  RecipeSchema,
  RecipeError,
  DataSchema,
  runRecipe,
  loadRun,
  buildData,
  buildModel,
  buildOptimizer,
  buildLoss,
  prepareInputs,
} from './recipes/index.js';
export type {
  Recipe,
  DataSpec,
  RecipeIssue,
  RunRecipeOptions,
  RecipeResult,
  RecipeEvent,
  RecipeStartEvent,
  RecipeEvalEvent,
  DataBundle,
  InputSpec,
  ModelSpec,
  OptimizerParts,
  Part,
  PreparedInputs,
  LoadedRun,
  Prediction,
  RunRecord,
  ResolvedCheckpoint,
  TokenInputSpec,
  TagDocument,
  TaggerEvaluation,
  PredictedSpan,
} from './recipes/index.js';
export { FinetorchError, ArgumentError, ConfigError, DataError, CheckpointError } from './errors.js';
export type { ErrorCode } from './errors.js';
export { TensorLoader, permutation } from './data/tensor-loader.js';
export type { Batch } from './data/tensor-loader.js';
export { readIdx, fashionMnist, FASHION_MNIST_CLASSES } from './data/idx.js';
export { data } from './data/index.js';
export type { ImageSample, ImageFolder, Transform, TextDataset, TextDatasetOptions, Dataset, Item, DataLoaderOptions } from './data/index.js';
export type { TagScheme, Entity, EntityOptions } from './data/index.js';
export type { DetectionSample, DetectionData, DetectionTransform, DetectionItem, DetectionBatch, DetectionTarget } from './data/index.js';
export type {
  Span,
  Offsets,
  TaggedDocument,
  TaggedCorpus,
  WordWindow,
  EncodeWordsOptions,
  ClauseSpan,
  ClauseDocument,
  ClauseDataset,
  ClauseSplit,
  ClauseType,
} from './data/index.js';
export type { TrainStepOptions, TrainStepResult } from './train/step.js';
export { io } from './io/index.js';
export type { CheckpointFormat } from './io/index.js';
export { models, Architecture } from './models/index.js';
export type { ArchitectureName, Block, VisionOptions } from './models/index.js';
export type { Tagger, BiLstmCrf, BertTagger, TaggerHead, BiLstmCrfOptions, BertTaggerOptions, TaggerLossOptions } from './models/index.js';
export type { CRF, CRFReduction } from './nn/crf.js';
export { jit } from './io/jit.js';
export { onnx } from './io/onnx.js';
export type { OnnxExportOptions, OnnxExportResult } from './io/onnx.js';
export { metrics } from './metrics/index.js';
export { reports } from './reports/index.js';
export type {
  LineChart,
  ChartSeries,
  LegendItem,
  ClassificationTable,
  ClassRow,
  ClassificationTableOptions,
  EvaluationReport,
  LabelledScore,
  TrainingMonitorOptions,
} from './reports/index.js';
export type { Labels, Scores, Average, PrfOptions, Prf, ClassReport } from './metrics/index.js';
export type { SeqevalOptions, SeqevalScores, SeqevalAverage, SeqevalReport, ReportRow, Sentences } from './metrics/index.js';
export type { DetectionPrediction, DetectionGroundTruth, DetectionEvalOptions, DetectionScores, ClassDetectionScores } from './metrics/index.js';
export { losses } from './losses/index.js';
export type { FocalLossOptions } from './losses/index.js';
export { finetune } from './finetune/index.js';
export type { GroupOptions, GroupSpec, FreezeOptions, Strategy, Recommendation } from './finetune/index.js';
export { exportModel, EXPORT_FORMATS } from './export/index.js';
export type { ExportFormat, ExportOptions, ExportResult } from './export/index.js';
export { pretrain, parsePretrainConfig, PretrainSchema, readPretrainRecord } from './pretrain/index.js';
export type {
  PretrainConfig,
  MlmPretrainConfig,
  ReconstructionPretrainConfig,
  PretrainOptions,
  PretrainResult,
  PretrainEvent,
  PretrainMetrics,
  MlmMetrics,
  ReconstructionMetrics,
} from './pretrain/index.js';
export * as dashboard from './dashboard/index.js';
export type { DashboardOptions, Dashboard } from './dashboard/index.js';
export { distributed, DistributedDataParallel } from './distributed/index.js';
export type { Backend, ReduceOp, InitProcessGroupOptions, DistributedDataParallelOptions, ShardOptions } from './distributed/index.js';
export { ops } from './ops/index.js';
export type { RoiAlignOptions, NmsOptions, OpsImplementation, MultiScaleRoIAlign, MultiScaleRoIAlignOptions } from './ops/index.js';
