// Training a WordPiece vocabulary (vocab.txt) from text, as Hugging Face
// tokenizers' WordPieceTrainer does (it is its BpeTrainer with a '##'
// continuation prefix; tokenizers 0.23, src/models/bpe/trainer.rs):
//  1. words are counted after BERT's normalisation and pre-tokenisation (the
//     same code as WordPieceTokenizer.basicTokens, so training and encoding
//     split text identically);
//  2. the vocabulary starts with the special tokens, then the alphabet: every
//     character seen, the limitAlphabet most frequent when there are more,
//     in code point order (characters left out are dropped from the words,
//     as there);
//  3. each word becomes its first character and '##'-prefixed later ones
//     (each new '##c' joins the vocabulary);
//  4. the most frequent adjacent pair (counted over word frequencies) is merged
//     into one token ('a' + '##b' -> 'ab', '##a' + '##b' -> '##ab'), repeatedly,
//     until the vocabulary has vocabSize tokens or no pair occurs minFrequency
//     times. Pair counts are updated incrementally from the words that hold the
//     merged pair, with a lazy max-heap, so a merge costs what it changes.
// Ties between equally frequent pairs go to the pair of smaller ids (there, ids
// of the '##' characters follow hash-map order, so the vocabularies can differ
// in the order of ties; both tokenize with greedy longest match).
import { ArgumentError } from '../errors.js';
import { writeAll, writeAtomic } from '../io/atomic.js';
import { WordPieceTokenizer } from './tokenizer.js';

export interface TrainWordPieceOptions {
  /** The vocabulary's size, special tokens and alphabet included (fewer when the text runs out of pairs). */
  vocabSize: number;
  /** A pair is merged only if it occurs at least this often; default 2 (as tokenizers' BertWordPieceTokenizer.train). */
  minFrequency?: number;
  /** Lowercase and strip accents, as BERT uncased (default true); the same setting must be used to tokenize. */
  lowercase?: boolean;
  /** First in the vocabulary, in this order; default [PAD] [UNK] [CLS] [SEP] [MASK]. */
  specialTokens?: string[];
  /** Keep at most this many characters (the most frequent); default 1000. */
  limitAlphabet?: number;
  /** Marks a piece that continues a word; default '##' (the one WordPieceTokenizer reads). */
  continuingSubwordPrefix?: string;
}

/** What training saw and did. */
export interface WordPieceTrainingStats {
  /** Words (BERT pre-tokens) counted in the texts. */
  words: number;
  uniqueWords: number;
  /** Characters kept in the alphabet. */
  alphabet: number;
  merges: number;
  seconds: number;
}

/** A trained vocabulary: tokens in id order, with ways to save and use it. */
export class WordPieceVocabulary {
  constructor(
    /** The tokens, id = position: special tokens, the alphabet, '##' characters, merged tokens. */
    readonly vocab: string[],
    /** Whether the text was lowercased for training; tokenize with the same. */
    readonly lowercase: boolean,
    readonly stats: WordPieceTrainingStats,
  ) {}

  /** The vocab.txt text: one token per line, id = line number - 1. */
  text(): string {
    return `${this.vocab.join('\n')}\n`;
  }

  /** Writes vocab.txt (atomically: a temporary file renamed into place). */
  saveVocab(path: string): void {
    const bytes = Buffer.from(this.text(), 'utf8');
    writeAtomic(path, (fd) => writeAll(fd, bytes));
  }

  /** A WordPieceTokenizer on this vocabulary with the training's lowercase setting. */
  tokenizer(): WordPieceTokenizer {
    return new WordPieceTokenizer(this.vocab, { lowercase: this.lowercase });
  }
}

// BERT's whitespace (what WordPieceTokenizer turns into a space): JavaScript's
// \s without \v, \f and U+FEFF, which BERT's cleaning drops as control characters.
const BERT_SPACE = /[ \t\n\r\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+/;

/** A max-heap of (count, pair) with ties to the smaller pair key. */
class PairHeap {
  private counts: number[] = [];
  private keys: number[] = [];

  get size(): number {
    return this.counts.length;
  }

  private above(i: number, j: number): boolean {
    const c = this.counts;
    return c[i] > c[j] || (c[i] === c[j] && this.keys[i] < this.keys[j]);
  }

  private swap(i: number, j: number): void {
    [this.counts[i], this.counts[j]] = [this.counts[j], this.counts[i]];
    [this.keys[i], this.keys[j]] = [this.keys[j], this.keys[i]];
  }

  push(count: number, key: number): void {
    this.counts.push(count);
    this.keys.push(key);
    let i = this.counts.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.above(i, parent)) break;
      this.swap(i, parent);
      i = parent;
    }
  }

  pop(): [number, number] {
    const top: [number, number] = [this.counts[0], this.keys[0]];
    const lastCount = this.counts.pop()!;
    const lastKey = this.keys.pop()!;
    if (this.counts.length) {
      this.counts[0] = lastCount;
      this.keys[0] = lastKey;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let best = i;
        if (l < this.counts.length && this.above(l, best)) best = l;
        if (r < this.counts.length && this.above(r, best)) best = r;
        if (best === i) break;
        this.swap(i, best);
        i = best;
      }
    }
    return top;
  }
}

