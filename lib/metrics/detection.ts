// COCO-style detection metrics with pycocotools' semantics (COCOeval with
// iouType 'bbox', useCats 1, no crowd): mAP over IoU thresholds .5:.05:.95,
// per area range (small < 32², medium 32²..96², large > 96², both ends
// inclusive as pycocotools), average recall at 1/10/100 detections, the
// 101-point interpolated precision.
//
// What pycocotools does and this does too:
// - per image and class, detections sorted by score (stable: equal scores
//   keep their input order) and cut to the largest maxDets; each one, in that
//   order, takes the unmatched ground truth of highest IoU >= the threshold
//   (on equal IoU the later ground truth wins), preferring ground truths inside
//   the area range over those outside it;
// - ground truths outside the area range are ignored, and so are unmatched
//   detections outside it and detections matched to an ignored ground truth;
// - across images, detections are ranked by score (stable, image order first);
//   precision is made monotone, read at recall 0, .01, ..., 1 and zero beyond
//   the highest recall reached;
// - a class with no ground truth (in an area range) has precision and recall
//   -1 there and is left out of the means; a mean over nothing is -1;
// - the means are numpy's (pairwise sums, numpy's element order), so the
//   figures equal pycocotools' to the last bit, and formatDetectionScores
//   prints its table.
// Boxes are [x1, y1, x2, y2] in pixels (torchvision's format); a box's area is
// (x2 - x1) * (y2 - y1) unless the ground truth gives `areas` (COCO's
// annotation "area", the segment's area, is what pycocotools ranges by).
import { ArgumentError } from '../errors.js';
import { Tensor } from '../tensor/tensor.js';

type Numbers = ArrayLike<number | bigint> | Tensor;
/** [N, 4] boxes: a tensor, an array of [x1, y1, x2, y2], or a flat array of 4N numbers. */
export type Boxes = ArrayLike<ArrayLike<number>> | ArrayLike<number> | Tensor;

export interface DetectionPrediction {
  boxes: Boxes;
  scores: Numbers;
  labels: Numbers;
}
export interface DetectionGroundTruth {
  boxes: Boxes;
  labels: Numbers;
  /** Areas that place each box in an area range (default: the box's own area). */
  areas?: Numbers;
}

export type AreaRangeName = 'all' | 'small' | 'medium' | 'large';
export interface DetectionEvalOptions {
  /** IoU thresholds (default .5:.05:.95 as numpy.linspace(.5, .95, 10)); map50/map75 are -1 when .5/.75 is not one of them. */
  iouThresholds?: number[];
  /** Three increasing detection counts (default [1, 10, 100]); ar1/ar10/ar100 are read at them, the map* at the last. */
  maxDets?: [number, number, number];
  /** Area ranges [min, max] in pixels², inclusive (default all [0, 1e10], small [0, 32²], medium [32², 96²], large [96², 1e10]). */
  areaRanges?: Partial<Record<AreaRangeName, [number, number]>>;
}

export interface ClassDetectionScores {
  label: number;
  /** Ground-truth boxes of this class. */
  groundTruths: number;
  /** AP over the IoU thresholds (area all, the largest maxDets); -1 without ground truth. */
  ap: number;
  ap50: number;
  ap75: number;
  /** Recall at the largest maxDets averaged over the IoU thresholds. */
  ar100: number;
}

export interface DetectionScores {
  map: number;
  map50: number;
  map75: number;
  mapSmall: number;
  mapMedium: number;
  mapLarge: number;
  ar1: number;
  ar10: number;
  ar100: number;
  arSmall: number;
  arMedium: number;
  arLarge: number;
  /** Every label seen in the ground truths or the predictions, ascending. */
  perClass: ClassDetectionScores[];
}

/** numpy.linspace(start, stop, num) value by value (start + i * step, the last one exactly stop). */
function linspace(start: number, stop: number, num: number): number[] {
  const step = (stop - start) / (num - 1);
  return Array.from({ length: num }, (_, i) => (i === num - 1 ? stop : i * step + start));
}

