// Hugging Face text encoders configured from a Hugging Face config.json: BERT,
// RoBERTa, DistilBERT, each with a sequence-classification, token-
// classification or masked-LM head (the `task`). Parameter names are Hugging
// Face's, so model.safetensors / pytorch_model.bin load unchanged.
import { native } from '../native/loader.js';
import { ArgumentError, ConfigError } from '../errors.js';
import { Tensor } from '../tensor/tensor.js';
import { Architecture, type ArchitectureSpec, type Block } from './architecture.js';

/** A Hugging Face config.json, as parsed JSON (snake_case keys). */
export type HfConfig = Record<string, unknown>;
export type TextArch = 'bert' | 'roberta' | 'distilbert';
/**
 * What the head on the encoder does: one label per sequence, one label per
 * token, or the masked-LM vocabulary logits; 'featureExtraction' is the
 * encoder with no head (Hugging Face's BertModel without its pooler), whose
 * forward gives the last hidden state for modules put on top (a BiLSTM, a CRF).
 */
export type TextTask = 'sequenceClassification' | 'tokenClassification' | 'maskedLM' | 'featureExtraction';
/** The tasks with a trainable head (what recipes and config.json's architectures name). */
export const TEXT_TASKS: readonly TextTask[] = ['sequenceClassification', 'tokenClassification', 'maskedLM'];
const ALL_TEXT_TASKS: readonly TextTask[] = [...TEXT_TASKS, 'featureExtraction'];

/** Hugging Face's class-name stem of each architecture ("Bert" in BertForMaskedLM). */
export const TEXT_FAMILIES: Record<TextArch, string> = { bert: 'Bert', roberta: 'Roberta', distilbert: 'DistilBert' };
const TASK_SUFFIXES: Record<TextTask, string> = {
  sequenceClassification: 'ForSequenceClassification',
  tokenClassification: 'ForTokenClassification',
  maskedLM: 'ForMaskedLM',
  featureExtraction: 'Model',
};

/** The Hugging Face class of an architecture with a task: ('bert', 'maskedLM') -> 'BertForMaskedLM'. */
export function hfClassName(arch: TextArch, task: TextTask): string {
  return TEXT_FAMILIES[arch] + TASK_SUFFIXES[task];
}

/**
 * What a config.json `architectures` entry names: the architecture and task
 * finetorch builds for it, or null when finetorch has no such class. A bare
 * encoder (BertModel) gets a sequence-classification head, and the
 * pretraining class (BertForPreTraining: MLM + next-sentence heads) the masked-LM head.
 */
export function parseHfClassName(name: string): { arch: TextArch; task: TextTask } | null {
  const m = /^(Bert|Roberta|DistilBert)(Model|ForPreTraining|ForMaskedLM|ForSequenceClassification|ForTokenClassification)$/.exec(name);
  if (!m) return null;
  const arch = (Object.keys(TEXT_FAMILIES) as TextArch[]).find((a) => TEXT_FAMILIES[a] === m[1])!;
  const task: TextTask =
    m[2] === 'ForMaskedLM' || m[2] === 'ForPreTraining' ? 'maskedLM' : m[2] === 'ForTokenClassification' ? 'tokenClassification' : 'sequenceClassification';
  return { arch, task };
}

/** Throws an ArgumentError unless `task` is one of TEXT_TASKS. */
export function checkTask(fn: string, task: unknown): TextTask {
  if (typeof task !== 'string' || !(ALL_TEXT_TASKS as readonly string[]).includes(task))
    throw new ArgumentError(fn, `task must be one of ${ALL_TEXT_TASKS.map((t) => `'${t}'`).join(', ')}, got ${JSON.stringify(task)}`, 'task');
  return task as TextTask;
}

function num(config: HfConfig, key: string, dflt?: number): number {
  const v = config[key] ?? dflt;
  if (typeof v !== 'number' || !Number.isFinite(v)) throw new TypeError(`config.json: "${key}" must be a number, got ${JSON.stringify(config[key])}`);
  return v;
}

/** The number of labels a config declares (num_labels, or id2label's size; 2 by default, as in transformers). */
export function labelCount(config: HfConfig): number {
  if (typeof config.num_labels === 'number') return config.num_labels;
  if (config.id2label && typeof config.id2label === 'object') return Object.keys(config.id2label).length;
  return 2;
}

