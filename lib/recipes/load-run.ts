// Loading a trained run back: the model of a run folder (or of a bare weights
// file plus its recipe) with the preprocessing and class names it was
// trained with, ready to predict on new files or texts.
import { join } from 'node:path';
import { ConfigError, DataError } from '../errors.js';
import { io } from '../io/index.js';
import { isTextArch, savedArchitecture } from '../models/index.js';
import type { Architecture } from '../models/architecture.js';
import { evaluate, predict, type EvalResult } from '../train/trainer.js';
import { tta } from '../train/tta.js';
import { buildData, buildFromSpec, buildLoss, prepareInputs, recipeHfConfig, specTask, type InputSpec, type ModelSpec, type Part } from './build.js';
import type { Recipe } from './schema.js';
import { RUN_FILE, resolveCheckpoint, type ResolvedCheckpoint } from './run-record.js';
import { buildTokenData, evaluateTagger, predictSpans, taggerLoss, type PredictedSpan } from './token-classification.js';
import type { Tagger } from '../models/taggers.js';
import { buildDetectionData, imageFiles, predictDetections, type FoundBox } from './detection.js';
import type { FasterRCNN } from '../models/detection/faster-rcnn.js';
import { evaluateDetector } from '../train/detection-fit.js';
import type { DetectionScores } from '../metrics/detection.js';

/**
 * How to rebuild the model whose weights `ck` holds: the run's own record,
 * or, for a bare weights file, what the recipe and the file's metadata say.
 */
export function trainedSpec(ck: ResolvedCheckpoint, recipe: Recipe | null): ModelSpec {
  if (ck.run) return ck.run.model; // how the weights were made, whatever recipe reads the data
  if (!recipe) throw new ConfigError('recipe', `${ck.weights} is a bare weights file: give the recipe it was trained with`);
  const saved = savedArchitecture(ck.weights);
  const arch = recipe.model.arch ?? saved?.arch ?? (recipe.model.checkpoint ? savedArchitecture(recipe.model.checkpoint)?.arch : undefined);
  if (!arch) throw new ConfigError('recipe.model.arch', `needed: ${ck.weights} does not name its architecture`);
  const text = isTextArch(arch);
  const options: Record<string, unknown> = {};
  // a text file's own options are its task and classes (older files also list native sizes, which the config gives)
  for (const [k, v] of Object.entries(saved?.options ?? {})) if (!text || k === 'task' || k === 'numClasses') options[k] = v;
  for (const k of ['width', 'inChannels', 'smallStem', 'dropout', 'numClasses'] as const) if (recipe.model[k] !== undefined) options[k] = recipe.model[k];
  if (!text) return { arch, options };
  // the recipe's config, else the one the weights carry (models.save), else the recipe's checkpoint's
  const hfConfig = recipe.model.config ? recipeHfConfig(recipe) : (saved?.config ?? recipeHfConfig(recipe));
  if (!hfConfig)
    throw new ConfigError('recipe.model.config', `needed: ${ck.weights} holds a ${arch} model and neither it nor the recipe gives its config.json`);
  return { arch, options, hfConfig };
}

/**
 * Throws a ConfigError (on `field`, where the task was read) unless `spec`
 * is a classifier of whole inputs (every vision model; a text model with
 * task sequenceClassification): what predict and evaluate, which give one
 * class per input, can use.
 */
export function requireSequenceClassifier(spec: ModelSpec, field: string): void {
  if (!isTextArch(spec.arch)) return;
  const task = specTask(spec, field);
  if (task !== 'sequenceClassification')
    throw new ConfigError(
      field,
      `the model is a ${task} model; predict and evaluate give one class per input and need a sequenceClassification model (load it with models.load or loadRun(...).model to use it)`,
    );
}

