// @torch2: runs in CI's libtorch 2.x leg (native/detection.cc on libtorch 2.x)
// ops (torchvision.ops' detection operators) against Debian's
// python3-torchvision 0.14: test/ops/detection_reference.py runs
// torchvision.ops on the same cases (one Python process for the file).
// RoIAlign values and input gradients within 1e-5 for both implementations
// (the CPU loops and the tensor-op version CUDA tensors use), float32 and
// float64, aligned false/true, adaptive and fixed sampling ratios, boxes
// partly or wholly outside the map, empty and inverted boxes, the [K, 5] and
// the per-image list forms, no boxes at all; NMS and batched NMS indices
// equal (ties among scores included: both keep the lower index first), both
// batched paths (offset trick up to 1000 boxes, per category above); the box
// helpers; errors that name the bad argument.
import { describe, it, expect, beforeAll } from 'vitest';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { torch, ops, type Tensor, type DType } from 'finetorch';

// Mulberry32: the cases are fixed, whatever the machine.
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

type Impl = 'loops' | 'tensorOps';
const IMPLS: Impl[] = ['loops', 'tensorOps'];

interface RoiCase {
  name: string;
  dtype: DType;
  shape: [number, number, number, number];
  input: number[];
  boxesList: boolean;
  boxes: number[][] | number[][][];
  outputSize: [number, number];
  spatialScale: number;
  samplingRatio: number;
  aligned: boolean;
  gradWeight: number[];
}

// Boxes over an image of (W / scale) x (H / scale): random ones partly
// outside, plus an empty box, an inverted one, one wholly outside, a tiny one.
function randomBoxes(r: () => number, count: number, N: number, H: number, W: number, scale: number): number[][] {
  const imgW = W / scale;
  const imgH = H / scale;
  const rows: number[][] = [];
  for (let i = 0; i < count; i++) {
    const x1 = -0.3 * imgW + r() * 1.3 * imgW;
    const y1 = -0.3 * imgH + r() * 1.3 * imgH;
    rows.push([Math.floor(r() * N), x1, y1, x1 + r() * 0.8 * imgW, y1 + r() * 0.8 * imgH]);
  }
  rows.push([0, 3, 4, 3, 4]); // empty
  rows.push([N - 1, 6, 5, 2, 1]); // inverted
  rows.push([0, imgW + 4, imgH + 3, imgW + 9, imgH + 8]); // wholly outside
  rows.push([N - 1, -imgW, -imgH, imgW * 2, imgH * 2]); // around the whole map
  rows.push([0, 1.25, 2.5, 1.5, 2.75]); // tiny
  return rows;
}

function roiCase(name: string, seed: number, o: Partial<RoiCase> & { shape: [number, number, number, number]; count?: number }): RoiCase {
  const r = rng(seed);
  const [N, C, H, W] = o.shape;
  const spatialScale = o.spatialScale ?? 1;
  const outputSize = o.outputSize ?? [2, 3];
  const boxes = o.boxes ?? randomBoxes(r, o.count ?? 6, N, H, W, spatialScale);
  const K = o.boxesList ? (boxes as number[][][]).reduce((s, b) => s + b.length, 0) : boxes.length;
  return {
    name,
    dtype: o.dtype ?? 'float32',
    shape: o.shape,
    input: Array.from({ length: N * C * H * W }, () => r() * 2 - 1),
    boxesList: o.boxesList ?? false,
    boxes,
    outputSize,
    spatialScale,
    samplingRatio: o.samplingRatio ?? -1,
    aligned: o.aligned ?? false,
    gradWeight: Array.from({ length: K * C * outputSize[0] * outputSize[1] }, () => r() * 2 - 1),
  };
}

const roiCases: RoiCase[] = [];
let seed = 10;
for (const aligned of [false, true])
  for (const samplingRatio of [-1, 0, 1, 2, 3])
    roiCases.push(
      roiCase(`aligned ${aligned}, samplingRatio ${samplingRatio}`, seed++, {
        shape: [2, 3, 9, 11],
        aligned,
        samplingRatio,
        spatialScale: samplingRatio % 2 === 0 ? 0.5 : 1,
        dtype: samplingRatio === 1 ? 'float64' : 'float32',
      }),
    );
