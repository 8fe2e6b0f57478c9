// Sequence taggers (named-entity / clause tagging): a BiLSTM-CRF trained from
// scratch and a pretrained text encoder (BERT, RoBERTa, DistilBERT) with a
// linear, CRF or BiLSTM-CRF head. Children carry the names a PyTorch user
// would give them (embedding, lstm, dropout, classifier, crf; the encoder
// under Hugging Face's bert.* / roberta.* / distilbert.*), so state dicts move
// to and from a PyTorch model of the same layout, and a Hugging Face
// *ForTokenClassification checkpoint's encoder loads into bertTagger.
//
// The BiLSTM gives what PyTorch's pack_padded_sequence gives: each sequence
// is read from its first to its last real position in both directions, so
// padding (right-aligned, as masks are) never changes a sequence's output.
import { existsSync } from 'node:fs';
import { Tensor } from '../tensor/tensor.js';
import { torch } from '../tensor/index.js';
import { Module } from '../nn/module.js';
import { Dropout, Embedding, Linear, LSTM } from '../nn/layers.js';
import { CRF } from '../nn/crf.js';
import { packFirstPieces } from '../data/token-classification.js';
import { ArgumentError } from '../errors.js';
import { focalLoss } from '../losses/index.js';
import { crfLoss, type CrfLossOptions } from '../losses/crf.js';
import { crossEntropy } from '../nn/functional.js';
import { load as loadStateDict } from '../io/index.js';
import { Architecture, type Block } from './architecture.js';
import { TextModel, textModel, type HfConfig, type TextArch } from './text.js';

/** The tagger architectures models.save records and models.load rebuilds. */
export const TAGGER_ARCHS = ['bilstmCrf', 'bertTagger'] as const;
export type TaggerArch = (typeof TAGGER_ARCHS)[number];
export const isTaggerArch = (arch: string): arch is TaggerArch => (TAGGER_ARCHS as readonly string[]).includes(arch);

/** What a tagger's head is: a Linear per token (argmax), a CRF over the Linear's emissions, or a BiLSTM under both. */
export type TaggerHead = 'linear' | 'crf' | 'bilstm-crf';
const HEADS: readonly TaggerHead[] = ['linear', 'crf', 'bilstm-crf'];

/** The loss a tagger trains on: the CRF's NLL (crf heads) or the token cross-entropy / focal loss (linear head). */
export interface TaggerLossOptions extends CrfLossOptions {
  /** Linear head only: focal loss instead of cross-entropy (gamma, per-tag alpha). */
  focalLoss?: { gamma?: number; alpha?: number | number[] };
}

function posInt(fn: string, name: string, v: unknown): number {
  if (!Number.isInteger(v) || (v as number) < 1) throw new ArgumentError(fn, `${name} must be a positive integer, got ${JSON.stringify(v)}`, name);
  return v as number;
}
function probability(fn: string, name: string, v: unknown): number {
  if (typeof v !== 'number' || !(v >= 0 && v < 1)) throw new ArgumentError(fn, `${name} must be a probability in [0, 1), got ${JSON.stringify(v)}`, name);
  return v;
}

/** A bool [B, T] mask (from bool, uint8 or int64 0/1). */
function asBool(mask: Tensor): Tensor {
  return mask.dtype === 'bool' ? mask : mask.ne(0);
}

/**
 * Runs a bidirectional LSTM (batch first) on x [B, T, D] as PyTorch does on
 * a packed sequence: lengths come from `mask` (bool [B, T], a left-aligned
 * prefix per row). Positions past a sequence's end come out as zeros (as
 * pad_packed_sequence gives them).
 *
 * One layer: one LSTM call on 2B rows: the rows as they are (their forward
 * direction is right, padding comes after it) and the rows rotated right so
 * their padding comes first (the reverse direction then starts at the last
 * real position); the reverse half is rotated back. More layers: the second
 * layer reads the first's reverse half, so each group of equal length runs
 * alone, cut to its length.
 */
