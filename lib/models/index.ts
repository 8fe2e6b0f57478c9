// The `models` namespace: built-in architectures and loading them with weights.
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { load as loadStateDict, save as saveStateDict, detectFormat, namingFile } from '../io/index.js';
import { readSafetensorsMetadata } from '../io/safetensors.js';
import { writeAtomic, writeAll } from '../io/atomic.js';
import { ArgumentError, ConfigError } from '../errors.js';
import type { StateDict } from '../nn/module.js';
import { Architecture } from './architecture.js';
import * as vision from './vision.js';
import * as text from './text.js';
import * as taggers from './taggers.js';
import { fasterrcnnResnet50Fpn, FasterRCNN, loadFasterRcnn } from './detection/faster-rcnn.js';
import { inferVisionArchitecture } from './infer.js';
import { checkSavedOptions, LEGACY_TEXT_OPTIONS, textCheckpointProblems, visionCheckpointProblems } from './checkpoint-checks.js';

export { Architecture } from './architecture.js';
export { inferVisionArchitecture, type ArchitectureInference } from './infer.js';
export type { Block } from './architecture.js';
export type { VisionOptions } from './vision.js';
export type { HfConfig, TextArch, TextTask, TextModelOptions } from './text.js';
export { TextModel, checkVocabulary, TEXT_TASKS } from './text.js';
export { FasterRCNN } from './detection/faster-rcnn.js';
export type { FasterRCNNOptions, DetectionTarget, DetectionLosses, Detections } from './detection/faster-rcnn.js';
export { Tagger, BiLstmCrf, BertTagger, TAGGER_ARCHS, isTaggerArch, packedBiLstm } from './taggers.js';
export type { TaggerArch, TaggerHead, BiLstmCrfOptions, BertTaggerOptions, TaggerLossOptions } from './taggers.js';

/** Architectures by the names torchvision uses. */
export const architectures = {
  resnet18: vision.resnet18,
  resnet34: vision.resnet34,
  resnet50: vision.resnet50,
  resnet101: vision.resnet101,
  resnet152: vision.resnet152,
  vgg11: vision.vgg11,
  vgg11_bn: vision.vgg11Bn,
  vgg16: vision.vgg16,
  vgg16_bn: vision.vgg16Bn,
  efficientnet_b0: vision.efficientnetB0,
} as const;
export type ArchitectureName = keyof typeof architectures;

/**
 * Copies a checkpoint into a freshly built model. Every weight must fit,
 * except the modules under `freshPaths` (the head when it gets another number
 * of classes or the checkpoint has none; BERT's pooler when a checkpoint for
 * another task lacks it): missing or of another size, they keep their new
 * initialisation.
 */
function loadInto(model: Architecture, sd: StateDict, freshPaths: string[], what: string): Architecture {
  const result = model.loadStateDict(sd, { strict: false });
  const prefixes = freshPaths.map((p) => p + '.');
  const isFresh = (k: string) => prefixes.some((h) => k.startsWith(h));
  const problems = [
    ...result.missingKeys.filter((k) => !isFresh(k)).map((k) => `missing ${k}`),
    ...result.unexpectedKeys.map((k) => `unexpected ${k}`),
    ...result.mismatchedKeys.filter((m) => !isFresh(m.key)).map((m) => `size mismatch for ${m.key}: checkpoint [${m.got}], model [${m.expected}]`),
  ];
  // the checkpoint's tensors were copied into the model; free them now, not at GC
  Object.values(sd).forEach((t) => t.dispose());
  if (problems.length) {
    model.dispose();
    throw new Error(`${what}: the checkpoint does not fit:\n  ${problems.join('\n  ')}`);
  }
  return model;
}

/** The paths of a model's 'head' block. */
const headPaths = (model: Architecture) => model.blockPaths().find((b) => b.name === 'head')!.paths;

function readConfig(config: text.HfConfig | string): text.HfConfig {
  if (typeof config !== 'string') return config;
  try {
    return JSON.parse(readFileSync(config, 'utf8'));
  } catch (err) {
    throw new Error(`cannot read config ${config}: ${(err as Error).message}`);
  }
}

/** The text architectures (Hugging Face model_type names). */
export const TEXT_ARCHS = ['bert', 'roberta', 'distilbert'] as const;
export const isTextArch = (arch: string): arch is text.TextArch => (TEXT_ARCHS as readonly string[]).includes(arch);
/** Every architecture name models.load takes. */
export const ARCHITECTURE_NAMES: readonly string[] = [...Object.keys(architectures), ...TEXT_ARCHS];

