// Masking for masked-language-model pretraining, with the semantics of
// Hugging Face transformers 5.18's DataCollatorForLanguageModeling
// (transformers/data/data_collator.py, torch_mask_tokens):
//  - every token that is not special (the tokenizer's special ids, the pad id,
//    attention-mask 0) is chosen independently with probability mlmProbability
//    (a Bernoulli draw per token, so the share is 15% on average, not exactly);
//  - a chosen token becomes the mask id with probability maskReplaceProb, a
//    random id in [0, vocabSize) (any id, specials included, as transformers'
//    randint(len(tokenizer))) with probability randomReplaceProb, and is left
//    unchanged otherwise. transformers draws the random share as
//    randomReplaceProb / (1 - maskReplaceProb) among the chosen tokens not
//    masked, which makes it randomReplaceProb overall; one uniform draw per
//    chosen token here gives the same distribution;
//  - labels are the original id at chosen positions and -100 elsewhere.
//  - whole-word masking: a word is a token and the continuation pieces after it
//    ('##' pieces for WordPiece); each word is chosen with mlmProbability and all
//    its pieces with it, as 5.18 does (it gives only a word's first token a
//    probability and spreads the choice over the word). 5.18 also forces
//    maskReplaceProb = 1 and randomReplaceProb = 0 under whole-word masking, so
//    those are the defaults here; values passed explicitly are honoured, per
//    token, as transformers 4.x's DataCollatorForWholeWordMask did.
//    (5.18 finds words from character offsets, so there "hello," is one word;
//    here a word ends where a token that is not a continuation piece starts.)
// transformers draws from torch's global or one running generator; here the
// randomness of a batch is derived from (seed, epoch, batchIndex) alone, so a
// resumed run masks every later batch exactly as an uninterrupted run would.
import type { Tensor } from '../tensor/tensor.js';
import { torch } from '../tensor/index.js';
import { ArgumentError } from '../errors.js';
import { WordPieceTokenizer } from './tokenizer.js';
import { ByteLevelBPETokenizer } from './tokenizer-bpe.js';

type Tokenizer = WordPieceTokenizer | ByteLevelBPETokenizer;

// ---- a small counter-keyed PRNG

const rotl = (x: number, r: number) => (x << r) | (x >>> (32 - r));

/** MurmurHash3's 32-bit finaliser. */
function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** MurmurHash3 (x86, 32-bit) over 32-bit words: one well-mixed word per (words, salt). */
function hashWords(words: number[], salt: number): number {
  let h = salt >>> 0;
  for (const w of words) {
    let k = Math.imul(w, 0xcc9e2d51);
    k = rotl(k, 15);
    k = Math.imul(k, 0x1b873593);
    h ^= k;
    h = rotl(h, 13);
    h = (Math.imul(h, 5) + 0xe6546b64) | 0;
  }
  return fmix32(h ^ (words.length * 4));
}

/** A non-negative integer (number or bigint, < 2^64) as two 32-bit words, low first. */
function words64(x: number | bigint): [number, number] {
  const v = BigInt.asUintN(64, BigInt(x));
  return [Number(v & 0xffffffffn), Number(v >> 32n)];
}

/**
 * A deterministic random stream keyed by (seed, ...counters): sfc32 (Chris
 * Doty-Humphrey's small fast counting generator, 128-bit state, passes
 * PractRand) started from a MurmurHash3 of the key. The same key always gives
 * the same stream; keys that differ in any word give unrelated streams.
 */
export class KeyedRandom {
  private a: number;
  private b: number;
  private c: number;
  private d: number;

  constructor(seed: number | bigint, ...counters: number[]) {
    const key = [...words64(seed), ...counters.flatMap((n) => words64(n))];
    this.a = hashWords(key, 0x243f6a88);
    this.b = hashWords(key, 0x85a308d3);
    this.c = hashWords(key, 0x13198a2e);
    this.d = 1; // sfc32's counter
    for (let i = 0; i < 12; i++) this.nextUint32();
  }

