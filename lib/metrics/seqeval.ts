// Entity-level metrics for sequence labelling with seqeval 1.2.2's semantics
// (precision_score, recall_score, f1_score, accuracy_score,
// performance_measure, classification_report). Inputs are sentences of tag
// strings, yTrue and yPred of the same shape.
//
// mode 'default' is seqeval's default: conlleval's chunking (the same counts
// as conlleval.pl on B-/I-/O tags) with seqeval's E-/S- rules; the sentences
// are joined with an O between them, so no entity crosses a sentence.
// mode 'strict' reads entities as the scheme defines them (IOB2: an entity
// starts with B-; IOBES: S-, or B- ... E-); it needs `scheme`.
// An entity counts as found when type, start and end all match.
//
// Where this differs from seqeval on purpose: mode 'strict' without a scheme
// is an error (seqeval silently falls back to the default mode); a macro
// average over no entity types at all is zeroDivision's value (seqeval gives
// NaN); in default mode scheme 'BILOU' reads L-/U- as E-/S- (seqeval ignores
// the scheme there and knows no L-/U-).
import { ArgumentError, DataError } from '../errors.js';
import { canonicalScheme, conllChunks, parseStrictTags, strictChunks, type Canonical, type TagScheme } from '../data/tag-schemes.js';

export type SeqevalAverage = 'micro' | 'macro' | 'weighted';
export type Sentences = ReadonlyArray<ReadonlyArray<string>>;

export interface SeqevalOptions {
  mode?: 'default' | 'strict';
  scheme?: TagScheme;
  /** 'micro' (default) pools counts; 'macro' is the unweighted mean over types; 'weighted' weighs by true support; null or 'none' gives one value per type. */
  average?: SeqevalAverage | null | 'none';
  /** Value of a 0/0 ratio; 'warn' (default) acts as 0 and emits an UndefinedMetricWarning. */
  zeroDivision?: 0 | 1 | 'warn';
  /** Tags written type first ('PER-B'). */
  suffix?: boolean;
}

export interface SeqevalScores {
  /** Entity types in sorted order (the union of yTrue's and yPred's). */
  types: string[];
  precision: number | number[];
  recall: number | number[];
  f1: number | number[];
  /** Number of true entities (per type, or in all). */
  support: number | number[];
}

interface Resolved {
  mode: 'default' | 'strict';
  scheme: Canonical | undefined;
  average: SeqevalAverage | null;
  zeroDivision: 0 | 1 | 'warn';
  suffix: boolean;
}

function resolve(fn: string, options: SeqevalOptions, defaultAverage: SeqevalAverage | null): Resolved {
  if (options === null || typeof options !== 'object') throw new ArgumentError(fn, 'options must be an object');
  const mode = options.mode ?? 'default';
  if (mode !== 'default' && mode !== 'strict') throw new ArgumentError(fn, `mode must be 'default' or 'strict', got ${JSON.stringify(mode)}`, 'mode');
  const scheme = options.scheme === undefined ? undefined : canonicalScheme(options.scheme, fn);
  if (mode === 'strict' && scheme === undefined) throw new ArgumentError(fn, "mode 'strict' needs a scheme (IOB2, IOBES, ...)", 'scheme');
  const a = options.average === undefined ? defaultAverage : options.average === 'none' ? null : options.average;
  if (a !== null && a !== 'micro' && a !== 'macro' && a !== 'weighted')
    throw new ArgumentError(fn, `average must be 'micro', 'macro', 'weighted', null or 'none', got ${JSON.stringify(options.average)}`, 'average');
  const zeroDivision = options.zeroDivision ?? 'warn';
  if (zeroDivision !== 0 && zeroDivision !== 1 && zeroDivision !== 'warn')
    throw new ArgumentError(fn, `zeroDivision must be 0, 1 or 'warn', got ${JSON.stringify(zeroDivision)}`, 'zeroDivision');
  return { mode, scheme, average: a, zeroDivision, suffix: options.suffix ?? false };
}

