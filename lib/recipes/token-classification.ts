// Recipes for token classification (task: tokenClassification): documents of
// words with one tag each (CoNLL files, or JSONL texts with character spans),
// cut into windows of sub-word pieces (a pretrained encoder) or of words (a
// BiLSTM-CRF from scratch, whose vocabulary comes from the training words),
// the tagger (models.bertTagger / models.bilstmCrf), its loss, and the
// document-level evaluation and span prediction that eval and predict use.
// Window predictions are merged back to one tag per document word
// (data.mergeWindowPredictions) before entities are scored or spans given.
import { existsSync, statSync } from 'node:fs';
import { ArgumentError, ConfigError, DataError } from '../errors.js';
import { canonicalScheme, type Canonical, type TagScheme } from '../data/tag-schemes.js';
import {
  batchWindows,
  encodeWords,
  mergeWindowPredictions,
  readConllTags,
  readJsonlSpans,
  splitWords,
  tagsToSpans,
  type Offsets,
  type TaggedCorpus,
  type WordTokenizer,
  type WordWindow,
} from '../data/token-classification.js';
import { loadTokenizer, type Tokenizer } from '../data/load-tokenizer.js';
import { permutation } from '../data/tensor-loader.js';
import type { Batch } from '../data/batch.js';
import { focalLoss } from '../losses/index.js';
import { crossEntropy } from '../nn/functional.js';
import { BertTagger, type Tagger, bertTagger, bilstmCrf, type BiLstmCrfOptions, type BertTaggerOptions } from '../models/taggers.js';
import { type TextModel, textModel, type HfConfig, type TextArch } from '../models/text.js';
import { huggingFaceWeights, load as loadModel, type ArchitectureName } from '../models/index.js';
import { torch } from '../tensor/index.js';
import type { Tensor } from '../tensor/tensor.js';
import type { LossFn, EvalResult } from '../train/trainer.js';
import { forwardArgs } from '../train/forward.js';
import { moveBatch } from '../train/device.js';
import { TaggingAccumulator, decodeEmissions } from '../train/tagging.js';
import { seqeval, type SeqevalReport } from '../metrics/seqeval.js';
import type { DataSpec, Recipe } from './schema.js';
import { PARTS, recipeHfConfig, splitFractions, splitIndices, type ModelSpec, type Part, type Sized } from './build.js';

type TokenData = Extract<DataSpec, { kind: 'conll' | 'jsonlSpans' }>;

/** How texts become a tagger's inputs (run.json's input): what eval and predict need. */
export interface TokenInputSpec {
  kind: 'tokens';
  /** Tag names by id (also run.json's classes). */
  tags: string[];
  /** The scheme of the tags. */
  scheme: Canonical;
  /** Window size: pieces with [CLS]/[SEP] (encoder), or words (bilstmCrf). */
  maxLength: number;
  stride: number;
  lowercase?: boolean;
  /** Pretrained encoders: the tokenizer (file or folder). */
  tokenizer?: string;
  /** bilstmCrf: the words by id (0 is <pad>, 1 is <unk>). */
  vocabulary?: string[];
  /** predict on a JSONL file: the field holding the text. */
  textField: string;
}

/** A document: its words with their character offsets in its text, and (labelled data) a tag per word. */
export interface TagDocument {
  /** Where it is: `file:line`, or `text N`. */
  name: string;
  text: string;
  words: string[];
  offsets: Offsets;
  tags?: string[];
}

export interface TokenDataBundle {
  /** The tags (classes of the run). */
  classes: string[];
  parts: Partial<Record<Part, Sized>>;
  /** Documents per part. */
  sizes: Record<Part, number>;
  /** Entities per type in the training part. */
  trainCounts: Record<string, number>;
  input: TokenInputSpec;
  tokenizer?: Tokenizer;
  documents: Partial<Record<Part, TagDocument[]>>;
  /** Windows per part. */
  windows: Record<Part, number>;
}

const PAD = '<pad>';
const UNK = '<unk>';

