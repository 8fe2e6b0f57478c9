// The per-class table (scikit-learn's classification_report): precision,
// recall, F1 and support per class, accuracy, macro and weighted averages,
// as data and as text (the layout classification_report prints), markdown and CSV.
import { precisionRecallF, type ClassReport, type Labels } from '../metrics/index.js';
import { ArgumentError } from '../errors.js';

export interface ClassRow extends ClassReport {
  name: string;
  /** The class index (0..C-1). */
  label: number;
}

export interface ClassificationTable {
  classes: ClassRow[];
  accuracy: number;
  macroAvg: ClassReport;
  weightedAvg: ClassReport;
  /** Number of samples. */
  total: number;
  /** classification_report's layout (right-aligned columns, `digits` decimals). */
  text: string;
  markdown: string;
  /** class,precision,recall,f1,support with full precision; the averages as rows "accuracy", "macro avg", "weighted avg". */
  csv: string;
}

export interface ClassificationTableOptions {
  /** Decimals in text and markdown (default 2, as classification_report). */
  digits?: number;
  /** Value of a 0/0 ratio (scikit-learn's zero_division; its default 'warn' gives 0). */
  zeroDivision?: 0 | 1;
}

/** Python's '{:.Nf}' (round half to even on the exact binary value), which differs from toFixed on exact ties such as 0.625. */
export function formatFixed(x: number, digits: number): string {
  const s = x.toFixed(digits);
  const exact = Math.abs(x).toFixed(Math.min(100, digits + 30));
  const rest = exact.slice(exact.indexOf('.') + 1 + digits);
  if (!/^50*$/.test(rest)) return s;
  // an exact tie: toFixed rounded away from zero; Python keeps the even digit
  const down = (Math.sign(x) * Math.floor(Math.abs(x) * 10 ** digits)) / 10 ** digits;
  const lastDigit = Math.floor(Math.abs(x) * 10 ** digits) % 10;
  return lastDigit % 2 === 0 ? down.toFixed(digits) : s;
}