/** pycocotools' Params: iouThrs, recThrs and areaRng as it builds them. */
export const COCO_IOU_THRESHOLDS = linspace(0.5, 0.95, 10);
export const COCO_RECALL_THRESHOLDS = linspace(0, 1, 101);
const AREA_RANGES: Record<AreaRangeName, [number, number]> = {
  all: [0, 1e5 ** 2],
  small: [0, 32 ** 2],
  medium: [32 ** 2, 96 ** 2],
  large: [96 ** 2, 1e5 ** 2],
};
const AREA_NAMES: AreaRangeName[] = ['all', 'small', 'medium', 'large'];
const EPS = 2.220446049250313e-16; // np.spacing(1)
const FN = 'evaluateDetections';

function numbers(x: Numbers | undefined, where: string): number[] {
  if (x instanceof Tensor) {
    if (x.ndim !== 1) throw new ArgumentError(FN, `${where}: expected a 1-D tensor, got shape [${x.shape}]`);
    return Array.from(x.detach().to('cpu', 'float64').dataSync() as Float64Array);
  }
  if (x == null || typeof (x as ArrayLike<unknown>).length !== 'number') throw new ArgumentError(FN, `${where}: expected an array or a 1-D tensor`);
  const out = Array.from(x as ArrayLike<number | bigint>, Number);
  const bad = out.findIndex((v) => !Number.isFinite(v));
  if (bad >= 0) throw new ArgumentError(FN, `${where}[${bad}] is ${String((x as ArrayLike<unknown>)[bad])}: expected a finite number`);
  return out;
}

function boxes(x: Boxes | undefined, where: string): number[][] {
  let flat: number[];
  if (x instanceof Tensor) {
    if (!(x.ndim === 2 && x.shape[1] === 4) && !(x.ndim === 1 && x.shape[0] === 0))
      throw new ArgumentError(FN, `${where}: expected a [N, 4] tensor, got shape [${x.shape}]`);
    flat = Array.from(x.detach().to('cpu', 'float64').dataSync() as Float64Array);
  } else {
    if (x == null || typeof (x as ArrayLike<unknown>).length !== 'number') throw new ArgumentError(FN, `${where}: expected [N, 4] boxes`);
    const rows = Array.from(x as ArrayLike<unknown>);
    if (rows.length && typeof rows[0] === 'object') {
      flat = [];
      rows.forEach((r, i) => {
        if (r == null || (r as ArrayLike<number>).length !== 4) throw new ArgumentError(FN, `${where}[${i}]: expected [x1, y1, x2, y2]`);
        flat.push(...Array.from(r as ArrayLike<number>, Number));
      });
    } else {
      flat = rows.map(Number);
      if (flat.length % 4) throw new ArgumentError(FN, `${where}: a flat array of boxes needs 4 numbers per box, got ${flat.length}`);
    }
  }
  const out: number[][] = [];
  for (let i = 0; i < flat.length; i += 4) {
    const b = flat.slice(i, i + 4);
    if (!b.every(Number.isFinite)) throw new ArgumentError(FN, `${where}[${i / 4}] is [${b}]: coordinates must be finite`);
    if (b[2] < b[0] || b[3] < b[1]) throw new ArgumentError(FN, `${where}[${i / 4}] is [${b}]: expected x1 <= x2 and y1 <= y2 ([x1, y1, x2, y2])`);
    out.push(b);
  }
  return out;
}

interface Image {
  gt: { box: number[]; label: number; area: number }[];
  dt: { box: number[]; label: number; score: number; area: number }[];
}