/** The windows' pieces for a BiLSTM-CRF: each word one id of the vocabulary (<unk> for the rest); id 0 stands in for [CLS]/[SEP] and is cut off. */
function wordTokenizer(vocabulary: string[], lowercase: boolean): WordTokenizer {
  const index = new Map(vocabulary.map((w, i) => [w, i]));
  return {
    padId: 0,
    clsId: 0,
    sepId: 0,
    tokenizeWords(words: string[]) {
      const ids = words.map((w) => index.get(lowercase ? w.toLowerCase() : w) ?? 1);
      return { tokens: words, ids, wordIds: words.map((_, i) => i) };
    },
  };
}

/** The vocabulary of the training words: <pad>, <unk>, then words seen at least minCount times, most frequent first. */
export function wordVocabulary(docs: TagDocument[], o: { lowercase: boolean; minCount: number }): string[] {
  const counts = new Map<string, number>();
  for (const d of docs) for (const w of d.words) counts.set(o.lowercase ? w.toLowerCase() : w, (counts.get(o.lowercase ? w.toLowerCase() : w) ?? 0) + 1);
  const kept = [...counts.entries()].filter(([w, n]) => n >= o.minCount && w !== PAD && w !== UNK);
  kept.sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  return [PAD, UNK, ...kept.map(([w]) => w)];
}

/** Encodes documents into windows for the tagger of `input` (labels when every document has tags); `doc` of each window says whose it is. */
export function encodeDocuments(
  input: TokenInputSpec,
  tokenizer: WordTokenizer,
  docs: TagDocument[],
  labelled: boolean,
): Array<{ doc: number; window: WordWindow }> {
  const bilstm = !!input.vocabulary;
  const out: Array<{ doc: number; window: WordWindow }> = [];
  const known = new Set(input.tags);
  docs.forEach((d, k) => {
    if (labelled && d.tags) {
      const bad = d.tags.findIndex((t) => !known.has(t));
      if (bad >= 0)
        throw new DataError(
          `${d.name}: tag ${JSON.stringify(d.tags[bad])} (word ${bad}, ${JSON.stringify(d.words[bad])}) is not one of the model's tags (${input.tags.join(', ')})`,
        );
    }
    // a BiLSTM window is maxLength words; its two stand-ins for [CLS]/[SEP] are cut off again in toBatch
    const windows = encodeWords(tokenizer, d.words, {
      maxLength: bilstm ? input.maxLength + 2 : input.maxLength,
      stride: input.stride,
      ...(labelled && d.tags ? { labels: d.tags, labelNames: input.tags } : {}),
    });
    for (const window of windows) out.push({ doc: k, window });
  });
  return out;
}

/** A batch of windows: named inputs of the tagger and word targets [B, W] (-100 past the words; all -100 when unlabelled). */
export function windowBatch(windows: WordWindow[], bilstm: boolean, padId: number): Batch {
  if (!bilstm) {
    const t = batchWindows(windows, { padId });
    t.tokenTypeIds.dispose();
    t.labels?.dispose();
    const target = t.wordLabels ?? torch.full(t.firstPieceIndex.shape, -100, { dtype: 'int64' });
    return { input: { inputIds: t.inputIds, attentionMask: t.attentionMask, firstPieceIndex: t.firstPieceIndex }, target };
  }
  const W = Math.max(1, ...windows.map((w) => w.firstPieceIndex.length));
  const pad = (row: number[], value: number) => [...row, ...Array(W - row.length).fill(value)];
  const ids = windows.map((w) => pad(w.inputIds.slice(1, -1), 0));
  const mask = windows.map((w) =>
    pad(
      w.firstPieceIndex.map(() => 1),
      0,
    ),
  );
  const labels = windows.map((w) => pad(w.wordLabels ?? [], -100));
  return {
    input: { inputIds: torch.tensor(ids, { dtype: 'int64' }), mask: torch.tensor(mask, { dtype: 'int64' }).ne(0) },
    target: torch.tensor(labels, { dtype: 'int64' }),
  };
}