  /** A uniform 32-bit unsigned integer. */
  nextUint32(): number {
    const t = (((this.a + this.b) | 0) + this.d) | 0;
    this.d = (this.d + 1) | 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) | 0;
    this.c = rotl(this.c, 21);
    this.c = (this.c + t) | 0;
    return t >>> 0;
  }

  /** A uniform number in [0, 1) with 53 random bits. */
  uniform(): number {
    const hi = this.nextUint32() >>> 5;
    const lo = this.nextUint32() >>> 6;
    return (hi * 67108864 + lo) / 9007199254740992;
  }

  /** A uniform integer in [0, n). */
  below(n: number): number {
    return Math.floor(this.uniform() * n);
  }
}

// ---- options

export interface MaskTokensOptions {
  /** The id that replaces most chosen tokens ([MASK]). */
  maskTokenId: number;
  /** Random replacements are drawn from [0, vocabSize). */
  vocabSize: number;
  /** Ids never chosen ([CLS], [SEP], [PAD], [UNK], [MASK]); or a tokenizer, whose special tokens are used. */
  specialIds: number[] | Tokenizer;
  /** Never chosen either (it is usually among specialIds too). */
  padTokenId?: number;
  /** Same shape as the ids; positions where it is 0 are never chosen. */
  attentionMask?: Tensor;
  /** Share of eligible tokens (or words) chosen; default 0.15. */
  mlmProbability?: number;
  /** Share of chosen tokens replaced by the mask id; default 0.8 (1 with wholeWordMask, as transformers 5.x). */
  maskReplaceProb?: number;
  /** Share of chosen tokens replaced by a random id; default 0.1 (0 with wholeWordMask, as transformers 5.x). */
  randomReplaceProb?: number;
  /** Choose whole words (a token and its continuation pieces) together; needs isContinuation. */
  wholeWordMask?: boolean;
  /** Whether an id is a continuation piece ('##...' in WordPiece); or a tokenizer, which says it from its vocabulary. */
  isContinuation?: ((id: number) => boolean) | Tokenizer;
  /** With epoch and batchIndex, this fixes the batch's randomness. */
  seed: number | bigint;
  /** Default 0. */
  epoch?: number;
  /** Default 0. */
  batchIndex?: number;
}

export interface MaskedBatch {
  /** int64, the input's shape: ids with the chosen tokens replaced. */
  inputIds: Tensor;
  /** int64, the input's shape: the original id where a token was chosen, -100 elsewhere. */
  labels: Tensor;
}

/** The options after checking, with every default filled in. */
interface Resolved {
  maskTokenId: number;
  vocabSize: number;
  special: Set<number>;
  mlmProbability: number;
  maskReplaceProb: number;
  randomReplaceProb: number;
  wholeWordMask: boolean;
  isContinuation: ((id: number) => boolean) | null;
}

const isTokenizer = (x: unknown): x is Tokenizer => x instanceof WordPieceTokenizer || x instanceof ByteLevelBPETokenizer;

/** A tokenizer's special token ids, as transformers' all_special_ids for BERT and RoBERTa. */
export function specialTokenIds(tokenizer: Tokenizer): number[] {
  const names = tokenizer instanceof WordPieceTokenizer ? ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]'] : ['<s>', '</s>', '<pad>', '<unk>', '<mask>'];
  if (tokenizer instanceof WordPieceTokenizer && tokenizer.options.unkToken) names.push(tokenizer.options.unkToken);
  return names.map((t) => tokenizer.tokenToId(t)).filter((id): id is number => id !== undefined);
}

/** The tokenizer's mask token id ([MASK] or <mask>), or undefined when its vocabulary has none. */
export function maskTokenIdOf(tokenizer: Tokenizer): number | undefined {
  return tokenizer.tokenToId(tokenizer instanceof WordPieceTokenizer ? '[MASK]' : '<mask>');
}

/**
 * Whether each id is a continuation piece: WordPiece's '##' pieces; for
 * byte-level BPE, tokens without the 'Ġ' space marker (they continue the
 * previous token's word, punctuation included, as offsets without a gap do
 * in transformers).
 */