function readImages(predictions: DetectionPrediction[], groundTruths: DetectionGroundTruth[]): Image[] {
  if (!Array.isArray(predictions)) throw new ArgumentError(FN, 'predictions must be an array (one entry per image)');
  if (!Array.isArray(groundTruths)) throw new ArgumentError(FN, 'groundTruths must be an array (one entry per image)');
  if (predictions.length !== groundTruths.length)
    throw new ArgumentError(FN, `${predictions.length} predictions but ${groundTruths.length} groundTruths: one entry each per image, in the same order`);
  const label = (v: number, where: string) => {
    if (!Number.isInteger(v)) throw new ArgumentError(FN, `${where} is ${v}: labels must be integers`);
    return v;
  };
  return groundTruths.map((g, i) => {
    const p = predictions[i];
    if (g == null || typeof g !== 'object') throw new ArgumentError(FN, `groundTruths[${i}] must be { boxes, labels }`);
    if (p == null || typeof p !== 'object') throw new ArgumentError(FN, `predictions[${i}] must be { boxes, scores, labels }`);
    const gb = boxes(g.boxes, `groundTruths[${i}].boxes`);
    const gl = numbers(g.labels, `groundTruths[${i}].labels`);
    if (gl.length !== gb.length) throw new ArgumentError(FN, `groundTruths[${i}] has ${gb.length} boxes but ${gl.length} labels`);
    const ga = g.areas === undefined ? null : numbers(g.areas, `groundTruths[${i}].areas`);
    if (ga && ga.length !== gb.length) throw new ArgumentError(FN, `groundTruths[${i}] has ${gb.length} boxes but ${ga.length} areas`);
    const pb = boxes(p.boxes, `predictions[${i}].boxes`);
    const ps = numbers(p.scores, `predictions[${i}].scores`);
    const pl = numbers(p.labels, `predictions[${i}].labels`);
    if (ps.length !== pb.length || pl.length !== pb.length)
      throw new ArgumentError(FN, `predictions[${i}] has ${pb.length} boxes, ${ps.length} scores and ${pl.length} labels: expected as many of each`);
    const area = (b: number[]) => (b[2] - b[0]) * (b[3] - b[1]);
    return {
      gt: gb.map((box, j) => ({ box, label: label(gl[j], `groundTruths[${i}].labels[${j}]`), area: ga ? ga[j] : area(box) })),
      dt: pb.map((box, j) => ({ box, label: label(pl[j], `predictions[${i}].labels[${j}]`), score: ps[j], area: area(box) })),
    };
  });
}

function iou(d: number[], g: number[]): number {
  const w = Math.min(d[2], g[2]) - Math.max(d[0], g[0]);
  if (w <= 0) return 0;
  const h = Math.min(d[3], g[3]) - Math.max(d[1], g[1]);
  if (h <= 0) return 0;
  const inter = w * h;
  return inter / ((d[2] - d[0]) * (d[3] - d[1]) + (g[2] - g[0]) * (g[3] - g[1]) - inter);
}

/** Stable sort of indices by descending value (numpy's argsort(-x, kind='mergesort')). */
const byScore = (scores: ArrayLike<number>) => Array.from({ length: scores.length }, (_, i) => i).sort((a, b) => scores[b] - scores[a] || a - b);

/** One image's ground truths and detections of one class; the detections sorted by score and cut to the largest maxDets. */
interface Cell {
  gts: Image['gt'];
  dts: Image['dt'];
  /** IoU of detection d and ground truth g at d * gts.length + g. */
  ious: Float64Array;
}

interface ImageEval {
  /** At t * detections + d: detection d matched a ground truth at threshold t / is ignored there. */
  matched: Uint8Array;
  ignored: Uint8Array;
  /** Ground truths not ignored. */
  counted: number;
}

/** COCOeval.evaluateImg for one image, class and area range. */
function evaluateImage({ gts, dts, ious }: Cell, range: [number, number], thresholds: number[]): ImageEval {
  const outside = (a: number) => a < range[0] || a > range[1];
  const G = gts.length;
  const D = dts.length;
  // ground truths inside the range first (stable), as pycocotools sorts by _ignore
  const gOrder = gts.map((_, j) => j).sort((a, b) => Number(outside(gts[a].area)) - Number(outside(gts[b].area)) || a - b);
  const gIgnore = gOrder.map((j) => outside(gts[j].area));
  const matched = new Uint8Array(thresholds.length * D);
  const ignored = new Uint8Array(thresholds.length * D);
  const taken = new Uint8Array(G);
  thresholds.forEach((t, ti) => {
    taken.fill(0);
    for (let di = 0; di < D; di++) {
      let best = Math.min(t, 1 - 1e-10);
      let m = -1;
      for (let k = 0; k < G; k++) {
        if (taken[k]) continue;
        if (m > -1 && !gIgnore[m] && gIgnore[k]) break;
        const v = ious[di * G + gOrder[k]];
        if (v < best) continue;
        best = v;
        m = k;
      }
      if (m === -1) {
        if (outside(dts[di].area)) ignored[ti * D + di] = 1;
        continue;
      }
      taken[m] = 1;
      matched[ti * D + di] = 1;
      ignored[ti * D + di] = gIgnore[m] ? 1 : 0;
    }
  });
  return { matched, ignored, counted: gIgnore.filter((x) => !x).length };
}