export function packedBiLstm(lstm: LSTM, x: Tensor, mask: Tensor, numLayers: number): Tensor {
  const [B, T, D] = x.shape;
  return torch.tidy(() => {
    const on = asBool(mask);
    const lengths = on.sum(1);
    if (!B || !T || Number(lengths.min().item()) === T) return lstm.forward(x);
    const H = Object.fromEntries(lstm.namedParameters()).weight_hh_l0.shape[1];
    if (numLayers === 1) {
      // rotate each row right by its padding (T - length): rotated[t] = row[(t - shift) mod T]
      const steps = torch.arange(0, T, 1, { device: x.device }).unsqueeze(0);
      const shift = lengths.neg().add(T).unsqueeze(1);
      const toRight = steps.sub(shift).add(T).remainder(T);
      const back = steps.add(shift).remainder(T);
      const rotated = x.gather(1, toRight.unsqueeze(2).expand([B, T, D]));
      const both = lstm.forward(torch.cat([x, rotated], 0));
      const forwardHalf = both.narrow(0, 0, B).narrow(2, 0, H);
      const reverseHalf = both
        .narrow(0, B, B)
        .narrow(2, H, H)
        .gather(1, back.unsqueeze(2).expand([B, T, H]));
      return torch.cat([forwardHalf, reverseHalf], 2).mul(on.unsqueeze(2).to(x.dtype));
    }
    const lens = Array.from(lengths.dataSync() as ArrayLike<number | bigint>, Number);
    let y = torch.zeros([B, T, 2 * H], { dtype: x.dtype, device: x.device });
    for (const L of new Set(lens)) {
      if (L === 0) continue;
      const rows = lens.flatMap((l, b) => (l === L ? [b] : []));
      const index = torch.tensor(rows, { dtype: 'int64', device: x.device });
      let out = lstm.forward(x.indexSelect(0, index).narrow(1, 0, L));
      if (L < T) out = torch.cat([out, torch.zeros([rows.length, T - L, 2 * H], { dtype: x.dtype, device: x.device })], 1);
      // the group's rows replaced, out of place (differentiable)
      y = y.scatter(0, index.view([-1, 1, 1]).expand([rows.length, T, 2 * H]), out);
    }
    return y;
  });
}

/** Checks a [B, T] mask is a left-aligned prefix in each row (right padding). */
function checkPrefix(fn: string, name: string, mask: Tensor): void {
  if (mask.shape[1] < 2) return;
  const bad = torch.tidy(() => {
    const on = asBool(mask);
    // a position on after one that is off
    return Boolean(
      on
        .narrow(1, 1, on.shape[1] - 1)
        .logicalAnd(on.narrow(1, 0, on.shape[1] - 1).logicalNot())
        .any()
        .item(),
    );
  });
  if (bad) throw new ArgumentError(fn, `${name} must be a left-aligned prefix in every row (padding on the right), as packed sequences are`, name);
}

/**
 * What taggers share: blocks and head for finetune/recipes (the encoder or
 * embedding first, the head block last: lstm (when in the head), classifier,
 * crf), decode, loss and swapHead (a new tag count replaces the classifier
 * and the CRF).
 */
export abstract class Tagger extends Architecture {
  /** forward's named inputs (fit/evaluate pass a batch's inputs in this order). */
  abstract override readonly inputNames: readonly string[];
  /** The CRF on the emissions, when the head has one. */
  crf?: CRF;
  classifier!: Linear;

  constructor(arch: TaggerArch, options: Record<string, unknown>, blocks: Block[]) {
    super();
    Object.defineProperty(this, 'arch', { value: arch, enumerable: true });
    Object.defineProperty(this, 'spec', { value: { kind: 'Container', options, blocks, head: 'classifier' }, enumerable: false });
  }

  /** How many tags the head scores (after swapHead, the new count). */
  get numTags(): number {
    return this.classifier.parameters()[0].shape[0];
  }

  /** The emissions [B, W, K] and the mask [B, W] of the positions that are sequence (words, or pieces without firstPieceIndex). */
  abstract emissionsAndMask(...inputs: Tensor[]): { emissions: Tensor; mask: Tensor };