/** Builds the model of `spec` and loads the trained weights into it, in eval mode on `device`. */
export function loadTrainedModel(spec: ModelSpec, weights: string, options: { numClasses?: number | null; device?: string } = {}): Architecture {
  const full = { ...spec, options: { ...spec.options } };
  const maskedLM = isTextArch(spec.arch) && specTask(spec) === 'maskedLM';
  if (full.options.numClasses === undefined && !maskedLM) {
    if (options.numClasses == null) throw new ConfigError('recipe.model.numClasses', 'needed to rebuild the model from a weights file');
    full.options.numClasses = options.numClasses;
  }
  const model = buildFromSpec(full);
  const sd = io.load(weights);
  try {
    model.loadStateDict(sd);
  } catch (err) {
    model.dispose();
    const what = maskedLM ? 'maskedLM' : `${isTextArch(spec.arch) ? `${specTask(spec)} ` : ''}with ${full.options.numClasses} classes`;
    throw new Error(`${weights} does not fit ${full.arch} ${what}: ${(err as Error).message}`);
  } finally {
    Object.values(sd).forEach((t) => t.dispose());
  }
  if (options.device && options.device !== 'cpu') model.to(options.device);
  model.eval();
  return model;
}

/** One prediction: the input, the predicted class and every class's probability. */
export interface Prediction {
  /** The file, `file:line` for a row of a CSV/JSONL file, or `text N`. */
  input: string;
  /** Text inputs: the text. */
  text: string | null;
  /** The predicted class's name and index. */
  class: string;
  index: number;
  probability: number;
  /** Probability per class name. */
  probabilities: Record<string, number>;
  /** The label found next to the input (a CSV/JSONL label column), else null. */
  label: string | null;
}

/** A trained run, ready to use: see loadRun. */
export interface LoadedRun {
  model: Architecture;
  classes: string[];
  /** How inputs are prepared (image size, channels, normalisation; or tokenizer and length). */
  input: InputSpec;
  /** The recipe the run was trained with. */
  recipe: Recipe;
  /** The weights file loaded (best/ when the run has one). */
  weights: string;
  /**
   * Class probabilities for new inputs. Image models: image files or folders.
   * Text models: texts; or `{ files }` for CSV/JSONL files (their text column), `{ texts }` for texts.
   */
  predict(inputs: string[] | { files?: string[]; texts?: string[] }, options?: { batchSize?: number }): Promise<Prediction[]>;
  /** Metrics on a part of the recipe's data (default test), as `finetorch eval` prints them (taggers: whole documents, with `entities`). */
  evaluate(part?: Part): Promise<EvalResult>;
  /** Taggers (token classification): the entity spans the model finds in each text (type, character offsets, the text covered). */
  tag(texts: string[], options?: { batchSize?: number }): Promise<Array<{ text: string; spans: PredictedSpan[] }>>;
  /** Detectors (task detection): the boxes found in image files or folders (score at least scoreThresh, default 0.5). */
  detect(
    inputs: string[],
    options?: { scoreThresh?: number; batchSize?: number },
  ): Promise<Array<{ input: string; width: number; height: number; boxes: FoundBox[] }>>;
  /** Detectors: COCO's scores on a part of the recipe's data (default test), as `finetorch eval` prints them. */
  evaluateDetection(part?: Part): Promise<DetectionScores>;
  dispose(): void;
}

/**
 * Loads a trained run: `path` is a run folder written by runRecipe or
 * `finetorch train` (its best/, else last/), or one of its checkpoint folders.
 */
