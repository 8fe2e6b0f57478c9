// BERT's WordPiece tokenizer (uncased and cased) from a vocab.txt or a
// Hugging Face tokenizer.json: BERT's text cleaning and punctuation split,
// greedy longest-match-first word pieces, [CLS]/[SEP] for single texts and
// pairs, truncation (longest first), padding, attention masks and token
// type ids.
import { readFileSync, statSync } from 'node:fs';
import type { Tensor } from '../tensor/tensor.js';
import { torch } from '../tensor/index.js';

export interface Encoding {
  ids: number[];
  tokens: string[];
  attentionMask: number[];
  tokenTypeIds: number[];
}
/** Pre-split words as pieces: `wordIds[i]` is the index of the word piece i came from. */
export interface WordsTokenization {
  tokens: string[];
  ids: number[];
  wordIds: number[];
}
/** An encoding of pre-split words; `wordIds` as transformers' `word_ids()`: null on special tokens and padding. */
export interface WordsEncoding extends Encoding {
  wordIds: Array<number | null>;
}
export interface EncodeOptions {
  maxLength?: number;
  truncation?: boolean;
  padding?: 'max_length' | 'longest' | false;
}

export const isWhitespace = (c: string) => c === ' ' || c === '\t' || c === '\n' || c === '\r' || /\s/u.test(c);
export const isControl = (c: string) => c !== '\t' && c !== '\n' && c !== '\r' && /\p{Cc}|\p{Cf}/u.test(c);
export function isPunctuation(c: string): boolean {
  const cp = c.codePointAt(0)!;
  if ((cp >= 33 && cp <= 47) || (cp >= 58 && cp <= 64) || (cp >= 91 && cp <= 96) || (cp >= 123 && cp <= 126)) return true;
  return /\p{P}/u.test(c);
}
export function isChinese(cp: number): boolean {
  return (
    (cp >= 0x4e00 && cp <= 0x9fff) ||
    (cp >= 0x3400 && cp <= 0x4dbf) ||
    (cp >= 0x20000 && cp <= 0x2a6df) ||
    (cp >= 0x2a700 && cp <= 0x2b73f) ||
    (cp >= 0x2b740 && cp <= 0x2b81f) ||
    (cp >= 0x2b820 && cp <= 0x2ceaf) ||
    (cp >= 0xf900 && cp <= 0xfaff) ||
    (cp >= 0x2f800 && cp <= 0x2fa1f)
  );
}

/**
 * Longest-first truncation of one or two token lists to `room` tokens, as
 * Hugging Face tokenizers computes it: the shorter keeps what it can, the
 * longer gets the rest; if both are long they share the room (the second one
 * gets the odd token).
 */
export function truncatePair(a: string[], b: string[] | null, room: number): [string[], string[] | null] {
  if (room < 0) throw new RangeError('encode: maxLength leaves no room for the special tokens');
  if (!b) return [a.slice(0, room), null];
  if (a.length + b.length <= room) return [a, b];
  const swap = a.length > b.length;
  let n1 = swap ? b.length : a.length;
  let n2 = swap ? a.length : b.length;
  n2 = n1 > room ? n1 : Math.max(n1, room - n1);
  if (n1 + n2 > room) {
    n1 = Math.floor(room / 2);
    n2 = n1 + (room % 2);
  }
  if (swap) [n1, n2] = [n2, n1];
  return [a.slice(0, n1), b.slice(0, n2)];
}

/** What the tokenizer constructors accept as a vocabulary: a file path, a token list (id = position) or token -> id. */
export type VocabSource = string | string[] | Map<string, number> | Record<string, number>;

export interface WordPieceOptions {
  lowercase?: boolean;
  maxInputCharsPerWord?: number;
  unkToken?: string;
}

const VOCAB_EXPECTED = 'a vocab.txt or tokenizer.json path, a token list (string[], id = position), or a Map / object of token -> id';

function describeValue(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'object') return `a ${(v as object).constructor?.name ?? 'null-prototype object'}`;
  return typeof v;
}

/** Reads a text file for a tokenizer, naming the file in every failure. */
export function readTokenizerFile(who: string, path: string): string {
  try {
    if (statSync(path).isDirectory()) throw new Error('it is a folder (pass the file inside it)');
    return readFileSync(path, 'utf8');
  } catch (err) {
    throw new TypeError(`${who}: cannot read ${path}: ${(err as Error).message}`);
  }
}

