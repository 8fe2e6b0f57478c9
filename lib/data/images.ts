// Image folders (root/<class>/*.png|jpg|jpeg|webp, classes sorted as
// torchvision's ImageFolder does), decoding and augmentation with sharp
// (libvips runs on its own threads, off the event loop), and seeded random
// transforms.
import { readdirSync, statSync } from 'node:fs';
import { extname, join } from 'node:path';
import sharp, { type Sharp } from 'sharp';
import { DataError } from '../errors.js';

export const IMAGE_EXTENSIONS = ['.png', '.jpg', '.jpeg', '.webp'];
export const IMAGENET_MEAN = [0.485, 0.456, 0.406];
export const IMAGENET_STD = [0.229, 0.224, 0.225];

export interface ImageSample {
  path: string;
  label: number;
}
export interface ImageFolder {
  samples: ImageSample[];
  classes: string[];
  counts: Record<string, number>;
}

function walk(dir: string, exts: string[]): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...walk(p, exts));
    else if (exts.includes(extname(name).toLowerCase())) out.push(p);
  }
  return out;
}

/** Lists root/<class>/** images; an empty class folder is an error naming it. */
export function imageFolder(root: string, options: { extensions?: string[] } = {}): ImageFolder {
  const exts = (options.extensions ?? IMAGE_EXTENSIONS).map((e) => e.toLowerCase());
  let entries: string[];
  try {
    entries = readdirSync(root).sort();
  } catch (err) {
    throw new Error(`imageFolder: cannot read ${root}: ${(err as Error).message}`);
  }
  const classes = entries.filter((n) => statSync(join(root, n)).isDirectory());
  if (!classes.length) throw new Error(`imageFolder: ${root} has no class folders (expected root/<class>/<image>)`);
  const samples: ImageSample[] = [];
  const counts: Record<string, number> = {};
  classes.forEach((c, label) => {
    const files = walk(join(root, c), exts);
    if (!files.length) throw new Error(`imageFolder: class folder ${join(root, c)} has no images (${exts.join(', ')})`);
    counts[c] = files.length;
    for (const path of files) samples.push({ path, label });
  });
  return { samples, classes, counts };
}

/** One step of an image pipeline; random steps draw from the sample's seeded generator. */
export type Transform =
  /** A number resizes the shorter side to it, keeping the aspect ratio (torchvision's Resize(N)); [h, w] stretches. */
  | { resize: number | [number, number]; interpolation?: Interpolation }
  | { centerCrop: number | [number, number] }
  | { randomCrop: number | [number, number]; padding?: number }
  | { randomResizedCrop: number | [number, number]; scale?: [number, number]; ratio?: [number, number]; interpolation?: Interpolation }
  | { randomRotation: number }
  | { horizontalFlip: number }
  | { verticalFlip: number }
  | { colorJitter: { brightness?: number; contrast?: number } }
  | { normalize: { mean: number[]; std: number[] } };

/**
 * How a resize resamples: 'bilinear' is PIL's antialiased bilinear filter
 * (what torchvision's Resize and RandomResizedCrop use on PIL images),
 * computed here with PIL's own fixed-point arithmetic; 'lanczos3' is sharp's
 * default kernel (the default, as before).
 */
export type Interpolation = 'bilinear' | 'lanczos3';

interface Raw {
  data: Buffer;
  width: number;
  height: number;
  channels: number;
}

const pair = (s: number | [number, number]): [number, number] => (Array.isArray(s) ? s : [s, s]);

/**
 * The largest image decoded or produced by a transform: 8192 x 8192 pixels
 * (768 MB as float32 RGB). Beyond it libvips would try to allocate
 * gigabytes (resize to 20000 was killed at 4 GB); checked before sharp runs.
 */
export const MAX_IMAGE_PIXELS = 8192 * 8192;
const MAX_IMAGE_SIDE = 65535;