/** Batches of windows, shuffled per (seed, epoch) for training, each padded to its own longest window. */
class WindowLoader implements Sized {
  constructor(
    private readonly windows: WordWindow[],
    private readonly o: { batchSize: number; shuffle: boolean; seed: number; bilstm: boolean; padId: number },
  ) {}
  get length(): number {
    return Math.ceil(this.windows.length / this.o.batchSize);
  }
  *batches(epoch = 0): Generator<Batch> {
    const n = this.windows.length;
    const order = this.o.shuffle ? permutation(n, this.o.seed * 100003 + epoch) : Array.from({ length: n }, (_, i) => i);
    for (let i = 0; i < n; i += this.o.batchSize)
      yield windowBatch(
        order.slice(i, i + this.o.batchSize).map((k) => this.windows[k]),
        this.o.bilstm,
        this.o.padId,
      );
  }
}

function readCorpus(d: TokenData, path: string): TaggedCorpus {
  try {
    if (d.kind === 'conll')
      return readConllTags(path, {
        scheme: canonicalScheme(d.scheme, 'recipe.data.scheme') as TagScheme,
        ...(d.convertTo ? { convertTo: canonicalScheme(d.convertTo, 'recipe.data.convertTo') as TagScheme } : {}),
        ...(d.tagColumn !== undefined ? { tagColumn: d.tagColumn } : {}),
        documents: d.documents,
      });
    return readJsonlSpans(path, {
      scheme: canonicalScheme(d.scheme, 'recipe.data.scheme') as TagScheme,
      textField: d.textField,
      spansField: d.spansField,
      offsetUnit: d.offsetUnit,
    });
  } catch (err) {
    if (err instanceof DataError) throw err;
    throw new DataError(`${path}: ${(err as Error).message}`, { path, cause: err });
  }
}

/** The scheme the model's tags are in: conll's convertTo, else the data's scheme. */
function trainScheme(d: TokenData): Canonical {
  return canonicalScheme(d.kind === 'conll' && d.convertTo ? d.convertTo : d.scheme, 'recipe.data.scheme');
}

function documentsOf(corpus: TaggedCorpus, path: string): TagDocument[] {
  return corpus.documents.map((d) => ({ name: `${path}:${d.line}`, text: d.text, words: d.words, offsets: d.offsets, tags: d.tags }));
}

/** The tokenizer of an encoder recipe: data.tokenizer, else the model.checkpoint folder. */
function tokenizerPath(recipe: Recipe): string {
  const d = recipe.data as TokenData;
  if (d.tokenizer) return d.tokenizer;
  const ck = recipe.model.checkpoint;
  if (ck && existsSync(ck) && statSync(ck).isDirectory()) return ck;
  throw new ConfigError(
    'recipe.data.tokenizer',
    'a pretrained encoder needs its tokenizer (vocab.txt, tokenizer.json or their folder); none given and model.checkpoint is not a folder',
  );
}

/**
 * Reads, splits and windows the recipe's documents. The tags are 'O' and
 * then the sorted other tags of every part read; `saved` (a run's input,
 * when resuming or evaluating) fixes the tags and the vocabulary instead.
 */