/** A token -> id Map from a token list, Map or plain object, checked; `who` names the caller in errors. */
export function tokenIds(who: string, vocab: unknown, expected: string): Map<string, number> {
  let entries: Array<[unknown, unknown]>;
  if (Array.isArray(vocab)) entries = vocab.map((t, i) => [t, i]);
  else if (vocab instanceof Map) entries = [...vocab.entries()];
  else if (vocab && typeof vocab === 'object' && [Object.prototype, null].includes(Object.getPrototypeOf(vocab))) entries = Object.entries(vocab);
  else throw new TypeError(`${who}: expected ${expected}; got ${describeValue(vocab)}`);
  const map = new Map<string, number>();
  for (const [t, id] of entries) {
    if (typeof t !== 'string') throw new TypeError(`${who}: vocabulary tokens must be strings, got ${describeValue(t)} (${String(t)})`);
    if (typeof id !== 'number' || !Number.isInteger(id) || id < 0)
      throw new TypeError(`${who}: the id of token ${JSON.stringify(t)} must be an integer >= 0, got ${JSON.stringify(id)}`);
    map.set(t, id);
  }
  if (!map.size) throw new TypeError(`${who}: the vocabulary is empty`);
  return map;
}

/** Parses a Hugging Face tokenizer.json and checks its model type. */
// biome-ignore lint/suspicious/noExplicitAny: tokenizer.json's parsed JSON, checked field by field by the callers
export function readTokenizerJson(who: string, path: string, type: 'WordPiece' | 'BPE'): Record<string, any> {
  // biome-ignore lint/suspicious/noExplicitAny: as above
  let json: Record<string, any>;
  try {
    json = JSON.parse(readTokenizerFile(who, path));
  } catch (err) {
    if (err instanceof TypeError) throw err;
    throw new TypeError(`${who}: ${path} is not valid JSON: ${(err as Error).message}`);
  }
  if (json?.model?.type !== type) throw new TypeError(`${path}: not a ${type} tokenizer (model.type is ${JSON.stringify(json?.model?.type)})`);
  return json;
}

/** The vocabulary and options of a WordPiece tokenizer.json. */
function wordPieceJson(path: string): { vocab: Map<string, number>; options: WordPieceOptions } {
  const json = readTokenizerJson('WordPieceTokenizer', path, 'WordPiece');
  const vocab = tokenIds('WordPieceTokenizer', json.model.vocab, 'model.vocab as token -> id');
  for (const t of json.added_tokens ?? []) vocab.set(t.content, t.id);
  const lowercase = json.normalizer?.lowercase ?? json.normalizer?.normalizers?.some((n: { type: string }) => n.type === 'Lowercase') ?? true;
  return { vocab, options: { lowercase, maxInputCharsPerWord: json.model.max_input_chars_per_word, unkToken: json.model.unk_token } };
}

/** The tokens of a vocab.txt, one per line (id = line number - 1). */
function vocabLines(path: string): string[] {
  const tokens = readTokenizerFile('WordPieceTokenizer', path).split('\n');
  if (tokens[tokens.length - 1] === '') tokens.pop();
  return tokens.map((t) => t.replace(/\r$/, ''));
}

const withoutUndefined = <T extends object>(o: T): Partial<T> => Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;

export class WordPieceTokenizer {
  private readonly vocab: Map<string, number>;
  private readonly inverse: string[];
  readonly options: WordPieceOptions;
  readonly clsId: number;
  readonly sepId: number;
  readonly padId: number;
  readonly unkId: number;

  /**
   * `vocab`: a vocab.txt path (one token per line), a tokenizer.json path
   * (its lowercase and unk token are used unless `options` says otherwise),
   * a token list (id = position), or a Map / object of token -> id.
   */
  constructor(vocab: VocabSource, options: WordPieceOptions = {}) {
    let fromFile: WordPieceOptions = {};
    if (typeof vocab === 'string') {
      if (vocab.toLowerCase().endsWith('.json')) {
        const json = wordPieceJson(vocab);
        vocab = json.vocab;
        fromFile = json.options;
      } else vocab = vocabLines(vocab);
    }
    this.vocab = tokenIds('WordPieceTokenizer', vocab, VOCAB_EXPECTED);
    this.options = { ...fromFile, ...withoutUndefined(options ?? {}) };
    this.inverse = [];
    for (const [t, i] of this.vocab) this.inverse[i] = t;
    const id = (t: string) => {
      const v = this.vocab.get(t);
      if (v === undefined) throw new Error(`WordPieceTokenizer: the vocab has no ${t} token`);
      return v;
    };
    this.clsId = id('[CLS]');
    this.sepId = id('[SEP]');
    this.padId = id('[PAD]');
    this.unkId = id(this.options.unkToken ?? '[UNK]');
  }