/** Options that only the ResNet builders take (the vision options a checkpoint or recipe may set). */
const RESNET_ONLY = ['width', 'inChannels', 'smallStem'] as const;

/** The ResNet-only options set for a non-ResNet architecture (empty when all is well). */
export function misplacedResNetOptions(arch: string, options: Partial<Record<(typeof RESNET_ONLY)[number], unknown>>): string[] {
  return arch.startsWith('resnet') ? [] : RESNET_ONLY.filter((k) => options[k] !== undefined);
}

/** The weights file of a Hugging Face model folder (model.safetensors, else pytorch_model.bin), or null. */
export function huggingFaceWeights(dir: string): string | null {
  return ['model.safetensors', 'pytorch_model.bin'].map((f) => join(dir, f)).find((f) => existsSync(f)) ?? null;
}

/**
 * Builds `arch` and loads the checkpoint at `path` into it. Vision archs
 * take their size from the name; text archs need `config` (a parsed
 * config.json or its path) unless the file was written by models.save, which
 * records it with the task and number of classes. With numClasses (or, for
 * text, a task) different from the checkpoint's head, the head is left
 * freshly initialised (the fine-tuning case) and every other weight must load.
 */
export interface LoadOptions extends vision.ResNetOptions {
  /** Needed unless the checkpoint was written by models.save (its metadata names the architecture). */
  arch?: ArchitectureName | text.TextArch | typeof FASTER_RCNN;
  /** Text models: the config.json (path or parsed); a models.save file's own is used when none is given. */
  config?: text.HfConfig | string;
  /** Text models: the head to build (default: a models.save file's task, else 'sequenceClassification'). */
  task?: text.TextTask;
}

const META_ARCH = 'finetorch.arch';
const META_OPTIONS = 'finetorch.options';
/** Text models: the config.json they were built from. */
const META_CONFIG = 'finetorch.config';

/** What a checkpoint written by models.save declares: the architecture, its options and, for a text model, its config.json. */
export interface SavedArchitecture {
  arch: ArchitectureName | text.TextArch | taggers.TaggerArch | typeof FASTER_RCNN;
  options: Record<string, unknown>;
  config?: text.HfConfig;
}

/** The architecture a checkpoint written by models.save declares, if any. */
export function savedArchitecture(path: string): SavedArchitecture | null {
  let metadata: Record<string, string>;
  try {
    if (detectFormat(path) !== 'safetensors') return null;
    metadata = readSafetensorsMetadata(path);
  } catch (err) {
    throw namingFile(path, err);
  }
  if (!metadata[META_ARCH]) return null;
  const arch = metadata[META_ARCH];
  if (taggers.isTaggerArch(arch)) return savedTagger(path, arch, metadata);
  if (arch === FASTER_RCNN) return { arch, options: savedDetectorOptions(path, metadata[META_OPTIONS]) };
  if (!Object.hasOwn(architectures, arch) && !isTextArch(arch))
    throw new Error(`${path}: the metadata ${META_ARCH} names ${JSON.stringify(arch)}, not one of ${ARCHITECTURE_NAMES.join(', ')}`);
  let options: unknown;
  try {
    options = JSON.parse(metadata[META_OPTIONS] ?? '{}');
  } catch {
    throw new Error(`${path}: the metadata ${META_OPTIONS} is not JSON`);
  }
  const family = isTextArch(arch) ? 'text' : 'vision';
  const saved: SavedArchitecture = { arch: arch as SavedArchitecture['arch'], options: checkSavedOptions(path, META_OPTIONS, options, family) };
  if (metadata[META_CONFIG] !== undefined) {
    if (family !== 'text') throw new Error(`${path}: the metadata ${META_CONFIG} is for text models, not ${arch}`);
    let config: unknown;
    try {
      config = JSON.parse(metadata[META_CONFIG]);
    } catch {
      throw new Error(`${path}: the metadata ${META_CONFIG} is not JSON`);
    }
    if (typeof config !== 'object' || config === null || Array.isArray(config)) throw new Error(`${path}: the metadata ${META_CONFIG} is not a JSON object`);
    saved.config = config as text.HfConfig;
  }
  return saved;
}

