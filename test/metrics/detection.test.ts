// metrics.evaluateDetections: COCO-style mAP/AR with pycocotools' semantics.
// pycocotools cannot be installed here, so: (a) cases worked by hand below;
// (b) agreement with an independent re-implementation of COCOeval
// (test/metrics/coco_eval_reference.py, numpy, run once by Debian's
// /usr/bin/python3) on random detections: jittered and duplicated boxes,
// false positives, equal scores, empty images, a class with no ground truth,
// every area range, custom maxDets and IoU thresholds.
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { ArgumentError, metrics, torch } from 'finetorch';
import { COCO_IOU_THRESHOLDS, COCO_RECALL_THRESHOLDS } from '../../dist/metrics/detection.js';
import { rng } from '../../dist/data/tensor-loader.js';

const { evaluateDetections, DetectionAccumulator, formatDetectionScores } = metrics;
type Box = [number, number, number, number];
interface Img {
  gt: { box: Box; label: number; area?: number }[];
  dt: { box: Box; label: number; score: number }[];
}
const asInputs = (images: Img[]) => ({
  predictions: images.map((im) => ({ boxes: im.dt.map((d) => d.box), scores: im.dt.map((d) => d.score), labels: im.dt.map((d) => d.label) })),
  groundTruths: images.map((im) => ({
    boxes: im.gt.map((g) => g.box),
    labels: im.gt.map((g) => g.label),
    ...(im.gt.some((g) => g.area !== undefined) ? { areas: im.gt.map((g) => g.area ?? (g.box[2] - g.box[0]) * (g.box[3] - g.box[1])) } : {}),
  })),
});
const evaluate = (images: Img[], options = {}) => {
  const { predictions, groundTruths } = asInputs(images);
  return evaluateDetections(predictions, groundTruths, options);
};
// precision is tp / (tp + fp + np.spacing(1)): 1 comes out as 1 - 2.2e-16
const close = (x: number, y: number) => expect(Math.abs(x - y), `${x} vs ${y}`).toBeLessThan(1e-12);

