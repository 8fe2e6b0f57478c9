// Token-classification data: words with character offsets, character spans
// <-> word tags, CoNLL and JSONL-spans readers, word labels aligned to
// sub-word pieces as transformers' run_ner does (tokenize_and_align_labels),
// long documents cut into overlapping windows that never split a word, the
// windows' word predictions merged back, and first pieces packed into a
// left-aligned word sequence for a CRF.
import { readFileSync } from 'node:fs';
import { ArgumentError, DataError } from '../errors.js';
import type { Tensor } from '../tensor/tensor.js';
import { torch } from '../tensor/index.js';
import { isChinese, isControl, isPunctuation, isWhitespace } from './tokenizer.js';
import type { WordsTokenization } from './tokenizer.js';
import { type Canonical, type TagScheme, canonicalScheme, convertTags, entitiesToTags, getEntities } from './tag-schemes.js';

/** A labelled stretch of text: character offsets [start, end) into the document's text. */
export interface Span {
  start: number;
  end: number;
  label: string;
}

/** Per word, its [start, end) character offsets into the text. */
export type Offsets = Array<[number, number]>;

// ---------------------------------------------------------------- words

/** Characters BERT's text cleaning deletes (they join the text around them). */
const isRemoved = (c: string, cp: number) => cp === 0 || cp === 0xfffd || isControl(c);

/**
 * Splits raw text into words as BERT's basic tokenizer does, keeping where
 * each word is: whitespace separates words; every punctuation mark and CJK
 * character is a word of its own; control characters BERT deletes join the
 * characters around them (they stay inside a word's offsets but never start
 * or end one). Offsets are JavaScript string indices (UTF-16 code units),
 * end exclusive: `text.slice(start, end) === word`.
 */
export function splitWords(text: string): { words: string[]; offsets: Offsets } {
  if (typeof text !== 'string') throw new ArgumentError('splitWords', `expected a string, got ${text === null ? 'null' : typeof text}`);
  const offsets: Offsets = [];
  let start = -1;
  let end = -1;
  const flush = () => {
    if (start >= 0) offsets.push([start, end]);
    start = -1;
  };
  for (let i = 0; i < text.length; ) {
    const cp = text.codePointAt(i)!;
    const c = String.fromCodePoint(cp);
    const next = i + c.length;
    if (isRemoved(c, cp)) {
      // deleted by BERT: neither a separator nor a word
    } else if (isWhitespace(c)) flush();
    else if (isPunctuation(c) || isChinese(cp)) {
      flush();
      offsets.push([i, next]);
    } else {
      if (start < 0) start = i;
      end = next;
    }
    i = next;
  }
  flush();
  return { words: offsets.map(([s, e]) => text.slice(s, e)), offsets };
}

// ---------------------------------------------------------------- spans <-> tags

const checkScheme = (fn: string, scheme: unknown): Canonical => canonicalScheme(scheme, fn);

function checkOffsets(fn: string, offsets: unknown): Offsets {
  if (!Array.isArray(offsets)) throw new ArgumentError(fn, 'offsets must be an array of [start, end] pairs (as splitWords returns)');
  offsets.forEach((o, i) => {
    if (!Array.isArray(o) || o.length !== 2 || !Number.isInteger(o[0]) || !Number.isInteger(o[1]) || o[0] < 0 || o[1] <= o[0])
      throw new ArgumentError(fn, `offsets[${i}] must be [start, end] with integers 0 <= start < end; got ${JSON.stringify(o)}`);
    if (i > 0 && o[0] < offsets[i - 1][1]) throw new ArgumentError(fn, `offsets[${i}] ${JSON.stringify(o)} starts before offsets[${i - 1}] ends`);
  });
  return offsets as Offsets;
}

const describeSpan = (s: Span, i: number) => `span ${i} ${JSON.stringify({ start: s.start, end: s.end, label: s.label })}`;

/** A span that is wrong for the words it is laid on; `detail` is the message without the caller's name. */
class SpanError extends Error {}