/** A tagger's metadata: its options (checked when it is rebuilt) and, for bertTagger, the encoder's config.json. */
function savedTagger(path: string, arch: taggers.TaggerArch, metadata: Record<string, string>): SavedArchitecture {
  const parse = (field: string): Record<string, unknown> => {
    let value: unknown;
    try {
      value = JSON.parse(metadata[field] ?? '{}');
    } catch {
      throw new Error(`${path}: the metadata ${field} is not JSON`);
    }
    if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new Error(`${path}: the metadata ${field} is not a JSON object`);
    return value as Record<string, unknown>;
  };
  return { arch, options: parse(META_OPTIONS), ...(metadata[META_CONFIG] !== undefined ? { config: parse(META_CONFIG) } : {}) };
}

/**
 * Writes a built-in model as .safetensors with its architecture in the
 * metadata, so models.load needs no arch: a vision model's options; a text
 * model's task, number of classes and config.json (so models.load needs no
 * config either).
 */
export function save(model: Architecture, path: string): void {
  if (!(model instanceof Architecture)) throw new TypeError('models.save: expected a model built by finetorch.models');
  let metadata: Record<string, string>;
  if (model instanceof taggers.Tagger) {
    const { options, config } = taggers.taggerMetadata(model);
    metadata = { [META_ARCH]: model.arch, [META_OPTIONS]: JSON.stringify(options), ...(config ? { [META_CONFIG]: JSON.stringify(config) } : {}) };
  } else if (model instanceof text.TextModel) {
    const options: Record<string, unknown> = { task: model.task };
    // the head's own size: swapHead may have replaced it since the model was built
    if (model.task !== 'maskedLM' && model.task !== 'featureExtraction')
      options.numClasses = Object.fromEntries(model.head().module.namedParameters({ recurse: false })).weight.shape[0];
    metadata = { [META_ARCH]: model.arch, [META_OPTIONS]: JSON.stringify(options), [META_CONFIG]: JSON.stringify(model.hfConfig) };
  } else {
    const { depth: _depth, ...options } = model.archOptions();
    metadata = { [META_ARCH]: model.arch, [META_OPTIONS]: JSON.stringify(options) };
  }
  saveStateDict(model.stateDict(), path, { metadata });
}

export function load(path: string, options: LoadOptions = {}): Architecture {
  const saved = existsSync(path) ? savedArchitecture(path) : null;
  if (options.arch === FASTER_RCNN || (!options.arch && saved?.arch === FASTER_RCNN))
    return loadDetector(path, options, saved?.arch === FASTER_RCNN ? saved.options : {});
  if (!options.arch && !saved) throw new TypeError(`models.load(${path}): give {arch} (the checkpoint does not name its architecture)`);
  if (saved && taggers.isTaggerArch(saved.arch)) return taggers.loadTagger(path, saved.arch, saved.options, saved.config);
  if (options.arch && taggers.isTaggerArch(options.arch))
    throw new TypeError(
      `models.load(${path}): a ${options.arch} loads from a file written by models.save (its metadata names the tagger), which this one is not`,
    );
  if (saved && (!options.arch || options.arch === saved.arch)) {
    if (isTextArch(saved.arch)) return loadText(path, saved.arch, options, saved);
    const { numClasses: _n, ...archOptions } = saved.options;
    // options the caller leaves undefined keep the saved ones
    const given = Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined));
    options = { ...archOptions, ...given, arch: saved.arch as ArchitectureName };
  }
  const arch = options.arch!;
  const what = `models.load(${path}, ${arch})`;
  if (isTextArch(arch)) return loadText(path, arch, options, null);
  const make = Object.hasOwn(architectures, arch) ? architectures[arch as ArchitectureName] : undefined;
  if (!make) throw new TypeError(`models.load: unknown arch ${JSON.stringify(arch)} (expected one of ${ARCHITECTURE_NAMES.join(', ')})`);
  const resnetOnly = misplacedResNetOptions(arch, options);
  if (resnetOnly.length) throw new TypeError(`${what}: ${resnetOnly.join(', ')} apply to ResNets only`);
  if (options.task !== undefined) throw new TypeError(`${what}: task applies to text models (${TEXT_ARCHS.join(', ')}) only`);
  const sd = loadStateDict(path);
  const checkpointClasses = sd[`${vision.HEAD_PATHS[arch]}.weight`]?.shape[0];
  const numClasses = options.numClasses ?? checkpointClasses ?? 1000;
  const { arch: _a, config: _c, task: _t, ...archOptions } = options;
  // the checkpoint against the architecture's shapes, before anything is allocated for the model
  const problems =
    numClasses === 0
      ? [`the head ${vision.HEAD_PATHS[arch]}.weight declares 0 classes (give numClasses for a new head)`]
      : visionCheckpointProblems(path, arch, { ...archOptions, numClasses }, sd, vision.HEAD_PATHS[arch], numClasses !== checkpointClasses);
  let model: Architecture;
  try {
    if (problems.length) throw new Error(`${what}: the checkpoint does not fit:\n  ${problems.join('\n  ')}`);
    model = make({ ...archOptions, numClasses });
  } catch (err) {
    Object.values(sd).forEach((t) => t.dispose());
    throw err;
  }
  return loadInto(model, sd, numClasses !== checkpointClasses ? headPaths(model) : [], what);
}

