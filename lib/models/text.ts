// Hugging Face text encoders with sequence-classification heads, configured
// from a Hugging Face config.json: BERT, RoBERTa, DistilBERT. Parameter names
// are Hugging Face's, so model.safetensors / pytorch_model.bin load unchanged.
import { native } from '../native/loader.js';
import { ArgumentError, ConfigError } from '../errors.js';
import { Tensor } from '../tensor/tensor.js';
import { Architecture, type ArchitectureSpec, type Block } from './architecture.js';

/** A Hugging Face config.json, as parsed JSON (snake_case keys). */
export type HfConfig = Record<string, unknown>;
export type TextArch = 'bert' | 'roberta' | 'distilbert';

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

/** The native options for an architecture from its Hugging Face config. */
export function nativeOptions(arch: TextArch, config: HfConfig, numClasses: number): Record<string, unknown> {
  if (arch === 'distilbert') {
    checkActivation(config, 'activation');
    if (config.sinusoidal_pos_embds) throw new TypeError('config.json: sinusoidal_pos_embds is not supported');
    return {
      vocabSize: num(config, 'vocab_size'),
      hiddenSize: num(config, 'dim', 768),
      numHiddenLayers: num(config, 'n_layers', 6),
      numAttentionHeads: num(config, 'n_heads', 12),
      intermediateSize: num(config, 'hidden_dim', 3072),
      maxPositionEmbeddings: num(config, 'max_position_embeddings', 512),
      padTokenId: num(config, 'pad_token_id', 0),
      hiddenDropoutProb: num(config, 'dropout', 0.1),
      attentionProbsDropoutProb: num(config, 'attention_dropout', 0.1),
      classifierDropout: num(config, 'seq_classif_dropout', 0.2),
      layerNormEps: 1e-12,
      numClasses,
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
    numClasses,
  };
}

function blocks(arch: TextArch, layers: number): { blocks: Block[]; head: string } {
  const base = arch === 'distilbert' ? 'distilbert' : arch;
  const layerPath = arch === 'distilbert' ? 'distilbert.transformer.layer' : `${base}.encoder.layer`;
  const out: Block[] = [
    { name: 'embeddings', paths: [`${base}.embeddings`] },
    ...Array.from({ length: layers }, (_, i) => ({ name: `layer${i}`, paths: [`${layerPath}.${i}`] })),
  ];
  if (arch === 'bert') out.push({ name: 'pooler', paths: ['bert.pooler'] });
  out.push({ name: 'head', paths: arch === 'distilbert' ? ['pre_classifier', 'classifier'] : ['classifier'] });
  return { blocks: out, head: TEXT_HEAD_PATHS[arch] };
}

/** The Linear head of each text architecture. */
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

  static wrapText(handle: Architecture['handle'], arch: TextArch, spec: ArchitectureSpec): TextModel {
    const m = Architecture.wrap(handle, arch, spec) as TextModel;
    Object.setPrototypeOf(m, TextModel.prototype);
    const o = spec.options as Record<string, number>;
    // RoBERTa's positions start after padding_idx (fairseq), so two rows of 514 are never used
    const maxLength = arch === 'roberta' ? o.maxPositionEmbeddings - (o.padTokenId + 1) : o.maxPositionEmbeddings;
    Object.defineProperty(m, 'limits', {
      value: { vocabSize: o.vocabSize, maxLength, maxPositions: o.maxPositionEmbeddings, typeVocabSize: o.typeVocabSize },
      enumerable: false,
    });
    return m;
  }

  /** Throws an ArgumentError when inputIds (or tokenTypeIds) do not fit the model. */
  checkInputs(inputs: Tensor[]): void {
    const fn = `${this.arch}.forward`;
    const [ids, , types] = inputs;
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

/**
 * Builds a text classifier from a Hugging Face config. forward(inputIds,
 * attentionMask?, tokenTypeIds?) takes int64 [batch, sequence] tensors and
 * gives logits [batch, numClasses].
 */
export function textModel(arch: TextArch, config: HfConfig, options: { numClasses?: number } = {}): TextModel {
  if (!config || typeof config !== 'object') throw new TypeError(`${arch}: config must be a parsed config.json object`);
  const numClasses = options.numClasses ?? labelCount(config);
  if (!Number.isInteger(numClasses) || numClasses < 1) throw new TypeError(`${arch}: numClasses must be a positive integer, got ${numClasses}`);
  const opts = nativeOptions(arch, config, numClasses);
  const spec = blocks(arch, opts.numHiddenLayers as number);
  // forward(inputIds, attentionMask?, tokenTypeIds?); DistilBERT has no token types
  const inputNames = arch === 'distilbert' ? ['inputIds', 'attentionMask'] : ['inputIds', 'attentionMask', 'tokenTypeIds'];
  return TextModel.wrapText(native.createModule(KINDS[arch], opts), arch, { kind: KINDS[arch], options: opts, ...spec, inputNames });
}

export const bert = (config: HfConfig, options?: { numClasses?: number }) => textModel('bert', config, options);
export const roberta = (config: HfConfig, options?: { numClasses?: number }) => textModel('roberta', config, options);
export const distilbert = (config: HfConfig, options?: { numClasses?: number }) => textModel('distilbert', config, options);

/**
 * Rewrites Hugging Face checkpoint keys to this model's layout: a bare
 * encoder's keys ("embeddings.*", saved from BertModel) get the model prefix;
 * buffers that older transformers saved (position_ids) and pretraining heads
 * (cls.*, lm_head.*, vocab_*) are dropped.
 */
export function normaliseTextKeys<T>(arch: TextArch, sd: Record<string, T>): Record<string, T> {
  const prefix = `${arch}.`;
  const bare = !Object.keys(sd).some((k) => k.startsWith(prefix));
  const out: Record<string, T> = {};
  for (const [k, v] of Object.entries(sd)) {
    if (/embeddings\.(position_ids|token_type_ids)$/.test(k)) continue;
    if (/^(cls\.|lm_head\.|vocab_transform\.|vocab_layer_norm\.|vocab_projector\.)/.test(k)) continue;
    const head = /^(classifier|pre_classifier)\./.test(k);
    out[bare && !head ? prefix + k : k] = v;
  }
  return out;
}