/** Throws naming the file, the step and the size when a step would make an image too big (or not a size at all). */
function checkSize(path: string, step: string, w: number, h: number): void {
  if (!Number.isInteger(w) || !Number.isInteger(h) || w < 1 || h < 1)
    throw new RangeError(`${path}: ${step} to ${w}x${h} (width x height) is not a size: expected positive integers`);
  if (w * h > MAX_IMAGE_PIXELS || w > MAX_IMAGE_SIDE || h > MAX_IMAGE_SIDE)
    throw new RangeError(
      `${path}: ${step} to ${w}x${h} (width x height) is too big: ${(w * h).toLocaleString('en-US')} pixels, at most ${MAX_IMAGE_PIXELS.toLocaleString('en-US')} (8192x8192)`,
    );
}

/** Runs a sharp step, naming the file and the step when libvips fails. */
async function sharpStep<T>(path: string, step: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw new Error(`${path}: ${step} failed: ${(err as Error).message}`);
  }
}

// Every step keeps the channel count (libvips may widen greyscale to sRGB on output).
async function raw(img: Sharp, channels: number): Promise<Raw> {
  const { data, info } = await img
    .toColourspace(channels === 1 ? 'b-w' : 'srgb')
    .raw()
    .toBuffer({ resolveWithObject: true });
  return { data, width: info.width, height: info.height, channels: info.channels };
}
const fromRaw = (r: Raw) => sharp(r.data, { raw: { width: r.width, height: r.height, channels: r.channels as 1 | 3 } });

// Crops and flips only move pixels: done here on the raw buffer, they are
// exact and skip a sharp round trip each (a fixed cost that dominated small
// images: BENCHMARKS.md, PNG epoch).
function crop(r: Raw, left: number, top: number, w: number, h: number): Raw {
  const C = r.channels;
  const out = Buffer.allocUnsafe(w * h * C);
  for (let y = 0; y < h; y++) {
    const from = ((top + y) * r.width + left) * C;
    r.data.copy(out, y * w * C, from, from + w * C);
  }
  return { data: out, width: w, height: h, channels: C };
}

/** Mirror left-right (sharp's flop). */
function flopRaw(r: Raw): Raw {
  const { width: W, height: H, channels: C } = r;
  const out = Buffer.allocUnsafe(W * H * C);
  for (let y = 0; y < H; y++) {
    for (let x = 0; x < W; x++) {
      const from = (y * W + x) * C;
      r.data.copy(out, (y * W + (W - 1 - x)) * C, from, from + C);
    }
  }
  return { data: out, width: W, height: H, channels: C };
}

/** Mirror top-bottom (sharp's flip). */
function flipRaw(r: Raw): Raw {
  const { width: W, height: H, channels: C } = r;
  const out = Buffer.allocUnsafe(W * H * C);
  for (let y = 0; y < H; y++) r.data.copy(out, (H - 1 - y) * W * C, y * W * C, (y + 1) * W * C);
  return { data: out, width: W, height: H, channels: C };
}

/** Python's round(): halves go to the even neighbour (torchvision rounds crop offsets with it). */
export function pythonRound(x: number): number {
  const f = Math.floor(x);
  const d = x - f;
  return d > 0.5 ? f + 1 : d < 0.5 ? f : f % 2 === 0 ? f : f + 1;
}

/**
 * [height, width] after resizing the shorter side to `size`, keeping the
 * aspect ratio: torchvision's Resize(size), whose long side is
 * int(size * long / short) (truncated, not rounded).
 */
export function shorterSideSize(height: number, width: number, size: number): [number, number] {
  return width <= height ? [Math.floor((size * height) / width), size] : [size, Math.floor((size * width) / height)];
}

/**
 * The [top, left] of a centred h x w crop of an H x W image, as torchvision's
 * CenterCrop: int(round((H - h) / 2)) with Python's round.
 */
export function centerCropOffsets(H: number, W: number, h: number, w: number): [number, number] {
  return [pythonRound((H - h) / 2), pythonRound((W - w) / 2)];
}