  forward(...inputs: Tensor[]): Tensor {
    return torch.tidy(() => this.emissionsAndMask(...inputs).emissions);
  }

  /**
   * The best tag path of each sequence, trimmed to its length: the CRF's
   * Viterbi paths, or each position's argmax for a linear head. Takes the
   * forward's inputs; runs without gradients (call model.eval() first, as in PyTorch).
   */
  decode(...inputs: Tensor[]): number[][] {
    return torch.noGrad(() =>
      torch.tidy(() => {
        const { emissions, mask } = this.emissionsAndMask(...inputs);
        if (this.crf) return this.crf.decode(emissions, mask);
        checkPrefix(`${this.arch}.decode`, 'the mask', mask);
        const best = emissions.argmax(2);
        const lengths = Array.from(mask.sum(1).dataSync() as ArrayLike<number | bigint>, Number);
        const flat = Array.from(best.dataSync() as ArrayLike<number | bigint>, Number);
        const T = best.shape[1];
        return lengths.map((L, b) => flat.slice(b * T, b * T + L));
      }),
    );
  }

  /**
   * The training loss of emissions (from forward) against tags [B, W] with
   * -100 where there is no word: the CRF NLL (with options.focal, plus a
   * focal token term) for a CRF head; cross-entropy (or options.focalLoss)
   * over the tagged positions for a linear head.
   */
  loss(emissions: Tensor, tags: Tensor, options: TaggerLossOptions = {}): Tensor {
    if (this.crf) {
      const { focalLoss: _f, ...crfOptions } = options;
      return crfLoss(this.crf, emissions, tags, undefined, crfOptions);
    }
    const ignoreIndex = options.ignoreIndex ?? -100;
    if (options.focalLoss) return focalLoss(emissions, tags, { ...options.focalLoss, ignoreIndex });
    return torch.tidy(() => crossEntropy(emissions.reshape([-1, emissions.shape[2]]), tags.reshape([-1]), { ignoreIndex }));
  }

  /** Replaces the classifier (and the CRF) with fresh ones for `numTags` tags, on the same device and dtype; returns the classifier. */
  swapHead(numTags: number): Module {
    posInt(`${this.arch}.swapHead`, 'numTags', numTags);
    const old = this.classifier.parameters()[0];
    const fresh = new Linear(old.shape[1], numTags).to(old.device, old.dtype);
    this.replaceChild('classifier', fresh);
    this.classifier = fresh;
    if (this.crf) {
      const crf = new CRF(numTags, { batchFirst: true }).to(old.device, old.dtype);
      this.replaceChild('crf', crf);
      this.crf = crf;
    }
    return fresh;
  }

  /** The options to rebuild it (models.save writes them), with the current number of tags. */
  override archOptions(): Record<string, unknown> {
    return { ...super.archOptions(), numTags: this.numTags };
  }
}

export interface BiLstmCrfOptions {
  vocabSize: number;
  numTags: number;
  /** Word embedding size (default 100). */
  embeddingDim?: number;
  /** LSTM hidden size per direction (default 128; the classifier reads 2 * hiddenSize). */
  hiddenSize?: number;
  /** Stacked LSTM layers (default 1). */
  numLayers?: number;
  /** Dropout after the LSTM (and between LSTM layers), default 0.5. */
  dropout?: number;
  /** The padding token id: its embedding row stays zero, and with no mask given, mask = inputIds != paddingIdx (default 0). */
  paddingIdx?: number;
  /** 'crf' (default) or 'linear' (no CRF: per-token argmax). */
  head?: 'crf' | 'linear';
}

/**
 * BiLSTM-CRF (Huang et al. 2015, Lample et al. 2016) from scratch:
 * embedding -> bidirectional LSTM -> dropout -> classifier (Linear to the
 * tags) -> crf. forward(inputIds [B, T], mask? [B, T]) gives the emissions
 * [B, T, numTags]; decode gives each sequence's Viterbi path.
 */
