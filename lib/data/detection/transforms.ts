// Box-aware transforms: the image (float32 CHW, as loadImage gives it) and
// its boxes move together. Random steps draw from the sample's seeded
// generator, so an epoch's augmentation is the same for the same seed.

export type DetectionTransform =
  /** Mirror left-right with this probability; x1' = W - x2, x2' = W - x1. */
  | { horizontalFlip: number }
  /**
   * Resize as torchvision's GeneralizedRCNNTransform: scale = min(minSize /
   * shorter side, maxSize / longer side), size floor(side * scale), bilinear
   * (align_corners false, no antialias), boxes times new/old size. Several
   * minSize values: one drawn per image, as that transform does in training.
   */
  | { resize: { minSize: number | number[]; maxSize: number } }
  /**
   * A [height, width] (or square) window at a random place; boxes are moved
   * into it and clipped to it, and dropped when less than `minVisible` of
   * their area (default 0: only those that vanish) stays inside.
   */
  | { randomCrop: number | [number, number]; minVisible?: number }
  | { normalize: { mean: number[]; std: number[] } };

export interface DetectionImage {
  /** float32 CHW. */
  data: Float32Array;
  channels: number;
  height: number;
  width: number;
  boxes: number[][];
  labels: number[];
  difficult?: boolean[];
}

const f32 = Math.fround;

/**
 * The [height, width] GeneralizedRCNNTransform resizes an H x W image to:
 * its scale is float32 arithmetic (`size / side` of a Python float by a
 * float32 tensor, which PyTorch computes as side.reciprocal() * size), the
 * sizes floor(side * scale) in double, as interpolate's recompute_scale_factor.
 * (So 50 / 30 scales 30 to 50, but 33 / 25 scales 25 to 32.)
 */
export function detectionResizeSize(height: number, width: number, minSize: number, maxSize: number): [number, number] {
  const scaleBy = (size: number, side: number) => f32(f32(1 / side) * f32(size));
  const scale = Math.min(scaleBy(minSize, Math.min(height, width)), scaleBy(maxSize, Math.max(height, width)));
  return [Math.floor(height * scale), Math.floor(width * scale)];
}

/** For each output index along one side: the two input indices and their weights, as ATen's upsample_bilinear2d (align_corners false) computes them in float32. */
function linearTaps(inSize: number, outSize: number): { i0: Int32Array; i1: Int32Array; w0: Float32Array; w1: Float32Array } {
  const scale = f32(inSize / outSize);
  const i0 = new Int32Array(outSize);
  const i1 = new Int32Array(outSize);
  const w0 = new Float32Array(outSize);
  const w1 = new Float32Array(outSize);
  for (let o = 0; o < outSize; o++) {
    let src = f32(f32(scale * (o + 0.5)) - 0.5);
    if (src < 0) src = 0;
    const lo = Math.min(Math.floor(src), inSize - 1);
    const lambda = Math.min(Math.max(f32(src - lo), 0), 1);
    i0[o] = lo;
    i1[o] = lo < inSize - 1 ? lo + 1 : lo;
    w1[o] = lambda;
    w0[o] = f32(1 - lambda);
  }
  return { i0, i1, w0, w1 };
}

/** Bilinear resize of float32 CHW data (torch.nn.functional.interpolate, mode 'bilinear', align_corners false). */
export function bilinearResizeChw(data: Float32Array, channels: number, height: number, width: number, outHeight: number, outWidth: number): Float32Array {
  const ys = linearTaps(height, outHeight);
  const xs = linearTaps(width, outWidth);
  const out = new Float32Array(channels * outHeight * outWidth);
  for (let c = 0; c < channels; c++) {
    const plane = c * height * width;
    for (let y = 0; y < outHeight; y++) {
      const r0 = plane + ys.i0[y] * width;
      const r1 = plane + ys.i1[y] * width;
      const wy0 = ys.w0[y];
      const wy1 = ys.w1[y];
      const row = (c * outHeight + y) * outWidth;
      for (let x = 0; x < outWidth; x++) {
        const a = xs.i0[x];
        const b = xs.i1[x];
        const top = f32(f32(data[r0 + a] * xs.w0[x]) + f32(data[r0 + b] * xs.w1[x]));
        const bottom = f32(f32(data[r1 + a] * xs.w0[x]) + f32(data[r1 + b] * xs.w1[x]));
        out[row + x] = f32(f32(top * wy0) + f32(bottom * wy1));
      }
    }
  }
  return out;
}

function keep(im: DetectionImage, indices: number[], boxes: number[][]): DetectionImage {
  return {
    ...im,
    boxes,
    labels: indices.map((i) => im.labels[i]),
    ...(im.difficult ? { difficult: indices.map((i) => (im.difficult as boolean[])[i]) } : {}),
  };
}