function checkActivation(config: HfConfig, key: string): void {
  const act = config[key] ?? 'gelu';
  if (act !== 'gelu') throw new TypeError(`config.json: ${key} "${String(act)}" is not supported (finetorch implements "gelu")`);
}

/** The native options for an architecture from its Hugging Face config. numClasses is ignored for maskedLM. */
export function nativeOptions(arch: TextArch, config: HfConfig, numClasses: number, task: TextTask = 'sequenceClassification'): Record<string, unknown> {
  const head = task === 'maskedLM' || task === 'featureExtraction' ? { task } : { task, numClasses };
  const initializerRange = num(config, 'initializer_range', 0.02);
  if (arch === 'distilbert') {
    checkActivation(config, 'activation');
    if (config.sinusoidal_pos_embds) throw new TypeError('config.json: sinusoidal_pos_embds is not supported');
    const dropout = num(config, 'dropout', 0.1);
    return {
      vocabSize: num(config, 'vocab_size'),
      hiddenSize: num(config, 'dim', 768),
      numHiddenLayers: num(config, 'n_layers', 6),
      numAttentionHeads: num(config, 'n_heads', 12),
      intermediateSize: num(config, 'hidden_dim', 3072),
      maxPositionEmbeddings: num(config, 'max_position_embeddings', 512),
      padTokenId: num(config, 'pad_token_id', 0),
      hiddenDropoutProb: dropout,
      attentionProbsDropoutProb: num(config, 'attention_dropout', 0.1),
      // DistilBertForTokenClassification's dropout is config.dropout, the sequence classifier's seq_classif_dropout
      classifierDropout: task === 'tokenClassification' ? dropout : num(config, 'seq_classif_dropout', 0.2),
      layerNormEps: 1e-12,
      initializerRange,
      ...head,
    };
  }
  checkActivation(config, 'hidden_act');
  const hidden = num(config, 'hidden_dropout_prob', 0.1);
  return {
    vocabSize: num(config, 'vocab_size'),
    hiddenSize: num(config, 'hidden_size', 768),
    numHiddenLayers: num(config, 'num_hidden_layers', 12),
    numAttentionHeads: num(config, 'num_attention_heads', 12),
    intermediateSize: num(config, 'intermediate_size', 3072),
    maxPositionEmbeddings: num(config, 'max_position_embeddings', 512),
    typeVocabSize: num(config, 'type_vocab_size', 2),
    padTokenId: num(config, 'pad_token_id', arch === 'roberta' ? 1 : 0),
    layerNormEps: num(config, 'layer_norm_eps', 1e-12),
    hiddenDropoutProb: hidden,
    attentionProbsDropoutProb: num(config, 'attention_probs_dropout_prob', 0.1),
    classifierDropout: config.classifier_dropout == null ? hidden : num(config, 'classifier_dropout'),
    initializerRange,
    ...head,
  };
}

/** The modules of each task's head (what recipes.freeze and paramGroups call the 'head' block). */
export function textHeadBlock(arch: TextArch, task: TextTask): string[] {
  if (task === 'featureExtraction') return [];
  if (task === 'maskedLM') return arch === 'bert' ? ['cls'] : arch === 'roberta' ? ['lm_head'] : ['vocab_transform', 'vocab_layer_norm', 'vocab_projector'];
  if (task === 'tokenClassification') return ['classifier'];
  return arch === 'distilbert' ? ['pre_classifier', 'classifier'] : ['classifier'];
}

/**
 * The head's path (what swapHead replaces): the Linear classifier; for
 * maskedLM the prediction head group, which has no Linear of its own to swap
 * (its decoder is the word embeddings), so swapHead refuses it.
 */
export function textHeadPath(arch: TextArch, task: TextTask): string {
  if (task === 'featureExtraction') return '';
  if (task === 'maskedLM') return arch === 'bert' ? 'cls' : arch === 'roberta' ? 'lm_head' : 'vocab_projector';
  if (task === 'tokenClassification') return 'classifier';
  return TEXT_HEAD_PATHS[arch];
}

