// The `models` namespace: built-in architectures and loading them with weights.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { load as loadStateDict, save as saveStateDict, detectFormat, namingFile } from '../io/index.js';
import { readSafetensorsMetadata } from '../io/safetensors.js';
import type { StateDict } from '../nn/module.js';
import { Architecture } from './architecture.js';
import * as vision from './vision.js';
import * as text from './text.js';
import { checkSavedOptions, visionCheckpointProblems } from './checkpoint-checks.js';

export { Architecture } from './architecture.js';
export type { Block } from './architecture.js';
export type { VisionOptions } from './vision.js';
export type { HfConfig, TextArch } from './text.js';
export { TextModel, checkVocabulary } from './text.js';

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
 * except the head when `freshHead` (another number of classes, or a base
 * checkpoint without a head): then the head keeps its new initialisation.
 */
function loadInto(model: Architecture, sd: StateDict, freshHead: boolean, what: string): Architecture {
  const result = model.loadStateDict(sd, { strict: false });
  const heads = model
    .blockPaths()
    .find((b) => b.name === 'head')!
    .paths.map((p) => p + '.');
  const isHead = (k: string) => heads.some((h) => k.startsWith(h));
  const problems = [
    ...result.missingKeys.filter((k) => !(freshHead && isHead(k))).map((k) => `missing ${k}`),
    ...result.unexpectedKeys.map((k) => `unexpected ${k}`),
    ...result.mismatchedKeys
      .filter((m) => !(freshHead && isHead(m.key)))
      .map((m) => `size mismatch for ${m.key}: checkpoint [${m.got}], model [${m.expected}]`),
  ];
  // the checkpoint's tensors were copied into the model; free them now, not at GC
  Object.values(sd).forEach((t) => t.dispose());
  if (problems.length) {
    model.dispose();
    throw new Error(`${what}: the checkpoint does not fit:\n  ${problems.join('\n  ')}`);
  }
  return model;
}

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
 * config.json or its path). With numClasses different from the checkpoint's
 * head, the head is left freshly initialised (the fine-tuning case) and every
 * other weight must load.
 */
export interface LoadOptions extends vision.ResNetOptions {
  /** Needed unless the checkpoint was written by models.save (its metadata names the architecture). */
  arch?: ArchitectureName | text.TextArch;
  config?: text.HfConfig | string;
}

const META_ARCH = 'finetorch.arch';
const META_OPTIONS = 'finetorch.options';

/** The architecture a checkpoint written by models.save declares, if any. */
export function savedArchitecture(path: string): { arch: ArchitectureName; options: Record<string, unknown> } | null {
  let metadata: Record<string, string>;
  try {
    if (detectFormat(path) !== 'safetensors') return null;
    metadata = readSafetensorsMetadata(path);
  } catch (err) {
    throw namingFile(path, err);
  }
  if (!metadata[META_ARCH]) return null;
  const arch = metadata[META_ARCH];
  if (!Object.hasOwn(architectures, arch) && !isTextArch(arch))
    throw new Error(`${path}: the metadata ${META_ARCH} names ${JSON.stringify(arch)}, not one of ${ARCHITECTURE_NAMES.join(', ')}`);
  let options: unknown;
  try {
    options = JSON.parse(metadata[META_OPTIONS] ?? '{}');
  } catch {
    throw new Error(`${path}: the metadata ${META_OPTIONS} is not JSON`);
  }
  return { arch: arch as ArchitectureName, options: checkSavedOptions(path, META_OPTIONS, options) };
}

/** Writes a built-in vision model as .safetensors with its architecture in the metadata, so models.load needs no arch. */
export function save(model: Architecture, path: string): void {
  if (!(model instanceof Architecture)) throw new TypeError('models.save: expected a model built by finetorch.models');
  const { depth: _depth, ...options } = model.archOptions();
  const sd = model.stateDict();
  saveStateDict(sd, path, { metadata: { [META_ARCH]: model.arch, [META_OPTIONS]: JSON.stringify(options) } });
}

export function load(path: string, options: LoadOptions = {}): Architecture {
  const saved = existsSync(path) ? savedArchitecture(path) : null;
  if (!options.arch && !saved) throw new TypeError(`models.load(${path}): give {arch} (the checkpoint does not name its architecture)`);
  if (saved && (!options.arch || options.arch === saved.arch)) {
    const { numClasses: _n, ...archOptions } = saved.options;
    // options the caller leaves undefined keep the saved ones
    const given = Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined));
    options = { ...archOptions, ...given, arch: saved.arch };
  }
  const arch = options.arch!;
  const what = `models.load(${path}, ${arch})`;
  if (isTextArch(arch)) {
    if (!options.config) throw new TypeError(`${what}: text models need {config}: the model's config.json (path or parsed object)`);
    const config = readConfig(options.config);
    const sd = text.normaliseTextKeys(arch as text.TextArch, loadStateDict(path));
    const numClasses = options.numClasses ?? text.labelCount(config);
    const model = text.textModel(arch as text.TextArch, config, { numClasses });
    const headKey = `${text.TEXT_HEAD_PATHS[arch as text.TextArch]}.weight`;
    const fresh = !(headKey in sd) || sd[headKey].shape[0] !== numClasses;
    return loadInto(model, sd, fresh, what);
  }
  const make = Object.hasOwn(architectures, arch) ? architectures[arch as ArchitectureName] : undefined;
  if (!make) throw new TypeError(`models.load: unknown arch ${JSON.stringify(arch)} (expected one of ${ARCHITECTURE_NAMES.join(', ')})`);
  const resnetOnly = misplacedResNetOptions(arch, options);
  if (resnetOnly.length) throw new TypeError(`${what}: ${resnetOnly.join(', ')} apply to ResNets only`);
  const sd = loadStateDict(path);
  const checkpointClasses = sd[`${vision.HEAD_PATHS[arch]}.weight`]?.shape[0];
  const numClasses = options.numClasses ?? checkpointClasses ?? 1000;
  const { arch: _a, config: _c, ...archOptions } = options;
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
  return loadInto(model, sd, numClasses !== checkpointClasses, what);
}

/**
 * A Hugging Face model folder: config.json (its model_type picks bert,
 * roberta or distilbert) and model.safetensors or pytorch_model.bin.
 */
export function fromPretrained(dir: string, options: { numClasses?: number } = {}): Architecture {
  const configPath = join(dir, 'config.json');
  if (!existsSync(configPath)) throw new Error(`models.fromPretrained: ${dir} has no config.json`);
  const config = readConfig(configPath);
  const arch = config.model_type as string;
  if (!isTextArch(arch))
    throw new Error(`models.fromPretrained: model_type ${JSON.stringify(arch)} in ${configPath} is not supported (bert, roberta, distilbert)`);
  const weights = huggingFaceWeights(dir);
  if (!weights) throw new Error(`models.fromPretrained: ${dir} has neither model.safetensors nor pytorch_model.bin`);
  return load(weights, { arch, config, numClasses: options.numClasses });
}

export const models = {
  ...vision,
  bert: text.bert,
  roberta: text.roberta,
  distilbert: text.distilbert,
  checkVocabulary: text.checkVocabulary,
  architectures,
  load,
  save,
  fromPretrained,
  savedArchitecture,
  TEXT_ARCHS,
  ARCHITECTURE_NAMES,
} as const;