export async function buildTokenData(recipe: Recipe, want: Part[] = PARTS, saved?: TokenInputSpec): Promise<TokenDataBundle> {
  const d = recipe.data;
  if (!d) throw new ConfigError('recipe.data', 'the recipe has no data section (token classification reads conll or jsonlSpans data; see docs/cli.md)');
  if (d.kind !== 'conll' && d.kind !== 'jsonlSpans')
    throw new ConfigError('recipe.data.kind', `task tokenClassification reads conll or jsonlSpans data, got ${JSON.stringify(d.kind)}`);
  const docs: Partial<Record<Part, TagDocument[]>> = {};
  const main = documentsOf(readCorpus(d, d.path), d.path);
  const separate: Part[] = [];
  for (const [part, path] of [
    ['val', d.valPath],
    ['test', d.testPath],
  ] as const) {
    if (!path) continue;
    separate.push(part);
    if (want.includes(part)) docs[part] = documentsOf(readCorpus(d, path), path);
  }
  const fractions = splitFractions(d.split, separate);
  if (!fractions.length) throw new ConfigError('recipe.data.split', 'leaves no part to take from data.path');
  const indices = splitIndices(
    main.map(() => 0),
    fractions,
    d.split.seed ?? recipe.seed,
  );
  for (const p of PARTS) if (indices[p]) docs[p] = indices[p]!.map((i) => main[i]);

  const bilstm = recipe.model.arch === 'bilstmCrf';
  // (undefined for an encoder: its vocab.txt or tokenizer.json decides, at training and at predict alike)
  const lowercase = d.lowercase;
  const scheme = trainScheme(d);
  let tags = saved?.tags;
  if (!tags) {
    const seen = new Set(Object.values(docs).flatMap((ds) => ds!.flatMap((x) => x.tags ?? [])));
    seen.delete('O');
    tags = ['O', ...[...seen].sort()];
  }
  if (tags.length < 2)
    throw new DataError(`${d.path}: the documents have no entity tags (only O); token classification needs at least one entity type`, { path: d.path });
  let tokenizer: Tokenizer | undefined;
  let pieces: WordTokenizer;
  let vocabulary: string[] | undefined;
  if (bilstm) {
    vocabulary = saved?.vocabulary ?? wordVocabulary(docs.train ?? [], { lowercase: !!lowercase, minCount: recipe.model.minWordCount ?? 1 });
    pieces = wordTokenizer(vocabulary, !!lowercase);
  } else {
    const path = saved?.tokenizer ?? tokenizerPath(recipe);
    try {
      tokenizer = loadTokenizer(path, { lowercase: d.lowercase });
    } catch (err) {
      throw new ConfigError('recipe.data.tokenizer', `cannot load a tokenizer from ${path}: ${(err as Error).message}`, { cause: err });
    }
    pieces = tokenizer as unknown as WordTokenizer;
  }
  const input: TokenInputSpec = {
    kind: 'tokens',
    tags,
    scheme,
    maxLength: d.maxLength,
    stride: d.stride,
    ...(lowercase !== undefined ? { lowercase } : {}),
    ...(tokenizer ? { tokenizer: saved?.tokenizer ?? tokenizerPath(recipe) } : {}),
    ...(vocabulary ? { vocabulary } : {}),
    textField: d.kind === 'jsonlSpans' ? d.textField : 'text',
  };
  const parts: Partial<Record<Part, Sized>> = {};
  const windows: Record<Part, number> = { train: 0, val: 0, test: 0 };
  for (const p of want) {
    const ds = docs[p];
    if (!ds?.length) continue;
    // documents without words have nothing to tag (and a CRF needs a first word)
    const ws = encodeDocuments(input, pieces, ds, true)
      .map((x) => x.window)
      .filter((w) => w.firstPieceIndex.length > 0);
    windows[p] = ws.length;
    if (!ws.length) continue;
    parts[p] = new WindowLoader(ws, { batchSize: recipe.batchSize, shuffle: p === 'train', seed: recipe.seed, bilstm, padId: pieces.padId });
  }
  const trainCounts: Record<string, number> = {};
  for (const doc of docs.train ?? [])
    for (const s of tagsToSpans(doc.offsets, doc.tags!, scheme as TagScheme)) trainCounts[s.label] = (trainCounts[s.label] ?? 0) + 1;
  return {
    classes: tags,
    parts,
    sizes: Object.fromEntries(PARTS.map((p) => [p, docs[p]?.length ?? 0])) as Record<Part, number>,
    trainCounts,
    input,
    tokenizer,
    documents: docs,
    windows,
  };
}

// ---- model and loss

const ENCODER_ARCHS = ['bert', 'roberta', 'distilbert'];

/** A ConfigError on the recipe field an ArgumentError of the model builders names. */
function asConfigError(err: unknown, fields: Record<string, string>): never {
  if (err instanceof ArgumentError) throw new ConfigError(fields[err.argument ?? ''] ?? 'recipe.model', err.detail, { cause: err });
  throw err;
}

/**
 * The tagger of a recipe: arch bilstmCrf from scratch over `vocabulary`, or
 * a pretrained encoder (model.checkpoint: a Hugging Face folder, or a weights
 * file with model.config; only model.config: fresh weights) with
 * model.head linear, crf (default) or bilstm-crf.
 */