roiCases.push(roiCase('output 4x4, a 1x1 map', seed++, { shape: [1, 2, 1, 1], outputSize: [4, 4], spatialScale: 0.25 }));
roiCases.push(roiCase('larger adaptive grids (scale 1/8)', seed++, { shape: [1, 2, 24, 30], outputSize: [3, 3], spatialScale: 0.125, count: 8 }));
roiCases.push(
  roiCase('per-image box lists, one empty', seed++, {
    shape: [3, 2, 8, 8],
    boxesList: true,
    boxes: [
      [
        [1, 1, 6, 5],
        [-2, 3, 4, 12],
      ],
      [],
      [[0.5, 0.5, 7.5, 7.5]],
    ],
    aligned: true,
  }),
);
roiCases.push(roiCase('no boxes', seed++, { shape: [2, 3, 5, 5], boxes: [] }));
roiCases.push(roiCase('no boxes, list form', seed++, { shape: [2, 3, 5, 5], boxesList: true, boxes: [[], []] }));

interface NmsCase {
  name: string;
  dtype: DType;
  boxes: number[][];
  scores: number[];
  idxs?: number[];
  iouThreshold: number;
}

function nmsCase(name: string, seed: number, K: number, o: { threshold: number; dtype?: DType; classes?: number; tiedScores?: number }): NmsCase {
  const r = rng(seed);
  const boxes: number[][] = [];
  for (let i = 0; i < K; i++) {
    // clustered, so that many pairs overlap
    const cx = Math.floor(r() * 5) * 20 + r() * 8;
    const cy = Math.floor(r() * 4) * 20 + r() * 8;
    const w = 4 + r() * 14;
    const h = 4 + r() * 14;
    boxes.push([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2]);
  }
  if (K > 3) boxes[3] = [...boxes[1]]; // a duplicate: IoU 1
  const scores = boxes.map(() => (o.tiedScores ? Math.floor(r() * o.tiedScores) / o.tiedScores : r()));
  return {
    name,
    dtype: o.dtype ?? 'float32',
    boxes,
    scores,
    idxs: o.classes ? boxes.map(() => Math.floor(r() * o.classes!)) : undefined,
    iouThreshold: o.threshold,
  };
}

const nmsCases: NmsCase[] = [
  nmsCase('nms 80 boxes, 0.5', 1, 80, { threshold: 0.5 }),
  nmsCase('nms 80 boxes float64, 0.3', 2, 80, { threshold: 0.3, dtype: 'float64' }),
  nmsCase('nms, scores tied in 4 values, 0.6', 3, 80, { threshold: 0.6, tiedScores: 4 }),
  nmsCase('nms, 0.0', 4, 30, { threshold: 0 }),
  nmsCase('nms, no boxes', 5, 0, { threshold: 0.5 }),
  nmsCase('nms 2500 boxes, 0.7 (the device version in several row blocks)', 9, 2500, { threshold: 0.7 }),
  nmsCase('batchedNms 200 boxes, 4 categories (offset trick)', 6, 200, { threshold: 0.5, classes: 4 }),
  nmsCase('batchedNms 1200 boxes, 6 categories (per category)', 7, 1200, { threshold: 0.5, classes: 6 }),
  nmsCase('batchedNms, no boxes', 8, 0, { threshold: 0.5, classes: 3 }),
];

const boxesCase = (() => {
  const r = rng(99);
  const box = () => {
    const x = -5 + r() * 30;
    const y = -5 + r() * 25;
    return [x, y, x + r() * 12, y + r() * 10];
  };
  const boxes1 = Array.from({ length: 9 }, box);
  boxes1.push([3, 3, 3, 8]); // zero width
  const boxes2 = Array.from({ length: 7 }, box);
  return { boxes1, boxes2, iouWeight: boxes1.map(() => boxes2.map(() => r() * 2 - 1)), size: [18, 24] as [number, number], minSize: 3 };
})();