  /** One token per line, as BERT's vocab.txt. */
  static fromVocabFile(path: string, options: { lowercase?: boolean } = {}): WordPieceTokenizer {
    return new WordPieceTokenizer(vocabLines(path), { lowercase: options.lowercase ?? true });
  }

  /** A Hugging Face tokenizer.json with a WordPiece model. */
  static fromTokenizerJson(path: string): WordPieceTokenizer {
    const json = wordPieceJson(path);
    return new WordPieceTokenizer(json.vocab, json.options);
  }

  /** Token ids run from 0 to vocabSize - 1 (the largest id + 1): the embedding rows a model needs. */
  get vocabSize(): number {
    return this.inverse.length;
  }

  /** The id of a token, or undefined when the vocabulary lacks it (the masking collator looks up the mask and special tokens). */
  tokenToId(token: string): number | undefined {
    return this.vocab.get(token);
  }

  /** The token of an id, or undefined for an id outside the vocabulary. */
  idToToken(id: number): string | undefined {
    return this.inverse[id];
  }

  /** BERT's normalisation and pre-tokenisation: words and punctuation marks. */
  basicTokens(text: string): string[] {
    let clean = '';
    for (const c of text) {
      const cp = c.codePointAt(0)!;
      if (cp === 0 || cp === 0xfffd || isControl(c)) continue;
      if (isWhitespace(c)) clean += ' ';
      else if (isChinese(cp)) clean += ` ${c} `;
      else clean += c;
    }
    if (this.options.lowercase ?? true)
      clean = clean
        .toLowerCase()
        .normalize('NFD')
        .replace(/\p{Mn}/gu, '');
    const out: string[] = [];
    for (const word of clean.split(' ')) {
      if (!word) continue;
      let cur = '';
      for (const c of word) {
        if (isPunctuation(c)) {
          if (cur) out.push(cur);
          out.push(c);
          cur = '';
        } else cur += c;
      }
      if (cur) out.push(cur);
    }
    return out;
  }

  /** Word pieces of one word, greedy longest match first; [UNK] when it cannot be covered. */
  wordPieces(word: string): string[] {
    const chars = [...word];
    if (chars.length > (this.options.maxInputCharsPerWord ?? 100)) return [this.inverse[this.unkId]];
    const pieces: string[] = [];
    let start = 0;
    while (start < chars.length) {
      let end = chars.length;
      let found: string | null = null;
      while (start < end) {
        const piece = (start > 0 ? '##' : '') + chars.slice(start, end).join('');
        if (this.vocab.has(piece)) {
          found = piece;
          break;
        }
        end--;
      }
      if (found === null) return [this.inverse[this.unkId]];
      pieces.push(found);
      start = end;
    }
    return pieces;
  }

  tokenize(text: string): string[] {
    return this.basicTokens(text).flatMap((w) => this.wordPieces(w));
  }

  /**
   * Pieces of pre-split words, as transformers tokenizes with
   * `is_split_into_words=True`: each word goes through the normalisation and
   * punctuation split on its own, and every piece remembers its word. A word
   * that leaves no piece (only control characters, say) gets one [UNK], so
   * every word has a first piece (transformers drops such a word).
   */
  tokenizeWords(words: string[]): WordsTokenization {
    if (!Array.isArray(words)) throw new TypeError(`tokenizeWords: expected an array of words, got ${describeValue(words)}`);
    const tokens: string[] = [];
    const wordIds: number[] = [];
    words.forEach((word, w) => {
      if (typeof word !== 'string') throw new TypeError(`tokenizeWords: word ${w} is ${describeValue(word)}, not a string`);
      const pieces = this.tokenize(word);
      if (!pieces.length) pieces.push(this.inverse[this.unkId]);
      for (const p of pieces) {
        tokens.push(p);
        wordIds.push(w);
      }
    });
    return { tokens, ids: tokens.map((t) => this.vocab.get(t) ?? this.unkId), wordIds };
  }

