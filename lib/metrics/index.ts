// Classification metrics with scikit-learn's semantics (accuracy_score,
// precision_recall_fscore_support, roc_auc_score, confusion_matrix,
// classification_report). Inputs: JS arrays, TypedArrays or tensors; outputs:
// plain numbers and arrays.
import { Tensor } from '../tensor/tensor.js';
import { seqeval } from './seqeval.js';
import { evaluateDetections, DetectionAccumulator, formatDetectionScores } from './detection.js';

export type { SeqevalOptions, SeqevalScores, SeqevalAverage, SeqevalReport, ReportRow, Sentences } from './seqeval.js';
export type {
  Boxes,
  DetectionPrediction,
  DetectionGroundTruth,
  DetectionEvalOptions,
  DetectionScores,
  ClassDetectionScores,
  AreaRangeName,
} from './detection.js';

export type Labels = ArrayLike<number | bigint | boolean> | Tensor;
export type Scores = ArrayLike<number> | ArrayLike<ArrayLike<number>> | Tensor;
export type Average = 'binary' | 'micro' | 'macro' | 'weighted';

export class MetricError extends Error {}

function labels(x: Labels, what: string): number[] {
  if (x instanceof Tensor) {
    if (x.ndim !== 1) throw new MetricError(`${what}: expected a 1-D tensor of labels, got shape [${x.shape}]`);
    return Array.from(x.dataSync() as ArrayLike<number | bigint>, Number);
  }
  if (x == null || typeof (x as ArrayLike<unknown>).length !== 'number') throw new MetricError(`${what}: expected an array of labels`);
  const out = Array.from(x as ArrayLike<number | bigint | boolean>, Number);
  if (out.some((v) => !Number.isFinite(v))) throw new MetricError(`${what}: labels must be finite numbers`);
  return out;
}

function pair(yTrue: Labels, yPred: Labels): [number[], number[]] {
  const t = labels(yTrue, 'yTrue');
  const p = labels(yPred, 'yPred');
  if (t.length !== p.length) throw new MetricError(`yTrue has ${t.length} samples but yPred has ${p.length}`);
  if (t.length === 0) throw new MetricError('no samples');
  return [t, p];
}

const sortedUnique = (xs: number[]) => [...new Set(xs)].sort((a, b) => a - b);

/** Fraction of exact matches (accuracy_score). */
export function accuracy(yTrue: Labels, yPred: Labels): number {
  const [t, p] = pair(yTrue, yPred);
  let hit = 0;
  for (let i = 0; i < t.length; i++) if (t[i] === p[i]) hit++;
  return hit / t.length;
}

export interface PrfOptions {
  average?: Average | null;
  posLabel?: number;
  /** Value where a ratio is 0/0 (scikit-learn's zero_division; 'warn' behaves as 0). */
  zeroDivision?: 0 | 1;
  /** Labels to report, in order (default: sorted union of yTrue and yPred). */
  labels?: number[];
  beta?: number;
}

export interface Prf {
  precision: number | number[];
  recall: number | number[];
  f: number | number[];
  support: number | number[] | null;
}

/** precision_recall_fscore_support with average null (per class) or binary/micro/macro/weighted. */
export function precisionRecallF(yTrue: Labels, yPred: Labels, options: PrfOptions = {}): Prf {
  const [t, p] = pair(yTrue, yPred);
  const average = options.average === undefined ? 'binary' : options.average;
  const zd = options.zeroDivision ?? 0;
  const beta2 = (options.beta ?? 1) ** 2;
  const present = sortedUnique([...t, ...p]);
  let labs = options.labels ?? present;
  if (average === 'binary') {
    const pos = options.posLabel ?? 1;
    if (present.length > 2) throw new MetricError(`Target is multiclass but average='binary'. Choose another average (micro, macro, weighted).`);
    if (!present.includes(pos) && present.length === 2)
      throw new MetricError(`posLabel=${pos} is not a valid label: it should be one of ${present.join(', ')}`);
    labs = [pos];
  }
  const tp = labs.map(() => 0),
    predSum = labs.map(() => 0),
    trueSum = labs.map(() => 0);
  const index = new Map(labs.map((l, i) => [l, i]));
  for (let i = 0; i < t.length; i++) {
    const it = index.get(t[i]);
    const ip = index.get(p[i]);
    if (it !== undefined) trueSum[it]++;
    if (ip !== undefined) predSum[ip]++;
    if (it !== undefined && t[i] === p[i]) tp[it]++;
  }
  const micro = average === 'micro';
  const sum = (a: number[]) => a.reduce((x, y) => x + y, 0);
  const TP = micro ? [sum(tp)] : tp,
    PS = micro ? [sum(predSum)] : predSum,
    TS = micro ? [sum(trueSum)] : trueSum;
  const divide = (n: number[], d: number[]) => n.map((v, i) => (d[i] === 0 ? zd : v / d[i]));
  const precision = divide(TP, PS);
  const recall = divide(TP, TS);
  const f = precision.map((pr, i) => {
    const denom = beta2 * pr + recall[i];
    return denom === 0 ? 0 : ((1 + beta2) * pr * recall[i]) / denom;
  });
  if (average === null) return { precision, recall, f, support: trueSum };
  if (average === 'weighted') {
    const w = sum(trueSum);
    if (w === 0) return { precision: zd, recall: zd, f: zd, support: null };
    const avg = (a: number[]) => a.reduce((s, v, i) => s + v * trueSum[i], 0) / w;
    return { precision: avg(precision), recall: avg(recall), f: avg(f), support: null };
  }
  const mean = (a: number[]) => sum(a) / a.length;
  return { precision: mean(precision), recall: mean(recall), f: mean(f), support: null };
}