describe('evaluateDetections: cases worked by hand', () => {
  it('one perfect detection: every AP and AR is 1 in its area range, -1 in the others', () => {
    const r = evaluate([{ gt: [{ box: [0, 0, 10, 10], label: 1 }], dt: [{ box: [0, 0, 10, 10], label: 1, score: 0.9 }] }]);
    for (const k of ['map', 'map50', 'map75', 'mapSmall', 'ar1', 'ar10', 'ar100', 'arSmall'] as const) close(r[k], 1);
    for (const k of ['mapMedium', 'mapLarge', 'arMedium', 'arLarge'] as const) expect(r[k]).toBe(-1);
    expect(r.perClass).toHaveLength(1);
    expect(r.perClass[0].label).toBe(1);
    expect(r.perClass[0].groundTruths).toBe(1);
  });

  it('IoU 0.72 is a match at the thresholds .5 to .7 and a miss at .75 to .95', () => {
    // GT area 10000 (large: > 96² = 9216); inter 7200, union 10000
    const r = evaluate([{ gt: [{ box: [0, 0, 100, 100], label: 3 }], dt: [{ box: [0, 0, 100, 72], label: 3, score: 0.5 }] }]);
    close(r.map, 0.5);
    close(r.map50, 1);
    expect(r.map75).toBe(0);
    close(r.mapLarge, 0.5);
    expect(r.mapSmall).toBe(-1);
    close(r.ar100, 0.5);
  });

  it('101-point interpolation over two images; ar1 counts one detection per image', () => {
    // Ranked: 0.9 TP (image A), 0.8 FP (image B), 0.7 TP (image A); 3 GT.
    // recall [1/3, 1/3, 2/3], precision [1, 1/2, 2/3] -> monotone [1, 2/3, 2/3].
    // Recall thresholds 0..0.33 (34 of them) read 1, 0.34..0.66 (33) read 2/3,
    // 0.67..1 are not reached (0): AP = (34 + 33 * 2/3) / 101 = 56/101.
    const images: Img[] = [
      {
        gt: [
          { box: [0, 0, 50, 50], label: 0 },
          { box: [100, 100, 150, 150], label: 0 },
        ],
        dt: [
          { box: [0, 0, 50, 50], label: 0, score: 0.9 },
          { box: [100, 100, 150, 150], label: 0, score: 0.7 },
        ],
      },
      { gt: [{ box: [10, 10, 60, 60], label: 0 }], dt: [{ box: [200, 200, 250, 250], label: 0, score: 0.8 }] },
    ];
    const r = evaluate(images);
    close(r.map, 56 / 101);
    close(r.map50, 56 / 101);
    close(r.mapMedium, 56 / 101); // every box is 50 x 50 = 2500 pixels²: medium
    close(r.ar100, 2 / 3);
    close(r.ar10, 2 / 3);
    close(r.ar1, 1 / 3); // top detection of A is a hit, of B a miss
    // maxDets [1, 1, 1]: only 0.9 (TP) and 0.8 (FP) take part: precision [1, 1/2] -> 34 thresholds read 1
    close(evaluate(images, { maxDets: [1, 1, 1] }).map, 34 / 101);
  });

  it('a ground truth of area exactly 32² is both small and medium (range ends are inclusive)', () => {
    const r = evaluate([{ gt: [{ box: [0, 0, 32, 32], label: 1 }], dt: [{ box: [0, 0, 32, 32], label: 1, score: 1 }] }]);
    close(r.mapSmall, 1);
    close(r.mapMedium, 1);
    expect(r.mapLarge).toBe(-1);
  });

  it('a class with no ground truth is -1 and left out of the mean; its detections do not lower the others', () => {
    const r = evaluate([
      {
        gt: [{ box: [0, 0, 40, 40], label: 2 }],
        dt: [
          { box: [0, 0, 40, 40], label: 2, score: 0.5 },
          { box: [0, 0, 40, 40], label: 7, score: 0.99 },
        ],
      },
    ]);
    close(r.map, 1);
    expect(r.perClass.map((c) => [c.label, c.groundTruths, c.ap, c.ar100])).toEqual([
      [2, 1, r.perClass[0].ap, r.perClass[0].ar100],
      [7, 0, -1, -1],
    ]);
    close(r.perClass[0].ap, 1);
  });

  it('on equal IoU the later ground truth is taken, which leaves the earlier one for the next detection', () => {
    // det 1 overlaps both GT with IoU 90/110; it takes GT 2 (the later), so
    // det 2 (identical to GT 1) finds GT 1 free: both are hits at every
    // threshold. Had det 1 taken GT 1, det 2 would reach GT 2 only at IoU 80/120.
    const r = evaluate([
      {
        gt: [
          { box: [0, 0, 10, 10], label: 1 },
          { box: [2, 0, 12, 10], label: 1 },
        ],
        dt: [
          { box: [1, 0, 11, 10], label: 1, score: 0.9 },
          { box: [0, 0, 10, 10], label: 1, score: 0.8 },
        ],
      },
    ]);
    // IoU .5 to .8: both hits (AP 1). .85 to .95: det 1 misses, det 2 hits:
    // precision [0, 1/2] -> 1/2 up to recall 1/2 (51 thresholds).
    close(r.map, (7 + (3 * 0.5 * 51) / 101) / 10);
    // (had det 1 taken GT 1: .7 to .8 would give 51/101 instead of 1)
  });

  it('area ranges: detections on ground truths outside the range, and unmatched ones outside it, are ignored', () => {
    // small GT found; large GT found; a large false positive. For "small" the
    // large GT is ignored, the detection matched to it too, and the large
    // false positive is outside the range: AP small = 1. For "all" the false
    // positive ranks first: precision [0, 1/2, 2/3] -> [2/3, 2/3, 2/3].
    const r = evaluate([
      { gt: [{ box: [0, 0, 10, 10], label: 1 }], dt: [{ box: [0, 0, 10, 10], label: 1, score: 0.5 }] },
      {
        gt: [{ box: [0, 0, 200, 200], label: 1 }],
        dt: [
          { box: [0, 0, 200, 200], label: 1, score: 0.6 },
          { box: [300, 300, 500, 500], label: 1, score: 0.7 },
        ],
      },
    ]);
    close(r.mapSmall, 1);
    close(r.map, 2 / 3);
    close(r.mapLarge, 0.5); // FP, TP (the small hit is ignored): precision [0, 1/2] -> 1/2 up to recall 1
    close(r.arSmall, 1);
  });

  it('tensors and arrays give the same result; the accumulator equals one call', () => {
    const images: Img[] = [
      { gt: [{ box: [0, 0, 30, 20], label: 1 }], dt: [{ box: [1, 1, 30, 21], label: 1, score: 0.75 }] },
      { gt: [], dt: [{ box: [5, 5, 9, 9], label: 1, score: 0.25 }] },
    ];
    const expected = evaluate(images);
    const predictions = images.map((im) => ({
      boxes: torch.tensor(Float32Array.from(im.dt.flatMap((d) => d.box)), { shape: [im.dt.length, 4] }),
      scores: torch.tensor(im.dt.map((d) => d.score)),
      labels: torch.tensor(im.dt.map((d) => d.label)).to('int64'),
    }));
    const groundTruths = images.map((im) => ({
      boxes: torch.tensor(Float32Array.from(im.gt.flatMap((g) => g.box)), { shape: [im.gt.length, 4] }),
      labels: torch.tensor(im.gt.map((g) => g.label)).to('int64'),
    }));
    const got = evaluateDetections(predictions, groundTruths);
    // float32 tensors: the boxes above are exact in float32, the scores too
    expect(got).toEqual(expected);
    const acc = new DetectionAccumulator();
    acc.update(predictions.slice(0, 1), groundTruths.slice(0, 1));
    acc.update(predictions.slice(1), groundTruths.slice(1));
    expect(acc.count).toBe(2);
    expect(acc.compute()).toEqual(expected);
  });

  it("formatDetectionScores rounds a tie as Python's format does (half to even)", () => {
    const r = evaluate([{ gt: [{ box: [0, 0, 10, 10], label: 1 }], dt: [] }]);
    const lines = formatDetectionScores({ ...r, map: 0.0625, map50: 0.1875, map75: 0.0005 }).split('\n');
    expect(lines[0]).toBe(' Average Precision  (AP) @[ IoU=0.50:0.95 | area=   all | maxDets=100 ] = 0.062');
    expect(lines[1].endsWith('= 0.188')).toBe(true);
    expect(lines[2].endsWith('= 0.001')).toBe(true); // 0.0005 is just above a half in binary
    expect(lines[11]).toBe(' Average Recall     (AR) @[ IoU=0.50:0.95 | area= large | maxDets=100 ] = -1.000');
  });

  it('bad input is an ArgumentError naming the entry', () => {
    const gt = [{ boxes: [[0, 0, 10, 10]], labels: [1] }];
    const bad =
      (predictions: unknown, groundTruths: unknown = gt, options = {}) =>
      () =>
        evaluateDetections(predictions as never, groundTruths as never, options);
    expect(bad([])).toThrow(/0 predictions but 1 groundTruths/);
    expect(bad([{ boxes: [[5, 0, 1, 10]], scores: [1], labels: [1] }])).toThrow(/predictions\[0\]\.boxes\[0\] is \[5,0,1,10\]: expected x1 <= x2/);
    expect(bad([{ boxes: [[0, 0, 1, 1]], scores: [Number.NaN], labels: [1] }])).toThrow(/predictions\[0\]\.scores\[0\] is NaN/);
    expect(bad([{ boxes: [[0, 0, 1, 1]], scores: [1, 2], labels: [1] }])).toThrow(/predictions\[0\] has 1 boxes, 2 scores and 1 labels/);
    expect(bad([{ boxes: [[0, 0, 1, 1]], scores: [1], labels: [1.5] }])).toThrow(/predictions\[0\]\.labels\[0\] is 1\.5/);
    expect(bad([{ boxes: [[0, 0, 1]], scores: [1], labels: [1] }])).toThrow(/predictions\[0\]\.boxes\[0\]: expected \[x1, y1, x2, y2\]/);
    expect(bad([{ boxes: [], scores: [], labels: [] }], [{ boxes: [[0, 0, 1, 1]] }])).toThrow(/groundTruths\[0\]\.labels: expected an array/);
    expect(bad([{ boxes: [], scores: [], labels: [] }], gt, { maxDets: [10, 1, 100] })).toThrow(/maxDets must be three increasing/);
    expect(bad([{ boxes: [], scores: [], labels: [] }], gt, { areaRanges: { tiny: [0, 1] } })).toThrow(/areaRanges\.tiny: unknown area range/);
    expect(bad([{ boxes: [], scores: [], labels: [] }], gt, { iouThresholds: [1.5] })).toThrow(ArgumentError);
  });
});