export function loadRun(path: string, options: { device?: string } = {}): LoadedRun {
  const ck = resolveCheckpoint(path, 'loadRun');
  if (!ck.run) throw new ConfigError('path', `${path}: no run.json beside the checkpoint; loadRun needs a run folder written by runRecipe or finetorch train`);
  const run = ck.run;
  const taskField = `${join(ck.runDir ?? '', RUN_FILE)}: model.options.task`;
  if (isTextArch(run.model.arch)) specTask(run.model, taskField);
  const device = options.device ?? run.recipe.device ?? 'cpu';
  const model = loadTrainedModel(run.model, ck.weights, { numClasses: run.classes.length, device });
  const recipe = run.recipe;
  return {
    model,
    classes: run.classes,
    input: run.input,
    recipe,
    weights: ck.weights,
    async predict(inputs, o = {}) {
      if (run.input.kind === 'detection') throw new ConfigError('path', `${path} holds a detector: use loadRun(...).detect(files) for its boxes`);
      if (run.input.kind === 'tokens') throw new ConfigError('path', `${path} holds a tagger: use loadRun(...).tag(texts) for its spans`);
      requireSequenceClassifier(run.model, taskField);
      const given = Array.isArray(inputs) ? (run.input.kind === 'text' ? { texts: inputs } : { files: inputs }) : inputs;
      const prepared = await prepareInputs(run.input, { paths: given.files, texts: given.texts, batchSize: o.batchSize ?? recipe.batchSize, device });
      const { probabilities, predictions } = await predict(model, prepared.source);
      return predictions.map((p, i) => ({
        input: prepared.names[i],
        text: prepared.texts[i],
        class: run.classes[p],
        index: p,
        probability: probabilities[i][p],
        probabilities: Object.fromEntries(run.classes.map((c, k) => [c, probabilities[i][k]])),
        label: prepared.labels[i],
      }));
    },
    async evaluate(part = 'test') {
      if (run.input.kind === 'detection') throw new ConfigError('path', `${path} holds a detector: use loadRun(...).evaluateDetection() for its COCO scores`);
      if (run.input.kind === 'tokens') {
        const input = run.input;
        const data = await buildTokenData(recipe, [part], input);
        const docs = data.documents[part];
        if (!docs?.length) throw new DataError(`the recipe's data has no ${part} part (see recipe.data.split, valPath, testPath)`);
        return evaluateTagger(model as unknown as Tagger, input, docs, {
          loss: taggerLoss(recipe, model as unknown as Tagger, input.tags.length),
          batchSize: recipe.batchSize,
          device,
        });
      }
      requireSequenceClassifier(run.model, taskField);
      const data = await buildData(recipe, [part], run.input);
      const source = data.parts[part];
      if (!source) throw new DataError(`the recipe's data has no ${part} part (see recipe.data.split)`);
      if (data.classes.join('\n') !== run.classes.join('\n'))
        throw new DataError(`the data's classes (${data.classes.join(', ')}) differ from those the model was trained on (${run.classes.join(', ')})`);
      // the recipe's test-time augmentation, as finetorch eval
      return evaluate(model, source, { loss: buildLoss(recipe, data.classes.length), forward: recipe.tta ? tta(recipe.tta) : undefined });
    },
    async tag(texts, o = {}) {
      if (run.input.kind !== 'tokens') throw new ConfigError('path', `${path} holds a classifier (one class per input): use predict`);
      const r = await predictSpans(model as unknown as Tagger, run.input, texts, { batchSize: o.batchSize ?? recipe.batchSize, device });
      return r.map((x, i) => ({ text: texts[i], spans: x.spans }));
    },
    async detect(inputs, o = {}) {
      if (run.input.kind !== 'detection') throw new ConfigError('path', `${path} holds no detector (task detection)`);
      return predictDetections(model as FasterRCNN, run.classes, imageFiles(inputs), {
        scoreThresh: o.scoreThresh ?? 0.5,
        batchSize: o.batchSize ?? recipe.batchSize,
      });
    },
    async evaluateDetection(part = 'test') {
      if (run.input.kind !== 'detection') throw new ConfigError('path', `${path} holds no detector (task detection)`);
      const data = await buildDetectionData(recipe, [part], { classes: run.classes });
      const source = data.parts[part];
      if (!source)
        throw new DataError(`the recipe's data has no ${part} part (see recipe.data.split, valAnnotations/testAnnotations, valImageSet/testImageSet)`);
      return evaluateDetector(model as FasterRCNN, source);
    },
    dispose() {
      model.dispose();
    },
  };
}
