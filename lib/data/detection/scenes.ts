// Synthetic detection scenes from real images: Fashion-MNIST items (Debian's
// dataset-fashion-mnist) pasted at random places and scales onto a larger
// canvas, with their boxes known exactly. No detection data set ships with
// Debian; the items are real photographs, the layout is synthetic.
//
// Each item is resized (bilinear) to its scale; its object pixels are those
// of the resized item at or above `itemThreshold` (Fashion-MNIST's background
// is 0, the resize leaves a faint halo around the object), and only those are
// pasted, opaque, over the background. The box is the tight extent of those
// pixels. Later items are drawn over earlier ones where they overlap (at most
// `overlap` IoU between any two boxes, and each item keeps at least
// `minVisible` of its object pixels in view), so an earlier box keeps its
// item's full extent even where it is partly hidden.
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { ArgumentError, DataError } from '../../errors.js';
import { FASHION_MNIST_CLASSES, FASHION_MNIST_DIR, fashionMnistClassIds, readIdx } from '../idx.js';
import { rng } from '../tensor-loader.js';
import { DetectionDataset, type DetectionDatasetOptions, type DetectionItem } from './dataset.js';
import { BACKGROUND, type DetectionSample } from './read.js';
import { applyDetectionTransforms } from './transforms.js';
import { bilinearResizeChw } from './transforms.js';

export interface FashionScenesOptions extends DetectionDatasetOptions {
  /** How many scenes. */
  count: number;
  /** Fashion-MNIST classes (ids 0-9 or names) of the items; classes[k] gets label k + 1. Default all ten. */
  classes?: Array<number | string>;
  /** The canvas: a square side or [height, width] in pixels (default 128). */
  canvas?: number | [number, number];
  /** Items per scene, [min, max] inclusive (default [1, 4]). */
  objectsPerScene?: [number, number];
  /** An item's scale relative to its 28 x 28 pixels, drawn uniformly from [min, max] (default [0.75, 2.5]). */
  scale?: [number, number];
  /** The largest IoU allowed between two boxes of a scene (default 0.3; 0: boxes never share area). */
  overlap?: number;
  /** The smallest fraction of an item's object pixels that later items may leave visible (default 0.5). */
  minVisible?: number;
  /** The background: 'noise' (uniform grey noise in [0, 64)) or a constant grey level 0-255 (default 'noise'). */
  background?: 'noise' | number;
  /** A resized item's pixels at or above this level (1-255) are the object (default 16). */
  itemThreshold?: number;
  /** The Fashion-MNIST split the items come from (default 'train'). */
  split?: 'train' | 'test';
  /** Default 0. */
  seed?: number;
  /** Where the IDX files are (default Debian's /usr/share/datasets/fashion-mnist). */
  dir?: string;
}

/** What placed one object: the Fashion-MNIST item and where it went. */
export interface ScenePlacement {
  /** The item's index in the split's files. */
  index: number;
  /** Its Fashion-MNIST class id (0-9). */
  fashionClass: number;
  /** Its side after scaling, and the top-left corner of that square on the canvas. */
  size: number;
  x: number;
  y: number;
  /** The fraction of its object pixels that later items left visible. */
  visible: number;
}

/** One scene: grey pixels (uint8, height x width), its boxes and labels and how it was made. */
export interface Scene {
  pixels: Uint8Array;
  boxes: number[][];
  labels: number[];
  placements: ScenePlacement[];
}

const FN = 'data.detection.fashionScenes';

/** A split's images and labels, kept once read (the train split is 47 MB). */
const itemCache = new Map<string, { images: Uint8Array; labels: Uint8Array; count: number }>();

function fashionItems(dir: string, split: 'train' | 'test') {
  const key = `${dir}\0${split}`;
  let items = itemCache.get(key);
  if (!items) {
    const prefix = split === 'train' ? 'train' : 't10k';
    const read = (file: string) => {
      const path = join(dir, file);
      if (!existsSync(path))
        throw new DataError(`${FN}: ${path} does not exist (Fashion-MNIST's IDX files: Debian's package dataset-fashion-mnist, or pass dir)`, { path });
      return readIdx(path);
    };
    const images = read(`${prefix}-images-idx3-ubyte.gz`);
    const labels = read(`${prefix}-labels-idx1-ubyte.gz`);
    if (images.shape[1] !== 28 || images.shape[2] !== 28)
      throw new DataError(
        `${FN}: ${join(dir, `${prefix}-images-idx3-ubyte.gz`)}: Fashion-MNIST images should be 28x28, got ${images.shape.slice(1).join('x')}`,
        {
          path: dir,
        },
      );
    items = { images: images.dataSync() as Uint8Array, labels: labels.dataSync() as Uint8Array, count: images.shape[0] };
    images.dispose();
    labels.dispose();
    itemCache.set(key, items);
  }
  return items;
}