export function buildTagger(recipe: Recipe, tags: string[], vocabulary?: string[]): { model: Tagger; spec: ModelSpec } {
  const m = recipe.model;
  const numTags = tags.length;
  let model: Tagger;
  if (m.arch === 'bilstmCrf') {
    if (!vocabulary) throw new ConfigError('recipe.model.arch', 'bilstmCrf needs the vocabulary of the training words');
    const options: BiLstmCrfOptions = {
      vocabSize: vocabulary.length,
      numTags,
      embeddingDim: m.embeddingDim ?? 100,
      hiddenSize: m.hiddenSize ?? 128,
      numLayers: m.lstmLayers ?? 1,
      dropout: m.dropout ?? 0.5,
      paddingIdx: 0,
      head: m.head === 'linear' ? 'linear' : 'crf',
    };
    try {
      model = bilstmCrf(options);
    } catch (err) {
      asConfigError(err, {
        embeddingDim: 'recipe.model.embeddingDim',
        hiddenSize: 'recipe.model.hiddenSize',
        numLayers: 'recipe.model.lstmLayers',
        dropout: 'recipe.model.dropout',
      });
    }
    return { model, spec: { arch: 'bilstmCrf', options: model.archOptions() } };
  }
  const cannotTag = (arch: unknown) =>
    new ConfigError(
      'recipe.model.arch',
      `token classification runs on bilstmCrf (from scratch) or a pretrained ${ENCODER_ARCHS.join(', ')} encoder; got ${JSON.stringify(arch)}`,
    );
  if (m.arch !== undefined && !ENCODER_ARCHS.includes(m.arch)) throw cannotTag(m.arch);
  if (m.checkpoint !== undefined && !existsSync(m.checkpoint)) throw new ConfigError('recipe.model.checkpoint', `${m.checkpoint} does not exist`);
  const hfConfig = recipeHfConfig(recipe);
  if (!hfConfig)
    throw new ConfigError(
      'recipe.model.config',
      "a tagger on a pretrained encoder needs the encoder's config.json (model.config, or a model.checkpoint folder holding it)",
    );
  const arch = m.arch ?? hfConfig.model_type;
  if (typeof arch !== 'string' || !ENCODER_ARCHS.includes(arch)) throw cannotTag(arch);
  let encoder: string | TextModel | HfConfig = hfConfig;
  if (m.checkpoint !== undefined) {
    if (statSync(m.checkpoint).isDirectory()) {
      if (!huggingFaceWeights(m.checkpoint))
        throw new ConfigError('recipe.model.checkpoint', `folder ${m.checkpoint} has neither model.safetensors nor pytorch_model.bin`);
      encoder = m.checkpoint;
    } else {
      try {
        encoder = loadModel(m.checkpoint, { arch: arch as ArchitectureName, config: hfConfig, task: 'featureExtraction' as never }) as TextModel;
      } catch (err) {
        throw new ConfigError('recipe.model.checkpoint', `cannot load the encoder from ${m.checkpoint}: ${(err as Error).message}`, { cause: err });
      }
    }
  }
  const options: BertTaggerOptions = {
    numTags,
    head: m.head ?? 'crf',
    ...(m.lstmHiddenSize !== undefined ? { lstmHiddenSize: m.lstmHiddenSize } : {}),
    ...(m.lstmLayers !== undefined ? { lstmLayers: m.lstmLayers } : {}),
    ...(m.dropout !== undefined ? { dropout: m.dropout } : {}),
  };
  try {
    model = bertTagger(encoder, options);
  } catch (err) {
    asConfigError(err, {
      encoder: 'recipe.model.checkpoint',
      head: 'recipe.model.head',
      lstmHiddenSize: 'recipe.model.lstmHiddenSize',
      lstmLayers: 'recipe.model.lstmLayers',
      dropout: 'recipe.model.dropout',
    });
  }
  return { model, spec: { arch: 'bertTagger', options: model.archOptions(), hfConfig: (model as BertTagger).hfConfig } };
}