/** Modules outside the head that a checkpoint for another task may lack: BERT's pooler (only BertForSequenceClassification has one). */
export function textOptionalPaths(arch: TextArch, task: TextTask): string[] {
  return arch === 'bert' && task === 'sequenceClassification' ? ['bert.pooler'] : [];
}

function blocks(arch: TextArch, layers: number, task: TextTask): { blocks: Block[]; head: string } {
  const base = arch === 'distilbert' ? 'distilbert' : arch;
  const layerPath = arch === 'distilbert' ? 'distilbert.transformer.layer' : `${base}.encoder.layer`;
  const out: Block[] = [
    { name: 'embeddings', paths: [`${base}.embeddings`] },
    ...Array.from({ length: layers }, (_, i) => ({ name: `layer${i}`, paths: [`${layerPath}.${i}`] })),
  ];
  if (arch === 'bert' && task === 'sequenceClassification') out.push({ name: 'pooler', paths: ['bert.pooler'] });
  out.push({ name: 'head', paths: textHeadBlock(arch, task) });
  return { blocks: out, head: textHeadPath(arch, task) };
}

/** The Linear head of each text architecture's sequence classifier. */
export const TEXT_HEAD_PATHS: Record<TextArch, string> = { bert: 'classifier', roberta: 'classifier.out_proj', distilbert: 'classifier' };

const KINDS: Record<TextArch, 'Bert' | 'Roberta' | 'DistilBert'> = { bert: 'Bert', roberta: 'Roberta', distilbert: 'DistilBert' };

/** What a text model's inputs must fit: ids below vocabSize, sequences within its positions. */
interface InputLimits {
  vocabSize: number;
  maxLength: number;
  maxPositions: number;
  typeVocabSize?: number;
}

/**
 * A text classifier. Its forward checks the inputs first (one min/max per
 * batch), so a token id the embedding has no row for or a sequence longer
 * than the position table is an error naming both numbers instead of
 * libtorch's "index out of range in self".
 */
export class TextModel extends Architecture {
  private limits!: InputLimits;
  /** What its head does: 'sequenceClassification' ([batch, numClasses]), 'tokenClassification' ([batch, sequence, numClasses]) or 'maskedLM' ([batch, sequence, vocab]). */
  readonly task!: TextTask;
  /** The Hugging Face config.json it was built from (models.savePretrained writes it back). */
  readonly hfConfig!: HfConfig;

  static wrapText(handle: Architecture['handle'], arch: TextArch, spec: ArchitectureSpec, hfConfig: HfConfig = {}): TextModel {
    const m = Architecture.wrap(handle, arch, spec) as TextModel;
    Object.setPrototypeOf(m, TextModel.prototype);
    const task = (spec.options.task as TextTask | undefined) ?? 'sequenceClassification';
    Object.defineProperty(m, 'task', { value: task, enumerable: true });
    Object.defineProperty(m, 'hfConfig', { value: structuredClone(hfConfig), enumerable: false });
    const o = spec.options as Record<string, number>;
    // RoBERTa's positions start after padding_idx (fairseq), so two rows of 514 are never used
    const maxLength = arch === 'roberta' ? o.maxPositionEmbeddings - (o.padTokenId + 1) : o.maxPositionEmbeddings;
    Object.defineProperty(m, 'limits', {
      value: { vocabSize: o.vocabSize, maxLength, maxPositions: o.maxPositionEmbeddings, typeVocabSize: o.typeVocabSize },
      enumerable: false,
    });
    return m;
  }