/** The first maxDet detections of every cell, ranked by score across cells (stable: cell order, then rank within). */
function rankDetections(cells: Cell[], maxDet: number): { cell: Int32Array; det: Int32Array } {
  const scores: number[] = [];
  const cellOf: number[] = [];
  const detOf: number[] = [];
  cells.forEach((c, ci) => {
    const n = Math.min(maxDet, c.dts.length);
    for (let d = 0; d < n; d++) {
      scores.push(c.dts[d].score);
      cellOf.push(ci);
      detOf.push(d);
    }
  });
  const order = byScore(scores);
  return { cell: Int32Array.from(order, (i) => cellOf[i]), det: Int32Array.from(order, (i) => detOf[i]) };
}

/** COCOeval.accumulate for one class, area range and detection count: precision [T][R] and recall [T], or null without ground truth. */
function accumulate(
  cells: Cell[],
  evals: ImageEval[],
  rank: { cell: Int32Array; det: Int32Array },
  T: number,
): { precision: number[][]; recall: number[] } | null {
  if (!evals.length) return null;
  const counted = evals.reduce((s, e) => s + e.counted, 0);
  if (counted === 0) return null;
  const nd = rank.cell.length;
  const rc = new Float64Array(nd);
  const pr = new Float64Array(nd);
  const precision: number[][] = [];
  const recall: number[] = [];
  for (let t = 0; t < T; t++) {
    let tp = 0;
    let fp = 0;
    for (let i = 0; i < nd; i++) {
      const c = rank.cell[i];
      const at = t * cells[c].dts.length + rank.det[i];
      if (!evals[c].ignored[at]) {
        if (evals[c].matched[at]) tp++;
        else fp++;
      }
      rc[i] = tp / counted;
      pr[i] = tp / (fp + tp + EPS);
    }
    recall.push(nd ? rc[nd - 1] : 0);
    for (let i = nd - 1; i > 0; i--) if (pr[i] > pr[i - 1]) pr[i - 1] = pr[i];
    // np.searchsorted(rc, recThrs, side='left'); zero where the recall is never reached
    const q = COCO_RECALL_THRESHOLDS.map(() => 0);
    let i = 0;
    for (let r = 0; r < COCO_RECALL_THRESHOLDS.length; r++) {
      while (i < nd && rc[i] < COCO_RECALL_THRESHOLDS[r]) i++;
      if (i >= nd) break;
      q[r] = pr[i];
    }
    precision.push(q);
  }
  return { precision, recall };
}

/** numpy's pairwise summation of float64 (what np.mean adds with): blocks of 8 partial sums, halves above 128. */
function pairwiseSum(a: number[], from: number, n: number): number {
  if (n < 8) {
    let s = 0;
    for (let i = 0; i < n; i++) s += a[from + i];
    return s;
  }
  if (n <= 128) {
    const r = a.slice(from, from + 8);
    let i = 8;
    for (; i < n - (n % 8); i += 8) for (let j = 0; j < 8; j++) r[j] += a[from + i + j];
    let s = r[0] + r[1] + (r[2] + r[3]) + (r[4] + r[5] + (r[6] + r[7]));
    for (; i < n; i++) s += a[from + i];
    return s;
  }
  let half = Math.floor(n / 2);
  half -= half % 8;
  return pairwiseSum(a, from, half) + pairwiseSum(a, from + half, n - half);
}

/** np.mean(s[s > -1]), or -1 when nothing is left (pycocotools' summarize). */
const meanOrMinusOne = (xs: number[]) => {
  const kept = xs.filter((v) => v > -1);
  return kept.length ? (0 + pairwiseSum(kept, 0, kept.length)) / kept.length : -1;
};

/**
 * COCO-style mAP and AR of detections against ground truths, one entry of
 * each per image (same order), as pycocotools' COCOeval.evaluate(),
 * accumulate() and summarize() compute them (see the top of this file).
 */