export class BiLstmCrf extends Tagger {
  readonly inputNames = ['inputIds', 'mask'] as const;
  readonly embedding: Embedding;
  readonly lstm: LSTM;
  readonly dropout: Dropout;
  private readonly paddingIdx: number | undefined;
  private readonly numLayers: number;

  constructor(options: BiLstmCrfOptions) {
    const fn = 'models.bilstmCrf';
    if (!options || typeof options !== 'object') throw new ArgumentError(fn, 'options must be an object { vocabSize, numTags, ... }');
    const vocabSize = posInt(fn, 'vocabSize', options.vocabSize);
    const numTags = posInt(fn, 'numTags', options.numTags);
    const embeddingDim = posInt(fn, 'embeddingDim', options.embeddingDim ?? 100);
    const hiddenSize = posInt(fn, 'hiddenSize', options.hiddenSize ?? 128);
    const numLayers = posInt(fn, 'numLayers', options.numLayers ?? 1);
    const dropout = probability(fn, 'dropout', options.dropout ?? 0.5);
    const paddingIdx = options.paddingIdx === undefined ? 0 : options.paddingIdx;
    if (paddingIdx !== null && (!Number.isInteger(paddingIdx) || paddingIdx < 0 || paddingIdx >= vocabSize))
      throw new ArgumentError(fn, `paddingIdx must be a token id in 0..${vocabSize - 1}, got ${JSON.stringify(paddingIdx)}`, 'paddingIdx');
    const head = options.head ?? 'crf';
    if (head !== 'crf' && head !== 'linear') throw new ArgumentError(fn, `head must be 'crf' or 'linear', got ${JSON.stringify(head)}`, 'head');
    const saved = { vocabSize, numTags, embeddingDim, hiddenSize, numLayers, dropout, paddingIdx, head };
    super('bilstmCrf', saved, [
      { name: 'embedding', paths: ['embedding'] },
      { name: 'lstm', paths: ['lstm'] },
      { name: 'head', paths: head === 'crf' ? ['classifier', 'crf'] : ['classifier'] },
    ]);
    this.paddingIdx = paddingIdx ?? undefined;
    this.numLayers = numLayers;
    this.embedding = this.registerModule('embedding', new Embedding(vocabSize, embeddingDim, { paddingIdx: paddingIdx ?? undefined }));
    this.lstm = this.registerModule(
      'lstm',
      new LSTM(embeddingDim, hiddenSize, { numLayers, bidirectional: true, batchFirst: true, dropout: numLayers > 1 ? dropout : 0 }),
    );
    this.dropout = this.registerModule('dropout', new Dropout(dropout));
    this.classifier = this.registerModule('classifier', new Linear(2 * hiddenSize, numTags));
    if (head === 'crf') this.crf = this.registerModule('crf', new CRF(numTags, { batchFirst: true }));
  }

  emissionsAndMask(inputIds: Tensor, mask?: Tensor): { emissions: Tensor; mask: Tensor } {
    const fn = 'bilstmCrf.forward';
    if (!(inputIds instanceof Tensor) || inputIds.ndim !== 2 || inputIds.dtype !== 'int64')
      throw new ArgumentError(
        fn,
        `inputIds must be int64 [batch, sequence], got ${inputIds instanceof Tensor ? `${inputIds.dtype} [${inputIds.shape}]` : typeof inputIds}`,
        'inputIds',
      );
    if (mask !== undefined && (!(mask instanceof Tensor) || mask.ndim !== 2 || mask.shape[0] !== inputIds.shape[0] || mask.shape[1] !== inputIds.shape[1]))
      throw new ArgumentError(
        fn,
        `mask must be bool [${inputIds.shape}] like inputIds, got ${mask instanceof Tensor ? `[${mask.shape}]` : typeof mask}`,
        'mask',
      );
    const vocab = this.embedding.parameters()[0].shape[0];
    if (inputIds.numel()) {
      const [lo, hi] = torch.tidy(() => [Number(inputIds.min().item()), Number(inputIds.max().item())]);
      if (lo < 0 || hi >= vocab) throw new ArgumentError(fn, `token id ${lo < 0 ? lo : hi} is outside the vocabulary 0..${vocab - 1}`, 'inputIds');
    }
    const on =
      mask !== undefined
        ? asBool(mask)
        : this.paddingIdx === undefined
          ? torch.ones(inputIds.shape, { dtype: 'bool', device: inputIds.device })
          : inputIds.ne(this.paddingIdx);
    checkPrefix(fn, mask === undefined ? 'the mask (inputIds != paddingIdx)' : 'mask', on);
    const x = this.embedding.forward(inputIds);
    const h = this.dropout.forward(packedBiLstm(this.lstm, x, on, this.numLayers));
    return { emissions: this.classifier.forward(h), mask: on };
  }
}