  /** Throws an ArgumentError when inputIds (or tokenTypeIds, maskedPositions) do not fit the model. */
  checkInputs(inputs: Tensor[]): void {
    const fn = `${this.arch}.forward`;
    const [ids] = inputs;
    const types = this.arch === 'distilbert' ? undefined : inputs[2];
    const positions = inputs[this.arch === 'distilbert' ? 2 : 3];
    if (!(ids instanceof Tensor)) return; // the native forward says what is missing
    if (ids.dtype !== 'int64' && ids.dtype !== 'int32') throw new ArgumentError(fn, `inputIds must be integer token ids (int64), got ${ids.dtype}`, 'inputIds');
    const shape = ids.shape;
    if (shape.length !== 2) return; // the native forward names the shape it expects
    const { vocabSize, maxLength, maxPositions, typeVocabSize } = this.limits;
    if (shape[1] > maxLength)
      throw new ArgumentError(
        fn,
        `a sequence of ${shape[1]} tokens is longer than the model's ${maxLength} positions (config max_position_embeddings ${maxPositions}); truncate to ${maxLength} (tokenizer maxLength)`,
        'inputIds',
      );
    if (!ids.numel()) return;
    const [lo, hi] = minMax(ids);
    if (lo < 0 || hi >= vocabSize)
      throw new ArgumentError(
        fn,
        `token id ${lo < 0 ? lo : hi} is out of range: the model's vocab_size is ${vocabSize} (ids 0..${vocabSize - 1}); the tokenizer does not match the model's config`,
        'inputIds',
      );
    if (types instanceof Tensor && typeVocabSize !== undefined && types.numel()) {
      const [tlo, thi] = minMax(types);
      if (tlo < 0 || thi >= typeVocabSize)
        throw new ArgumentError(fn, `token type id ${tlo < 0 ? tlo : thi} is out of range: the model's type_vocab_size is ${typeVocabSize}`, 'tokenTypeIds');
    }
    if (positions instanceof Tensor) {
      if (this.task !== 'maskedLM')
        throw new ArgumentError(fn, `maskedPositions is for the masked-LM head; this model's task is ${this.task}`, 'maskedPositions');
      if (positions.dtype !== 'int64' || positions.ndim !== 1)
        throw new ArgumentError(
          fn,
          `maskedPositions must be int64 [N] (flat indices into batch * sequence), got ${positions.dtype} [${positions.shape.join(', ')}]`,
          'maskedPositions',
        );
      if (!positions.numel()) return;
      const [plo, phi] = minMax(positions);
      const count = shape[0] * shape[1];
      if (plo < 0 || phi >= count)
        throw new ArgumentError(
          fn,
          `masked position ${plo < 0 ? plo : phi} is out of range: inputIds has ${count} positions (batch * sequence)`,
          'maskedPositions',
        );
    }
  }

  forward(...inputs: Tensor[]): Tensor {
    this.checkInputs(inputs);
    return super.forward(...inputs);
  }

  async forwardAsync(...inputs: Tensor[]): Promise<Tensor> {
    this.checkInputs(inputs);
    return super.forwardAsync(...inputs);
  }
}

function minMax(t: Tensor): [number, number] {
  const lo = t.min();
  const hi = t.max();
  try {
    return [Number(lo.item()), Number(hi.item())];
  } finally {
    lo.dispose();
    hi.dispose();
  }
}

/**
 * Checks up front that a tokenizer fits a model config: every id the
 * tokenizer can produce needs a row in the embedding (config vocab_size).
 * Otherwise training would fail at the first forward with libtorch's "index
 * out of range in self". `field` names the setting in the error (default
 * 'config.json').
 */
export function checkVocabulary(tokenizer: { vocabSize: number }, config: HfConfig, options: { field?: string } = {}): void {
  const field = options.field ?? 'config.json';
  if (!config || typeof config !== 'object') throw new ArgumentError('checkVocabulary', 'config must be a parsed config.json object');
  if (!tokenizer || typeof tokenizer.vocabSize !== 'number')
    throw new ArgumentError('checkVocabulary', 'tokenizer must have a vocabSize (a WordPieceTokenizer or ByteLevelBPETokenizer)');
  const vocabSize = config.vocab_size;
  if (typeof vocabSize !== 'number' || !Number.isInteger(vocabSize) || vocabSize < 1)
    throw new ConfigError(field, `vocab_size must be a positive integer, got ${JSON.stringify(vocabSize)}`);
  if (tokenizer.vocabSize > vocabSize)
    throw new ConfigError(
      field,
      `vocab_size is ${vocabSize} but the tokenizer has ${tokenizer.vocabSize} token ids (0..${tokenizer.vocabSize - 1}): ids from ${vocabSize} on have no embedding row. Use the tokenizer that came with the model, or a config with vocab_size >= ${tokenizer.vocabSize}`,
    );
}

/** What the text builders take besides the config. */
export interface TextModelOptions {
  /** The head: 'sequenceClassification' (default), 'tokenClassification', 'maskedLM', or 'featureExtraction' (none: forward gives the last hidden state). */
  task?: TextTask;
  /** Labels of a classifier (default: the config's num_labels / id2label, else 2); ignored for maskedLM. */
  numClasses?: number;
}