// MultiScaleRoIAlign: a 4-level pyramid (strides 4..32 over images up to
// 64x80) plus an unused map, boxes from 2 to 80 pixels (canonicalScale 28
// spreads them over every level); one level with adaptive sampling; a subset.
interface MultiScaleCase {
  features: Array<[string, number[], number[]]>;
  featmapNames: string[];
  outputSize: [number, number];
  samplingRatio: number;
  canonicalScale: number;
  canonicalLevel: number;
  boxes: number[][][];
  imageSizes: Array<[number, number]>;
  gradWeight: number[];
}
function multiScaleCase(
  seed: number,
  o: { featmapNames: string[]; samplingRatio: number; canonicalScale: number; outputSize: [number, number] },
): MultiScaleCase {
  const r = rng(seed);
  const shapes: Record<string, number[]> = { '0': [2, 3, 16, 20], '1': [2, 3, 8, 10], '2': [2, 3, 4, 5], '3': [2, 3, 2, 3], pool: [2, 3, 1, 2] };
  const features = Object.entries(shapes).map(([name, shape]): [string, number[], number[]] => [
    name,
    shape,
    Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => r() * 2 - 1),
  ]);
  const imageSizes: Array<[number, number]> = [
    [64, 80],
    [50, 70],
  ];
  const boxes = imageSizes.map(([h, w]) =>
    Array.from({ length: 7 }, () => {
      const bw = 2 * 40 ** r();
      const bh = 2 * 40 ** r();
      const x = r() * (w - bw);
      const y = r() * (h - bh);
      return [x, y, x + bw, y + bh];
    }),
  );
  boxes[0].push([1, 1, 75, 62]); // large enough for the coarsest level
  const K = boxes.reduce((s, b) => s + b.length, 0);
  return {
    features,
    ...o,
    canonicalLevel: 4,
    boxes,
    imageSizes,
    gradWeight: Array.from({ length: K * 3 * o.outputSize[0] * o.outputSize[1] }, () => r() * 2 - 1),
  };
}
const multiScaleCases: MultiScaleCase[] = [
  multiScaleCase(41, { featmapNames: ['0', '1', '2', '3'], samplingRatio: 2, canonicalScale: 28, outputSize: [3, 3] }),
  multiScaleCase(42, { featmapNames: ['0'], samplingRatio: -1, canonicalScale: 224, outputSize: [2, 2] }),
  multiScaleCase(43, { featmapNames: ['1', '3'], samplingRatio: 2, canonicalScale: 28, outputSize: [2, 3] }),
];

interface RoiResult {
  output: number[];
  shape: number[];
  gradInput: number[];
}
interface BoxesResult {
  area: number[];
  iou: number[];
  iouGrad: number[];
  clipped: number[];
  small: number[];
}
interface MultiScaleResult {
  output: number[];
  shape: number[];
  scales: number[];
  levels: number[];
  grads: Record<string, number[] | null>;
}
let reference: { roiAlign: RoiResult[]; nms: number[][]; boxes: BoxesResult[]; multiScale: MultiScaleResult[] };

beforeAll(() => {
  const out = execFileSync('/usr/bin/python3', [join(__dirname, 'detection_reference.py')], {
    input: JSON.stringify({ roiAlign: roiCases, nms: nmsCases, boxes: [boxesCase], multiScale: multiScaleCases }),
    maxBuffer: 64 << 20,
    timeout: 120000,
  });
  reference = JSON.parse(out.toString());
}, 120000);

function values(t: Tensor): number[] {
  return Array.from(t.dataSync() as ArrayLike<number | bigint>, Number);
}
function maxDiff(got: number[], want: number[]): number {
  expect(got.length).toBe(want.length);
  let m = 0;
  for (let i = 0; i < want.length; i++) m = Math.max(m, Math.abs(got[i] - want[i]));
  return m;
}
function rows(x: number[][], width: number, dtype: DType): Tensor {
  return torch.tensor(new Float64Array(x.flat()), { shape: [x.length, width], dtype });
}