export interface BertTaggerOptions {
  numTags: number;
  /** 'linear' (BertForTokenClassification's head), 'crf' or 'bilstm-crf' (default 'crf'). */
  head?: TaggerHead;
  /** The BiLSTM's hidden size per direction (bilstm-crf; default 256). */
  lstmHiddenSize?: number;
  /** Stacked BiLSTM layers (bilstm-crf; default 1). */
  lstmLayers?: number;
  /** Dropout on the encoder's output (and the BiLSTM's); default the config's classifier_dropout, else hidden_dropout_prob. */
  dropout?: number;
}

/**
 * A pretrained text encoder with a tagging head: encoder (bert.* as in
 * Hugging Face) -> dropout -> [BiLSTM (lstm) -> dropout] -> classifier ->
 * [crf]. forward(inputIds, attentionMask?, firstPieceIndex?): with
 * firstPieceIndex (int64 [B, W], each word's first piece, -1 past the last
 * word), the emissions [B, W, numTags] at each word's first piece, packed
 * left-aligned (data.packFirstPieces) so the BiLSTM and the CRF see word
 * sequences; without it, one emission per piece [B, S, numTags] (the mask
 * is then attentionMask).
 */
export class BertTagger extends Tagger {
  readonly inputNames = ['inputIds', 'attentionMask', 'firstPieceIndex'] as const;
  /** The encoder (a featureExtraction text model); its weights are this model's bert.* (roberta.*, distilbert.*). */
  declare readonly encoder: TextModel;
  readonly dropout: Dropout;
  readonly lstm?: LSTM;
  private readonly lstmLayers: number;

  constructor(encoder: TextModel, options: BertTaggerOptions) {
    const fn = 'models.bertTagger';
    if (!(encoder instanceof TextModel) || encoder.task !== 'featureExtraction')
      throw new ArgumentError(fn, 'encoder must be a featureExtraction text model', 'encoder');
    if (!options || typeof options !== 'object') throw new ArgumentError(fn, 'options must be an object { numTags, head, ... }');
    const numTags = posInt(fn, 'numTags', options.numTags);
    const head = options.head ?? 'crf';
    if (!HEADS.includes(head)) throw new ArgumentError(fn, `head must be one of ${HEADS.map((h) => `'${h}'`).join(', ')}, got ${JSON.stringify(head)}`, 'head');
    const arch = encoder.arch as TextArch;
    const config = encoder.hfConfig;
    const lstmHiddenSize = posInt(fn, 'lstmHiddenSize', options.lstmHiddenSize ?? 256);
    const lstmLayers = posInt(fn, 'lstmLayers', options.lstmLayers ?? 1);
    const configDropout = arch === 'distilbert' ? config.dropout : (config.classifier_dropout ?? config.hidden_dropout_prob);
    const dropout = probability(fn, 'dropout', options.dropout ?? (typeof configDropout === 'number' ? configDropout : 0.1));
    const layerBlocks = encoder.blockPaths().filter((b) => b.name !== 'head');
    const headPaths = [...(head === 'bilstm-crf' ? ['lstm'] : []), 'classifier', ...(head === 'linear' ? [] : ['crf'])];
    const saved = { encoderArch: arch, numTags, head, lstmHiddenSize, lstmLayers, dropout };
    super('bertTagger', saved, [...layerBlocks, { name: 'head', paths: headPaths }]);
    Object.defineProperty(this, 'encoder', { value: encoder, enumerable: false });
    this.lstmLayers = lstmLayers;
    // the encoder's own module tree under its Hugging Face prefix: this model's bert.* are the encoder's weights
    this.registerModule(arch, encoder.getSubmodule(arch));
    this.dropout = this.registerModule('dropout', new Dropout(dropout));
    const hidden = Number((encoder.archOptions() as { hiddenSize: number }).hiddenSize);
    if (head === 'bilstm-crf')
      this.lstm = this.registerModule(
        'lstm',
        new LSTM(hidden, lstmHiddenSize, { numLayers: lstmLayers, bidirectional: true, batchFirst: true, dropout: lstmLayers > 1 ? dropout : 0 }),
      );
    this.classifier = this.registerModule('classifier', new Linear(head === 'bilstm-crf' ? 2 * lstmHiddenSize : hidden, numTags));
    if (head !== 'linear') this.crf = this.registerModule('crf', new CRF(numTags, { batchFirst: true }));
  }