type ScalarOptions = Omit<PrfOptions, 'average'> & { average?: Average };
export const precision = (yTrue: Labels, yPred: Labels, o: ScalarOptions = {}) => precisionRecallF(yTrue, yPred, o).precision as number;
export const recall = (yTrue: Labels, yPred: Labels, o: ScalarOptions = {}) => precisionRecallF(yTrue, yPred, o).recall as number;
export const f1 = (yTrue: Labels, yPred: Labels, o: ScalarOptions = {}) => precisionRecallF(yTrue, yPred, { ...o, beta: 1 }).f as number;

// Area under the ROC curve of one binary problem, by average ranks: ties
// count half, exactly like scikit-learn's trapezoids.
function binaryAuc(isPos: boolean[], score: number[]): number {
  const n = score.length;
  const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => score[a] - score[b]);
  const rank = new Array<number>(n);
  for (let i = 0; i < n; ) {
    let j = i;
    while (j + 1 < n && score[order[j + 1]] === score[order[i]]) j++;
    const r = (i + j) / 2 + 1;
    for (let k = i; k <= j; k++) rank[order[k]] = r;
    i = j + 1;
  }
  let nPos = 0;
  let rankSum = 0;
  for (let i = 0; i < n; i++)
    if (isPos[i]) {
      nPos++;
      rankSum += rank[i];
    }
  const nNeg = n - nPos;
  if (nPos === 0 || nNeg === 0) throw new MetricError('Only one class present in yTrue: ROC AUC is not defined in that case');
  return (rankSum - (nPos * (nPos + 1)) / 2) / (nPos * nNeg);
}

function scoreMatrix(yScore: Scores): number[] | number[][] {
  if (yScore instanceof Tensor) {
    if (yScore.ndim === 1) return Array.from(yScore.dataSync() as ArrayLike<number>, Number);
    if (yScore.ndim === 2) return yScore.to('float64').toArray() as number[][];
    throw new MetricError(`yScore: expected a 1-D or 2-D tensor, got shape [${yScore.shape}]`);
  }
  const rows = Array.from(yScore as ArrayLike<number | ArrayLike<number>>);
  if (rows.length && typeof rows[0] === 'object') return rows.map((r) => Array.from(r as ArrayLike<number>, Number));
  return rows.map(Number);
}

/**
 * roc_auc_score: binary when yScore is 1-D (scores of the greater label),
 * one-vs-rest over classes when it is [N][C] (probabilities), averaged
 * 'macro' (default) or 'weighted' by prevalence.
 */
export function rocAuc(yTrue: Labels, yScore: Scores, options: { multiClass?: 'ovr'; average?: 'macro' | 'weighted' } = {}): number {
  const t = labels(yTrue, 'yTrue');
  const s = scoreMatrix(yScore);
  if (s.length !== t.length) throw new MetricError(`yTrue has ${t.length} samples but yScore has ${s.length}`);
  const classes = sortedUnique(t);
  if (!Array.isArray(s[0])) {
    if (classes.length > 2) throw new MetricError('yScore is 1-D but yTrue has more than two classes: pass [N][C] scores');
    const pos = classes[classes.length - 1];
    return binaryAuc(
      t.map((v) => v === pos && classes.length === 2),
      s as number[],
    );
  }
  const m = s as number[][];
  const C = m[0].length;
  if (options.multiClass !== undefined && options.multiClass !== 'ovr') throw new MetricError("multiClass: only 'ovr' is supported");
  if (C === 2 && classes.length <= 2)
    return binaryAuc(
      t.map((v) => v === classes[classes.length - 1] && classes.length === 2),
      m.map((r) => r[1]),
    );
  if (classes.length !== C)
    throw new MetricError(
      `yScore has ${C} columns but yTrue has ${classes.length} classes (${classes.join(', ')}); every class needs positives for one-vs-rest ROC AUC`,
    );
  for (const r of m) {
    const total = r.reduce((a, b) => a + b, 0);
    if (!(Math.abs(total - 1) <= 1e-8 + 1e-5)) throw new MetricError('yScore rows must be probabilities summing to 1 for multiclass ROC AUC (apply softmax)');
  }
  const average = options.average ?? 'macro';
  let total = 0;
  let weights = 0;
  classes.forEach((c, j) => {
    const isPos = t.map((v) => v === c);
    const w = average === 'weighted' ? isPos.filter(Boolean).length : 1;
    total +=
      w *
      binaryAuc(
        isPos,
        m.map((r) => r[j]),
      );
    weights += w;
  });
  return total / weights;
}