/**
 * Builds a text model from a Hugging Face config. forward(inputIds,
 * attentionMask?, tokenTypeIds?) takes int64 [batch, sequence] tensors and
 * gives logits: [batch, numClasses] for sequenceClassification,
 * [batch, sequence, numClasses] for tokenClassification and
 * [batch, sequence, vocab_size] for maskedLM. A maskedLM model takes one more,
 * maskedPositions (int64 [N], flat indices into batch * sequence, e.g. where
 * the labels are not -100): the encoder runs on every token, the head only at
 * those positions, and the logits are [N, vocab_size] (DistilBERT:
 * forward(inputIds, attentionMask, maskedPositions)).
 */
export function textModel(arch: TextArch, config: HfConfig, options: TextModelOptions = {}): TextModel {
  if (!config || typeof config !== 'object') throw new TypeError(`${arch}: config must be a parsed config.json object`);
  const task = checkTask(arch, options.task ?? 'sequenceClassification');
  const numClasses = options.numClasses ?? labelCount(config);
  if (task !== 'maskedLM' && task !== 'featureExtraction' && (!Number.isInteger(numClasses) || numClasses < 1))
    throw new TypeError(`${arch}: numClasses must be a positive integer, got ${numClasses}`);
  const opts = nativeOptions(arch, config, numClasses, task);
  const spec = blocks(arch, opts.numHiddenLayers as number, task);
  // forward(inputIds, attentionMask?, tokenTypeIds?, maskedPositions?); DistilBERT has no token types
  const inputNames = ['inputIds', 'attentionMask', ...(arch === 'distilbert' ? [] : ['tokenTypeIds']), ...(task === 'maskedLM' ? ['maskedPositions'] : [])];
  return TextModel.wrapText(native.createModule(KINDS[arch], opts), arch, { kind: KINDS[arch], options: opts, ...spec, inputNames }, config);
}

export const bert = (config: HfConfig, options?: TextModelOptions) => textModel('bert', config, options);
export const roberta = (config: HfConfig, options?: TextModelOptions) => textModel('roberta', config, options);
export const distilbert = (config: HfConfig, options?: TextModelOptions) => textModel('distilbert', config, options);

/** Keys of one task's head (and BERT's pooler) that a checkpoint for another task carries. */
const HEAD_KEY = /^(cls|lm_head|vocab_transform|vocab_layer_norm|vocab_projector|classifier|pre_classifier)\./;

/**
 * Rewrites Hugging Face checkpoint keys to this model's layout: a bare
 * encoder's keys ("embeddings.*", saved from BertModel) get the model prefix;
 * buffers that older transformers saved (position_ids) and the masked-LM
 * decoders tied to the word embeddings (cls.predictions.decoder.*,
 * lm_head.decoder.*, vocab_projector.weight: the same tensors as
 * word_embeddings.weight and the head's bias) are dropped. With `modelKeys`
 * (the keys of the model being loaded), heads of other tasks (a masked-LM
 * head into a classifier, a classifier into a masked-LM model, BERT's pooler
 * or next-sentence head) are dropped too, as transformers ignores them.
 */
export function normaliseTextKeys<T>(arch: TextArch, sd: Record<string, T>, modelKeys?: ReadonlySet<string>): Record<string, T> {
  const prefix = `${arch}.`;
  const bare = !Object.keys(sd).some((k) => k.startsWith(prefix));
  const out: Record<string, T> = {};
  for (const [k, v] of Object.entries(sd)) {
    if (/embeddings\.(position_ids|token_type_ids)$/.test(k)) continue;
    if (/^(cls\.predictions\.decoder\.|lm_head\.decoder\.)/.test(k) || k === 'vocab_projector.weight') continue;
    const head = HEAD_KEY.test(k);
    const key = bare && !head ? prefix + k : k;
    if (modelKeys && !modelKeys.has(key) && (head || key.startsWith(`${prefix}pooler.`))) continue;
    if (!modelKeys && head && !/^(classifier|pre_classifier)\./.test(k)) continue;
    out[key] = v;
  }
  return out;
}