  /** The encoder's Hugging Face config.json (models.save records it). */
  get hfConfig(): HfConfig {
    return this.encoder.hfConfig;
  }

  emissionsAndMask(inputIds: Tensor, attentionMask?: Tensor, firstPieceIndex?: Tensor): { emissions: Tensor; mask: Tensor } {
    const fn = 'bertTagger.forward';
    if (!(inputIds instanceof Tensor) || inputIds.ndim !== 2)
      throw new ArgumentError(
        fn,
        `inputIds must be int64 [batch, sequence], got ${inputIds instanceof Tensor ? `[${inputIds.shape}]` : typeof inputIds}`,
        'inputIds',
      );
    const [B, S] = inputIds.shape;
    if (
      attentionMask !== undefined &&
      (!(attentionMask instanceof Tensor) || attentionMask.ndim !== 2 || attentionMask.shape[0] !== B || attentionMask.shape[1] !== S)
    )
      throw new ArgumentError(
        fn,
        `attentionMask must be [${B}, ${S}] like inputIds, got ${attentionMask instanceof Tensor ? `[${attentionMask.shape}]` : typeof attentionMask}`,
        'attentionMask',
      );
    if (
      firstPieceIndex !== undefined &&
      (!(firstPieceIndex instanceof Tensor) || firstPieceIndex.ndim !== 2 || firstPieceIndex.shape[0] !== B || firstPieceIndex.dtype !== 'int64')
    )
      throw new ArgumentError(
        fn,
        `firstPieceIndex must be int64 [${B}, words] (-1 past the last word), got ${firstPieceIndex instanceof Tensor ? `${firstPieceIndex.dtype} [${firstPieceIndex.shape}]` : typeof firstPieceIndex}`,
        'firstPieceIndex',
      );
    // the encoder's dropout follows this model's mode (its forward reads its own flag)
    if (this.encoder.training !== this.training) this.encoder.train(this.training);
    const mask = attentionMask ?? torch.ones([B, S], { dtype: 'int64', device: inputIds.device });
    const hidden = this.encoder.forward(inputIds, mask);
    let x: Tensor;
    let on: Tensor;
    if (firstPieceIndex !== undefined) {
      const packed = packFirstPieces(hidden, firstPieceIndex);
      x = packed.words;
      on = packed.mask;
    } else {
      x = hidden;
      on = asBool(mask);
    }
    x = this.dropout.forward(x);
    if (this.lstm) {
      checkPrefix(fn, firstPieceIndex !== undefined ? 'firstPieceIndex (its words)' : 'attentionMask', on);
      x = this.dropout.forward(packedBiLstm(this.lstm, x, on, this.lstmLayers));
    }
    return { emissions: this.classifier.forward(x), mask: on };
  }
}