/** The detection architecture models.load takes (by torchvision's name). */
const FASTER_RCNN = 'fasterrcnn_resnet50_fpn';

/** models.load(path, { arch: 'fasterrcnn_resnet50_fpn', numClasses }): loadFasterRcnn (torchvision's state dict; a new box predictor when numClasses differs). */
function loadDetector(path: string, options: LoadOptions, savedOptions: Record<string, unknown>): FasterRCNN {
  const { arch: _a, numClasses, ...rest } = options;
  const others = Object.keys(rest).filter((k) => rest[k as keyof typeof rest] !== undefined);
  if (others.length)
    throw new TypeError(
      `models.load(${path}, ${FASTER_RCNN}): ${others.join(', ')} do not apply to it (it takes numClasses; models.loadFasterRcnn takes the detector's options)`,
    );
  // a models.save file keeps the detector's options (sizes, thresholds); the class count comes from its box predictor
  const { numClasses: _saved, ...kept } = savedOptions;
  return loadFasterRcnn(path, { ...kept, ...(numClasses === undefined ? {} : { numClasses }) });
}

/** The options models.save recorded for a detector (loadFasterRcnn checks each). */
function savedDetectorOptions(path: string, json: string | undefined): Record<string, unknown> {
  let options: unknown;
  try {
    options = JSON.parse(json ?? '{}');
  } catch {
    throw new Error(`${path}: the metadata ${META_OPTIONS} is not JSON`);
  }
  if (options === null || typeof options !== 'object' || Array.isArray(options)) throw new Error(`${path}: the metadata ${META_OPTIONS} is not an object`);
  return options as Record<string, unknown>;
}

/**
 * models.load for a text architecture. A models.save file supplies what the
 * caller leaves out: its config.json, task and number of classes (the
 * caller's win, as for vision models).
 */