/** A tagger rebuilt from run.json's model spec, freshly initialised (the weights are loaded after). */
export function buildTaggerFromSpec(spec: ModelSpec): Tagger {
  const o = spec.options as Record<string, unknown>;
  if (spec.arch === 'bilstmCrf') return bilstmCrf(o as unknown as BiLstmCrfOptions);
  if (!spec.hfConfig) throw new ConfigError('model.hfConfig', 'a bertTagger needs its encoder config.json');
  const encoderArch = o.encoderArch as TextArch;
  return new BertTagger(textModel(encoderArch, spec.hfConfig, { task: 'featureExtraction' as never }), o as unknown as BertTaggerOptions);
}

/**
 * The recipe's tagging loss on word emissions [B, W, K] and tags [B, W]
 * (-100 past the words): crf (the CRF's NLL, mean over sequences), crf+focal
 * (plus focalWeight x a focal token term), crossEntropy (class weights, label
 * smoothing) or focal over the words for a linear head.
 */
export function taggerLoss(recipe: Recipe, model: Tagger, numTags: number): LossFn {
  const l = recipe.loss;
  const perTag = (field: string, v: number[] | undefined) => {
    if (v && v.length !== numTags) throw new ConfigError(field, `has ${v.length} entries for ${numTags} tags`);
    return v;
  };
  const alpha = Array.isArray(l.alpha) ? perTag('recipe.loss.alpha', l.alpha) : l.alpha;
  if (l.type === 'crf' || l.type === 'crf+focal') {
    if (!model.crf) throw new ConfigError('recipe.loss.type', `${l.type} needs a CRF head (model.head crf or bilstm-crf)`);
    const focal = l.type === 'crf+focal' ? { focal: { weight: l.focalWeight ?? 1, gamma: l.gamma, ...(alpha !== undefined ? { alpha } : {}) } } : {};
    return (emissions, tags) => model.loss(emissions, tags, focal);
  }
  if (l.type === 'focal')
    return (emissions, tags) => focalLoss(emissions, tags, { gamma: l.gamma, ...(alpha !== undefined ? { alpha } : {}), ignoreIndex: -100 });
  const weights = perTag('recipe.loss.classWeights', l.classWeights);
  const weight = weights ? torch.tensor(weights, { dtype: 'float32', device: recipe.device }) : undefined;
  return (emissions, tags) =>
    torch.tidy(() =>
      crossEntropy(emissions.reshape([-1, emissions.shape[2]]), tags.reshape([-1]), { ignoreIndex: -100, weight, labelSmoothing: l.labelSmoothing }),
    );
}

// ---- evaluation and prediction on whole documents

function piecesOf(input: TokenInputSpec): WordTokenizer {
  if (input.vocabulary) return wordTokenizer(input.vocabulary, !!input.lowercase);
  if (!input.tokenizer) throw new ConfigError('run.json: input.tokenizer', 'the run names neither a tokenizer nor a vocabulary');
  return loadTokenizer(input.tokenizer, { lowercase: input.lowercase }) as unknown as WordTokenizer;
}

/**
 * The tag ids of every word of every document: windows run through the
 * model in batches (no gradients, eval mode), decoded (CRF Viterbi or
 * argmax), and merged back per document. With `loss` and labelled documents,
 * also the mean loss over windows.
 */
