// data.detection.fashionScenes: synthetic detection scenes of real
// Fashion-MNIST items (Debian's dataset-fashion-mnist). Checked from the
// pixels themselves: on a black background every box is the tight extent of
// the non-zero pixels it holds and nothing lies outside the boxes; unscaled
// items are pasted pixel for pixel from the IDX file; seeds repeat; the IoU
// limit holds; writeScenes' PNGs + COCO JSON read back by readCoco give the
// same boxes, labels and pixels.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { data, ArgumentError, DataError } from 'finetorch';

const { detection } = data;
type Scenes = ReturnType<typeof detection.fashionScenes>;

let dir: string;
let black: Scenes; // background 0, boxes never share area
let fashion: { images: Uint8Array; labels: BigInt64Array };

/** IoU of two xyxy boxes, written out here (not the library's). */
function boxIou(a: number[], b: number[]): number {
  const iw = Math.max(0, Math.min(a[2], b[2]) - Math.max(a[0], b[0]));
  const ih = Math.max(0, Math.min(a[3], b[3]) - Math.max(a[1], b[1]));
  const area = (r: number[]) => (r[2] - r[0]) * (r[3] - r[1]);
  return (iw * ih) / (area(a) + area(b) - iw * ih);
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'ft-scenes-'));
  black = detection.fashionScenes({
    count: 24,
    classes: [0, 1, 2, 3, 4],
    canvas: 96,
    objectsPerScene: [1, 4],
    overlap: 0,
    background: 0,
    split: 'test',
    seed: 3,
    channels: 1,
  });
  const raw = data.fashionMnist('test');
  fashion = { images: raw.images.dataSync() as Uint8Array, labels: raw.labels.dataSync() as BigInt64Array };
  raw.images.dispose();
  raw.labels.dispose();
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('data.detection.fashionScenes', () => {
  it('boxes are the tight extent of the non-background pixels, and nothing lies outside them', () => {
    const W = 96;
    let objects = 0;
    for (const scene of black.scenes) {
      const covered = new Uint8Array(W * W);
      expect(scene.boxes.length).toBeGreaterThanOrEqual(1);
      for (const [x1, y1, x2, y2] of scene.boxes) {
        expect([x1, y1, x2, y2].every(Number.isInteger)).toBe(true);
        expect(x1 >= 0 && y1 >= 0 && x2 <= W && y2 <= W && x2 > x1 && y2 > y1).toBe(true);
        const at = (x: number, y: number) => scene.pixels[y * W + x];
        // each edge row and column of the box holds a non-zero pixel (the box is tight)
        const row = (y: number) => Array.from({ length: x2 - x1 }, (_, i) => at(x1 + i, y)).some((v) => v > 0);
        const col = (x: number) => Array.from({ length: y2 - y1 }, (_, i) => at(x, y1 + i)).some((v) => v > 0);
        expect([row(y1), row(y2 - 1), col(x1), col(x2 - 1)]).toEqual([true, true, true, true]);
        for (let y = y1; y < y2; y++) for (let x = x1; x < x2; x++) covered[y * W + x] = 1;
        objects++;
      }
      // no non-zero pixel outside the boxes (background 0)
      let outside = 0;
      for (let i = 0; i < covered.length; i++) if (!covered[i] && scene.pixels[i] !== 0) outside++;
      expect(outside).toBe(0);
      // labels 1..5 name the class of the item placed, as the IDX labels file says
      scene.placements.forEach((p, k) => {
        expect(p.fashionClass).toBe([0, 1, 2, 3, 4][scene.labels[k] - 1]);
        expect(Number(fashion.labels[p.index])).toBe(p.fashionClass);
      });
    }
    expect(objects).toBeGreaterThan(24 * 1.5); // several items per scene on average
    expect(black.classes).toEqual(['__background__', 'T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat']);
  });

  it('an unscaled item is pasted pixel for pixel from the IDX file (pixels >= itemThreshold)', () => {
    const s = detection.fashionScenes({
      count: 4,
      classes: ['Sneaker', 'Bag'],
      canvas: 64,
      objectsPerScene: [1, 1],
      scale: [1, 1],
      background: 0,
      itemThreshold: 20,
      split: 'test',
      seed: 5,
    });
    for (const scene of s.scenes) {
      const { index, x, y, size } = scene.placements[0];
      expect(size).toBe(28);
      let [bx1, by1, bx2, by2] = [99, 99, -1, -1];
      let mismatches = 0;
      for (let r = 0; r < 28; r++)
        for (let c = 0; c < 28; c++) {
          const v = fashion.images[index * 784 + r * 28 + c];
          if (scene.pixels[(y + r) * 64 + x + c] !== (v >= 20 ? v : 0)) mismatches++;
          if (v >= 20) [bx1, by1, bx2, by2] = [Math.min(bx1, c), Math.min(by1, r), Math.max(bx2, c + 1), Math.max(by2, r + 1)];
        }
      expect(mismatches).toBe(0);
      expect(scene.boxes[0]).toEqual([x + bx1, y + by1, x + bx2, y + by2]);
      expect([7, 8]).toContain(Number(fashion.labels[index])); // Sneaker is class 7, Bag 8
    }
  });

  it('each item keeps at least minVisible of its pixels in view when later items overlap it', () => {
    const s = detection.fashionScenes({
      count: 12,
      canvas: 64,
      objectsPerScene: [5, 6],
      scale: [1, 1],
      overlap: 1,
      minVisible: 0.6,
      background: 0,
      split: 'test',
      seed: 8,
    });
    let occluded = 0;
    for (const scene of s.scenes)
      for (const p of scene.placements) {
        // the item's object pixels that the canvas still shows (an occluder's equal value counts too: an upper bound)
        let own = 0;
        let seen = 0;
        for (let r = 0; r < 28; r++)
          for (let c = 0; c < 28; c++) {
            const v = fashion.images[p.index * 784 + r * 28 + c];
            if (v < 16) continue;
            own++;
            if (scene.pixels[(p.y + r) * 64 + p.x + c] === v) seen++;
          }
        expect(p.visible).toBeGreaterThanOrEqual(0.6);
        expect(p.visible).toBeLessThanOrEqual(seen / own + 1e-12);
        expect(seen / own - p.visible).toBeLessThan(0.1);
        if (p.visible < 1) occluded++;
      }
    expect(occluded).toBeGreaterThan(5);
  });

  it('is deterministic from the seed; another seed gives other scenes', () => {
    const o = { count: 6, classes: [5, 6, 7, 8, 9], canvas: 80, seed: 11, split: 'test' as const };
    const a = detection.fashionScenes(o);
    const b = detection.fashionScenes(o);
    const c = detection.fashionScenes({ ...o, seed: 12 });
    expect(b.scenes.map((s) => s.boxes)).toEqual(a.scenes.map((s) => s.boxes));
    expect(b.scenes.map((s) => s.labels)).toEqual(a.scenes.map((s) => s.labels));
    expect(b.scenes.every((s, i) => Buffer.from(s.pixels).equals(Buffer.from(a.scenes[i].pixels)))).toBe(true);
    expect(c.scenes.some((s, i) => !Buffer.from(s.pixels).equals(Buffer.from(a.scenes[i].pixels)))).toBe(true);
    // the background does not move the items
    const grey = detection.fashionScenes({ ...o, background: 90 });
    expect(grey.scenes.map((s) => s.boxes)).toEqual(a.scenes.map((s) => s.boxes));
  });

  it('respects the IoU limit between the boxes of a scene, with scales in range', () => {
    const s = detection.fashionScenes({ count: 30, canvas: 96, objectsPerScene: [4, 6], scale: [1, 2.5], overlap: 0.1, split: 'test', seed: 2 });
    let largest = 0;
    for (const scene of s.scenes)
      for (let i = 0; i < scene.boxes.length; i++) {
        expect(scene.placements[i].size).toBeGreaterThanOrEqual(28);
        expect(scene.placements[i].size).toBeLessThanOrEqual(70);
        for (let j = 0; j < i; j++) largest = Math.max(largest, boxIou(scene.boxes[i], scene.boxes[j]));
      }
    expect(largest).toBeLessThanOrEqual(0.1);
    expect(largest).toBeGreaterThan(0); // the limit was reached for, not avoided by empty scenes
  });

  it('writeScenes: PNGs + COCO JSON that readCoco reads back to the same boxes, labels and pixels', async () => {
    const few = black.subset([0, 1, 2, 3, 4, 5]);
    const { annotations, imagesDir } = await few.writeScenes(join(dir, 'coco'));
    const read = detection.readCoco(annotations, imagesDir);
    expect(read.classes).toEqual(black.classes);
    expect(read.samples.map((s) => s.boxes)).toEqual(few.samples.map((s) => s.boxes));
    expect(read.samples.map((s) => s.labels)).toEqual(few.samples.map((s) => s.labels));
    const fromFiles = new detection.DetectionDataset(read.samples, { channels: 1 });
    const r = () => 0.5;
    for (let i = 0; i < few.length; i++) {
      const [a, b] = [await fromFiles.get(i, r), await few.get(i, r)];
      expect(a.shape).toEqual([1, 96, 96]);
      expect(Buffer.from(a.data.buffer).equals(Buffer.from(b.data.buffer))).toBe(true);
    }
  });

  it('batches with DetectionLoader as 3-channel images with their targets, transforms applied', async () => {
    const s = detection.fashionScenes({
      count: 3,
      canvas: 64,
      objectsPerScene: [2, 2],
      scale: [0.75, 1.5],
      overlap: 0,
      split: 'test',
      seed: 9,
      transforms: [{ horizontalFlip: 1 }],
    });
    const loader = new detection.DetectionLoader(s, { batchSize: 3 });
    for await (const batch of loader.batches()) {
      expect(batch.images.map((t) => t.shape)).toEqual([
        [3, 64, 64],
        [3, 64, 64],
        [3, 64, 64],
      ]);
      const boxes = batch.targets[0].boxes.toArray() as number[][];
      expect(boxes).toEqual(s.scenes[0].boxes.map(([x1, y1, x2, y2]) => [64 - x2, y1, 64 - x1, y2]));
      expect(batch.targets[0].labels.toArray()).toEqual(s.scenes[0].labels);
      for (const t of [...batch.images, ...batch.targets.flatMap((g) => [g.boxes, g.labels])]) t.dispose();
    }
  });

  it('bad options are an ArgumentError naming the option', () => {
    const bad = (o: object, field: string) => {
      try {
        detection.fashionScenes({ count: 1, split: 'test', ...o });
      } catch (err) {
        expect(err).toBeInstanceOf(ArgumentError);
        expect((err as ArgumentError).argument).toBe(field);
        return;
      }
      throw new Error(`no error for ${JSON.stringify(o)}`);
    };
    bad({ count: -1 }, 'count');
    bad({ classes: [10] }, 'classes');
    bad({ classes: ['Hat'] }, 'classes');
    bad({ canvas: 40, scale: [1, 2] }, 'scale');
    bad({ overlap: 1.5 }, 'overlap');
    bad({ objectsPerScene: [3, 2] }, 'objectsPerScene');
    bad({ background: 'white' }, 'background');
    bad({ split: 'val' }, 'split');
    bad({ channels: 2 }, 'channels');
    bad({ minVisible: -0.1 }, 'minVisible');
    const missing = join(dir, 'no-such-dir');
    expect(() => detection.fashionScenes({ count: 1, dir: missing })).toThrow(DataError);
    expect(() => detection.fashionScenes({ count: 1, dir: missing })).toThrow(`${missing}/train-images-idx3-ubyte.gz does not exist`);
  });
});
