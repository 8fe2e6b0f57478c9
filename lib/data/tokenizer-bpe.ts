// RoBERTa's byte-level BPE (GPT-2's scheme) from vocab.json + merges.txt or a
// Hugging Face tokenizer.json: bytes mapped to printable characters, GPT-2's
// pre-tokenisation regex, merges applied by rank, <s> ... </s> around a text
// and <s> A </s></s> B </s> around a pair.
import type { Tensor } from '../tensor/tensor.js';
import { torch } from '../tensor/index.js';
import type { Encoding, EncodeOptions, VocabSource, WordsEncoding, WordsTokenization } from './tokenizer.js';
import { readTokenizerFile, readTokenizerJson, tokenIds, truncatePair } from './tokenizer.js';

/** Merges from a merges.txt path or a list ("a b" or ["a", "b"]), checked. */
function mergeList(who: string, merges: string | Array<[string, string] | string>): Array<[string, string]> {
  const list: unknown[] =
    typeof merges === 'string'
      ? readTokenizerFile(who, merges)
          .split('\n')
          .map((l) => l.replace(/\r$/, ''))
          .filter((l) => l && !l.startsWith('#version'))
      : merges;
  if (!Array.isArray(list)) throw new TypeError(`${who}: merges must be a merges.txt path or a list of "a b" pairs, got ${typeof merges}`);
  return list.map((m, i) => {
    const pair = typeof m === 'string' ? m.split(' ') : m;
    if (!Array.isArray(pair) || pair.length !== 2 || pair.some((x) => typeof x !== 'string'))
      throw new TypeError(`${who}: merge ${i + 1} must be "a b" or ["a", "b"], got ${JSON.stringify(m)}`);
    return pair as [string, string];
  });
}

// GPT-2's reversible byte -> unicode table: printable bytes map to themselves.
function byteToUnicode(): string[] {
  const keep: number[] = [];
  for (let b = 33; b <= 126; b++) keep.push(b);
  for (let b = 161; b <= 172; b++) keep.push(b);
  for (let b = 174; b <= 255; b++) keep.push(b);
  const table: string[] = new Array(256);
  let extra = 0;
  for (let b = 0; b < 256; b++) table[b] = String.fromCodePoint(keep.includes(b) ? b : 256 + extra++);
  return table;
}
const BYTE_TO_UNICODE = byteToUnicode();
const PRETOKEN = /'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+/gu;

export class ByteLevelBPETokenizer {
  private readonly vocab: Map<string, number>;
  readonly options: { addPrefixSpace?: boolean };
  private readonly inverse: string[] = [];
  private readonly ranks = new Map<string, number>();
  private readonly cache = new Map<string, string[]>();
  readonly bosId: number;
  readonly eosId: number;
  readonly padId: number;

  /**
   * `vocab`: a vocab.json path, a tokenizer.json path (then no `merges`: they
   * come from the file, with its add_prefix_space), a token list (id =
   * position), or a Map / object of token -> id. `merges`: a merges.txt path or a list of merges, each
   * "a b" or ["a", "b"], in rank order.
   */
  constructor(vocab: VocabSource, merges?: string | Array<[string, string] | string>, options: { addPrefixSpace?: boolean } = {}) {
    const who = 'ByteLevelBPETokenizer';
    let fromFile: { addPrefixSpace?: boolean } = {};
    if (typeof vocab === 'string' && merges === undefined) {
      const json = readTokenizerJson(who, vocab, 'BPE');
      vocab = json.model.vocab as Record<string, number>;
      merges = json.model.merges as Array<string | [string, string]>;
      fromFile = { addPrefixSpace: json.pre_tokenizer?.add_prefix_space ?? false };
      this.vocab = tokenIds(who, vocab, 'model.vocab as token -> id');
      for (const t of json.added_tokens ?? []) this.vocab.set(t.content, t.id);
    } else {
      if (typeof vocab === 'string') {
        let parsed: unknown;
        try {
          parsed = JSON.parse(readTokenizerFile(who, vocab));
        } catch (err) {
          if (err instanceof TypeError) throw err;
          throw new TypeError(`${who}: ${vocab} is not valid JSON: ${(err as Error).message}`);
        }
        this.vocab = tokenIds(`${who}: ${vocab}`, parsed, 'a JSON object of token -> id');
      } else this.vocab = tokenIds(who, vocab, 'a vocab.json or tokenizer.json path, a token list (string[], id = position), or a Map / object of token -> id');
      if (merges === undefined)
        throw new TypeError(`${who}: a vocabulary needs its merges (a merges.txt path or a list of "a b" pairs); or pass one tokenizer.json path`);
    }
    this.options = { ...fromFile, ...(options?.addPrefixSpace === undefined ? {} : { addPrefixSpace: options.addPrefixSpace }) };
    for (const [t, i] of this.vocab) this.inverse[i] = t;
    mergeList(who, merges).forEach(([a, b], i) => this.ranks.set(`${a} ${b}`, i));
    const id = (t: string) => {
      const v = this.vocab.get(t);
      if (v === undefined) throw new Error(`ByteLevelBPETokenizer: the vocab has no ${t} token`);
      return v;
    };
    this.bosId = id('<s>');
    this.eosId = id('</s>');
    this.padId = id('<pad>');
  }