function csvField(s: string): string {
  return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

const mdCell = (s: string) => s.replace(/\|/g, '\\|').replace(/\n/g, ' ');

/**
 * The per-class table from a confusion matrix (rows true, columns predicted) or from { yTrue, yPred }
 * (class indices 0..C-1). Every class in `classNames` gets a row, also one without samples (support 0),
 * as classification_report(labels=range(C), target_names=classNames).
 */
export function classificationTable(
  source: number[][] | { yTrue: Labels; yPred: Labels },
  classNames?: string[],
  options: ClassificationTableOptions = {},
): ClassificationTable {
  let yTrue: number[];
  let yPred: number[];
  let numClasses: number;
  if (Array.isArray(source)) {
    numClasses = source.length;
    yTrue = [];
    yPred = [];
    source.forEach((row, i) => {
      if (!Array.isArray(row) || row.length !== numClasses)
        throw new ArgumentError(
          'classificationTable',
          `confusion matrix row ${i} has ${Array.isArray(row) ? row.length : 'no'} entries, expected ${numClasses}`,
        );
      row.forEach((n, j) => {
        if (!Number.isInteger(n) || n < 0) throw new ArgumentError('classificationTable', `confusion matrix [${i}][${j}] = ${n} is not a count`);
        for (let k = 0; k < n; k++) {
          yTrue.push(i);
          yPred.push(j);
        }
      });
    });
  } else {
    yTrue = Array.from(source.yTrue as ArrayLike<number>, Number);
    yPred = Array.from(source.yPred as ArrayLike<number>, Number);
    if (yTrue.length !== yPred.length) throw new ArgumentError('classificationTable', `yTrue has ${yTrue.length} labels but yPred has ${yPred.length}`);
    numClasses = classNames?.length ?? [...yTrue, ...yPred].reduce((m, v) => Math.max(m, v), -1) + 1;
  }
  const names = classNames ?? Array.from({ length: numClasses }, (_, i) => String(i));
  if (names.length !== numClasses) throw new ArgumentError('classificationTable', `${names.length} class names for ${numClasses} classes`);
  const bad = [...yTrue, ...yPred].find((v) => !Number.isInteger(v) || v < 0 || v >= numClasses);
  if (bad !== undefined) throw new ArgumentError('classificationTable', `label ${bad} is not a class index 0..${numClasses - 1}`);
  if (yTrue.length === 0) throw new ArgumentError('classificationTable', 'no samples');

  const labels = names.map((_, i) => i);
  const zeroDivision = options.zeroDivision ?? 0;
  const per = precisionRecallF(yTrue, yPred, { average: null, labels, zeroDivision });
  const avg = (average: 'macro' | 'weighted'): ClassReport => {
    const r = precisionRecallF(yTrue, yPred, { average, labels, zeroDivision });
    return { precision: r.precision as number, recall: r.recall as number, f1: r.f as number, support: yTrue.length };
  };
  const classes: ClassRow[] = names.map((name, i) => ({
    name,
    label: i,
    precision: (per.precision as number[])[i],
    recall: (per.recall as number[])[i],
    f1: (per.f as number[])[i],
    support: (per.support as number[])[i],
  }));
  let hits = 0;
  for (let i = 0; i < yTrue.length; i++) if (yTrue[i] === yPred[i]) hits++;
  const table = { classes, accuracy: hits / yTrue.length, macroAvg: avg('macro'), weightedAvg: avg('weighted'), total: yTrue.length };
  const digits = options.digits ?? 2;
  return { ...table, text: asText(table, digits), markdown: asMarkdown(table, digits), csv: asCsv(table) };
}

type TableData = Omit<ClassificationTable, 'text' | 'markdown' | 'csv'>;

/** classification_report's text: name column as wide as the longest name (at least "weighted avg"), then 9-wide columns. */
function asText(t: TableData, digits: number): string {
  const width = Math.max('weighted avg'.length, ...t.classes.map((c) => c.name.length));
  const f = (x: number) => formatFixed(x, digits).padStart(9);
  const row = (name: string, r: ClassReport) => `${name.padStart(width)}  ${f(r.precision)} ${f(r.recall)} ${f(r.f1)} ${String(r.support).padStart(9)}`;
  const lines = [`${''.padStart(width)}  ${['precision', 'recall', 'f1-score', 'support'].map((h) => h.padStart(9)).join(' ')}`, ''];
  for (const c of t.classes) lines.push(row(c.name, c));
  lines.push('');
  lines.push(`${'accuracy'.padStart(width)}  ${''.padStart(9)} ${''.padStart(9)} ${f(t.accuracy)} ${String(t.total).padStart(9)}`);
  lines.push(row('macro avg', t.macroAvg));
  lines.push(row('weighted avg', t.weightedAvg));
  return lines.join('\n') + '\n';
}

function asMarkdown(t: TableData, digits: number): string {
  const f = (x: number) => formatFixed(x, digits);
  const row = (name: string, r: ClassReport) => `| ${mdCell(name)} | ${f(r.precision)} | ${f(r.recall)} | ${f(r.f1)} | ${r.support} |`;
  return (
    [
      '| class | precision | recall | f1-score | support |',
      '|---|---:|---:|---:|---:|',
      ...t.classes.map((c) => row(c.name, c)),
      `| **accuracy** | | | ${f(t.accuracy)} | ${t.total} |`,
      row('**macro avg**', t.macroAvg),
      row('**weighted avg**', t.weightedAvg),
    ].join('\n') + '\n'
  );
}

function asCsv(t: TableData): string {
  const row = (name: string, r: ClassReport) => [csvField(name), r.precision, r.recall, r.f1, r.support].join(',');
  return (
    [
      'class,precision,recall,f1,support',
      ...t.classes.map((c) => row(c.name, c)),
      `accuracy,,,${t.accuracy},${t.total}`,
      row('macro avg', t.macroAvg),
      row('weighted avg', t.weightedAvg),
    ].join('\n') + '\n'
  );
}