describe('ops.roiAlign', () => {
  for (const [i, c] of roiCases.entries())
    for (const implementation of IMPLS)
      it(`${c.name} (${c.dtype}, ${implementation}) equals torchvision's values and input gradients`, () => {
        const want = reference.roiAlign[i];
        const input = torch.tensor(new Float64Array(c.input), { shape: c.shape, dtype: c.dtype, requiresGrad: true });
        const boxes = c.boxesList ? (c.boxes as number[][][]).map((b) => rows(b, 4, c.dtype)) : rows(c.boxes as number[][], 5, c.dtype);
        const out = ops.roiAlign(input, boxes, c.outputSize, {
          spatialScale: c.spatialScale,
          samplingRatio: c.samplingRatio,
          aligned: c.aligned,
          implementation,
        });
        expect(out.shape).toEqual(want.shape);
        expect(out.dtype).toBe(c.dtype);
        expect(maxDiff(values(out), want.output)).toBeLessThan(1e-5);
        const weight = torch.tensor(new Float64Array(c.gradWeight), { shape: want.shape, dtype: c.dtype });
        out.mul(weight).sum().backward();
        expect(maxDiff(values(input.grad!), want.gradInput)).toBeLessThan(1e-5);
      });

  it('takes a square outputSize as one number and averages nothing outside the map', () => {
    const input = torch.ones([1, 1, 4, 4]);
    const inside = ops.roiAlign(input, torch.tensor([[0, 0, 0, 4, 4]]), 2);
    expect(inside.shape).toEqual([1, 1, 2, 2]);
    expect(values(inside)).toEqual([1, 1, 1, 1]);
    // samples more than a pixel beyond the map read 0
    expect(values(ops.roiAlign(input, torch.tensor([[0, 20, 20, 30, 30]]), 1))).toEqual([0]);
  });

  it('runs its backward on the torch thread (backwardAsync) with the same gradient', async () => {
    const c = roiCases[2];
    const want = reference.roiAlign[2];
    const input = torch.tensor(new Float64Array(c.input), { shape: c.shape, dtype: c.dtype, requiresGrad: true });
    const out = ops.roiAlign(input, rows(c.boxes as number[][], 5, c.dtype), c.outputSize, {
      spatialScale: c.spatialScale,
      samplingRatio: c.samplingRatio,
    });
    await out
      .mul(torch.tensor(new Float64Array(c.gradWeight), { shape: want.shape, dtype: c.dtype }))
      .sum()
      .backwardAsync();
    expect(maxDiff(values(input.grad!), want.gradInput)).toBeLessThan(1e-5);
  });

  it('computes float16 inputs in float32 and returns float16 (gradient too)', () => {
    const c = roiCases[0];
    const want = reference.roiAlign[0];
    const input = torch.tensor(new Float64Array(c.input), { shape: c.shape, dtype: 'float16', requiresGrad: true });
    const out = ops.roiAlign(input, rows(c.boxes as number[][], 5, 'float32'), c.outputSize);
    expect(out.dtype).toBe('float16');
    // the reference ran on the float32 input; float16 rounds input and output (~1e-3 relative)
    expect(maxDiff(values(out), want.output)).toBeLessThan(4e-3);
    out
      .float()
      .mul(torch.tensor(new Float64Array(c.gradWeight), { shape: want.shape }))
      .sum()
      .backward();
    expect(input.grad!.dtype).toBe('float16');
    expect(maxDiff(values(input.grad!), want.gradInput)).toBeLessThan(2e-2);
  });

  it('names the bad argument', () => {
    const input = torch.zeros([2, 3, 8, 8]);
    const call =
      (boxes: Tensor | Tensor[], o: Record<string, unknown> = {}, size: unknown = 2, x: unknown = input) =>
      () =>
        ops.roiAlign(x as Tensor, boxes, size as number, o);
    expect(call(torch.tensor([[2, 0, 0, 4, 4]]))).toThrow(/boxes row 0: batch index 2(\.0+)? is not an image of input \[2, 3, 8, 8\]/);
    expect(
      call(
        torch.tensor([
          [0, 0, 0, 4, 4],
          [0.5, 0, 0, 4, 4],
        ]),
      ),
    ).toThrow(/boxes row 1: batch index 0\.5/);
    expect(call(torch.tensor([[0, 0, NaN, 4, 4]]))).toThrow(/boxes row 0 holds a non-finite value/);
    expect(call(torch.tensor([[0, 0, 4, 4]]))).toThrow(/ops\.roiAlign: boxes must be a \[K, 5\] tensor .* got int64 \[1, 4\]/);
    expect(call([torch.tensor([[0, 0, 4, 4]])])).toThrow(/boxes is a list of 1 tensors, one per image, but input \[2, 3, 8, 8\] holds 2 images/);
    expect(call([torch.tensor([[0, 0, 4, 4]]), torch.tensor([[0, 0, 4]])])).toThrow(/boxes\[1\] must be a \[Ki, 4\] tensor/);
    expect(call(torch.tensor([[0, 0, 0, 4, 4]]), {}, 2, torch.zeros([3, 8, 8]))).toThrow(
      /input must be a float \[N, C, H, W\] tensor, got float32 \[3, 8, 8\]/,
    );
    expect(call(torch.tensor([[0, 0, 0, 4, 4]]), {}, 0)).toThrow(/outputSize must be a positive integer/);
    expect(call(torch.tensor([[0, 0, 0, 4, 4]]), { spatialScale: 0 })).toThrow(/spatialScale must be a positive finite number/);
    expect(call(torch.tensor([[0, 0, 0, 4, 4]]), { implementation: 'cuda' })).toThrow(/implementation must be 'auto', 'loops' or 'tensorOps'/);
    expect(call(torch.tensor([[0, 0, 0, 1e9, 1e9]]))).toThrow(/boxes row 0 spans .* pass a positive samplingRatio/);
    expect(call(torch.tensor([[0, 0, 0, 4, 4]]), { samplingRatio: 5000 })).toThrow(/samplingRatio 5000 is more than 1024/);
    expect(call(torch.tensor([[0, 0, 0, 4, 1e25]], { dtype: 'float32' }), { spatialScale: 1e6, samplingRatio: 2 })).toThrow(
      /boxes row 0: coordinate .* beyond 1e30/,
    );
    expect(call(torch.tensor([[0, 0, 0, 4, 4]]), {}, 2, torch.zeros([1, 3, 0, 8]))).toThrow(/empty feature map/);
  });
});