/** yTrue and yPred must be arrays of sentences with equal tag counts, every tag a non-empty string. */
function checkSentences(fn: string, yTrue: Sentences, yPred: Sentences): void {
  for (const [name, y] of [
    ['yTrue', yTrue],
    ['yPred', yPred],
  ] as const) {
    if (!Array.isArray(y)) throw new ArgumentError(fn, `${name} must be an array of sentences (arrays of tag strings)`, name);
    y.forEach((sentence, i) => {
      if (!Array.isArray(sentence)) throw new DataError(`${fn}: ${name}[${i}] is not an array of tags`);
      sentence.forEach((tag, j) => {
        if (typeof tag !== 'string' || tag === '') throw new DataError(`${fn}: ${name}[${i}][${j}] is ${JSON.stringify(tag)}, not a tag string`);
      });
    });
  }
  if (yTrue.length !== yPred.length) throw new DataError(`${fn}: yTrue has ${yTrue.length} sentences but yPred has ${yPred.length}`);
  yTrue.forEach((sentence, i) => {
    if (sentence.length !== yPred[i].length) throw new DataError(`${fn}: sentence ${i} has ${sentence.length} tags in yTrue but ${yPred[i].length} in yPred`);
  });
}

/** Entities of all sentences, grouped by type, each keyed by where it is. */
function entitiesByType(fn: string, name: 'yTrue' | 'yPred', y: Sentences, o: Resolved): Map<string, Set<string>> {
  const byType = new Map<string, Set<string>>();
  const add = (type: string, key: string) => {
    let set = byType.get(type);
    if (!set) byType.set(type, (set = new Set()));
    set.add(key);
  };
  if (o.mode === 'default') {
    // One stream with an O after every sentence: positions are global.
    const flat: string[] = [];
    for (const sentence of y) flat.push(...sentence, 'O');
    for (const e of conllChunks(flat, { suffix: o.suffix, bilou: o.scheme === 'BILOU' })) add(e.type, `${e.start}:${e.end}`);
  } else {
    y.forEach((sentence, i) => {
      const parsed = parseStrictTags(sentence, o.scheme!, o.suffix, (j) => `${fn}: ${name}[${i}][${j}]`);
      for (const e of strictChunks(parsed, o.scheme!)) add(e.type, `${i}:${e.start}:${e.end}`);
    });
  }
  return byType;
}

interface Counts {
  types: string[];
  truePositives: number[];
  predicted: number[];
  actual: number[];
}

function countEntities(fn: string, yTrue: Sentences, yPred: Sentences, o: Resolved): Counts {
  checkSentences(fn, yTrue, yPred);
  const truth = entitiesByType(fn, 'yTrue', yTrue, o);
  const pred = entitiesByType(fn, 'yPred', yPred, o);
  // Sorted by code point, as Python's sorted().
  const types = [...new Set([...truth.keys(), ...pred.keys()])].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const counts: Counts = { types, truePositives: [], predicted: [], actual: [] };
  for (const type of types) {
    const t = truth.get(type) ?? new Set<string>();
    const p = pred.get(type) ?? new Set<string>();
    let hits = 0;
    for (const key of p) if (t.has(key)) hits++;
    counts.truePositives.push(hits);
    counts.predicted.push(p.size);
    counts.actual.push(t.size);
  }
  return counts;
}

const sum = (xs: number[]) => xs.reduce((acc, x) => acc + x, 0);

/** seqeval's _precision_recall_fscore_support from the counts (beta = 1). */
function score(fn: string, c: Counts, o: Resolved): Omit<SeqevalScores, 'types'> {
  let tp = c.truePositives;
  let pred = c.predicted;
  let actual = c.actual;
  if (o.average === 'micro') {
    tp = [sum(tp)];
    pred = [sum(pred)];
    actual = [sum(actual)];
  }
  const zd = o.zeroDivision === 1 ? 1 : 0;
  const undefinedFor: string[] = [];
  const divide = (n: number[], d: number[], what: string) =>
    n.map((v, i) => {
      if (d[i] !== 0) return v / d[i];
      if (!undefinedFor.includes(what)) undefinedFor.push(what);
      return zd;
    });
  const precision = divide(tp, pred, 'precision (no predicted entities)');
  const recall = divide(tp, actual, 'recall (no true entities)');
  const f1 = precision.map((p, i) => {
    const denom = p + recall[i];
    return denom === 0 ? 0 : (2 * p * recall[i]) / denom;
  });
  if (o.zeroDivision === 'warn' && undefinedFor.length > 0)
    process.emitWarning(`${fn}: ${undefinedFor.join(' and ')} is ill-defined and set to 0; use zeroDivision to choose the value`, 'UndefinedMetricWarning');
  const support = sum(c.actual);
  if (o.average === null) return { precision, recall, f1, support: [...c.actual] };
  if (o.average === 'micro') return { precision: precision[0], recall: recall[0], f1: f1[0], support };
  if (o.average === 'weighted') {
    if (support === 0) {
      // No true entities: as seqeval, precision and F1 are zeroDivision's value only when nothing was predicted either.
      const noPredictions = sum(c.predicted) === 0;
      return { precision: noPredictions ? zd : 0, recall: zd, f1: noPredictions ? zd : 0, support };
    }
    const weighted = (xs: number[]) => xs.reduce((acc, x, i) => acc + x * c.actual[i], 0) / support;
    return { precision: weighted(precision), recall: weighted(recall), f1: weighted(f1), support };
  }
  if (c.types.length === 0) return { precision: zd, recall: zd, f1: zd, support };
  const mean = (xs: number[]) => sum(xs) / xs.length;
  return { precision: mean(precision), recall: mean(recall), f1: mean(f1), support };
}