export async function tagDocuments(
  model: Tagger,
  input: TokenInputSpec,
  docs: TagDocument[],
  o: { batchSize?: number; device?: string; loss?: LossFn; tokenizer?: WordTokenizer } = {},
): Promise<{ tags: number[][]; loss: number | null; windows: number }> {
  const pieces = o.tokenizer ?? piecesOf(input);
  const labelled = !!o.loss && docs.every((d) => d.tags);
  const encoded = encodeDocuments(input, pieces, docs, labelled).filter((x) => x.window.firstPieceIndex.length > 0);
  const batchSize = o.batchSize ?? 32;
  const bilstm = !!input.vocabulary;
  const paths: number[][] = [];
  let lossSum = 0;
  const wasTraining = model.training;
  model.eval();
  try {
    for (let i = 0; i < encoded.length; i += batchSize) {
      const chunk = encoded.slice(i, i + batchSize).map((x) => x.window);
      const { input: x, target } = moveBatch(windowBatch(chunk, bilstm, pieces.padId), (o.device as never) ?? null, 'contiguous');
      const named = x as Record<string, Tensor>;
      const emissions = await torch.noGrad(() => model.forwardAsync(...forwardArgs(model, named)));
      const mask = bilstm ? named.mask : named.firstPieceIndex.ge(0);
      paths.push(...decodeEmissions(model, emissions, mask));
      if (labelled) {
        const l = torch.noGrad(() => o.loss!(emissions, target));
        lossSum += (l.item() as number) * chunk.length;
        l.dispose();
      }
      if (!bilstm) mask.dispose();
      for (const t of [emissions, target, ...Object.values(named)]) t.dispose();
    }
  } finally {
    if (wasTraining) model.train();
  }
  const byDoc: Array<{ windows: WordWindow[]; paths: number[][] }> = docs.map(() => ({ windows: [], paths: [] }));
  encoded.forEach((x, k) => {
    byDoc[x.doc].windows.push(x.window);
    byDoc[x.doc].paths.push(paths[k]);
  });
  const tags = byDoc.map((b) => (b.windows.length ? mergeWindowPredictions(b.windows, b.paths) : []));
  return { tags, loss: labelled && encoded.length ? lossSum / encoded.length : null, windows: encoded.length };
}

/** An evaluation of whole documents, with seqeval's report (entity P/R/F1 per type and averaged). */
export interface TaggerEvaluation extends EvalResult {
  entities: NonNullable<EvalResult['entities']>;
  report: SeqevalReport;
  /** Documents evaluated, and words in them. */
  documents: number;
  words: number;
}

/**
 * Scores the model on labelled documents as seqeval does, after merging the
 * windows back per document: entity precision/recall/F1 (micro, macro,
 * weighted, per type; mode 'default' unless given), word accuracy and
 * macro-F1, the tag confusion matrix, and the mean window loss.
 */
export async function evaluateTagger(
  model: Tagger,
  input: TokenInputSpec,
  docs: TagDocument[],
  o: { batchSize?: number; device?: string; loss?: LossFn; mode?: 'default' | 'strict'; tokenizer?: WordTokenizer } = {},
): Promise<TaggerEvaluation> {
  if (!docs.length) throw new DataError('nothing to evaluate: no documents');
  const r = await tagDocuments(model, input, docs, o);
  const acc = new TaggingAccumulator({ tags: input.tags, scheme: input.scheme, mode: o.mode });
  const index = new Map(input.tags.map((t, i) => [t, i]));
  docs.forEach((d, k) =>
    acc.add(
      d.tags!.map((t) => index.get(t)!),
      r.tags[k],
    ),
  );
  const scores = acc.compute();
  const report = seqeval.classificationReport(acc.yTrue, acc.yPred, {
    mode: o.mode ?? 'default',
    ...(o.mode === 'strict' ? { scheme: input.scheme } : {}),
    digits: 4,
    zeroDivision: 0,
  });
  return { loss: r.loss ?? Number.NaN, ...scores, samples: docs.length, report, documents: docs.length, words: acc.yTrue.reduce((n, s) => n + s.length, 0) };
}

/** A predicted entity: its type, its character offsets in the text (end exclusive) and the text it covers. */
export interface PredictedSpan {
  label: string;
  start: number;
  end: number;
  text: string;
}

/** The entities the model finds in each text, as character spans of the text (words split as in training). */
export async function predictSpans(
  model: Tagger,
  input: TokenInputSpec,
  texts: string[],
  o: { batchSize?: number; device?: string } = {},
): Promise<Array<{ spans: PredictedSpan[]; words: string[]; tags: string[] }>> {
  const docs: TagDocument[] = texts.map((text, i) => ({ name: `text ${i + 1}`, text, ...splitWords(text) }));
  const r = await tagDocuments(model, input, docs, o);
  return docs.map((d, k) => {
    const tags = r.tags[k].map((t) => input.tags[t]);
    const spans = d.words.length ? tagsToSpans(d.offsets, tags, input.scheme as TagScheme) : [];
    return { spans: spans.map((s) => ({ label: s.label, start: s.start, end: s.end, text: d.text.slice(s.start, s.end) })), words: d.words, tags };
  });
}