  /** Pre-split words with [CLS] ... [SEP], truncated to maxLength (pieces, not words) and padded like `encode`. */
  encodeWords(words: string[], options: EncodeOptions = {}): WordsEncoding {
    let { tokens, ids, wordIds } = this.tokenizeWords(words);
    if (options.maxLength !== undefined && options.truncation !== false) {
      const room = options.maxLength - 2;
      if (room < 0) throw new RangeError(`encodeWords: maxLength ${options.maxLength} leaves no room for the special tokens`);
      [tokens, ids, wordIds] = [tokens.slice(0, room), ids.slice(0, room), wordIds.slice(0, room)];
    }
    const n = Math.max(0, options.padding === 'max_length' && options.maxLength !== undefined ? options.maxLength - ids.length - 2 : 0);
    return {
      ids: [this.clsId, ...ids, this.sepId, ...Array(n).fill(this.padId)],
      tokens: ['[CLS]', ...tokens, '[SEP]', ...Array(n).fill('[PAD]')],
      attentionMask: [...Array(ids.length + 2).fill(1), ...Array(n).fill(0)],
      tokenTypeIds: Array(ids.length + 2 + n).fill(0),
      wordIds: [null, ...wordIds, null, ...Array(n).fill(null)],
    };
  }

  encode(text: string, pair?: string | null, options: EncodeOptions = {}): Encoding {
    let a = this.tokenize(text);
    let b = pair == null ? null : this.tokenize(pair);
    const specials = b ? 3 : 2;
    if (options.maxLength !== undefined && options.truncation !== false) {
      const room = options.maxLength - specials;
      if (room < 0) throw new RangeError(`encode: maxLength ${options.maxLength} leaves no room for the special tokens`);
      [a, b] = truncatePair(a, b, room);
    }
    const tokens = ['[CLS]', ...a, '[SEP]', ...(b ? [...b, '[SEP]'] : [])];
    const tokenTypeIds = [...Array(a.length + 2).fill(0), ...(b ? Array(b.length + 1).fill(1) : [])];
    const ids = tokens.map((t) => this.vocab.get(t) ?? this.unkId);
    const attentionMask = ids.map(() => 1);
    if (options.padding === 'max_length' && options.maxLength !== undefined) return this.pad({ ids, tokens, attentionMask, tokenTypeIds }, options.maxLength);
    return { ids, tokens, attentionMask, tokenTypeIds };
  }

  private pad(e: Encoding, length: number): Encoding {
    const n = Math.max(0, length - e.ids.length);
    return {
      ids: [...e.ids, ...Array(n).fill(this.padId)],
      tokens: [...e.tokens, ...Array(n).fill('[PAD]')],
      attentionMask: [...e.attentionMask, ...Array(n).fill(0)],
      tokenTypeIds: [...e.tokenTypeIds, ...Array(n).fill(0)],
    };
  }

  /** A batch as int64 tensors [B, T], padded to the longest (or maxLength with padding 'max_length'). */
  encodeBatch(texts: string[], options: EncodeOptions & { pairs?: string[] } = {}): { inputIds: Tensor; attentionMask: Tensor; tokenTypeIds: Tensor } {
    const encs = texts.map((t, i) => this.encode(t, options.pairs?.[i] ?? null, { ...options, padding: false }));
    const length = options.padding === 'max_length' && options.maxLength ? options.maxLength : Math.max(...encs.map((e) => e.ids.length));
    const padded = encs.map((e) => this.pad(e, length));
    const t = (k: 'ids' | 'attentionMask' | 'tokenTypeIds') =>
      torch.tensor(
        padded.map((e) => e[k]),
        { dtype: 'int64' },
      );
    return { inputIds: t('ids'), attentionMask: t('attentionMask'), tokenTypeIds: t('tokenTypeIds') };
  }

  decode(ids: number[], options: { skipSpecialTokens?: boolean } = {}): string {
    const special = new Set(['[CLS]', '[SEP]', '[PAD]']);
    const tokens = ids.map((i) => this.inverse[i] ?? this.inverse[this.unkId]).filter((t) => !(options.skipSpecialTokens && special.has(t)));
    return tokens.join(' ').replace(/ ##/g, '');
  }
}