/** The checked spans, sorted by start, each with its index in the input. */
function checkSpans(spans: unknown, textLength?: number): Array<{ span: Span; index: number }> {
  if (!Array.isArray(spans)) throw new SpanError(`spans must be an array of { start, end, label }; got ${spans === null ? 'null' : typeof spans}`);
  const checked = spans.map((s, index) => {
    if (!s || typeof s !== 'object' || Array.isArray(s)) throw new SpanError(`span ${index} must be an object { start, end, label }; got ${JSON.stringify(s)}`);
    const { start, end, label } = s as Record<string, unknown>;
    if (!Number.isInteger(start) || !Number.isInteger(end)) throw new SpanError(`span ${index}: start and end must be integers; got ${JSON.stringify(s)}`);
    if (typeof label !== 'string' || label === '' || /\s/.test(label))
      throw new SpanError(`span ${index}: label must be a non-empty string without whitespace; got ${JSON.stringify(s)}`);
    const span = { start, end, label } as Span;
    if (span.start < 0 || span.end <= span.start) throw new SpanError(`${describeSpan(span, index)}: needs 0 <= start < end`);
    if (textLength !== undefined && span.end > textLength)
      throw new SpanError(`${describeSpan(span, index)} is out of range: the text has ${textLength} characters`);
    return { span, index };
  });
  checked.sort((a, b) => a.span.start - b.span.start || a.span.end - b.span.end);
  for (let i = 1; i < checked.length; i++) {
    const [a, b] = [checked[i - 1], checked[i]];
    if (b.span.start < a.span.end) throw new SpanError(`${describeSpan(b.span, b.index)} overlaps ${describeSpan(a.span, a.index)}`);
  }
  return checked;
}

function spanTags(offsets: Offsets, spans: unknown, scheme: TagScheme, textLength?: number): string[] {
  const owner: number[] = offsets.map(() => -1);
  const entities: Array<{ type: string; start: number; end: number }> = [];
  for (const { span, index } of checkSpans(spans, textLength)) {
    // A boundary inside a word takes the whole word: the span gets every word it overlaps.
    // the first word ending after the span's start (offsets are sorted), then the words starting before its end
    let lo = 0;
    let hi = offsets.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (offsets[mid][1] <= span.start) lo = mid + 1;
      else hi = mid;
    }
    const first = lo < offsets.length && offsets[lo][0] < span.end ? lo : -1;
    let last = first;
    while (last >= 0 && last + 1 < offsets.length && offsets[last + 1][0] < span.end) last++;
    if (first < 0) throw new SpanError(`${describeSpan(span, index)} covers no word (only whitespace or deleted characters)`);
    for (let w = first; w <= last; w++) {
      if (owner[w] >= 0)
        throw new SpanError(
          `${describeSpan(span, index)} and span ${owner[w]} fall in the same word ${w} [${offsets[w][0]}, ${offsets[w][1]}): a word can have one tag`,
        );
      owner[w] = index;
    }
    entities.push({ type: span.label, start: first, end: last + 1 });
  }
  return entitiesToTags(entities, offsets.length, scheme);
}

/**
 * Word tags in `scheme` from character spans. A span whose boundary falls
 * inside a word takes that whole word (every word it overlaps is in the
 * entity). Overlapping spans, two spans in one word, and a span that covers no
 * word are errors.
 */
export function spansToTags(offsets: Offsets, spans: Span[], scheme: TagScheme = 'IOB2'): string[] {
  const fn = 'spansToTags';
  try {
    return spanTags(checkOffsets(fn, offsets), spans, checkScheme(fn, scheme));
  } catch (err) {
    if (err instanceof SpanError) throw new ArgumentError(fn, err.message);
    throw err;
  }
}

/**
 * Character spans from word tags (a model's predictions, say): the entities
 * seqeval finds in `tags` (`mode` 'default' is conlleval's lenient reading, as
 * for predictions; 'strict' keeps only entities well-formed in `scheme`), each
 * from its first word's start to its last word's end.
 */
export function tagsToSpans(offsets: Offsets, tags: string[], scheme: TagScheme = 'IOB2', options: { mode?: 'default' | 'strict' } = {}): Span[] {
  const fn = 'tagsToSpans';
  checkOffsets(fn, offsets);
  checkScheme(fn, scheme);
  if (!Array.isArray(tags) || tags.some((t) => typeof t !== 'string')) throw new ArgumentError(fn, 'tags must be an array of tag strings');
  if (tags.length !== offsets.length) throw new ArgumentError(fn, `${tags.length} tags for ${offsets.length} words`);
  return getEntities(tags, { mode: options.mode ?? 'default', scheme }).map((e) => ({ start: offsets[e.start][0], end: offsets[e.end - 1][1], label: e.type }));
}