// ---- random cases against the Python re-implementation ----

function randomImages(seed: number, n: number, options: { classes: number; areas?: boolean; crowded?: boolean }): Img[] {
  const r = rng(seed);
  const images: Img[] = [];
  for (let i = 0; i < n; i++) {
    const im: Img = { gt: [], dt: [] };
    const nGt = Math.floor(r() * (options.crowded ? 12 : 5)); // some images have none
    for (let j = 0; j < nGt; j++) {
      const w = Math.exp(Math.log(4) + r() * Math.log(200 / 4)); // 4..200 pixels: every area range
      const h = w * (0.5 + r());
      const x = r() * 300;
      const y = r() * 300;
      const g = { box: [x, y, x + w, y + h] as Box, label: Math.floor(r() * options.classes), area: undefined as number | undefined };
      if (options.areas) g.area = w * h * (0.3 + r()); // as a segment's area, smaller or larger than the box
      im.gt.push(g);
      // found (jittered) most of the time, sometimes twice (a duplicate is a false positive)
      for (let k = 0; k < (r() < 0.8 ? 1 : 0) + (r() < 0.15 ? 1 : 0); k++) {
        const jx = (r() - 0.5) * w * 0.4;
        const jy = (r() - 0.5) * h * 0.4;
        const label = r() < 0.9 ? g.label : Math.floor(r() * options.classes);
        // scores on a grid of 0.05: many equal scores across and within images
        im.dt.push({ box: [x + jx, y + jy, x + w + jx * 0.5, y + h - jy * 0.5], label, score: Math.round(r() * 20) / 20 });
      }
    }
    const nFp = Math.floor(r() * (options.crowded ? 8 : 3));
    for (let k = 0; k < nFp; k++) {
      const w = 4 + r() * 150;
      const x = r() * 300;
      const y = r() * 300;
      im.dt.push({ box: [x, y, x + w, y + w * (0.5 + r())], label: Math.floor(r() * (options.classes + 1)), score: Math.round(r() * 20) / 20 });
    }
    images.push(im);
  }
  return images;
}