/** Precision, recall, F1 and support, averaged or (average null, the default here) per type in `types` order. */
export function precisionRecallFSupport(yTrue: Sentences, yPred: Sentences, options: SeqevalOptions = {}): SeqevalScores {
  const fn = 'seqeval.precisionRecallFSupport';
  const o = resolve(fn, options, null);
  const c = countEntities(fn, yTrue, yPred, o);
  return { types: c.types, ...score(fn, c, o) };
}

type Averaged = SeqevalOptions & { average?: SeqevalAverage };
type PerType = SeqevalOptions & { average: null | 'none' };

function one(fn: string, which: 'precision' | 'recall' | 'f1', yTrue: Sentences, yPred: Sentences, options: SeqevalOptions): number | number[] {
  const o = resolve(fn, options, 'micro');
  return score(fn, countEntities(fn, yTrue, yPred, o), o)[which];
}

/** Entity-level precision (seqeval's precision_score), micro-averaged unless `average` says otherwise. */
export function precision(yTrue: Sentences, yPred: Sentences, options?: Averaged): number;
export function precision(yTrue: Sentences, yPred: Sentences, options: PerType): number[];
export function precision(yTrue: Sentences, yPred: Sentences, options: SeqevalOptions = {}): number | number[] {
  return one('seqeval.precision', 'precision', yTrue, yPred, options);
}

/** Entity-level recall (seqeval's recall_score). */
export function recall(yTrue: Sentences, yPred: Sentences, options?: Averaged): number;
export function recall(yTrue: Sentences, yPred: Sentences, options: PerType): number[];
export function recall(yTrue: Sentences, yPred: Sentences, options: SeqevalOptions = {}): number | number[] {
  return one('seqeval.recall', 'recall', yTrue, yPred, options);
}

/** Entity-level F1 (seqeval's f1_score). */
export function f1(yTrue: Sentences, yPred: Sentences, options?: Averaged): number;
export function f1(yTrue: Sentences, yPred: Sentences, options: PerType): number[];
export function f1(yTrue: Sentences, yPred: Sentences, options: SeqevalOptions = {}): number | number[] {
  return one('seqeval.f1', 'f1', yTrue, yPred, options);
}

/** Fraction of tags (not entities) that match, over all sentences (seqeval's accuracy_score). */
export function accuracy(yTrue: Sentences, yPred: Sentences): number {
  checkSentences('seqeval.accuracy', yTrue, yPred);
  let hits = 0;
  let total = 0;
  yTrue.forEach((sentence, i) =>
    sentence.forEach((tag, j) => {
      total++;
      if (tag === yPred[i][j]) hits++;
    }),
  );
  if (total === 0) throw new DataError('seqeval.accuracy: there are no tags');
  return hits / total;
}

/** Tag-level counts as seqeval's performance_measure (TP: equal tags not both O; FP: differing tags with a non-O prediction; FN: O predicted for a non-O tag; TN: both O). */
export function performanceMeasure(yTrue: Sentences, yPred: Sentences): { TP: number; FP: number; FN: number; TN: number } {
  checkSentences('seqeval.performanceMeasure', yTrue, yPred);
  const m = { TP: 0, FP: 0, FN: 0, TN: 0 };
  yTrue.forEach((sentence, i) =>
    sentence.forEach((t, j) => {
      const p = yPred[i][j];
      if (t === p && (t !== 'O' || p !== 'O')) m.TP++;
      if (t !== p && p !== 'O') m.FP++;
      if (t !== 'O' && p === 'O') m.FN++;
      if (t === 'O' && p === 'O') m.TN++;
    }),
  );
  return m;
}