// torchvision's center_crop: an image smaller than the crop is first padded
// with zeros (left/top get the smaller half), then cropped.
function centerCropRaw(r: Raw, h: number, w: number): Raw {
  if (h > r.height || w > r.width) {
    const padLeft = w > r.width ? Math.floor((w - r.width) / 2) : 0;
    const padTop = h > r.height ? Math.floor((h - r.height) / 2) : 0;
    const W = Math.max(w, r.width);
    const H = Math.max(h, r.height);
    const C = r.channels;
    const out = Buffer.alloc(W * H * C);
    for (let y = 0; y < r.height; y++) r.data.copy(out, ((padTop + y) * W + padLeft) * C, y * r.width * C, (y + 1) * r.width * C);
    r = { data: out, width: W, height: H, channels: C };
  }
  const [top, left] = centerCropOffsets(r.height, r.width, h, w);
  return crop(r, left, top, w, h);
}

async function resizeRaw(path: string, r: Raw, w: number, h: number, interpolation: Interpolation = 'lanczos3', step = 'resize'): Promise<Raw> {
  if (interpolation === 'bilinear') return bilinearResize(r, w, h);
  if (interpolation !== 'lanczos3')
    throw new TypeError(`${path}: ${step}: interpolation must be 'bilinear' or 'lanczos3', got ${JSON.stringify(interpolation)}`);
  return sharpStep(path, `${step} to ${w}x${h}`, () => raw(fromRaw(r).resize(w, h, { fit: 'fill' }), r.channels));
}

// ---- PIL's antialiased bilinear resize (Pillow's Resample.c), exactly:
// a triangle filter widened by the scale when shrinking, coefficients in
// fixed point with 22 fractional bits, a horizontal pass to uint8, then a
// vertical one. torchvision's Resize runs this on PIL images; sharp's
// kernels differ from it by up to 7 (of 255) when shrinking and up to ~100
// near edges when enlarging (measured on sklearn's photos), hence our own.
const PRECISION_BITS = 22;

/** For each output pixel: the first input pixel, how many, and their fixed-point weights. */
function bilinearCoefficients(inSize: number, outSize: number): { first: Int32Array; count: Int32Array; weights: Int32Array; taps: number } {
  const scale = inSize / outSize;
  const filterScale = Math.max(scale, 1);
  const support = filterScale; // the triangle's support (1) widened when shrinking
  const taps = Math.ceil(support) * 2 + 1;
  const first = new Int32Array(outSize);
  const count = new Int32Array(outSize);
  const weights = new Int32Array(outSize * taps);
  const k = new Float64Array(taps);
  const ss = 1 / filterScale;
  for (let o = 0; o < outSize; o++) {
    const center = (o + 0.5) * scale;
    const lo = Math.max(Math.trunc(center - support + 0.5), 0);
    const n = Math.min(Math.trunc(center + support + 0.5), inSize) - lo;
    let total = 0;
    for (let x = 0; x < n; x++) {
      const d = Math.abs((x + lo - center + 0.5) * ss);
      k[x] = d < 1 ? 1 - d : 0;
      total += k[x];
    }
    for (let x = 0; x < n; x++) {
      const v = total !== 0 ? k[x] / total : k[x];
      weights[o * taps + x] = Math.trunc(v < 0 ? v * (1 << PRECISION_BITS) - 0.5 : v * (1 << PRECISION_BITS) + 0.5);
    }
    first[o] = lo;
    count[o] = n;
  }
  return { first, count, weights, taps };
}

const clip8 = (v: number) => (v <= 0 ? 0 : v >= 255 * 2 ** PRECISION_BITS ? 255 : Math.floor(v / 2 ** PRECISION_BITS));