  static fromFiles(vocabJson: string, mergesTxt: string): ByteLevelBPETokenizer {
    return new ByteLevelBPETokenizer(vocabJson, mergesTxt);
  }

  static fromTokenizerJson(path: string): ByteLevelBPETokenizer {
    return new ByteLevelBPETokenizer(path);
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

  private bpe(word: string): string[] {
    const cached = this.cache.get(word);
    if (cached) return cached;
    let symbols = [...word];
    for (;;) {
      let best = -1;
      let bestRank = Infinity;
      for (let i = 0; i + 1 < symbols.length; i++) {
        const r = this.ranks.get(`${symbols[i]} ${symbols[i + 1]}`);
        if (r !== undefined && r < bestRank) {
          bestRank = r;
          best = i;
        }
      }
      if (best < 0) break;
      const [a, b] = [symbols[best], symbols[best + 1]];
      const merged: string[] = [];
      for (let i = 0; i < symbols.length; i++) {
        if (i + 1 < symbols.length && symbols[i] === a && symbols[i + 1] === b) {
          merged.push(a + b);
          i++;
        } else merged.push(symbols[i]);
      }
      symbols = merged;
    }
    this.cache.set(word, symbols);
    return symbols;
  }

  tokenize(text: string): string[] {
    const input = this.options.addPrefixSpace && !text.startsWith(' ') ? ' ' + text : text;
    const out: string[] = [];
    for (const m of input.matchAll(PRETOKEN)) {
      const mapped = [...Buffer.from(m[0], 'utf8')].map((b) => BYTE_TO_UNICODE[b]).join('');
      out.push(...this.bpe(mapped));
    }
    return out;
  }

  private pieceId(t: string): number {
    const id = this.vocab.get(t);
    if (id === undefined) throw new Error(`ByteLevelBPETokenizer: no id for piece ${JSON.stringify(t)} (vocab and merges do not match)`);
    return id;
  }

  /**
   * Pieces of pre-split words, as transformers' RoBERTa tokenizer with
   * `is_split_into_words=True` and `add_prefix_space=True` (which it requires
   * for pre-split words): every word is tokenized as " " + word, so each starts
   * with a space piece; every piece remembers its word.
   */
  tokenizeWords(words: string[]): WordsTokenization {
    if (!Array.isArray(words)) throw new TypeError('tokenizeWords: expected an array of words');
    const tokens: string[] = [];
    const wordIds: number[] = [];
    words.forEach((word, w) => {
      if (typeof word !== 'string') throw new TypeError(`tokenizeWords: word ${w} is ${word === null ? 'null' : typeof word}, not a string`);
      for (const p of this.tokenize(` ${word}`)) {
        tokens.push(p);
        wordIds.push(w);
      }
    });
    return { tokens, ids: tokens.map((t) => this.pieceId(t)), wordIds };
  }

  /** Pre-split words with <s> ... </s>, truncated to maxLength (pieces) and padded like `encode`. */
  encodeWords(words: string[], options: EncodeOptions = {}): WordsEncoding {
    let { tokens, ids, wordIds } = this.tokenizeWords(words);
    if (options.maxLength !== undefined && options.truncation !== false) {
      const room = options.maxLength - 2;
      if (room < 0) throw new RangeError(`encodeWords: maxLength ${options.maxLength} leaves no room for the special tokens`);
      [tokens, ids, wordIds] = [tokens.slice(0, room), ids.slice(0, room), wordIds.slice(0, room)];
    }
    const n = Math.max(0, options.padding === 'max_length' && options.maxLength !== undefined ? options.maxLength - ids.length - 2 : 0);
    return {
      ids: [this.bosId, ...ids, this.eosId, ...Array(n).fill(this.padId)],
      tokens: ['<s>', ...tokens, '</s>', ...Array(n).fill('<pad>')],
      attentionMask: [...Array(ids.length + 2).fill(1), ...Array(n).fill(0)],
      tokenTypeIds: Array(ids.length + 2 + n).fill(0),
      wordIds: [null, ...wordIds, null, ...Array(n).fill(null)],
    };
  }

  encode(text: string, pair?: string | null, options: EncodeOptions = {}): Encoding {
    let a = this.tokenize(text);
    let b = pair == null ? null : this.tokenize(pair);
    if (options.maxLength !== undefined && options.truncation !== false) [a, b] = truncatePair(a, b, options.maxLength - (b ? 4 : 2));
    const tokens = ['<s>', ...a, '</s>', ...(b ? ['</s>', ...b, '</s>'] : [])];
    const ids = tokens.map((t) => {
      const id = this.vocab.get(t);
      if (id === undefined) throw new Error(`ByteLevelBPETokenizer: no id for piece ${JSON.stringify(t)} (vocab and merges do not match)`);
      return id;
    });
    const tokenTypeIds = ids.map(() => 0);
    const enc = { ids, tokens, attentionMask: ids.map(() => 1), tokenTypeIds };
    return options.padding === 'max_length' && options.maxLength !== undefined ? this.pad(enc, options.maxLength) : enc;
  }

  private pad(e: Encoding, length: number): Encoding {
    const n = Math.max(0, length - e.ids.length);
    return {
      ids: [...e.ids, ...Array(n).fill(this.padId)],
      tokens: [...e.tokens, ...Array(n).fill('<pad>')],
      attentionMask: [...e.attentionMask, ...Array(n).fill(0)],
      tokenTypeIds: [...e.tokenTypeIds, ...Array(n).fill(0)],
    };
  }

  encodeBatch(texts: string[], options: EncodeOptions & { pairs?: string[] } = {}): { inputIds: Tensor; attentionMask: Tensor } {
    const encs = texts.map((t, i) => this.encode(t, options.pairs?.[i] ?? null, { ...options, padding: false }));
    const length = options.padding === 'max_length' && options.maxLength ? options.maxLength : Math.max(...encs.map((e) => e.ids.length));
    const padded = encs.map((e) => this.pad(e, length));
    return {
      inputIds: torch.tensor(
        padded.map((e) => e.ids),
        { dtype: 'int64' },
      ),
      attentionMask: torch.tensor(
        padded.map((e) => e.attentionMask),
        { dtype: 'int64' },
      ),
    };
  }

  decode(ids: number[], options: { skipSpecialTokens?: boolean } = {}): string {
    const special = new Set(['<s>', '</s>', '<pad>']);
    const unicodeToByte = new Map(BYTE_TO_UNICODE.map((c, b) => [c, b]));
    const text = ids
      .map((i) => this.inverse[i] ?? '')
      .filter((t) => !(options.skipSpecialTokens && special.has(t)))
      .join('');
    return Buffer.from([...text].map((c) => unicodeToByte.get(c) ?? 63)).toString('utf8');
  }
}