// ---------------------------------------------------------------- readers

/** A document of words with their character offsets and tags (and the spans those tags make). */
export interface TaggedDocument {
  /** From the JSONL `id` field when present. */
  id?: string | number;
  /** The text (for CoNLL, the words joined by single spaces). */
  text: string;
  words: string[];
  offsets: Offsets;
  tags: string[];
  /** JSONL: the file's spans, sorted (a boundary inside a word stays where the file put it; the tags cover the whole word). CoNLL: the tags' entities. */
  spans: Span[];
  /** The file's 1-based line where the document starts. */
  line: number;
}

export interface TaggedCorpus {
  documents: TaggedDocument[];
  /** The distinct tags, sorted ('O' included when present). */
  tags: string[];
  /** The distinct entity types, sorted. */
  types: string[];
}

const PREFIXES: Record<Canonical, string> = { IOB1: 'BI', IOB2: 'BI', IOE1: 'IE', IOE2: 'IE', IOBES: 'BIES', BILOU: 'BILU' };

/** Why `tag` is not a tag of `scheme`, or null. */
function prefixProblem(tag: string, scheme: Canonical): string | null {
  const m = /^([A-Z])-(\S+)$/.exec(tag);
  if (tag === 'O' || (m && PREFIXES[scheme].includes(m[1]))) return null;
  return `tag ${JSON.stringify(tag)} is not a ${scheme} tag (O or ${[...PREFIXES[scheme]].map((p) => `${p}-TYPE`).join(', ')})`;
}

const ORDER_RULE: Partial<Record<Canonical, string>> = {
  IOB2: 'every entity starts with B- and continues with I- of its type',
  IOE2: 'every entity ends with E- and its other tags are I- of its type',
  IOBES: 'a one-word entity is S-, a longer one B-, I-..., E- of one type',
  BILOU: 'a one-word entity is U-, a longer one B-, I-..., L- of one type',
};

/**
 * The first tag of a sentence that is out of order in `scheme` (the tags
 * differ from the scheme's own writing of the entities they make), or null.
 * IOB1 and IOE1 files often mark more boundaries than those schemes need, so
 * their order is not checked.
 */
function orderProblem(tags: string[], scheme: Canonical): { index: number; detail: string } | null {
  const rule = ORDER_RULE[scheme];
  if (!rule) return null;
  const wellFormed = convertTags(tags, scheme, scheme);
  const index = tags.findIndex((t, i) => t !== wellFormed[i]);
  if (index < 0) return null;
  const after = index > 0 ? JSON.stringify(tags[index - 1]) : 'the start of the sentence';
  const hint = scheme === 'IOB2' ? "; for IOB1 data pass scheme: 'IOB1'" : '';
  return {
    index,
    detail: `tag ${JSON.stringify(tags[index])} after ${after} is not valid ${scheme} (${rule}; the well-formed tag there is ${JSON.stringify(wellFormed[index])})${hint}`,
  };
}

/** Text and offsets of words joined by single spaces. */
function joinWords(words: string[]): { text: string; offsets: Offsets } {
  const offsets: Offsets = [];
  let at = 0;
  for (const w of words) {
    offsets.push([at, at + w.length]);
    at += w.length + 1;
  }
  return { text: words.join(' '), offsets };
}

function corpus(documents: TaggedDocument[]): TaggedCorpus {
  const tags = [...new Set(documents.flatMap((d) => d.tags))].sort();
  const types = [...new Set(documents.flatMap((d) => d.spans.map((s) => s.label)))].sort();
  return { documents, tags, types };
}

export interface ReadConllTagsOptions {
  /** The scheme the file's tags are in (default 'IOB2'); every tag is checked against it. */
  scheme?: TagScheme;
  /** Convert the tags to this scheme after checking them. */
  convertTo?: TagScheme;
  /** The tag's column (0-based; default the last). */
  tagColumn?: number;
  /** The word's column (default 0). */
  wordColumn?: number;
  /** 'sentence' (default): one document per blank-line-separated block; 'docstart': one per -DOCSTART- section. */
  documents?: 'sentence' | 'docstart';
}