function bilinearResize(r: Raw, w: number, h: number): Raw {
  const C = r.channels;
  let cur = r;
  if (w !== cur.width) {
    const { first, count, weights, taps } = bilinearCoefficients(cur.width, w);
    const out = Buffer.allocUnsafe(w * cur.height * C);
    for (let y = 0; y < cur.height; y++) {
      const row = y * cur.width * C;
      for (let x = 0; x < w; x++) {
        for (let c = 0; c < C; c++) {
          let sum = 1 << (PRECISION_BITS - 1);
          for (let i = 0; i < count[x]; i++) sum += cur.data[row + (first[x] + i) * C + c] * weights[x * taps + i];
          out[(y * w + x) * C + c] = clip8(sum);
        }
      }
    }
    cur = { data: out, width: w, height: cur.height, channels: C };
  }
  if (h !== cur.height) {
    const { first, count, weights, taps } = bilinearCoefficients(cur.height, h);
    const W = cur.width;
    const out = Buffer.allocUnsafe(W * h * C);
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < W * C; x++) {
        let sum = 1 << (PRECISION_BITS - 1);
        for (let i = 0; i < count[y]; i++) sum += cur.data[(first[y] + i) * W * C + x] * weights[y * taps + i];
        out[y * W * C + x] = clip8(sum);
      }
    }
    cur = { data: out, width: W, height: h, channels: C };
  }
  return cur;
}

/**
 * Decodes an image and applies the transforms: the result is float32 CHW in
 * [0, 1] (normalized if a normalize step is given), with 1 or 3 channels.
 */