/** confusion_matrix: rows are true labels, columns predicted; labels 0..numClasses-1 or the sorted union. */
export function confusionMatrix(yTrue: Labels, yPred: Labels, options: { numClasses?: number } = {}): number[][] {
  const [t, p] = pair(yTrue, yPred);
  const labs = options.numClasses !== undefined ? Array.from({ length: options.numClasses }, (_, i) => i) : sortedUnique([...t, ...p]);
  const index = new Map(labs.map((l, i) => [l, i]));
  const m = labs.map(() => labs.map(() => 0));
  for (let i = 0; i < t.length; i++) {
    const a = index.get(t[i]);
    const b = index.get(p[i]);
    if (a === undefined || b === undefined) throw new MetricError(`label ${a === undefined ? t[i] : p[i]} is outside 0..${labs.length - 1}`);
    m[a][b]++;
  }
  return m;
}

export interface ClassReport {
  precision: number;
  recall: number;
  f1: number;
  support: number;
}

/** classification_report as data: per class, accuracy, macro and weighted averages. */
export function classificationReport(yTrue: Labels, yPred: Labels, options: { zeroDivision?: 0 | 1; targetNames?: string[] } = {}) {
  const [t, p] = pair(yTrue, yPred);
  const labs = sortedUnique([...t, ...p]);
  const per = precisionRecallF(t, p, { average: null, labels: labs, zeroDivision: options.zeroDivision });
  const classes: Record<string, ClassReport> = {};
  labs.forEach((l, i) => {
    classes[options.targetNames?.[i] ?? String(l)] = {
      precision: (per.precision as number[])[i],
      recall: (per.recall as number[])[i],
      f1: (per.f as number[])[i],
      support: (per.support as number[])[i],
    };
  });
  const avg = (average: Average): ClassReport => {
    const r = precisionRecallF(t, p, { average, labels: labs, zeroDivision: options.zeroDivision });
    return { precision: r.precision as number, recall: r.recall as number, f1: r.f as number, support: t.length };
  };
  return { classes, accuracy: accuracy(t, p), macroAvg: avg('macro'), weightedAvg: avg('weighted') };
}

/**
 * Accumulates predictions batch by batch (logits go to the CPU as
 * probabilities, so evaluation never holds all of them on the GPU) and
 * computes every metric at the end.
 */
export class MetricAccumulator {
  private readonly yTrue: number[] = [];
  private readonly probs: number[][] = [];

  /** logits [N, C] (or probabilities with {probabilities: true}) and targets [N]. */
  update(logits: Tensor, targets: Labels, options: { probabilities?: boolean } = {}): void {
    if (!(logits instanceof Tensor) || logits.ndim !== 2) throw new MetricError('update: logits must be a [N, C] tensor');
    const p = options.probabilities ? logits.detach() : logits.detach().softmax(1);
    const rows = p.to('cpu', 'float64').toArray() as number[][];
    const t = labels(targets, 'targets');
    if (t.length !== rows.length) throw new MetricError(`update: ${rows.length} rows of logits but ${t.length} targets`);
    this.yTrue.push(...t);
    this.probs.push(...rows);
  }

  get count(): number {
    return this.yTrue.length;
  }

  compute(): { accuracy: number; f1Macro: number; rocAuc: number | null; confusionMatrix: number[][] } {
    const C = this.probs[0]?.length ?? 0;
    const yPred = this.probs.map((r) => r.indexOf(Math.max(...r)));
    let auc: number | null = null;
    try {
      auc =
        C === 2
          ? rocAuc(
              this.yTrue,
              this.probs.map((r) => r[1]),
            )
          : rocAuc(this.yTrue, this.probs);
    } catch (err) {
      if (!(err instanceof MetricError)) throw err;
    }
    return {
      accuracy: accuracy(this.yTrue, yPred),
      f1Macro: f1(this.yTrue, yPred, { average: 'macro' }),
      rocAuc: auc,
      confusionMatrix: confusionMatrix(this.yTrue, yPred, { numClasses: C }),
    };
  }

  reset(): void {
    this.yTrue.length = 0;
    this.probs.length = 0;
  }
}

export const metrics = {
  accuracy,
  precision,
  recall,
  f1,
  precisionRecallF,
  rocAuc,
  confusionMatrix,
  classificationReport,
  MetricAccumulator,
  MetricError,
  seqeval,
  evaluateDetections,
  DetectionAccumulator,
  formatDetectionScores,
} as const;