function loadText(path: string, arch: text.TextArch, options: LoadOptions, saved: SavedArchitecture | null): Architecture {
  const what = `models.load(${path}, ${arch})`;
  const configGiven = options.config ?? saved?.config;
  if (!configGiven) {
    const legacy = saved && LEGACY_TEXT_OPTIONS.some((k) => Object.hasOwn(saved.options, k));
    throw new TypeError(
      legacy
        ? `${what}: the file was written by an older models.save that did not record the model's config.json; give {config} (the config.json it was built from)`
        : `${what}: text models need {config}: the model's config.json (path or parsed object)`,
    );
  }
  const config = readConfig(configGiven);
  const task = text.checkTask('models.load', options.task ?? saved?.options.task ?? 'sequenceClassification');
  // a saved classifier keeps its own number of classes unless another task or size is asked for
  const savedClasses = saved && saved.options.task === task ? (saved.options.numClasses as number | undefined) : undefined;
  const numClasses = options.numClasses ?? savedClasses ?? text.labelCount(config);
  // a models.save file loaded as it was saved: every weight, the head included, must load
  const exact = !!saved && saved.options.task === task && (task === 'maskedLM' || task === 'featureExtraction' || numClasses === savedClasses);
  let sizes: Record<string, unknown>;
  try {
    sizes = text.nativeOptions(arch, config, numClasses, task);
  } catch (err) {
    throw new Error(`${what}: config${saved?.config && !options.config ? ` (the metadata ${META_CONFIG})` : ''}: ${(err as Error).message}`);
  }
  const checkpoint = loadStateDict(path);
  let model: text.TextModel;
  try {
    // the checkpoint against the config's sizes, before anything is allocated for the model
    const laidOut = text.normaliseTextKeys(arch, checkpoint);
    const problems = textCheckpointProblems(path, arch, sizes, laidOut);
    const headKey = `${text.textHeadPath(arch, task)}.weight`;
    const head = Object.hasOwn(laidOut, headKey) ? laidOut[headKey] : undefined;
    if (exact && task !== 'maskedLM' && task !== 'featureExtraction' && head?.shape[0] !== numClasses)
      problems.push(`the head ${headKey} is ${head ? `[${head.shape}]` : 'missing'}, but the metadata ${META_OPTIONS} declares ${numClasses} classes`);
    if (problems.length) throw new Error(`${what}: the checkpoint does not fit:\n  ${problems.join('\n  ')}`);
    model = text.textModel(arch, config, { numClasses, task });
  } catch (err) {
    Object.values(checkpoint).forEach((t) => t.dispose());
    throw err;
  }
  const modelKeys = new Set([...model.namedParameters(), ...model.namedBuffers()].map(([k]) => k));
  const sd = text.normaliseTextKeys(arch, checkpoint, modelKeys);
  // what normaliseTextKeys dropped (tied decoders, other tasks' heads) is freed here
  const kept = new Set(Object.values(sd));
  for (const t of Object.values(checkpoint)) if (!kept.has(t)) t.dispose();
  // the head (and BERT's pooler) start fresh when the checkpoint has none that fits, as in transformers
  return loadInto(model, sd, exact ? [] : [...headPaths(model), ...text.textOptionalPaths(arch, task)], what);
}

/**
 * A Hugging Face model folder: config.json (its model_type picks bert,
 * roberta or distilbert, its architectures[0] the head: BertForMaskedLM,
 * *ForTokenClassification, *ForSequenceClassification; a bare BertModel gets
 * a sequence classifier) and model.safetensors or pytorch_model.bin.
 * `task` overrides the head the config names; a head the checkpoint has no
 * weights for (an MLM checkpoint loaded as a classifier, or the reverse)
 * starts fresh on the checkpoint's encoder, as in transformers.
 */
export function fromPretrained(dir: string, options: { numClasses?: number; task?: text.TextTask } = {}): Architecture {
  const configPath = join(dir, 'config.json');
  if (!existsSync(configPath)) throw new Error(`models.fromPretrained: ${dir} has no config.json`);
  const config = readConfig(configPath);
  const arch = config.model_type as string;
  if (!isTextArch(arch)) throw new ConfigError(`${configPath}: model_type`, `${JSON.stringify(arch)} is not supported (bert, roberta, distilbert)`);
  const task = options.task === undefined ? configTask(config, configPath, arch) : text.checkTask('models.fromPretrained', options.task);
  const weights = huggingFaceWeights(dir);
  if (!weights) throw new Error(`models.fromPretrained: ${dir} has neither model.safetensors nor pytorch_model.bin`);
  return load(weights, { arch, config, numClasses: options.numClasses, task });
}

/** The task config.json's architectures[0] names (sequenceClassification when it names none). */
function configTask(config: text.HfConfig, configPath: string, arch: text.TextArch): text.TextTask {
  const names = config.architectures;
  if (names === undefined || names === null) return 'sequenceClassification';
  if (!Array.isArray(names) || (names.length && typeof names[0] !== 'string'))
    throw new ConfigError(`${configPath}: architectures`, `must be a list of class names, got ${JSON.stringify(names)}`);
  if (!names.length) return 'sequenceClassification';
  const parsed = text.parseHfClassName(names[0]);
  const known = text.TEXT_TASKS.map((t) => text.hfClassName(arch, t)).join(', ');
  if (!parsed)
    throw new ConfigError(
      `${configPath}: architectures[0]`,
      `${JSON.stringify(names[0])} is not an architecture finetorch builds (${known}, ${text.TEXT_FAMILIES[arch]}Model); pass {task} to choose the head`,
    );
  if (parsed.arch !== arch)
    throw new ConfigError(
      `${configPath}: architectures[0]`,
      `${JSON.stringify(names[0])} does not match model_type ${JSON.stringify(arch)} (expected one of ${known})`,
    );
  return parsed.task;
}