export function evaluateDetections(
  predictions: DetectionPrediction[],
  groundTruths: DetectionGroundTruth[],
  options: DetectionEvalOptions = {},
): DetectionScores {
  const thresholds = options.iouThresholds ?? COCO_IOU_THRESHOLDS;
  if (!Array.isArray(thresholds) || !thresholds.length || thresholds.some((t) => !(t >= 0 && t <= 1)))
    throw new ArgumentError(FN, `iouThresholds must be a non-empty array of numbers in [0, 1], got ${JSON.stringify(options.iouThresholds)}`);
  const maxDets = options.maxDets ?? [1, 10, 100];
  if (!Array.isArray(maxDets) || maxDets.length !== 3 || maxDets.some((m, i) => !Number.isInteger(m) || m < 1 || (i > 0 && m < maxDets[i - 1])))
    throw new ArgumentError(FN, `maxDets must be three increasing positive integers like [1, 10, 100], got ${JSON.stringify(options.maxDets)}`);
  const ranges = { ...AREA_RANGES };
  for (const [name, r] of Object.entries(options.areaRanges ?? {})) {
    if (!AREA_NAMES.includes(name as AreaRangeName)) throw new ArgumentError(FN, `areaRanges.${name}: unknown area range (expected ${AREA_NAMES.join(', ')})`);
    if (!Array.isArray(r) || r.length !== 2 || !(r[0] <= r[1])) throw new ArgumentError(FN, `areaRanges.${name} must be [min, max] with min <= max`);
    ranges[name as AreaRangeName] = r;
  }
  const images = readImages(predictions, groundTruths);
  const T = thresholds.length;
  const lastDet = maxDets[2];

  // Each image's boxes by class, then per class the images that have any
  // (pycocotools skips the others: evaluateImg gives None).
  const byLabel = new Map<number, Cell[]>();
  for (const im of images) {
    const here = new Map<number, { gts: Image['gt']; dts: Image['dt'] }>();
    const entry = (label: number) => {
      let e = here.get(label);
      if (!e) here.set(label, (e = { gts: [], dts: [] }));
      return e;
    };
    for (const g of im.gt) entry(g.label).gts.push(g);
    for (const d of im.dt) entry(d.label).dts.push(d);
    for (const [label, { gts, dts: all }] of here) {
      const dts = byScore(all.map((d) => d.score))
        .slice(0, lastDet)
        .map((j) => all[j]);
      const ious = new Float64Array(dts.length * gts.length);
      dts.forEach((d, di) => gts.forEach((g, gi) => (ious[di * gts.length + gi] = iou(d.box, g.box))));
      if (!byLabel.has(label)) byLabel.set(label, []);
      byLabel.get(label)?.push({ gts, dts, ious });
    }
  }
  const labels = [...byLabel.keys()].sort((a, b) => a - b);

  // byArea[a][m]: precision [T][R] and recall [T], or null (pycocotools' -1)
  const perClass = labels.map((label) => {
    const cells = byLabel.get(label) as Cell[];
    const ranks = maxDets.map((m) => rankDetections(cells, m));
    const byArea = AREA_NAMES.map((name) => {
      const evals = cells.map((c) => evaluateImage(c, ranges[name], thresholds));
      return ranks.map((rank) => accumulate(cells, evals, rank, T));
    });
    return { label, groundTruths: cells.reduce((s, c) => s + c.gts.length, 0), byArea };
  });

  const tIndex = (v: number) => thresholds.indexOf(v); // pycocotools: np.where(iouThr == p.iouThrs), exact equality
  // The values in numpy's order (precision[t, r, k], recall[t, k]): the mean's pairwise sums depend on it.
  const ap = (classes: typeof perClass, area: number, m: number, at?: number): number => {
    if (at === -1) return -1;
    const values: number[] = [];
    for (let t = 0; t < T; t++) {
      if (at !== undefined && t !== at) continue;
      for (let r = 0; r < COCO_RECALL_THRESHOLDS.length; r++)
        for (const c of classes) {
          const got = c.byArea[area][m];
          if (got) values.push(got.precision[t][r]);
        }
    }
    return meanOrMinusOne(values);
  };
  const ar = (classes: typeof perClass, area: number, m: number): number => {
    const values: number[] = [];
    for (let t = 0; t < T; t++)
      for (const c of classes) {
        const got = c.byArea[area][m];
        if (got) values.push(got.recall[t]);
      }
    return meanOrMinusOne(values);
  };
  return {
    map: ap(perClass, 0, 2),
    map50: ap(perClass, 0, 2, tIndex(0.5)),
    map75: ap(perClass, 0, 2, tIndex(0.75)),
    mapSmall: ap(perClass, 1, 2),
    mapMedium: ap(perClass, 2, 2),
    mapLarge: ap(perClass, 3, 2),
    ar1: ar(perClass, 0, 0),
    ar10: ar(perClass, 0, 1),
    ar100: ar(perClass, 0, 2),
    arSmall: ar(perClass, 1, 2),
    arMedium: ar(perClass, 2, 2),
    arLarge: ar(perClass, 3, 2),
    perClass: perClass.map((c) => ({
      label: c.label,
      groundTruths: c.groundTruths,
      ap: ap([c], 0, 2),
      ap50: ap([c], 0, 2, tIndex(0.5)),
      ap75: ap([c], 0, 2, tIndex(0.75)),
      ar100: ar([c], 0, 2),
    })),
  };
}