describe('ops.MultiScaleRoIAlign', () => {
  for (const [i, c] of multiScaleCases.entries())
    for (const implementation of IMPLS)
      it(`levels ${c.featmapNames.join(', ')}, samplingRatio ${c.samplingRatio} (${implementation}) equals torchvision's values, scales and gradients`, () => {
        const want = reference.multiScale[i];
        const features = Object.fromEntries(
          c.features.map(([name, shape, data]) => [name, torch.tensor(new Float64Array(data), { shape, requiresGrad: true })]),
        );
        const pooler = new ops.MultiScaleRoIAlign(c.featmapNames, c.outputSize, {
          samplingRatio: c.samplingRatio,
          canonicalScale: c.canonicalScale,
          implementation,
        });
        const out = pooler.forward(
          features,
          c.boxes.map((b) => rows(b, 4, 'float32')),
          c.imageSizes,
        );
        expect(pooler.scales).toEqual(want.scales);
        expect(out.shape).toEqual(want.shape);
        expect(maxDiff(values(out), want.output)).toBeLessThan(1e-5);
        out
          .mul(torch.tensor(new Float64Array(c.gradWeight), { shape: want.shape }))
          .sum()
          .backward();
        for (const [name] of c.features) {
          const grad = features[name].grad;
          if (want.grads[name] === null) expect(grad).toBeNull();
          else expect(maxDiff(values(grad!), want.grads[name]!)).toBeLessThan(1e-5);
        }
        if (i === 0) expect(new Set(want.levels).size).toBe(4); // every level pools some box
      });

  it('names the bad argument', () => {
    const pooler = new ops.MultiScaleRoIAlign(['0', '1'], 2, { samplingRatio: 2 });
    const f = { '0': torch.zeros([1, 2, 8, 8]), '1': torch.zeros([1, 2, 4, 4]) };
    const boxes = [torch.tensor([[0, 0, 4, 4]], { dtype: 'float32' })];
    expect(() => pooler.forward({ '0': f['0'] }, boxes, [[32, 32]])).toThrow(/features has no feature map '1' \(it has '0'\)/);
    expect(() => pooler.forward(f, boxes, [])).toThrow(/imageSizes must be a non-empty list of \[height, width\]/);
    expect(() => pooler.forward(f, [boxes[0], boxes[0]], [[32, 32]])).toThrow(
      /boxes is a list of 2 tensors, one per image, but input \[1, 2, 8, 8\] holds 1 images/,
    );
    expect(() => pooler.forward({ ...f, '1': torch.zeros([1, 3, 4, 4]) }, boxes, [[32, 32]])).toThrow(/feature map 1 is float32 \[1, 3, 4, 4\] .* must agree/);
    expect(() => pooler.forward(f, [torch.tensor([[0, 0, NaN, 4]])], [[32, 32]])).toThrow(/boxes row 0 holds a non-finite value/);
    expect(() => new ops.MultiScaleRoIAlign([], 2, { samplingRatio: 2 })).toThrow(/featmapNames must be a non-empty list/);
  });
});