/**
 * A CoNLL-style file (one "word ... tag" line per word, whitespace-separated
 * columns, blank lines between sentences, -DOCSTART- lines between
 * documents) as tagged documents. Every tag is checked against `scheme`: a tag
 * of another scheme, or one in an impossible order (I-X after O in IOB2, an
 * IOBES entity left open), is an error naming the file, line and tag.
 */
export function readConllTags(path: string, options: ReadConllTagsOptions = {}): TaggedCorpus {
  const fn = 'readConllTags';
  const scheme = checkScheme(fn, options.scheme ?? 'IOB2');
  let content: string;
  try {
    content = readFileSync(path, 'utf8');
  } catch (err) {
    throw new DataError(`${path}: cannot read: ${(err as Error).message}`, { path, cause: err });
  }
  const target = options.convertTo === undefined ? scheme : checkScheme(fn, options.convertTo);
  const byDocstart = (options.documents ?? 'sentence') === 'docstart';
  if (!['sentence', 'docstart'].includes(options.documents ?? 'sentence'))
    throw new ArgumentError(fn, `documents must be 'sentence' or 'docstart'; got ${JSON.stringify(options.documents)}`);
  const problem = (line: number, detail: string) => new DataError(`${path}:${line}: ${detail}`, { path, row: line });
  const documents: TaggedDocument[] = [];
  // the open document: its sentences' words and (converted) tags, and the open sentence
  let words: string[] = [];
  let tags: string[] = [];
  let entities: Array<{ type: string; start: number; end: number }> = [];
  let firstLine = 0;
  let sentence: { words: string[]; tags: string[]; lines: number[] } = { words: [], tags: [], lines: [] };
  const endSentence = () => {
    if (!sentence.words.length) return;
    const bad = orderProblem(sentence.tags, scheme);
    if (bad) throw problem(sentence.lines[bad.index], bad.detail);
    if (!words.length) firstLine = sentence.lines[0];
    const converted = target === scheme ? sentence.tags : convertTags(sentence.tags, scheme, target);
    // entities per sentence, so none runs across a sentence boundary
    const base = words.length;
    for (const e of getEntities(converted, { scheme: target })) entities.push({ type: e.type, start: e.start + base, end: e.end + base });
    words.push(...sentence.words);
    tags.push(...converted);
    sentence = { words: [], tags: [], lines: [] };
  };
  const endDocument = () => {
    endSentence();
    if (!words.length) return;
    const { text, offsets } = joinWords(words);
    const spans = entities.map((e) => ({ start: offsets[e.start][0], end: offsets[e.end - 1][1], label: e.type }));
    documents.push({ text, words, offsets, tags, spans, line: firstLine });
    words = [];
    tags = [];
    entities = [];
  };
  content.split('\n').forEach((raw, i) => {
    const line = i + 1;
    const text = raw.trim();
    if (text.startsWith('-DOCSTART-')) return endDocument();
    if (text === '') return byDocstart ? endSentence() : endDocument();
    const cols = text.split(/\s+/);
    if (cols.length < 2) throw problem(line, `expected "word ... tag", got ${JSON.stringify(text)}`);
    const tagColumn = options.tagColumn ?? cols.length - 1;
    const wordColumn = options.wordColumn ?? 0;
    if (tagColumn >= cols.length || wordColumn >= cols.length)
      throw problem(line, `${cols.length} columns, but the ${tagColumn >= cols.length ? 'tag' : 'word'} column is ${Math.max(tagColumn, wordColumn)}`);
    const tag = cols[tagColumn];
    const bad = prefixProblem(tag, scheme);
    if (bad) throw problem(line, bad);
    sentence.words.push(cols[wordColumn]);
    sentence.tags.push(tag);
    sentence.lines.push(line);
  });
  endDocument();
  return corpus(documents);
}

export interface ReadJsonlSpansOptions {
  /** The scheme of the documents' tags (default 'IOB2'). */
  scheme?: TagScheme;
  /** What the offsets count: 'utf16' (default; JavaScript string indices) or 'codepoint' (Python's str indices, as spaCy or doccano write them). */
  offsetUnit?: 'utf16' | 'codepoint';
  textField?: string;
  spansField?: string;
  idField?: string;
}