const PAIR = 2 ** 21; // pair key = a * PAIR + b; ids stay below 2^21

function checkOptions(fn: string, options: TrainWordPieceOptions): Required<TrainWordPieceOptions> {
  if (!options || typeof options !== 'object') throw new ArgumentError(fn, 'options must be an object with at least vocabSize', 'options');
  const integer = (name: string, v: unknown, min: number, fallback?: number): number => {
    if (v === undefined && fallback !== undefined) return fallback;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v >= PAIR)
      throw new ArgumentError(fn, `${name} must be an integer in [${min}, ${PAIR}), got ${String(v)}`, name);
    return v;
  };
  const specialTokens = options.specialTokens ?? ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]'];
  if (!Array.isArray(specialTokens)) throw new ArgumentError(fn, 'specialTokens must be an array of strings', 'specialTokens');
  specialTokens.forEach((t, i) => {
    if (typeof t !== 'string' || !t || /\s/.test(t))
      throw new ArgumentError(fn, `specialTokens[${i}] must be a non-empty string without whitespace, got ${JSON.stringify(t)}`, 'specialTokens');
  });
  if (new Set(specialTokens).size !== specialTokens.length)
    throw new ArgumentError(fn, `specialTokens has duplicates: ${JSON.stringify(specialTokens)}`, 'specialTokens');
  const missing = ['[PAD]', '[UNK]', '[CLS]', '[SEP]'].filter((t) => !specialTokens.includes(t));
  if (missing.length) throw new ArgumentError(fn, `specialTokens must include ${missing.join(' ')} (WordPieceTokenizer needs them)`, 'specialTokens');
  const vocabSize = integer('vocabSize', options.vocabSize, specialTokens.length + 1);
  const prefix = options.continuingSubwordPrefix ?? '##';
  if (typeof prefix !== 'string' || !prefix || /\s/.test(prefix))
    throw new ArgumentError(
      fn,
      `continuingSubwordPrefix must be a non-empty string without whitespace, got ${JSON.stringify(prefix)}`,
      'continuingSubwordPrefix',
    );
  const lowercase = options.lowercase ?? true;
  if (typeof lowercase !== 'boolean') throw new ArgumentError(fn, `lowercase must be a boolean, got ${String(lowercase)}`, 'lowercase');
  return {
    vocabSize,
    minFrequency: integer('minFrequency', options.minFrequency, 0, 2),
    lowercase,
    specialTokens,
    limitAlphabet: integer('limitAlphabet', options.limitAlphabet, 1, 1000),
    continuingSubwordPrefix: prefix,
  };
}

/** Word counts of the texts, after BERT's cleaning, lowercasing and punctuation split. */
function countWords(fn: string, texts: Iterable<string>, lowercase: boolean): Map<string, number> {
  if (texts === null || typeof texts !== 'object' || typeof (texts as Iterable<string>)[Symbol.iterator] !== 'function')
    throw new ArgumentError(fn, 'texts must be an array or other iterable of strings', 'texts');
  // whitespace-separated chunks first: most repeat, and each is split the BERT way once
  const chunks = new Map<string, number>();
  let index = 0;
  for (const text of texts) {
    if (typeof text !== 'string') throw new ArgumentError(fn, `texts[${index}] is ${text === null ? 'null' : typeof text}, not a string`, 'texts');
    for (const chunk of text.split(BERT_SPACE)) if (chunk) chunks.set(chunk, (chunks.get(chunk) ?? 0) + 1);
    index++;
  }
  const splitter = new WordPieceTokenizer(['[PAD]', '[UNK]', '[CLS]', '[SEP]'], { lowercase });
  const words = new Map<string, number>();
  for (const [chunk, n] of chunks) for (const word of splitter.basicTokens(chunk)) words.set(word, (words.get(word) ?? 0) + n);
  return words;
}

/**
 * Trains a WordPiece vocabulary on the texts (see the top of this file for the
 * algorithm). The result's vocab.txt loads into WordPieceTokenizer (with the
 * same lowercase setting) and Hugging Face's BertWordPieceTokenizer /
 * BertTokenizerFast.
 */