describe('ops.nms and ops.batchedNms', () => {
  for (const [i, c] of nmsCases.entries())
    for (const implementation of IMPLS)
      it(`${c.name} (${implementation}) keeps torchvision's indices`, () => {
        const boxes = c.boxes.length ? rows(c.boxes, 4, c.dtype) : torch.zeros([0, 4], { dtype: c.dtype });
        const scores = torch.tensor(new Float64Array(c.scores), { shape: [c.scores.length], dtype: c.dtype });
        const keep = c.idxs
          ? ops.batchedNms(boxes, scores, torch.tensor(BigInt64Array.from(c.idxs, BigInt), { shape: [c.idxs.length] }), c.iouThreshold, { implementation })
          : ops.nms(boxes, scores, c.iouThreshold, { implementation });
        expect(keep.dtype).toBe('int64');
        expect(values(keep)).toEqual(reference.nms[i]);
        if (c.boxes.length) expect(reference.nms[i].length).toBeGreaterThan(1);
      });

  it('suppresses within a category only', () => {
    const boxes = torch.tensor([
      [0, 0, 10, 10],
      [1, 1, 10, 10],
      [0, 0, 10, 10],
    ]);
    const scores = torch.tensor([0.9, 0.8, 0.7]);
    expect(values(ops.nms(boxes, scores, 0.5))).toEqual([0]);
    expect(values(ops.batchedNms(boxes, scores, torch.tensor([0, 1, 1], { dtype: 'int64' }), 0.5))).toEqual([0, 1]);
  });

  it('names the bad argument', () => {
    const boxes = torch.zeros([3, 4]);
    expect(() => ops.nms(boxes, torch.zeros([2]), 0.5)).toThrow(/ops\.nms: scores must be a \[K\] tensor with one score per box \(K = 3\), got float32 \[2\]/);
    expect(() => ops.nms(torch.zeros([3, 5]), torch.zeros([3]), 0.5)).toThrow(/ops\.nms: boxes must be a \[K, 4\] tensor/);
    expect(() => ops.nms(boxes, torch.zeros([3]), NaN)).toThrow(/iouThreshold must be a finite number/);
    expect(() => ops.batchedNms(boxes, torch.zeros([3]), torch.zeros([3]), 0.5)).toThrow(/ops\.batchedNms: idxs must be an integer \[K\] tensor/);
    expect(() => ops.batchedNms(boxes, torch.zeros([3]), torch.zeros([4], { dtype: 'int64' }), 0.5)).toThrow(/idxs must be an integer \[K\] tensor .*K = 3/);
  });
});

describe('box helpers', () => {
  const c = boxesCase;
  it('boxArea, boxIou (and its gradient), clipBoxesToImage and removeSmallBoxes equal torchvision', () => {
    const want = reference.boxes[0];
    const boxes1 = rows(c.boxes1, 4, 'float64').requiresGrad_();
    const boxes2 = rows(c.boxes2, 4, 'float64');
    expect(maxDiff(values(ops.boxArea(boxes1)), want.area)).toBeLessThan(1e-12);
    const iou = ops.boxIou(boxes1, boxes2);
    expect(iou.shape).toEqual([c.boxes1.length, c.boxes2.length]);
    expect(maxDiff(values(iou), want.iou)).toBeLessThan(1e-12);
    iou
      .mul(torch.tensor(c.iouWeight, { dtype: 'float64' }))
      .sum()
      .backward();
    expect(maxDiff(values(boxes1.grad!), want.iouGrad)).toBeLessThan(1e-12);
    expect(maxDiff(values(ops.clipBoxesToImage(boxes1, c.size)), want.clipped)).toBeLessThan(1e-12);
    expect(values(ops.removeSmallBoxes(boxes1, c.minSize))).toEqual(want.small);
  });

  it('names the bad argument', () => {
    expect(() => ops.boxIou(torch.zeros([2, 4]), torch.zeros([2, 3]))).toThrow(/ops\.boxIou: boxes2 must be a \[K, 4\] tensor/);
    expect(() => ops.boxArea(torch.zeros([4]))).toThrow(/ops\.boxArea: boxes must be a \[K, 4\] tensor/);
    expect(() => ops.clipBoxesToImage(torch.zeros([2, 4]), [10] as unknown as [number, number])).toThrow(/size must be \[height, width\]/);
    expect(() => ops.removeSmallBoxes(torch.zeros([2, 4]), Infinity)).toThrow(/minSize must be a finite number/);
  });
});