/** UTF-16 index of each code point index (and of the end). */
function codePointToUtf16(text: string): number[] {
  const at: number[] = [];
  let i = 0;
  for (const c of text) {
    at.push(i);
    i += c.length;
  }
  at.push(i);
  return at;
}

/**
 * A JSON Lines file of `{ "text": ..., "spans": [{ "start", "end", "label" }], "id"?: ... }`
 * (character offsets, end exclusive) as tagged documents: the text split by
 * `splitWords`, the spans laid on its words by `spansToTags`. A span out of
 * range, overlapping another, or covering no word is an error naming the
 * file, line and span.
 */
export function readJsonlSpans(path: string, options: ReadJsonlSpansOptions = {}): TaggedCorpus {
  const fn = 'readJsonlSpans';
  const scheme = checkScheme(fn, options.scheme ?? 'IOB2');
  const unit = options.offsetUnit ?? 'utf16';
  if (unit !== 'utf16' && unit !== 'codepoint') throw new ArgumentError(fn, `offsetUnit must be 'utf16' or 'codepoint'; got ${JSON.stringify(unit)}`);
  const [textField, spansField, idField] = [options.textField ?? 'text', options.spansField ?? 'spans', options.idField ?? 'id'];
  let content: string;
  try {
    content = readFileSync(path, 'utf8');
  } catch (err) {
    throw new DataError(`${path}: cannot read: ${(err as Error).message}`, { path, cause: err });
  }
  const documents: TaggedDocument[] = [];
  content.split('\n').forEach((raw, i) => {
    const line = i + 1;
    if (raw.trim() === '') return;
    const problem = (detail: string, cause?: unknown) => new DataError(`${path}:${line}: ${detail}`, { path, row: line, cause });
    let obj: Record<string, unknown>;
    try {
      obj = JSON.parse(raw);
    } catch (err) {
      throw problem(`not valid JSON: ${(err as Error).message}`, err);
    }
    if (!obj || typeof obj !== 'object' || Array.isArray(obj)) throw problem('expected a JSON object');
    const text = obj[textField];
    if (typeof text !== 'string') throw problem(`"${textField}" must be a string; got ${JSON.stringify(text) ?? 'nothing'}`);
    let spans = obj[spansField];
    if (!Array.isArray(spans))
      throw problem(`"${spansField}" must be an array of { start, end, label } (use [] for none); got ${JSON.stringify(spans) ?? 'nothing'}`);
    const id = obj[idField];
    if (id !== undefined && typeof id !== 'string' && typeof id !== 'number')
      throw problem(`"${idField}" must be a string or a number; got ${JSON.stringify(id)}`);
    const { words, offsets } = splitWords(text);
    let tags: string[];
    try {
      if (unit === 'codepoint') {
        const at = codePointToUtf16(text);
        const points = at.length - 1;
        checkSpans(spans, points); // range errors in the file's own unit
        spans = (spans as Span[]).map((s) => ({ ...s, start: at[s.start], end: at[s.end] }));
      }
      tags = spanTags(offsets, spans, scheme, text.length);
    } catch (err) {
      if (err instanceof SpanError) throw problem(err.message, err);
      throw err;
    }
    const sorted = checkSpans(spans).map((s) => s.span);
    documents.push({ ...(id === undefined ? {} : { id }), text, words, offsets, tags, spans: sorted, line });
  });
  return corpus(documents);
}

// ---------------------------------------------------------------- sub-word alignment and windows

/** What encodeWords needs of a tokenizer: WordPieceTokenizer and ByteLevelBPETokenizer both fit. */
export interface WordTokenizer {
  tokenizeWords(words: string[]): WordsTokenization;
  padId: number;
  clsId?: number;
  sepId?: number;
  bosId?: number;
  eosId?: number;
}

export interface EncodeWordsOptions {
  /** Pieces per window, [CLS] and [SEP] (or <s> and </s>) included (default 512). */
  maxLength?: number;
  /**
   * Overlap between consecutive windows, in pieces, as transformers' `stride`
   * with `return_overflowing_tokens`, but in whole words: the next window
   * starts with the longest run of the previous window's last words whose
   * pieces number at most `stride` (default 0: no overlap).
   */
  stride?: number;
  /** One label per word: tag strings (looked up in `labelNames`) or label ids (-100: ignore the word). */
  labels?: Array<string | number>;
  /** Tag names by id; needed for string labels and for `labelAllTokens`. */
  labelNames?: string[];
  /** Give a word's later pieces its label too, with B-X turned into I-X (run_ner's label_all_tokens); otherwise they get -100. */
  labelAllTokens?: boolean;
}