export function continuationOf(tokenizer: Tokenizer): (id: number) => boolean {
  const n = tokenizer.vocabSize;
  const flags = new Uint8Array(n);
  const special = new Set(specialTokenIds(tokenizer));
  for (let id = 0; id < n; id++) {
    const t = tokenizer.idToToken(id);
    if (t === undefined || special.has(id)) continue;
    flags[id] = tokenizer instanceof WordPieceTokenizer ? Number(t.startsWith('##')) : Number(!t.startsWith('Ġ'));
  }
  return (id) => flags[id] === 1;
}

function probability(fn: string, name: string, v: unknown, fallback: number): number {
  if (v === undefined) return fallback;
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0 || v > 1) throw new ArgumentError(fn, `${name} must be a number in [0, 1], got ${String(v)}`, name);
  return v;
}

function tokenId(fn: string, name: string, v: unknown, vocabSize: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v >= vocabSize)
    throw new ArgumentError(fn, `${name} must be an integer id inside the vocabulary [0, ${vocabSize}), got ${String(v)}`, name);
  return v;
}

function counter(fn: string, name: string, v: unknown): number {
  if (v === undefined) return 0;
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) throw new ArgumentError(fn, `${name} must be an integer >= 0, got ${String(v)}`, name);
  return v;
}

function checkSeed(fn: string, seed: unknown): number | bigint {
  if (typeof seed === 'bigint') {
    if (seed < 0n || seed >= 1n << 64n) throw new ArgumentError(fn, `seed must be in [0, 2^64), got ${seed}`, 'seed');
    return seed;
  }
  if (typeof seed !== 'number' || !Number.isSafeInteger(seed) || seed < 0)
    throw new ArgumentError(fn, `seed must be an integer >= 0 (a number up to 2^53 - 1 or a bigint), got ${String(seed)}`, 'seed');
  return seed;
}

type ResolvableOptions = Omit<MaskTokensOptions, 'seed' | 'epoch' | 'batchIndex' | 'attentionMask'>;

function resolve(fn: string, o: ResolvableOptions): Resolved {
  if (!o || typeof o !== 'object') throw new ArgumentError(fn, 'options must be an object');
  const vocabSize = o.vocabSize;
  if (typeof vocabSize !== 'number' || !Number.isInteger(vocabSize) || vocabSize < 1)
    throw new ArgumentError(fn, `vocabSize must be an integer >= 1, got ${String(vocabSize)}`, 'vocabSize');
  const maskTokenId = tokenId(fn, 'maskTokenId', o.maskTokenId, vocabSize);
  let specialIds: unknown = o.specialIds;
  if (isTokenizer(specialIds)) specialIds = specialTokenIds(specialIds);
  if (!Array.isArray(specialIds)) throw new ArgumentError(fn, 'specialIds must be an array of token ids or a tokenizer', 'specialIds');
  const special = new Set<number>();
  specialIds.forEach((id, i) => special.add(tokenId(fn, `specialIds[${i}]`, id, vocabSize)));
  if (o.padTokenId !== undefined) special.add(tokenId(fn, 'padTokenId', o.padTokenId, vocabSize));
  const wholeWordMask = o.wholeWordMask ?? false;
  if (typeof wholeWordMask !== 'boolean') throw new ArgumentError(fn, `wholeWordMask must be a boolean, got ${String(wholeWordMask)}`, 'wholeWordMask');
  const mlmProbability = probability(fn, 'mlmProbability', o.mlmProbability, 0.15);
  const maskReplaceProb = probability(fn, 'maskReplaceProb', o.maskReplaceProb, wholeWordMask ? 1 : 0.8);
  const randomReplaceProb = probability(fn, 'randomReplaceProb', o.randomReplaceProb, wholeWordMask ? 0 : 0.1);
  if (maskReplaceProb + randomReplaceProb > 1 + 1e-12)
    throw new ArgumentError(fn, `maskReplaceProb + randomReplaceProb must not exceed 1, got ${maskReplaceProb} + ${randomReplaceProb}`, 'randomReplaceProb');
  let isContinuation: ((id: number) => boolean) | null = null;
  if (isTokenizer(o.isContinuation)) isContinuation = continuationOf(o.isContinuation);
  else if (typeof o.isContinuation === 'function') isContinuation = o.isContinuation;
  else if (o.isContinuation !== undefined) throw new ArgumentError(fn, 'isContinuation must be a function (id) => boolean or a tokenizer', 'isContinuation');
  if (wholeWordMask && !isContinuation)
    throw new ArgumentError(fn, 'wholeWordMask needs isContinuation (a function or the tokenizer) to tell where words end', 'isContinuation');
  return { maskTokenId, vocabSize, special, mlmProbability, maskReplaceProb, randomReplaceProb, wholeWordMask, isContinuation };
}