export async function loadImage(
  path: string,
  options: { channels?: 1 | 3; transforms?: Transform[]; random?: () => number } = {},
): Promise<{ data: Float32Array; shape: [number, number, number] }> {
  const channels = options.channels ?? 3;
  const random = options.random ?? Math.random;
  let r: Raw;
  try {
    r = await raw(sharp(path, { limitInputPixels: MAX_IMAGE_PIXELS }).removeAlpha(), channels);
  } catch (err) {
    const message = (err as Error).message;
    if (/pixel limit/i.test(message)) {
      // say how big it is (the header alone is read for that)
      const m = await sharp(path, { limitInputPixels: false })
        .metadata()
        .catch(() => null);
      const size =
        m?.width && m?.height ? `${m.width}x${m.height} (width x height), ${(m.width * m.height).toLocaleString('en-US')} pixels` : 'larger than the limit';
      throw new DataError(`${path}: the image is too big to decode: ${size}; at most ${MAX_IMAGE_PIXELS.toLocaleString('en-US')} pixels (8192x8192)`, { path });
    }
    throw new DataError(`${path}: cannot decode image: ${message}`, { path, cause: err });
  }
  let normalize: { mean: number[]; std: number[] } | null = null;
  let jitter: { brightness?: number; contrast?: number } | null = null;
  for (const t of options.transforms ?? []) {
    if ('resize' in t) {
      const [h, w] = typeof t.resize === 'number' ? shorterSideSize(r.height, r.width, t.resize) : t.resize;
      checkSize(path, 'resize', w, h);
      r = await resizeRaw(path, r, w, h, t.interpolation);
    } else if ('centerCrop' in t) {
      const [h, w] = pair(t.centerCrop);
      checkSize(path, 'centerCrop', w, h);
      r = centerCropRaw(r, h, w);
    } else if ('randomCrop' in t) {
      const [h, w] = pair(t.randomCrop);
      const p = t.padding;
      if (p) {
        if (!Number.isInteger(p) || p < 0) throw new RangeError(`${path}: randomCrop padding must be a non-negative integer, got ${p}`);
        checkSize(path, `randomCrop padding ${p}`, r.width + 2 * p, r.height + 2 * p);
        const from = r;
        r = await sharpStep(path, `randomCrop padding ${p}`, () =>
          raw(fromRaw(from).extend({ top: p, bottom: p, left: p, right: p, background: { r: 0, g: 0, b: 0 } }), from.channels),
        );
      }
      if (h > r.height || w > r.width) throw new Error(`${path}: randomCrop ${h}x${w} is larger than the image ${r.height}x${r.width}`);
      r = crop(r, Math.floor(random() * (r.width - w + 1)), Math.floor(random() * (r.height - h + 1)), w, h);
    } else if ('randomResizedCrop' in t) {
      const [oh, ow] = pair(t.randomResizedCrop);
      checkSize(path, 'randomResizedCrop', ow, oh);
      const [smin, smax] = t.scale ?? [0.08, 1];
      const [rmin, rmax] = t.ratio ?? [3 / 4, 4 / 3];
      const area = r.width * r.height;
      let box: [number, number, number, number] | null = null;
      for (let i = 0; i < 10 && !box; i++) {
        const target = area * (smin + random() * (smax - smin));
        const ratio = Math.exp(Math.log(rmin) + random() * (Math.log(rmax) - Math.log(rmin)));
        const w = pythonRound(Math.sqrt(target * ratio));
        const h = pythonRound(Math.sqrt(target / ratio));
        if (w > 0 && h > 0 && w <= r.width && h <= r.height) box = [Math.floor(random() * (r.width - w + 1)), Math.floor(random() * (r.height - h + 1)), w, h];
      }
      if (!box) {
        // torchvision's fallback: the whole image, cut to the nearest allowed aspect ratio, centred
        const inRatio = r.width / r.height;
        let [w, h] = [r.width, r.height];
        if (inRatio < Math.min(rmin, rmax)) h = pythonRound(w / Math.min(rmin, rmax));
        else if (inRatio > Math.max(rmin, rmax)) w = pythonRound(h * Math.max(rmin, rmax));
        box = [Math.floor((r.width - w) / 2), Math.floor((r.height - h) / 2), w, h];
      }
      r = await resizeRaw(path, crop(r, ...box), ow, oh, t.interpolation, 'randomResizedCrop');
    } else if ('randomRotation' in t) {
      const angle = (random() * 2 - 1) * t.randomRotation;
      const from = r;
      const rotated = await sharpStep(path, `randomRotation by ${angle.toFixed(1)} degrees`, () =>
        raw(fromRaw(from).rotate(angle, { background: { r: 0, g: 0, b: 0 } }), from.channels),
      );
      // keep the original size, as torchvision's RandomRotation(expand=False)
      r = crop(rotated, Math.floor((rotated.width - r.width) / 2), Math.floor((rotated.height - r.height) / 2), r.width, r.height);
    } else if ('horizontalFlip' in t) {
      if (random() < t.horizontalFlip) r = flopRaw(r);
    } else if ('verticalFlip' in t) {
      if (random() < t.verticalFlip) r = flipRaw(r);
    } else if ('colorJitter' in t) {
      jitter = t.colorJitter;
    } else if ('normalize' in t) {
      normalize = t.normalize;
    } else {
      throw new TypeError(`unknown transform ${JSON.stringify(t)}`);
    }
  }
  // HWC uint8 -> CHW float in [0, 1]
  const { width: W, height: H, channels: C } = r;
  const out = new Float32Array(C * H * W);
  for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) for (let c = 0; c < C; c++) out[c * H * W + y * W + x] = r.data[(y * W + x) * C + c] / 255;
  if (jitter) {
    // torchvision's adjust_brightness / adjust_contrast: blend with black / with the mean grey level, clamp to [0, 1]
    const b = jitter.brightness ? 1 - jitter.brightness + random() * 2 * jitter.brightness : 1;
    const c = jitter.contrast ? 1 - jitter.contrast + random() * 2 * jitter.contrast : 1;
    let mean = 0;
    if (c !== 1) {
      for (let i = 0; i < H * W; i++) mean += C === 3 ? 0.2989 * out[i] + 0.587 * out[H * W + i] + 0.114 * out[2 * H * W + i] : out[i];
      mean /= H * W;
      mean *= b;
    }
    for (let i = 0; i < out.length; i++) {
      let v = Math.min(1, Math.max(0, out[i] * b));
      if (c !== 1) v = Math.min(1, Math.max(0, c * v + (1 - c) * mean));
      out[i] = v;
    }
  }
  if (normalize) {
    if (normalize.mean.length !== C || normalize.std.length !== C) throw new TypeError(`normalize: mean/std need ${C} values for ${C} channels`);
    for (let c = 0; c < C; c++) for (let i = 0; i < H * W; i++) out[c * H * W + i] = (out[c * H * W + i] - normalize.mean[c]) / normalize.std[c];
  }
  return { data: out, shape: [C, H, W] };
}