/** One window of a document's pieces. */
export interface WordWindow {
  inputIds: number[];
  attentionMask: number[];
  tokenTypeIds: number[];
  /** Piece -> index in the document of its word; -1 on the special tokens. */
  wordIds: number[];
  /** Per word of the window, the position of its first piece. */
  firstPieceIndex: number[];
  /** Index in the document of the window's first word. */
  wordStart: number;
  /** Piece-level labels (with `labels`): -100 on special tokens and, unless labelAllTokens, on later pieces. */
  labels?: number[];
  /** Word-level label ids of the window's words (with `labels`), for a CRF over first pieces. */
  wordLabels?: number[];
}

function specialIds(fn: string, tokenizer: WordTokenizer): [number, number] {
  if (!tokenizer || typeof tokenizer.tokenizeWords !== 'function')
    throw new ArgumentError(fn, 'tokenizer must be a WordPieceTokenizer or ByteLevelBPETokenizer (with tokenizeWords)');
  const open = tokenizer.clsId ?? tokenizer.bosId;
  const close = tokenizer.sepId ?? tokenizer.eosId;
  if (open === undefined || close === undefined) throw new ArgumentError(fn, 'tokenizer has neither clsId/sepId nor bosId/eosId');
  return [open, close];
}

/** Label ids per word, and per label id the id a later piece gets with labelAllTokens (B-X -> I-X). */
function labelIds(fn: string, words: string[], options: EncodeWordsOptions): { ids: number[]; later: (id: number) => number } | null {
  const { labels, labelNames } = options;
  if (labels === undefined) return null;
  if (!Array.isArray(labels)) throw new ArgumentError(fn, 'labels must be an array, one label per word');
  if (labels.length !== words.length) throw new ArgumentError(fn, `${labels.length} labels for ${words.length} words`);
  if (labelNames !== undefined && (!Array.isArray(labelNames) || labelNames.some((n) => typeof n !== 'string')))
    throw new ArgumentError(fn, 'labelNames must be an array of tag strings (index = label id)');
  const index = new Map((labelNames ?? []).map((n, i) => [n, i]));
  const ids = labels.map((l, w) => {
    if (typeof l === 'string') {
      if (!labelNames) throw new ArgumentError(fn, `labels are tag strings (word ${w}: ${JSON.stringify(l)}): pass labelNames to give them ids`);
      const id = index.get(l);
      if (id === undefined) throw new ArgumentError(fn, `label ${JSON.stringify(l)} of word ${w} is not in labelNames (${labelNames.join(', ')})`);
      return id;
    }
    if (!Number.isInteger(l) || (l < 0 && l !== -100) || (labelNames && l >= labelNames.length))
      throw new ArgumentError(
        fn,
        `label of word ${w} must be a tag or a label id${labelNames ? ` below ${labelNames.length}` : ''} (or -100); got ${JSON.stringify(l)}`,
      );
    return l;
  });
  if (!options.labelAllTokens) return { ids, later: () => -100 };
  if (!labelNames) throw new ArgumentError(fn, 'labelAllTokens needs labelNames (to turn B- labels into I-)');
  const later = (id: number) => {
    const name = labelNames[id];
    const inside = name?.startsWith('B-') ? index.get(`I-${name.slice(2)}`) : undefined;
    return inside ?? id;
  };
  return { ids, later };
}

/**
 * A document's words as model inputs: each word tokenized on its own (as
 * transformers with `is_split_into_words=True`), cut into windows of at most
 * `maxLength` pieces with [CLS]/[SEP] (or <s>/</s>) that never split a word's
 * pieces, consecutive windows overlapping by up to `stride` pieces of whole
 * words. With `labels`, piece labels as run_ner's tokenize_and_align_labels:
 * -100 on special tokens, the word's label on its first piece, -100 on later
 * pieces (or, with `labelAllTokens`, the label with B- turned into I-). A
 * word longer than maxLength - 2 pieces keeps only its first pieces.
 */