/** The values of an integer tensor as numbers, row-major, with its shape. */
function integers(fn: string, name: string, t: Tensor): { values: Float64Array; shape: number[] } {
  if (!t || typeof t !== 'object' || typeof (t as Tensor).dataSync !== 'function') throw new ArgumentError(fn, `${name} must be a Tensor`, name);
  if (!['int64', 'int32', 'int16', 'int8', 'uint8', 'bool'].includes(t.dtype))
    throw new ArgumentError(fn, `${name} must be an integer tensor, got ${t.dtype}`, name);
  if (t.ndim < 1) throw new ArgumentError(fn, `${name} must have at least one dimension ([batch, sequence] or [sequence]), got a scalar`, name);
  const cpu = t.device === 'cpu' ? t : t.to('cpu');
  const raw = cpu.dataSync();
  const values = new Float64Array(raw.length);
  for (let i = 0; i < raw.length; i++) values[i] = Number(raw[i]);
  return { values, shape: t.shape };
}

function maskWith(fn: string, inputIds: Tensor, r: Resolved, seed: number | bigint, epoch: number, batchIndex: number, attentionMask?: Tensor): MaskedBatch {
  const { values: ids, shape } = integers(fn, 'inputIds', inputIds);
  let attention: Float64Array | null = null;
  if (attentionMask !== undefined) {
    const m = integers(fn, 'attentionMask', attentionMask);
    if (m.shape.join() !== shape.join())
      throw new ArgumentError(fn, `attentionMask has shape [${m.shape}], inputIds [${shape}]; they must match`, 'attentionMask');
    attention = m.values;
  }
  const length = shape[shape.length - 1];
  for (let i = 0; i < ids.length; i++) {
    const id = ids[i];
    if (!(id >= 0 && id < r.vocabSize))
      throw new ArgumentError(
        fn,
        `inputIds holds ${id} at row ${Math.floor(i / length)}, position ${i % length}, outside the vocabulary [0, ${r.vocabSize})`,
        'inputIds',
      );
  }
  const random = new KeyedRandom(seed, epoch, batchIndex);
  const chosen = new Uint8Array(ids.length);
  const eligible = (i: number) => !r.special.has(ids[i]) && (attention === null || attention[i] !== 0);
  for (let start = 0; start < ids.length; start += length) {
    const end = start + length;
    if (!r.wholeWordMask) {
      for (let i = start; i < end; i++) if (eligible(i) && random.uniform() < r.mlmProbability) chosen[i] = 1;
      continue;
    }
    // a word: an eligible token that does not continue an eligible one, and the continuation pieces after it
    for (let i = start; i < end; ) {
      if (!eligible(i)) {
        i++;
        continue;
      }
      let j = i + 1;
      while (j < end && eligible(j) && r.isContinuation!(ids[j])) j++;
      if (random.uniform() < r.mlmProbability) chosen.fill(1, i, j);
      i = j;
    }
  }
  const outIds = new BigInt64Array(ids.length);
  const labels = new BigInt64Array(ids.length);
  for (let i = 0; i < ids.length; i++) {
    outIds[i] = BigInt(ids[i]);
    labels[i] = -100n;
    if (!chosen[i]) continue;
    labels[i] = BigInt(ids[i]);
    const u = random.uniform();
    if (u < r.maskReplaceProb) outIds[i] = BigInt(r.maskTokenId);
    else if (u < r.maskReplaceProb + r.randomReplaceProb) outIds[i] = BigInt(random.below(r.vocabSize));
  }
  const toTensor = (a: BigInt64Array) => {
    const t = torch.tensor(a, { dtype: 'int64', shape });
    return inputIds.device === 'cpu' ? t : t.to(inputIds.device);
  };
  return { inputIds: toTensor(outIds), labels: toTensor(labels) };
}

