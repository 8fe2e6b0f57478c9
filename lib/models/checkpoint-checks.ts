// Checks models.load makes on a checkpoint before it builds anything: the
// options a models.save file declares (known names, sane ranges), and the
// checkpoint's tensors against the shapes the architecture will have. A
// small file that declares a huge head ([N, 0]) or a huge width is refused
// here, instead of the model being allocated first and compared after.
import { statSync } from 'node:fs';
import type { StateDict } from '../nn/module.js';
import { expectedShapes } from './expected-shapes.js';

type Check = (v: unknown) => boolean;
const intIn =
  (lo: number, hi: number): Check =>
  (v) =>
    Number.isSafeInteger(v) && (v as number) >= lo && (v as number) <= hi;
const fraction: Check = (v) => typeof v === 'number' && v >= 0 && v <= 1;
const boolean: Check = (v) => typeof v === 'boolean';

/** What models.save writes into finetorch.options for a vision model, and the values each may take. */
const SAVED_OPTIONS: Record<string, [Check, string]> = {
  numClasses: [intIn(1, 2 ** 31 - 1), 'a positive integer'],
  width: [intIn(1, 4096), 'an integer in 1..4096'],
  inChannels: [intIn(1, 4096), 'an integer in 1..4096'],
  smallStem: [boolean, 'a boolean'],
  batchNorm: [boolean, 'a boolean'],
  depth: [intIn(1, 1000), 'an integer'],
  dropout: [fraction, 'a number in [0, 1]'],
  stochasticDepthProb: [fraction, 'a number in [0, 1]'],
};

const TEXT_TASK_NAMES = ['sequenceClassification', 'tokenClassification', 'maskedLM'];
const finiteNumber: Check = (v) => typeof v === 'number' && Number.isFinite(v);

/** The native sizes older versions of models.save wrote for a text model (accepted, then ignored: the sizes come from a config.json). */
export const LEGACY_TEXT_OPTIONS: readonly string[] = [
  'vocabSize',
  'hiddenSize',
  'numHiddenLayers',
  'numAttentionHeads',
  'intermediateSize',
  'maxPositionEmbeddings',
  'typeVocabSize',
  'padTokenId',
  'layerNormEps',
  'hiddenDropoutProb',
  'attentionProbsDropoutProb',
  'classifierDropout',
  'initializerRange',
];

/** What models.save writes into finetorch.options for a text model; its sizes are in finetorch.config (the model's config.json). */
const SAVED_TEXT_OPTIONS: Record<string, [Check, string]> = {
  numClasses: [intIn(1, 2 ** 31 - 1), 'a positive integer'],
  task: [(v) => typeof v === 'string' && TEXT_TASK_NAMES.includes(v), `one of ${TEXT_TASK_NAMES.join(', ')}`],
  ...Object.fromEntries(LEGACY_TEXT_OPTIONS.map((k) => [k, [finiteNumber, 'a number'] as [Check, string]])),
};

/**
 * The finetorch.options of a models.save file, checked: an object of the
 * options `family` takes ('vision' or 'text'), each in range.
 */
export function checkSavedOptions(path: string, field: string, options: unknown, family: 'vision' | 'text' = 'vision'): Record<string, unknown> {
  if (typeof options !== 'object' || options === null || Array.isArray(options)) throw new Error(`${path}: the metadata ${field} is not a JSON object`);
  const known = family === 'text' ? SAVED_TEXT_OPTIONS : SAVED_OPTIONS;
  for (const [key, value] of Object.entries(options)) {
    if (!Object.hasOwn(known, key)) throw new Error(`${path}: the metadata ${field} has an unknown option ${JSON.stringify(key)} for a ${family} model`);
    const [ok, expected] = known[key];
    if (!ok(value)) throw new Error(`${path}: the metadata ${field}.${key} must be ${expected}, got ${JSON.stringify(value)}`);
  }
  return options as Record<string, unknown>;
}

/**
 * What keeps `sd` from loading into `arch` built with `options` (empty when
 * it fits), found without building the model. With `freshHead`, the head's
 * keys may be missing or of another shape (it is initialised anew).
 */
export function visionCheckpointProblems(
  path: string,
  arch: string,
  options: Record<string, unknown>,
  sd: StateDict,
  headPath: string,
  freshHead: boolean,
): string[] {
  // options out of range are left to the builder, which names them before allocating
  const inRange = Object.entries(options).every(([k, v]) => v === undefined || !Object.hasOwn(SAVED_OPTIONS, k) || SAVED_OPTIONS[k][0](v));
  const expected = inRange ? expectedShapes(arch, options) : null;
  if (!expected) return [];
  const isHead = (k: string) => k.startsWith(`${headPath}.`);
  const problems: string[] = [];
  let elements = 0;
  for (const [key, shape] of expected) {
    const t = Object.hasOwn(sd, key) ? sd[key] : undefined;
    if (freshHead && isHead(key)) continue;
    elements += shape.reduce((a, d) => a * d, 1);
    if (!t) problems.push(`missing ${key}`);
    else if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i]))
      problems.push(`size mismatch for ${key}: checkpoint [${t.shape}], model [${shape}]`);
  }
  for (const key of Object.keys(sd)) if (!expected.has(key)) problems.push(`unexpected ${key}`);
  // every weight taken from the file needs at least a byte of it (views of one storage could otherwise declare any size)
  const fileBytes = statSync(path).size;
  if (!problems.length && elements > fileBytes)
    problems.push(`the weights it must supply have ${elements} elements, more than the file's ${fileBytes} bytes could hold`);
  return problems;
}

/**
 * What keeps a text checkpoint (keys already in the model's layout) from
 * loading into a model with the native sizes `sizes`, found before the model
 * is built: a word-embedding matrix of another shape, or an encoder larger
 * than the file could hold (a small file whose config declares a huge model).
 */
export function textCheckpointProblems(path: string, arch: string, sizes: Record<string, unknown>, sd: StateDict): string[] {
  const n = (k: string) => sizes[k] as number;
  const [vocab, hidden, layers, intermediate, positions] = [
    n('vocabSize'),
    n('hiddenSize'),
    n('numHiddenLayers'),
    n('intermediateSize'),
    n('maxPositionEmbeddings'),
  ];
  const key = `${arch}.embeddings.word_embeddings.weight`;
  const words = Object.hasOwn(sd, key) ? sd[key] : undefined;
  if (words && (words.shape.length !== 2 || words.shape[0] !== vocab || words.shape[1] !== hidden))
    return [`size mismatch for ${key}: checkpoint [${words.shape}], model [${vocab},${hidden}]`];
  // the encoder's weights must all come from the file, at least a byte each
  const elements = (vocab + positions) * hidden + layers * (4 * hidden * hidden + 2 * hidden * intermediate);
  const fileBytes = statSync(path).size;
  if (elements > fileBytes) return [`the encoder's weights have ${elements} elements, more than the file's ${fileBytes} bytes could hold`];
  return [];
}