export function encodeWords(tokenizer: WordTokenizer, words: string[], options: EncodeWordsOptions = {}): WordWindow[] {
  const fn = 'encodeWords';
  const [open, close] = specialIds(fn, tokenizer);
  const maxLength = options.maxLength ?? 512;
  const stride = options.stride ?? 0;
  if (!Number.isInteger(maxLength) || maxLength < 3)
    throw new ArgumentError(fn, `maxLength must be an integer >= 3 (two special tokens and a piece); got ${maxLength}`);
  const room = maxLength - 2;
  if (!Number.isInteger(stride) || stride < 0 || stride >= room)
    throw new ArgumentError(fn, `stride must be an integer from 0 to ${room - 1} (maxLength - 3); got ${stride}`);
  if (!Array.isArray(words)) throw new ArgumentError(fn, 'words must be an array of strings');
  const labels = labelIds(fn, words, options);
  const pieces = tokenizer.tokenizeWords(words);
  const perWord: number[][] = words.map(() => []);
  pieces.ids.forEach((id, p) => perWord[pieces.wordIds[p]].push(id));
  for (let w = 0; w < perWord.length; w++) if (perWord[w].length > room) perWord[w] = perWord[w].slice(0, room);

  const windows: WordWindow[] = [];
  let a = 0;
  for (;;) {
    let b = a;
    let count = 0;
    while (b < words.length && count + perWord[b].length <= room) count += perWord[b++].length;
    const inputIds = [open];
    const wordIds = [-1];
    const firstPieceIndex: number[] = [];
    const pieceLabels = [-100];
    for (let w = a; w < b; w++) {
      firstPieceIndex.push(inputIds.length);
      perWord[w].forEach((id, k) => {
        inputIds.push(id);
        wordIds.push(w);
        if (labels) pieceLabels.push(k === 0 ? labels.ids[w] : labels.ids[w] === -100 ? -100 : labels.later(labels.ids[w]));
      });
    }
    inputIds.push(close);
    wordIds.push(-1);
    pieceLabels.push(-100);
    const window: WordWindow = {
      inputIds,
      attentionMask: inputIds.map(() => 1),
      tokenTypeIds: inputIds.map(() => 0),
      wordIds,
      firstPieceIndex,
      wordStart: a,
    };
    if (labels) {
      window.labels = pieceLabels;
      window.wordLabels = labels.ids.slice(a, b);
    }
    windows.push(window);
    if (b >= words.length) break;
    // the next window repeats the last words whose pieces fit in the stride, and always moves on by one word at least
    let next = b;
    let overlap = 0;
    while (next - 1 > a && overlap + perWord[next - 1].length <= stride) overlap += perWord[--next].length;
    a = next;
  }
  return windows;
}

/**
 * One prediction per document word from per-window word predictions
 * (`predictions[k][j]`: window k's word j, anything: a tag, an id, a score
 * vector; longer rows, padded for a batch, are cut to the window's words).
 * A word seen by several windows takes the prediction of the window where its
 * first piece is farthest (in pieces) from the window's edges, so it had the
 * most context on both sides; ties go to the earlier window.
 */
export function mergeWindowPredictions<T>(windows: WordWindow[], predictions: T[][]): T[] {
  const fn = 'mergeWindowPredictions';
  if (!Array.isArray(windows) || !Array.isArray(predictions))
    throw new ArgumentError(fn, 'expected the windows (from encodeWords) and an array of per-window predictions');
  if (windows.length !== predictions.length) throw new ArgumentError(fn, `${predictions.length} prediction rows for ${windows.length} windows`);
  const merged: T[] = [];
  const best: number[] = [];
  windows.forEach((win, k) => {
    const row = predictions[k];
    const n = win.firstPieceIndex.length;
    if (!Array.isArray(row) || row.length < n)
      throw new ArgumentError(fn, `window ${k} has ${n} words but its predictions have ${Array.isArray(row) ? row.length : 'no'} entries`);
    const lastPiece = win.inputIds.length - 2; // before [SEP]
    for (let j = 0; j < n; j++) {
      const pos = win.firstPieceIndex[j];
      const distance = Math.min(pos - 1, lastPiece - pos);
      const w = win.wordStart + j;
      if (best[w] === undefined || distance > best[w]) {
        best[w] = distance;
        merged[w] = row[j];
      }
    }
  });
  for (let w = 0; w < merged.length; w++)
    if (best[w] === undefined) throw new ArgumentError(fn, `no window covers word ${w} (are the windows from one document?)`);
  return merged;
}