/** models.bilstmCrf: a BiLSTM-CRF tagger from scratch (see BiLstmCrf). */
export function bilstmCrf(options: BiLstmCrfOptions): BiLstmCrf {
  return new BiLstmCrf(options);
}

/**
 * models.bertTagger(encoder, options): a tagger on a pretrained encoder.
 * `encoder` is a Hugging Face folder (its encoder weights load; a
 * *ForTokenClassification's classifier does not, a new head starts fresh),
 * a text model (its encoder weights are taken: a masked-LM model after
 * domain adaptation, a classifier), or a config.json object (fresh weights).
 */
export function bertTagger(encoder: string | TextModel | HfConfig, options: BertTaggerOptions): BertTagger {
  return new BertTagger(featureExtractor(encoder), options);
}

/** A featureExtraction text model from a folder, another text model's encoder, or a config. */
function featureExtractor(encoder: string | TextModel | HfConfig): TextModel {
  const fn = 'models.bertTagger';
  if (encoder instanceof TextModel) {
    if (encoder.task === 'featureExtraction') return encoder;
    const arch = encoder.arch as TextArch;
    const fresh = textModel(arch, encoder.hfConfig, { task: 'featureExtraction' });
    const own = new Set(Object.keys(fresh.stateDict()));
    const sd = Object.fromEntries(Object.entries(encoder.stateDict()).filter(([k]) => own.has(k)));
    fresh.loadStateDict(sd);
    return fresh;
  }
  if (typeof encoder === 'string') {
    if (!existsSync(encoder))
      throw new ArgumentError(fn, `${encoder} does not exist (give a Hugging Face model folder, a text model or a config object)`, 'encoder');
    // late import: index.ts imports this file
    return fromPretrainedEncoder(encoder);
  }
  if (encoder && typeof encoder === 'object' && !Array.isArray(encoder) && !(encoder instanceof Module)) {
    const arch = encoder.model_type;
    if (arch !== 'bert' && arch !== 'roberta' && arch !== 'distilbert')
      throw new ArgumentError(fn, `the config's model_type must be bert, roberta or distilbert, got ${JSON.stringify(arch)}`, 'encoder');
    return textModel(arch, encoder, { task: 'featureExtraction' });
  }
  throw new ArgumentError(fn, 'encoder must be a Hugging Face folder, a text model or a config.json object', 'encoder');
}

let fromPretrainedEncoder: (dir: string) => TextModel = () => {
  throw new Error('models.bertTagger: models/index.js not loaded');
};
/** Set by models/index.ts (which owns fromPretrained) to break the import cycle. */
export function setEncoderLoader(loader: (dir: string) => TextModel): void {
  fromPretrainedEncoder = loader;
}

/** The metadata models.save writes for a tagger. */
export function taggerMetadata(model: Tagger): { options: Record<string, unknown>; config?: HfConfig } {
  const options = model.archOptions();
  return model instanceof BertTagger ? { options, config: model.hfConfig } : { options };
}

/** Rebuilds a tagger written by models.save: its arch, options and (bertTagger) the encoder's config; every weight must load. */
export function loadTagger(path: string, arch: TaggerArch, options: Record<string, unknown>, config?: HfConfig): Tagger {
  const what = `models.load(${path}, ${arch})`;
  let model: Tagger;
  try {
    if (arch === 'bilstmCrf') model = bilstmCrf(options as unknown as BiLstmCrfOptions);
    else {
      if (!config) throw new Error('the metadata finetorch.config (the encoder config.json) is missing');
      const encoderArch = options.encoderArch as TextArch;
      model = new BertTagger(textModel(encoderArch, config, { task: 'featureExtraction' }), options as unknown as BertTaggerOptions);
    }
  } catch (err) {
    throw new Error(`${what}: the metadata does not describe a model: ${(err as Error).message}`);
  }
  const sd = loadStateDict(path);
  try {
    model.loadStateDict(sd);
  } catch (err) {
    model.dispose();
    throw new Error(`${what}: ${(err as Error).message}`);
  } finally {
    Object.values(sd).forEach((t) => t.dispose());
  }
  return model;
}