/** Collects predictions and ground truths batch by batch (tensors go to the CPU as numbers) and evaluates them at the end. */
export class DetectionAccumulator {
  private readonly predictions: DetectionPrediction[] = [];
  private readonly groundTruths: DetectionGroundTruth[] = [];

  constructor(readonly options: DetectionEvalOptions = {}) {}

  /** One entry per image, in the same order: the model's outputs and the targets. */
  update(predictions: DetectionPrediction[], groundTruths: DetectionGroundTruth[]): void {
    const images = readImages(predictions, groundTruths); // checks now, while the caller knows which batch
    images.forEach((im) => {
      this.predictions.push({ boxes: im.dt.map((d) => d.box), scores: im.dt.map((d) => d.score), labels: im.dt.map((d) => d.label) });
      this.groundTruths.push({ boxes: im.gt.map((g) => g.box), labels: im.gt.map((g) => g.label), areas: im.gt.map((g) => g.area) });
    });
  }

  get count(): number {
    return this.groundTruths.length;
  }

  compute(): DetectionScores {
    return evaluateDetections(this.predictions, this.groundTruths, this.options);
  }

  reset(): void {
    this.predictions.length = 0;
    this.groundTruths.length = 0;
  }
}

/** Python's '{:0.3f}': the nearest of the 3-decimal numbers, a tie going to the even last digit (toFixed would go up). */
function pythonFixed3(x: number): string {
  // a double lies exactly halfway between two 3-decimal numbers only when it is an odd multiple of 1/16
  const sixteenths = x * 16;
  if (Number.isInteger(sixteenths) && sixteenths % 2 !== 0) {
    const down = Math.floor(x * 1000) / 1000;
    const up = Math.ceil(x * 1000) / 1000;
    return (Math.round(down * 1000) % 2 === 0 ? down : up).toFixed(3);
  }
  return x.toFixed(3);
}

/** The twelve lines COCOeval.summarize() prints, for these scores (and the options they were computed with). */
export function formatDetectionScores(scores: DetectionScores, options: DetectionEvalOptions = {}): string {
  const thresholds = options.iouThresholds ?? COCO_IOU_THRESHOLDS;
  const maxDets = options.maxDets ?? [1, 10, 100];
  const all = `${thresholds[0].toFixed(2)}:${thresholds[thresholds.length - 1].toFixed(2)}`;
  const line = (ap: boolean, iou: string, area: string, maxDet: number, value: number) =>
    ` ${(ap ? 'Average Precision' : 'Average Recall').padEnd(18)} ${ap ? '(AP)' : '(AR)'} @[ IoU=${iou.padEnd(9)} | area=${area.padStart(6)} | maxDets=${String(maxDet).padStart(3)} ] = ${pythonFixed3(value)}`;
  const m = maxDets[2];
  return [
    line(true, all, 'all', m, scores.map),
    line(true, '0.50', 'all', m, scores.map50),
    line(true, '0.75', 'all', m, scores.map75),
    line(true, all, 'small', m, scores.mapSmall),
    line(true, all, 'medium', m, scores.mapMedium),
    line(true, all, 'large', m, scores.mapLarge),
    line(false, all, 'all', maxDets[0], scores.ar1),
    line(false, all, 'all', maxDets[1], scores.ar10),
    line(false, all, 'all', m, scores.ar100),
    line(false, all, 'small', m, scores.arSmall),
    line(false, all, 'medium', m, scores.arMedium),
    line(false, all, 'large', m, scores.arLarge),
  ].join('\n');
}
