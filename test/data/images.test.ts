// Image folders on disk: a PNG tree written from Fashion-MNIST, decoded and
// batched by the prefetching loader; transforms checked against the source
// pixels; broken files and folders give errors that name them.
import { describe, it, expect, beforeAll } from 'vitest';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { torch, nn, optim, data, fit, fashionMnist, type Tensor } from 'finetorch';
import { flat } from '../helpers';

let root = '';
let pixels: number[][] = []; // the source images, row-major 28x28, per written file (sorted order)

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'finetorch-images-'));
  const { images, labels } = fashionMnist('test');
  const y = flat(labels);
  const names = ['bag', 'sandal', 'trouser']; // Fashion-MNIST classes 8, 5, 1
  const ids = [8, 5, 1];
  for (const [k, name] of names.entries()) {
    mkdirSync(join(root, name));
    let n = 0;
    for (let i = 0; i < y.length && n < 40; i++) {
      if (y[i] !== ids[k]) continue;
      const px = Uint8Array.from(flat(images.index(i)));
      await sharp(Buffer.from(px), { raw: { width: 28, height: 28, channels: 1 } }).png().toFile(join(root, name, `img${String(n).padStart(3, '0')}.png`));
      n++;
    }
  }
  // the order imageFolder will list them in: classes sorted, files sorted
  for (const name of [...names].sort()) {
    const k = names.indexOf(name);
    let n = 0;
    for (let i = 0; i < y.length && n < 40; i++) if (y[i] === ids[k]) { pixels.push(flat(images.index(i))); n++; }
  }
}, 120000);

describe('image folders', () => {
  it('lists classes sorted and counts them', () => {
    const f = data.imageFolder(root);
    expect(f.classes).toEqual(['bag', 'sandal', 'trouser']);
    expect(f.counts).toEqual({ bag: 40, sandal: 40, trouser: 40 });
    expect(f.samples[40]).toMatchObject({ label: 1 });
  });

  it('decodes PNGs losslessly into CHW float tensors, 1 or 3 channels', async () => {
    const f = data.imageFolder(root);
    const gray = await data.loadImage(f.samples[0].path, { channels: 1 });
    expect(gray.shape).toEqual([1, 28, 28]);
    Array.from(gray.data).forEach((v, i) => expect(v).toBeCloseTo(pixels[0][i] / 255, 6));
    const rgb = await data.loadImage(f.samples[0].path, { channels: 3 });
    expect(rgb.shape).toEqual([3, 28, 28]);
    expect(Array.from(rgb.data.subarray(2 * 784))).toEqual(Array.from(gray.data));
  });

  it('transforms: flips and crops match the source pixels; seeded randomness repeats', async () => {
    const path = data.imageFolder(root).samples[5].path;
    const src = pixels[5];
    const flipped = await data.loadImage(path, { channels: 1, transforms: [{ horizontalFlip: 1 }] });
    for (let yy = 0; yy < 28; yy++) for (let x = 0; x < 28; x++) expect(flipped.data[yy * 28 + x]).toBeCloseTo(src[yy * 28 + 27 - x] / 255, 6);
    const cropped = await data.loadImage(path, { channels: 1, transforms: [{ centerCrop: 20 }] });
    expect(cropped.shape).toEqual([1, 20, 20]);
    expect(cropped.data[0]).toBeCloseTo(src[4 * 28 + 4] / 255, 6);
    const norm = await data.loadImage(path, { channels: 1, transforms: [{ normalize: { mean: [0.5], std: [0.25] } }] });
    expect(norm.data[100]).toBeCloseTo((src[100] / 255 - 0.5) / 0.25, 5);
    const aug: import('finetorch').Transform[] = [{ randomResizedCrop: 24 }, { randomRotation: 15 }, { horizontalFlip: 0.5 }, { colorJitter: { brightness: 0.2, contrast: 0.2 } }];
    const a = await data.loadImage(path, { channels: 1, transforms: aug, random: data.rng(9) });
    const b = await data.loadImage(path, { channels: 1, transforms: aug, random: data.rng(9) });
    expect(a.shape).toEqual([1, 24, 24]);
    expect(Array.from(a.data)).toEqual(Array.from(b.data));
  });

  it('the prefetching loader batches, shuffles per epoch with a seed, and trains a model', async () => {
    const f = data.imageFolder(root);
    const ds = new data.ImageDataset(f.samples, { channels: 1, transforms: [{ normalize: { mean: [0.3], std: [0.3] } }] });
    const loader = new data.DataLoader(ds, { batchSize: 16, shuffle: true, seed: 1, prefetch: 2 });
    expect(loader.length).toBe(8);
    const seen: number[] = [];
    for await (const b of loader.batches(0)) {
      expect(b.input.shape.slice(1)).toEqual([1, 28, 28]);
      seen.push(...flat(b.target));
    }
    expect(seen.length).toBe(120);
    const again: number[] = [];
    for await (const b of loader.batches(0)) again.push(...flat(b.target));
    expect(again).toEqual(seen);
    const other: number[] = [];
    for await (const b of loader.batches(1)) other.push(...flat(b.target));
    expect(other).not.toEqual(seen);
    const dropLast = new data.DataLoader(ds, { batchSize: 50, dropLast: true });
    expect(dropLast.length).toBe(2);

    torch.manualSeed(0);
    const model = new nn.Sequential(new nn.Flatten(), new nn.Linear(784, 32), new nn.ReLU(), new nn.Linear(32, 3));
    const r = await fit({ model, optimizer: new optim.Adam(model.parameters(), { lr: 3e-3 }), train: loader, val: new data.DataLoader(ds, { batchSize: 60 }), epochs: 5 });
    expect(r.history[r.history.length - 1].val!.accuracy).toBeGreaterThan(0.9);
  });

  it('broken files and folders: errors name them', async () => {
    const bad = mkdtempSync(join(tmpdir(), 'finetorch-bad-images-'));
    mkdirSync(join(bad, 'a'));
    mkdirSync(join(bad, 'b'));
    writeFileSync(join(bad, 'a', 'x.png'), 'not a png');
    expect(() => data.imageFolder(bad)).toThrow(/class folder .*b has no images/);
    writeFileSync(join(bad, 'b', 'y.png'), 'not a png either');
    const f = data.imageFolder(bad);
    await expect(data.loadImage(f.samples[0].path)).rejects.toThrow(/a\/x\.png: cannot decode image/);
    const loader = new data.DataLoader(new data.ImageDataset(f.samples), { batchSize: 2 });
    await expect((async () => { for await (const _ of loader.batches(0)) { /* consume */ } })()).rejects.toThrow(/cannot decode image/);
    expect(() => data.imageFolder(join(bad, 'missing'))).toThrow(/cannot read/);
    rmSync(bad, { recursive: true, force: true });
  });
});

export type { Tensor };