/** Windows as a padded batch of int64 tensors: inputIds padded with `padId`, labels and wordLabels with -100, firstPieceIndex with -1. */
export function batchWindows(
  windows: WordWindow[],
  options: { padId: number; device?: string },
): { inputIds: Tensor; attentionMask: Tensor; tokenTypeIds: Tensor; firstPieceIndex: Tensor; labels?: Tensor; wordLabels?: Tensor } {
  const fn = 'batchWindows';
  if (!Array.isArray(windows) || !windows.length) throw new ArgumentError(fn, 'expected a non-empty array of windows (from encodeWords)');
  if (!Number.isInteger(options?.padId)) throw new ArgumentError(fn, 'options.padId must be the tokenizer pad id (tokenizer.padId)');
  const S = Math.max(...windows.map((w) => w.inputIds.length));
  const W = Math.max(1, ...windows.map((w) => w.firstPieceIndex.length));
  const pad = (row: number[], n: number, value: number) => [...row, ...Array(n - row.length).fill(value)];
  const t = (rows: number[][]) => torch.tensor(rows, { dtype: 'int64', ...(options.device ? { device: options.device } : {}) });
  const out: ReturnType<typeof batchWindows> = {
    inputIds: t(windows.map((w) => pad(w.inputIds, S, options.padId))),
    attentionMask: t(windows.map((w) => pad(w.attentionMask, S, 0))),
    tokenTypeIds: t(windows.map((w) => pad(w.tokenTypeIds, S, 0))),
    firstPieceIndex: t(windows.map((w) => pad(w.firstPieceIndex, W, -1))),
  };
  if (windows.every((w) => w.labels)) {
    out.labels = t(windows.map((w) => pad(w.labels!, S, -100)));
    out.wordLabels = t(windows.map((w) => pad(w.wordLabels!, W, -100)));
  }
  return out;
}

/**
 * The hidden states of each word's first piece, packed left-aligned:
 * `hidden` [B, S, H], `firstPieceIndex` int64 [B, W] (positions, -1 for
 * padding) -> `words` [B, W, H] (zeros where padded) and `mask` bool [B, W].
 * A gather, so gradients flow back to the first pieces.
 */
export function packFirstPieces(hidden: Tensor, firstPieceIndex: Tensor | number[][]): { words: Tensor; mask: Tensor } {
  const fn = 'packFirstPieces';
  if (!torch.isTensor(hidden) || hidden.ndim !== 3)
    throw new ArgumentError(fn, `hidden must be a [batch, sequence, hidden] tensor; got ${torch.isTensor(hidden) ? `shape [${hidden.shape}]` : typeof hidden}`);
  const [B, S, H] = hidden.shape;
  return torch.tidy(() => {
    let index = torch.isTensor(firstPieceIndex) ? firstPieceIndex : torch.tensor(firstPieceIndex, { dtype: 'int64', device: hidden.device });
    if (index.device !== hidden.device) index = index.to(hidden.device);
    if (index.ndim !== 2 || index.shape[0] !== B) throw new ArgumentError(fn, `firstPieceIndex must be [${B}, words]; got [${index.shape}]`);
    if (index.dtype !== 'int64') throw new ArgumentError(fn, `firstPieceIndex must be int64; got ${index.dtype}`);
    const W = index.shape[1];
    if (index.numel()) {
      const lo = Number(index.min().item());
      const hi = Number(index.max().item());
      if (lo < -1 || hi >= S) throw new ArgumentError(fn, `firstPieceIndex holds ${lo < -1 ? lo : hi}, outside -1..${S - 1} (-1 marks padding)`);
    }
    const mask = index.ge(0);
    const gathered = hidden.gather(1, index.clamp(0, null).unsqueeze(-1).expand([B, W, H]));
    const words = gathered.mul(mask.unsqueeze(-1).to(hidden.dtype));
    return { words, mask };
  });
}