/**
 * Masks a batch of token ids for masked-language-model training (see the top
 * of this file for the exact semantics). The input is not changed; the result
 * is new int64 tensors of the input's shape. The same (seed, epoch,
 * batchIndex) and ids always give the same result.
 */
export function maskTokens(inputIds: Tensor, options: MaskTokensOptions): MaskedBatch {
  const fn = 'data.maskTokens';
  const r = resolve(fn, options);
  const seed = checkSeed(fn, options.seed);
  return maskWith(fn, inputIds, r, seed, counter(fn, 'epoch', options.epoch), counter(fn, 'batchIndex', options.batchIndex), options.attentionMask);
}

/** MaskedLMCollator's options: maskTokens' options, where the tokenizer supplies the ids unless given. */
export type MaskedLMCollatorOptions = Partial<Omit<MaskTokensOptions, 'seed' | 'epoch' | 'batchIndex' | 'attentionMask'>> & { seed: number | bigint };

/**
 * Masks batches for MLM training with a tokenizer's mask, special and pad
 * tokens (and its '##' pieces for whole-word masking). Each batch's masking
 * depends only on (seed, epoch, batchIndex), so resuming at any batch masks
 * as the uninterrupted run did.
 */
export class MaskedLMCollator {
  private readonly resolved: Resolved;
  readonly seed: number | bigint;

  constructor(tokenizer: Tokenizer | null, options: MaskedLMCollatorOptions) {
    const fn = 'data.MaskedLMCollator';
    if (tokenizer !== null && !isTokenizer(tokenizer))
      throw new ArgumentError(fn, 'tokenizer must be a WordPieceTokenizer, a ByteLevelBPETokenizer or null', 'tokenizer');
    if (!options || typeof options !== 'object') throw new ArgumentError(fn, 'options must be an object with at least a seed', 'options');
    const fromTokenizer: Partial<ResolvableOptions> = {};
    if (tokenizer) {
      fromTokenizer.vocabSize = tokenizer.vocabSize;
      fromTokenizer.specialIds = specialTokenIds(tokenizer);
      fromTokenizer.padTokenId = tokenizer.padId;
      fromTokenizer.maskTokenId = maskTokenIdOf(tokenizer);
      if (fromTokenizer.maskTokenId === undefined && options.maskTokenId === undefined)
        throw new ArgumentError(fn, 'the tokenizer has no mask token ([MASK] or <mask>) in its vocabulary; pass maskTokenId', 'maskTokenId');
      if (options.wholeWordMask) fromTokenizer.isContinuation = tokenizer;
    }
    const given = Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined));
    this.resolved = resolve(fn, { ...fromTokenizer, ...given } as ResolvableOptions);
    this.seed = checkSeed(fn, options.seed);
  }

  /** The masking settings in force (after the defaults). */
  get settings(): {
    maskTokenId: number;
    vocabSize: number;
    specialIds: number[];
    mlmProbability: number;
    maskReplaceProb: number;
    randomReplaceProb: number;
    wholeWordMask: boolean;
  } {
    const { maskTokenId, vocabSize, special, mlmProbability, maskReplaceProb, randomReplaceProb, wholeWordMask } = this.resolved;
    return { maskTokenId, vocabSize, specialIds: [...special].sort((a, b) => a - b), mlmProbability, maskReplaceProb, randomReplaceProb, wholeWordMask };
  }

  /** Masks one batch of ids [B, T]; `epoch` and `batchIndex` (default 0) key its randomness. */
  collate(inputIds: Tensor, at: { epoch?: number; batchIndex?: number; attentionMask?: Tensor } = {}): MaskedBatch {
    const fn = 'MaskedLMCollator.collate';
    return maskWith(fn, inputIds, this.resolved, this.seed, counter(fn, 'epoch', at?.epoch), counter(fn, 'batchIndex', at?.batchIndex), at?.attentionMask);
  }
}