interface Case {
  name: string;
  images: Img[];
  iouThrs?: number[];
  maxDets?: [number, number, number];
}
const cases: Case[] = [
  { name: '40 images, 3 classes', images: randomImages(1, 40, { classes: 3 }) },
  { name: '25 images, 5 classes, segment areas', images: randomImages(2, 25, { classes: 5, areas: true }) },
  { name: 'crowded images, maxDets [1, 3, 5]', images: randomImages(3, 20, { classes: 2, crowded: true }), maxDets: [1, 3, 5] },
  { name: 'IoU thresholds [0.3, 0.5, 0.75]', images: randomImages(4, 30, { classes: 3 }), iouThrs: [0.3, 0.5, 0.75] },
  { name: 'one class, no predictions on half the images', images: randomImages(5, 30, { classes: 1 }).map((im, i) => (i % 2 ? { ...im, dt: [] } : im)) },
  { name: 'no predictions at all', images: randomImages(6, 10, { classes: 2 }).map((im) => ({ ...im, dt: [] })) },
];

describe('evaluateDetections against an independent COCOeval re-implementation (numpy)', () => {
  let reference: {
    iouThrs: number[];
    recThrs: number[];
    results: { stats: number[]; summary: string; perClass: { label: number; ap: number; ap50: number; ap75: number; ar100: number }[] }[];
  };
  beforeAll(() => {
    const input = JSON.stringify({ cases: cases.map((c) => ({ images: c.images, iouThrs: c.iouThrs, maxDets: c.maxDets })) });
    const r = spawnSync('/usr/bin/python3', [join(__dirname, 'coco_eval_reference.py')], { input, encoding: 'utf8', maxBuffer: 1 << 26 });
    if (r.status !== 0) throw new Error(`coco_eval_reference.py failed: ${r.stderr}`);
    reference = JSON.parse(r.stdout);
  });

  it("the IoU and recall thresholds are numpy.linspace's, bit for bit", () => {
    expect(COCO_IOU_THRESHOLDS).toEqual(reference.iouThrs);
    expect(COCO_RECALL_THRESHOLDS).toEqual(reference.recThrs);
  });

  it.each(cases.map((c, i) => [c.name, i] as const))('%s', (_, i) => {
    const c = cases[i];
    const got = evaluate(c.images, { iouThresholds: c.iouThrs, maxDets: c.maxDets });
    const ref = reference.results[i];
    const names = ['map', 'map50', 'map75', 'mapSmall', 'mapMedium', 'mapLarge', 'ar1', 'ar10', 'ar100', 'arSmall', 'arMedium', 'arLarge'] as const;
    // exactly: the same comparisons, and the means summed pairwise in numpy's order
    names.forEach((k, j) => expect(got[k], k).toBe(ref.stats[j]));
    expect(got.perClass.map((p) => p.label)).toEqual(ref.perClass.map((p) => p.label));
    got.perClass.forEach((p, j) => {
      for (const k of ['ap', 'ap50', 'ap75', 'ar100'] as const) expect(p[k], `class ${p.label} ${k}`).toBe(ref.perClass[j][k]);
    });
    // the printed table, as COCOeval.summarize() prints it
    expect(formatDetectionScores(got, { iouThresholds: c.iouThrs, maxDets: c.maxDets })).toBe(ref.summary);
    // the cases are not degenerate: something was found and something missed
    if (c.images.some((im) => im.dt.length)) expect(got.map).toBeGreaterThan(0.05);
    expect(got.map).toBeLessThan(0.99);
  });
});