function iou(a: number[], b: number[]): number {
  const w = Math.min(a[2], b[2]) - Math.max(a[0], b[0]);
  const h = Math.min(a[3], b[3]) - Math.max(a[1], b[1]);
  if (w <= 0 || h <= 0) return 0;
  const inter = w * h;
  return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter);
}

function checkOptions(o: FashionScenesOptions) {
  const bad = (field: string, detail: string) => new ArgumentError(FN, `${field} ${detail}`, field);
  if (!Number.isInteger(o.count) || o.count < 0) throw bad('count', `must be a non-negative integer, got ${JSON.stringify(o.count)}`);
  const canvas = o.canvas ?? 128;
  const [height, width] = typeof canvas === 'number' ? [canvas, canvas] : canvas;
  if (![height, width].every((s) => Number.isInteger(s) && s >= 1 && s <= 8192))
    throw bad('canvas', `must be a side or [height, width] of integers in 1..8192, got ${JSON.stringify(canvas)}`);
  const [minObjects, maxObjects] = o.objectsPerScene ?? [1, 4];
  if (!Number.isInteger(minObjects) || !Number.isInteger(maxObjects) || minObjects < 0 || maxObjects < minObjects || maxObjects > 1000)
    throw bad('objectsPerScene', `must be [min, max] integers with 0 <= min <= max <= 1000, got ${JSON.stringify(o.objectsPerScene)}`);
  const [minScale, maxScale] = o.scale ?? [0.75, 2.5];
  if (!(Number.isFinite(minScale) && Number.isFinite(maxScale) && minScale > 0 && maxScale >= minScale))
    throw bad('scale', `must be [min, max] with 0 < min <= max, got ${JSON.stringify(o.scale)}`);
  if (Math.round(28 * maxScale) > Math.min(height, width))
    throw bad('scale', `${maxScale} makes items of ${Math.round(28 * maxScale)} pixels, larger than the ${width}x${height} canvas`);
  const overlap = o.overlap ?? 0.3;
  if (!(typeof overlap === 'number' && overlap >= 0 && overlap <= 1)) throw bad('overlap', `must be an IoU in [0, 1], got ${JSON.stringify(o.overlap)}`);
  const minVisible = o.minVisible ?? 0.5;
  if (!(typeof minVisible === 'number' && minVisible >= 0 && minVisible <= 1))
    throw bad('minVisible', `must be a fraction in [0, 1], got ${JSON.stringify(o.minVisible)}`);
  const background = o.background ?? 'noise';
  if (background !== 'noise' && !(Number.isInteger(background) && background >= 0 && background <= 255))
    throw bad('background', `must be 'noise' or a grey level 0-255, got ${JSON.stringify(o.background)}`);
  const itemThreshold = o.itemThreshold ?? 16;
  if (!(Number.isInteger(itemThreshold) && itemThreshold >= 1 && itemThreshold <= 255))
    throw bad('itemThreshold', `must be an integer in 1..255, got ${JSON.stringify(o.itemThreshold)}`);
  const split = o.split ?? 'train';
  if (split !== 'train' && split !== 'test') throw bad('split', `must be 'train' or 'test', got ${JSON.stringify(o.split)}`);
  if (o.channels !== undefined && o.channels !== 1 && o.channels !== 3) throw bad('channels', `must be 1 or 3, got ${JSON.stringify(o.channels)}`);
  const seed = o.seed ?? 0;
  if (!Number.isInteger(seed)) throw bad('seed', `must be an integer, got ${JSON.stringify(o.seed)}`);
  let classIds: number[];
  try {
    classIds = fashionMnistClassIds(o.classes ?? [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  } catch (err) {
    throw bad('classes', (err as ArgumentError).detail ?? (err as Error).message);
  }
  if (classIds.length === 0) throw bad('classes', 'must name at least one class');
  return { height, width, minObjects, maxObjects, minScale, maxScale, overlap, minVisible, background, itemThreshold, split, seed, classIds };
}

/** An item resized to size x size, as uint8 (rounded), and the extent of its pixels >= threshold (null if none). */
function scaledItem(images: Uint8Array, index: number, size: number, threshold: number) {
  const src = new Float32Array(28 * 28);
  for (let i = 0; i < src.length; i++) src[i] = images[index * 784 + i];
  const resized = size === 28 ? src : bilinearResizeChw(src, 1, 28, 28, size, size);
  const pixels = new Uint8Array(size * size);
  let [x1, y1, x2, y2] = [size, size, 0, 0];
  for (let y = 0; y < size; y++)
    for (let x = 0; x < size; x++) {
      const v = Math.min(255, Math.max(0, Math.round(resized[y * size + x])));
      pixels[y * size + x] = v;
      if (v >= threshold) {
        x1 = Math.min(x1, x);
        y1 = Math.min(y1, y);
        x2 = Math.max(x2, x + 1);
        y2 = Math.max(y2, y + 1);
      }
    }
  return { pixels, extent: x2 > x1 ? [x1, y1, x2, y2] : null };
}

/** Attempts at a free place for one item before it is left out of its scene. */
const PLACEMENT_TRIES = 50;

/**
 * `count` scenes of Fashion-MNIST items, deterministic from the seed: per
 * scene a number of items in objectsPerScene, each of a class drawn uniformly
 * from `classes` (label = its position + 1), a random item of that class, a
 * scale drawn from `scale` and a place where its box overlaps no earlier box
 * by more than `overlap` IoU and hides no more than 1 - minVisible of any
 * earlier item's object pixels (an item with no such place after 50 tries is
 * left out, so a crowded scene can hold fewer items than drawn). The result
 * is a DetectionDataset (images in memory, 1 or 3 channels, with its
 * transforms) that DetectionLoader batches, and writeScenes saves.
 */
export function fashionScenes(options: FashionScenesOptions): SceneDataset {
  const o = checkOptions(options);
  const { images, labels, count: n } = fashionItems(options.dir ?? FASHION_MNIST_DIR, o.split);
  const byClass = o.classIds.map((c) => {
    const list: number[] = [];
    for (let i = 0; i < n; i++) if (labels[i] === c) list.push(i);
    if (!list.length) throw new ArgumentError(FN, `the ${o.split} split has no items of class ${c}`, 'classes');
    return list;
  });
  const random = rng(o.seed);
  // the noise draws from a stream of its own: the same seed gives the same layout on any background
  const noise = rng(o.seed ^ 0x5bd1e995);
  const int = (lo: number, hi: number) => lo + Math.floor(random() * (hi - lo + 1));
  const scenes: Scene[] = [];
  for (let s = 0; s < options.count; s++) {
    const pixels = new Uint8Array(o.height * o.width);
    if (o.background === 'noise') for (let i = 0; i < pixels.length; i++) pixels[i] = Math.floor(noise() * 64);
    else pixels.fill(o.background);
    const scene: Scene = { pixels, boxes: [], labels: [], placements: [] };
    // which item each pixel shows (-1: background), and how many object pixels each item has and shows
    const owner = new Int16Array(pixels.length).fill(-1);
    const objectPixels: number[] = [];
    const shown: number[] = [];
    const wanted = int(o.minObjects, o.maxObjects);
    for (let k = 0; k < wanted; k++) {
      const label = int(1, o.classIds.length);
      const pool = byClass[label - 1];
      const index = pool[Math.floor(random() * pool.length)];
      const size = Math.max(1, Math.round(28 * (o.minScale + random() * (o.maxScale - o.minScale))));
      const item = scaledItem(images, index, size, o.itemThreshold);
      if (!item.extent) continue; // an all-dark item has nothing to find
      const mine = item.pixels.reduce((n, v) => n + (v >= o.itemThreshold ? 1 : 0), 0);
      for (let t = 0; t < PLACEMENT_TRIES; t++) {
        const x = int(0, o.width - size);
        const y = int(0, o.height - size);
        const e = item.extent;
        const box = [x + e[0], y + e[1], x + e[2], y + e[3]];
        if (scene.boxes.some((b) => iou(b, box) > o.overlap)) continue;
        // the earlier items' pixels this one would hide: each must keep minVisible of its own
        const hidden = new Array<number>(shown.length).fill(0);
        for (let r = 0; r < size; r++)
          for (let c = 0; c < size; c++) {
            const j = owner[(y + r) * o.width + x + c];
            if (j >= 0 && item.pixels[r * size + c] >= o.itemThreshold) hidden[j]++;
          }
        if (hidden.some((h, j) => shown[j] - h < o.minVisible * objectPixels[j])) continue;
        const me = shown.length;
        for (let r = 0; r < size; r++)
          for (let c = 0; c < size; c++) {
            const v = item.pixels[r * size + c];
            if (v < o.itemThreshold) continue;
            const at = (y + r) * o.width + x + c;
            pixels[at] = v;
            owner[at] = me;
          }
        hidden.forEach((h, j) => {
          shown[j] -= h;
        });
        objectPixels.push(mine);
        shown.push(mine);
        scene.boxes.push(box);
        scene.labels.push(label);
        scene.placements.push({ index, fashionClass: o.classIds[label - 1], size, x, y, visible: 1 });
        break;
      }
    }
    scene.placements.forEach((p, j) => {
      p.visible = shown[j] / objectPixels[j];
    });
    scenes.push(scene);
  }
  const classes = [BACKGROUND, ...o.classIds.map((c) => FASHION_MNIST_CLASSES[c])];
  const name = `fashion-scenes(${o.split}, seed ${o.seed})`;
  const samples: DetectionSample[] = scenes.map((sc, i) => ({
    path: `${name}/scene-${i}`,
    width: o.width,
    height: o.height,
    boxes: sc.boxes,
    labels: sc.labels,
    id: i + 1,
  }));
  return new SceneDataset(samples, scenes, classes, o.classIds, { channels: options.channels, transforms: options.transforms });
}

/** Scenes in memory as a DetectionDataset: get() gives the scene's pixels (no file) after the transforms. */
export class SceneDataset extends DetectionDataset {
  constructor(
    samples: DetectionSample[],
    /** The scenes, parallel to samples. */
    readonly scenes: Scene[],
    /** classes[label]; classes[0] is '__background__'. */
    readonly classes: string[],
    /** The Fashion-MNIST class id of each label 1..K (fashionClassIds[label - 1]). */
    readonly fashionClassIds: number[],
    options: DetectionDatasetOptions = {},
  ) {
    super(samples, options);
  }

  override async get(index: number, random: () => number): Promise<DetectionItem> {
    const s = this.samples[index];
    const scene = this.scenes[index];
    if (!s || !scene) throw new RangeError(`SceneDataset.get: index ${index} is outside 0..${this.samples.length - 1}`);
    const C = this.options.channels ?? 3;
    const plane = s.width * s.height;
    const data = new Float32Array(C * plane);
    for (let i = 0; i < plane; i++) data[i] = scene.pixels[i] / 255;
    for (let c = 1; c < C; c++) data.copyWithin(c * plane, 0, plane);
    const out = applyDetectionTransforms(
      { data, channels: C, height: s.height, width: s.width, boxes: s.boxes, labels: s.labels },
      this.options.transforms ?? [],
      random,
      s.path,
    );
    return { data: out.data, shape: [out.channels, out.height, out.width], boxes: out.boxes.map((b) => b.slice()), labels: out.labels.slice(), source: s.path };
  }

  override subset(indices: number[]): SceneDataset {
    return new SceneDataset(
      indices.map((i) => this.samples[i]),
      indices.map((i) => this.scenes[i]),
      this.classes,
      this.fashionClassIds,
      this.options,
    );
  }

  /**
   * Writes the scenes as grey PNGs (scene-000001.png, ...) in `dir`/images and
   * a COCO annotation file `dir`/annotations.json (category ids 1..K in label
   * order, so readCoco gives the same labels; bbox [x, y, width, height]).
   */
  async writeScenes(dir: string): Promise<{ annotations: string; imagesDir: string }> {
    const imagesDir = join(dir, 'images');
    mkdirSync(imagesDir, { recursive: true });
    const images: object[] = [];
    const annotations: object[] = [];
    for (let i = 0; i < this.samples.length; i++) {
      const s = this.samples[i];
      const fileName = `scene-${String(i + 1).padStart(6, '0')}.png`;
      await sharp(Buffer.from(this.scenes[i].pixels), { raw: { width: s.width, height: s.height, channels: 1 } })
        .png()
        .toFile(join(imagesDir, fileName));
      images.push({ id: i + 1, file_name: fileName, width: s.width, height: s.height });
      s.boxes.forEach((b, j) => {
        const [w, h] = [b[2] - b[0], b[3] - b[1]];
        annotations.push({ id: annotations.length + 1, image_id: i + 1, category_id: s.labels[j], bbox: [b[0], b[1], w, h], area: w * h, iscrowd: 0 });
      });
    }
    const categories = this.classes.slice(1).map((name, k) => ({ id: k + 1, name, fashion_mnist_class: this.fashionClassIds[k] }));
    const annotationsFile = join(dir, 'annotations.json');
    writeFileSync(
      annotationsFile,
      JSON.stringify({
        info: { description: 'synthetic scenes of Fashion-MNIST items (finetorch data.detection.fashionScenes)' },
        images,
        annotations,
        categories,
      }),
    );
    return { annotations: annotationsFile, imagesDir };
  }
}