export function trainWordPiece(texts: Iterable<string>, options: TrainWordPieceOptions): WordPieceVocabulary {
  const fn = 'data.trainWordPiece';
  const started = performance.now();
  const o = checkOptions(fn, options);
  const wordCounts = countWords(fn, texts, o.lowercase);
  const entries = [...wordCounts].sort((x, y) => y[1] - x[1] || (x[0] < y[0] ? -1 : x[0] > y[0] ? 1 : 0));

  const vocab: string[] = [];
  const ids = new Map<string, number>();
  const add = (token: string): number => {
    let id = ids.get(token);
    if (id === undefined) {
      id = vocab.length;
      vocab.push(token);
      ids.set(token, id);
    }
    return id;
  };
  for (const t of o.specialTokens) add(t);

  // the alphabet: the most frequent characters, in code point order
  const charCounts = new Map<string, number>();
  for (const [word, n] of entries) for (const c of word) charCounts.set(c, (charCounts.get(c) ?? 0) + n);
  let alphabet = [...charCounts];
  if (alphabet.length > o.limitAlphabet)
    alphabet = alphabet.sort((x, y) => y[1] - x[1] || x[0].codePointAt(0)! - y[0].codePointAt(0)!).slice(0, o.limitAlphabet);
  alphabet.sort((x, y) => x[0].codePointAt(0)! - y[0].codePointAt(0)!);
  for (const [c] of alphabet) add(c);
  const inAlphabet = new Set(alphabet.map(([c]) => c));

  // words as symbol ids: the first character, then '##' characters
  const words: number[][] = [];
  const counts: number[] = [];
  let totalWords = 0;
  for (const [word, n] of entries) {
    totalWords += n;
    const symbols: number[] = [];
    let first = true;
    for (const c of word) {
      if (!inAlphabet.has(c)) {
        first = false;
        continue;
      }
      symbols.push(add(first ? c : o.continuingSubwordPrefix + c));
      first = false;
    }
    words.push(symbols);
    counts.push(n);
  }

  // pair counts and the words each pair occurs in
  const pairCounts = new Map<number, number>();
  const where = new Map<number, number[]>();
  const addPair = (key: number, delta: number, w: number) => {
    pairCounts.set(key, (pairCounts.get(key) ?? 0) + delta);
    if (delta > 0) {
      const list = where.get(key);
      if (list === undefined) where.set(key, [w]);
      else if (list[list.length - 1] !== w) list.push(w);
    }
  };
  words.forEach((s, w) => {
    for (let i = 0; i + 1 < s.length; i++) addPair(s[i] * PAIR + s[i + 1], counts[w], w);
  });
  const heap = new PairHeap();
  for (const [key, n] of pairCounts) if (n > 0) heap.push(n, key);

  const visited = new Int32Array(words.length).fill(-1);
  let merges = 0;
  while (vocab.length < o.vocabSize && heap.size) {
    const [count, key] = heap.pop();
    const current = pairCounts.get(key) ?? 0;
    if (count !== current) {
      if (current > 0) heap.push(current, key);
      continue;
    }
    if (count < 1 || count < o.minFrequency) break;
    const a = Math.floor(key / PAIR);
    const b = key % PAIR;
    const right = vocab[b].startsWith(o.continuingSubwordPrefix) ? vocab[b].slice(o.continuingSubwordPrefix.length) : vocab[b];
    const merged = add(vocab[a] + right);
    merges++;
    const touched = new Set<number>();
    for (const w of where.get(key) ?? []) {
      if (visited[w] === merges) continue;
      visited[w] = merges;
      const s = words[w];
      const n = counts[w];
      let out = 0;
      for (let i = 0; i < s.length; i++) {
        if (i + 1 < s.length && s[i] === a && s[i + 1] === b) {
          if (out > 0) {
            const prev = s[out - 1];
            addPair(prev * PAIR + a, -n, w);
            addPair(prev * PAIR + merged, n, w);
            touched.add(prev * PAIR + merged);
          }
          addPair(key, -n, w);
          if (i + 2 < s.length) {
            const next = s[i + 2];
            addPair(b * PAIR + next, -n, w);
            addPair(merged * PAIR + next, n, w);
            touched.add(merged * PAIR + next);
          }
          s[out++] = merged;
          i++;
        } else s[out++] = s[i];
      }
      s.length = out;
    }
    for (const t of touched) {
      const n = pairCounts.get(t)!;
      if (n > 0) heap.push(n, t);
    }
  }
  for (const t of vocab)
    if (/[\n\r]/.test(t)) throw new ArgumentError(fn, `internal: token ${JSON.stringify(t)} holds a line break and cannot be written to vocab.txt`);
  const stats = { words: totalWords, uniqueWords: entries.length, alphabet: alphabet.length, merges, seconds: (performance.now() - started) / 1000 };
  return new WordPieceVocabulary(vocab, o.lowercase, stats);
}