/**
 * Writes a text model as a Hugging Face folder: config.json (the model's
 * config, or `config`, with architectures and model_type set to what the
 * model is, and num_labels/id2label/label2id for a classifier) and
 * model.safetensors (transformers' key names; the tied decoders are not
 * written, as transformers does not write them), each atomically. The folder
 * loads with transformers' AutoModelFor* classes and with fromPretrained.
 */
export function savePretrained(model: Architecture, dir: string, options: { config?: text.HfConfig } = {}): void {
  const fn = 'models.savePretrained';
  if (!(model instanceof text.TextModel)) throw new ArgumentError(fn, 'model must be a text model (models.bert/roberta/distilbert or fromPretrained)', 'model');
  if (typeof dir !== 'string' || !dir) throw new ArgumentError(fn, 'dir must be a folder path', 'dir');
  const arch = model.arch as text.TextArch;
  const base = options.config ?? model.hfConfig;
  if (!base || typeof base !== 'object' || Array.isArray(base)) throw new ArgumentError(fn, 'config must be a parsed config.json object', 'config');
  const config: text.HfConfig = structuredClone(base);
  const own = model.archOptions();
  // the head's own size: swapHead may have replaced it since the model was built
  if (model.task !== 'maskedLM' && model.task !== 'featureExtraction')
    own.numClasses = Object.fromEntries(model.head().module.namedParameters({ recurse: false })).weight.shape[0];
  // the config must describe this model: every size it sets must be the model's
  let described: Record<string, unknown>;
  try {
    described = text.nativeOptions(arch, config, (own.numClasses as number) ?? 2, model.task);
  } catch (err) {
    throw new ArgumentError(fn, `config: ${(err as Error).message}`, 'config');
  }
  const sizes = ['vocabSize', 'hiddenSize', 'numHiddenLayers', 'numAttentionHeads', 'intermediateSize', 'maxPositionEmbeddings', 'typeVocabSize', 'padTokenId'];
  const differ = sizes.filter((k) => own[k] !== undefined && described[k] !== own[k]);
  if (differ.length)
    throw new ArgumentError(fn, `config does not describe this model: ${differ.map((k) => `${k} ${described[k]} (model ${own[k]})`).join(', ')}`, 'config');
  config.architectures = [text.hfClassName(arch, model.task)];
  config.model_type = arch;
  if (model.task !== 'maskedLM' && model.task !== 'featureExtraction') {
    const n = own.numClasses as number;
    const labels = config.id2label && typeof config.id2label === 'object' ? Object.values(config.id2label as Record<string, string>) : [];
    const names = labels.length === n ? labels : Array.from({ length: n }, (_, i) => `LABEL_${i}`);
    config.num_labels = n;
    config.id2label = Object.fromEntries(names.map((name, i) => [String(i), name]));
    config.label2id = Object.fromEntries(names.map((name, i) => [name, i]));
  }
  try {
    mkdirSync(dir, { recursive: true });
  } catch (err) {
    throw new ArgumentError(fn, `cannot create the folder ${dir}: ${(err as Error).message}`, 'dir');
  }
  const json = new TextEncoder().encode(JSON.stringify(config, null, 2) + '\n');
  writeAtomic(join(dir, 'config.json'), (fd) => writeAll(fd, json));
  saveStateDict(model.stateDict(), join(dir, 'model.safetensors'), { metadata: { format: 'pt' } });
}

export const models = {
  ...vision,
  bert: text.bert,
  roberta: text.roberta,
  distilbert: text.distilbert,
  bilstmCrf: taggers.bilstmCrf,
  bertTagger: taggers.bertTagger,
  fasterrcnnResnet50Fpn,
  loadFasterRcnn,
  FasterRCNN,
  Tagger: taggers.Tagger,
  BiLstmCrf: taggers.BiLstmCrf,
  BertTagger: taggers.BertTagger,
  checkVocabulary: text.checkVocabulary,
  architectures,
  load,
  save,
  fromPretrained,
  savePretrained,
  savedArchitecture,
  inferArchitecture: inferVisionArchitecture,
  TEXT_ARCHS,
  ARCHITECTURE_NAMES,
} as const;

// bertTagger(dir) loads the folder's encoder through fromPretrained (defined here)
taggers.setEncoderLoader((dir) => fromPretrained(dir, { task: 'featureExtraction' }) as text.TextModel);