export interface ReportRow {
  precision: number;
  recall: number;
  f1: number;
  support: number;
}

export interface SeqevalReport {
  /** One row per entity type, in sorted order. */
  types: Record<string, ReportRow>;
  microAvg: ReportRow;
  macroAvg: ReportRow;
  weightedAvg: ReportRow;
  /** The table as seqeval's classification_report prints it. */
  text: string;
}

/**
 * x with `digits` decimals as Python's format does: like toFixed, except that
 * an exact tie (0.125 to 2 digits) goes to the even digit, where toFixed
 * rounds up.
 */
export function formatFixed(x: number, digits: number): string {
  if (Number.isNaN(x)) return 'nan';
  if (!Number.isFinite(x)) return x > 0 ? 'inf' : '-inf';
  const rounded = x.toFixed(digits);
  const oneMore = x.toFixed(digits + 1);
  // A tie ends in 5 at digit digits+1 and is exact there (nothing further in its expansion).
  if (!oneMore.endsWith('5') || x.toFixed(100) !== oneMore + '0'.repeat(99 - digits)) return rounded;
  const truncated = digits === 0 ? oneMore.slice(0, -2) : oneMore.slice(0, -1);
  return Number(truncated[truncated.length - 1]) % 2 === 0 ? truncated : rounded;
}

function reportText(rows: Array<[string, ReportRow]>, averages: Array<[string, ReportRow]>, digits: number): string {
  const width = Math.max(...rows.map(([name]) => name.length), 'weighted avg'.length, digits);
  const line = ([name, r]: [string, ReportRow]) =>
    `${name.padStart(width)} ` +
    [r.precision, r.recall, r.f1].map((v) => ' ' + formatFixed(v, digits).padStart(9)).join('') +
    ' ' +
    String(r.support).padStart(9);
  const header = ' '.repeat(width) + ' ' + ['precision', 'recall', 'f1-score', 'support'].map((h) => ' ' + h.padStart(9)).join('') + '\n\n';
  return header + [...rows.map(line), '', ...averages.map(line), ''].join('\n');
}

/** Per-type precision, recall, F1 and support, with micro, macro and weighted averages, as data and as seqeval's text table. */
export function classificationReport(yTrue: Sentences, yPred: Sentences, options: Omit<SeqevalOptions, 'average'> & { digits?: number } = {}): SeqevalReport {
  const fn = 'seqeval.classificationReport';
  const digits = options.digits ?? 2;
  if (!Number.isInteger(digits) || digits < 0 || digits > 20) throw new ArgumentError(fn, `digits must be an integer from 0 to 20, got ${digits}`, 'digits');
  const o = resolve(fn, { ...options, average: null }, null);
  const c = countEntities(fn, yTrue, yPred, o);
  const per = score(fn, c, o);
  const rows: Array<[string, ReportRow]> = c.types.map((type, i) => [
    type,
    {
      precision: (per.precision as number[])[i],
      recall: (per.recall as number[])[i],
      f1: (per.f1 as number[])[i],
      support: (per.support as number[])[i],
    },
  ]);
  const avg = (average: SeqevalAverage): ReportRow => {
    const s = score(fn, c, { ...o, average });
    return { precision: s.precision as number, recall: s.recall as number, f1: s.f1 as number, support: s.support as number };
  };
  const microAvg = avg('micro');
  const macroAvg = avg('macro');
  const weightedAvg = avg('weighted');
  const text = reportText(
    rows,
    [
      ['micro avg', microAvg],
      ['macro avg', macroAvg],
      ['weighted avg', weightedAvg],
    ],
    digits,
  );
  return { types: Object.fromEntries(rows), microAvg, macroAvg, weightedAvg, text };
}

export const seqeval = {
  precision,
  recall,
  f1,
  accuracy,
  performanceMeasure,
  precisionRecallFSupport,
  classificationReport,
} as const;
