// What `finetorch eval` writes (and prints), and the accuracy `finetorch
// predict` gives when its inputs carry labels: library functions, so that a
// program gets the same files and numbers as the CLI.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { EvalResult } from '../train/trainer.js';
import { ArgumentError } from '../errors.js';
import { writeChart } from './charts.js';
import { confusionMatrixSvg } from './confusion.js';
import { classificationTable, formatFixed, type ClassificationTable } from './table.js';

export interface EvaluationReport {
  dir: string;
  /** report.md, per-class.csv, confusion.svg, confusion.png, metrics.json. */
  files: string[];
  table: ClassificationTable;
}

const pct = (x: number) => `${formatFixed(x * 100, 2)}%`;

/**
 * Writes an evaluation's report into `dir`: report.md (the figures, the per-class table, the confusion
 * matrix as a picture and as a table), per-class.csv, confusion.svg / confusion.png and metrics.json
 * (the EvalResult). Returns the files and the per-class table.
 */
export async function writeEvaluationReport(
  dir: string,
  o: { result: EvalResult; classes: string[]; split?: string; checkpoint?: string; title?: string; digits?: number },
): Promise<EvaluationReport> {
  const { result, classes } = o;
  if (result.confusionMatrix.length !== classes.length)
    throw new ArgumentError(
      'writeEvaluationReport',
      `${classes.length} class names for a ${result.confusionMatrix.length} x ${result.confusionMatrix.length} confusion matrix`,
    );
  mkdirSync(dir, { recursive: true });
  const table = classificationTable(result.confusionMatrix, classes, { digits: o.digits ?? 4 });
  const where = [o.split && `split **${o.split}**`, o.checkpoint && `checkpoint \`${o.checkpoint}\``].filter(Boolean).join(', ');
  const cm = result.confusionMatrix;
  const md = [
    `# ${o.title ?? 'Evaluation'}`,
    '',
    ...(where ? [`${where[0].toUpperCase()}${where.slice(1)}.`, ''] : []),
    `${result.samples} samples: loss ${result.loss.toFixed(4)}, accuracy ${pct(result.accuracy)}, macro F1 ${formatFixed(result.f1Macro, 4)}` +
      (result.rocAuc !== null ? `, ROC AUC ${formatFixed(result.rocAuc, 4)}` : '') +
      '.',
    '',
    '## Per class',
    '',
    table.markdown,
    "Precision, recall and F1 as scikit-learn's classification_report (a 0/0 ratio counts 0); support: samples of the class.",
    '',
    '## Confusion matrix',
    '',
    '![confusion matrix](confusion.png)',
    '',
    `| true \\ predicted | ${classes.map((c) => c.replace(/\|/g, '\\|')).join(' | ')} |`,
    `|---|${classes.map(() => '---:').join('|')}|`,
    ...cm.map((row, i) => `| ${classes[i].replace(/\|/g, '\\|')} | ${row.join(' | ')} |`),
    '',
  ];
  const files = [join(dir, 'report.md'), join(dir, 'per-class.csv')];
  writeFileSync(files[0], md.join('\n'));
  writeFileSync(files[1], table.csv);
  files.push(...(await writeChart(confusionMatrixSvg(cm, classes, { title: `Confusion matrix${o.split ? ` (${o.split})` : ''}` }), join(dir, 'confusion'))));
  const metricsFile = join(dir, 'metrics.json');
  writeFileSync(metricsFile, JSON.stringify({ split: o.split ?? null, checkpoint: o.checkpoint ?? null, classes, ...result }, null, 2) + '\n');
  files.push(metricsFile);
  return { dir, files, table };
}

export interface LabelledScore {
  /** Inputs that had a label among the classes. */
  labelled: number;
  correct: number;
  accuracy: number;
  /** Labels that name no class (by name or as an index), with how many inputs had each; left out of the score. */
  unknownLabels: Record<string, number>;
  /** The per-class table of the labelled inputs (null when no label names a class). */
  table: ClassificationTable | null;
}

/**
 * Scores predictions (class indices) against labels found next to the inputs (a CSV/JSONL label column):
 * a label is a class name, or a class index written as a number (as the training data reads them).
 * Inputs without a label (null) are skipped; returns null when none has one.
 */
export function scoreAgainstLabels(predictions: number[], labels: Array<string | null>, classes: string[]): LabelledScore | null {
  if (predictions.length !== labels.length) throw new ArgumentError('scoreAgainstLabels', `${predictions.length} predictions but ${labels.length} labels`);
  const index = new Map(classes.map((c, i) => [c, i]));
  const yTrue: number[] = [];
  const yPred: number[] = [];
  const unknownLabels: Record<string, number> = {};
  labels.forEach((l, i) => {
    if (l === null) return;
    const k = index.get(l) ?? (/^\d+$/.test(l) && Number(l) < classes.length ? Number(l) : undefined);
    if (k === undefined) {
      unknownLabels[l] = (unknownLabels[l] ?? 0) + 1;
      return;
    }
    yTrue.push(k);
    yPred.push(predictions[i]);
  });
  if (!yTrue.length) return Object.keys(unknownLabels).length ? { labelled: 0, correct: 0, accuracy: NaN, unknownLabels, table: null } : null;
  const correct = yTrue.filter((t, i) => t === yPred[i]).length;
  return {
    labelled: yTrue.length,
    correct,
    accuracy: correct / yTrue.length,
    unknownLabels,
    table: classificationTable({ yTrue, yPred }, classes, { digits: 4 }),
  };
}