const positive = (v: unknown) => typeof v === 'number' && Number.isInteger(v) && v > 0;

/** Applies the transforms in order; `source` (the image's path) names the image in errors. */
export function applyDetectionTransforms(im: DetectionImage, transforms: DetectionTransform[], random: () => number, source: string): DetectionImage {
  for (const t of transforms) {
    const { channels: C, height: H, width: W } = im;
    if (t == null || typeof t !== 'object') throw new TypeError(`${source}: a detection transform must be an object, got ${JSON.stringify(t)}`);
    if ('horizontalFlip' in t) {
      const p = t.horizontalFlip;
      if (typeof p !== 'number' || !(p >= 0 && p <= 1)) throw new TypeError(`${source}: horizontalFlip is a probability in [0, 1], got ${JSON.stringify(p)}`);
      if (!(random() < p)) continue;
      const out = new Float32Array(im.data.length);
      for (let c = 0; c < C; c++)
        for (let y = 0; y < H; y++) {
          const row = (c * H + y) * W;
          for (let x = 0; x < W; x++) out[row + W - 1 - x] = im.data[row + x];
        }
      im = { ...im, data: out, boxes: im.boxes.map(([x1, y1, x2, y2]) => [W - x2, y1, W - x1, y2]) };
    } else if ('resize' in t) {
      const { minSize, maxSize } = t.resize ?? ({} as { minSize?: unknown; maxSize?: unknown });
      const sizes = Array.isArray(minSize) ? minSize : [minSize];
      if (!sizes.length || !sizes.every(positive) || !positive(maxSize))
        throw new TypeError(
          `${source}: resize needs { minSize: a positive integer or a list of them, maxSize: a positive integer }, got ${JSON.stringify(t.resize)}`,
        );
      const size = sizes.length === 1 ? sizes[0] : sizes[Math.floor(random() * sizes.length)];
      const [h, w] = detectionResizeSize(H, W, size, maxSize);
      if (h < 1 || w < 1) throw new RangeError(`${source}: resize of ${W}x${H} (width x height) to minSize ${size}, maxSize ${maxSize} leaves ${w}x${h}`);
      const rw = f32(w / W);
      const rh = f32(h / H);
      im = {
        ...im,
        data: bilinearResizeChw(im.data, C, H, W, h, w),
        height: h,
        width: w,
        boxes: im.boxes.map(([x1, y1, x2, y2]) => [x1 * rw, y1 * rh, x2 * rw, y2 * rh]),
      };
    } else if ('randomCrop' in t) {
      const [h, w] = Array.isArray(t.randomCrop) ? t.randomCrop : [t.randomCrop, t.randomCrop];
      const minVisible = t.minVisible ?? 0;
      if (!positive(h) || !positive(w)) throw new TypeError(`${source}: randomCrop needs a positive size [height, width], got ${JSON.stringify(t.randomCrop)}`);
      if (!(minVisible >= 0 && minVisible <= 1)) throw new TypeError(`${source}: randomCrop minVisible must be in [0, 1], got ${minVisible}`);
      if (h > H || w > W) throw new RangeError(`${source}: randomCrop ${h}x${w} (height x width) is larger than the image ${H}x${W}`);
      const left = Math.floor(random() * (W - w + 1));
      const top = Math.floor(random() * (H - h + 1));
      const out = new Float32Array(C * h * w);
      for (let c = 0; c < C; c++)
        for (let y = 0; y < h; y++) out.set(im.data.subarray((c * H + top + y) * W + left, (c * H + top + y) * W + left + w), (c * h + y) * w);
      const kept: number[] = [];
      const boxes: number[][] = [];
      im.boxes.forEach(([x1, y1, x2, y2], i) => {
        const b = [Math.max(0, x1 - left), Math.max(0, y1 - top), Math.min(w, x2 - left), Math.min(h, y2 - top)];
        if (!(b[2] > b[0] && b[3] > b[1])) return; // vanished
        if ((b[2] - b[0]) * (b[3] - b[1]) < minVisible * (x2 - x1) * (y2 - y1)) return;
        kept.push(i);
        boxes.push(b);
      });
      im = { ...keep(im, kept, boxes), data: out, height: h, width: w };
    } else if ('normalize' in t) {
      const { mean, std } = t.normalize;
      if (mean?.length !== C || std?.length !== C) throw new TypeError(`${source}: normalize: mean/std need ${C} values for ${C} channels`);
      const out = new Float32Array(im.data.length);
      for (let c = 0; c < C; c++) for (let i = 0; i < H * W; i++) out[c * H * W + i] = (im.data[c * H * W + i] - mean[c]) / std[c];
      im = { ...im, data: out };
    } else {
      throw new TypeError(`${source}: unknown detection transform ${JSON.stringify(t)} (expected horizontalFlip, resize, randomCrop or normalize)`);
    }
  }
  return im;
}
