// Image folders on disk: a PNG tree written from Fashion-MNIST, decoded and
// batched by the prefetching loader; transforms checked against the source
// pixels; broken files and folders give errors that name them.
import { describe, it, expect, beforeAll } from 'vitest';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { crc32, deflateSync } from 'node:zlib';
import sharp from 'sharp';
import { torch, nn, optim, data, fit, fashionMnist } from 'finetorch';
import { flat } from '../helpers';

let root = '';
const pixels: number[][] = []; // the source images, row-major 28x28, per written file (sorted order)

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
      await sharp(Buffer.from(px), { raw: { width: 28, height: 28, channels: 1 } })
        .png()
        .toFile(join(root, name, `img${String(n).padStart(3, '0')}.png`));
      n++;
    }
  }
  // the order imageFolder will list them in: classes sorted, files sorted
  for (const name of [...names].sort()) {
    const k = names.indexOf(name);
    let n = 0;
    for (let i = 0; i < y.length && n < 40; i++)
      if (y[i] === ids[k]) {
        pixels.push(flat(images.index(i)));
        n++;
      }
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
    const aug: import('finetorch').Transform[] = [
      { randomResizedCrop: 24 },
      { randomRotation: 15 },
      { horizontalFlip: 0.5 },
      { colorJitter: { brightness: 0.2, contrast: 0.2 } },
    ];
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
    const r = await fit({
      model,
      optimizer: new optim.Adam(model.parameters(), { lr: 3e-3 }),
      train: loader,
      val: new data.DataLoader(ds, { batchSize: 60 }),
      epochs: 5,
    });
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
    await expect(
      (async () => {
        for await (const _ of loader.batches(0)) {
          /* consume */
        }
      })(),
    ).rejects.toThrow(/cannot decode image/);
    expect(() => data.imageFolder(join(bad, 'missing'))).toThrow(/cannot read/);
    rmSync(bad, { recursive: true, force: true });
  });

  it('images of different sizes in one batch: the error names both files and both sizes', async () => {
    const mixed = mkdtempSync(join(tmpdir(), 'finetorch-mixed-'));
    mkdirSync(join(mixed, 'a'));
    const png = (w: number, h: number, name: string) =>
      sharp({ create: { width: w, height: h, channels: 3, background: { r: 9, g: 9, b: 9 } } })
        .png()
        .toFile(join(mixed, 'a', name));
    await png(28, 28, 'first.png');
    await png(28, 28, 'second.png');
    await png(40, 30, 'wide.png');
    const f = data.imageFolder(mixed);
    const loader = new data.DataLoader(new data.ImageDataset(f.samples, { channels: 1 }), { batchSize: 3 });
    await expect(
      (async () => {
        for await (const _ of loader.batches(0)) {
          /* consume */
        }
      })(),
    ).rejects.toThrow(
      /DataLoader: .*a\/wide\.png is 1x30x40 \(channels x height x width\) but .*a\/first\.png in the same batch is 1x28x28 .*resize the images/,
    );
    // with a resize they batch
    const resized = new data.DataLoader(new data.ImageDataset(f.samples, { channels: 1, transforms: [{ resize: [28, 28] }] }), { batchSize: 3 });
    for await (const b of resized.batches(0)) expect(b.input.shape).toEqual([3, 1, 28, 28]);
    rmSync(mixed, { recursive: true, force: true });
  });

  it('sizes too big for memory fail at once, naming the file, the step and the size (not libvips after gigabytes)', async () => {
    const one = join(root, 'bag', 'img000.png');
    const t0 = Date.now();
    await expect(data.loadImage(one, { transforms: [{ resize: 20000 }] })).rejects.toThrow(
      /bag\/img000\.png: resize to 20000x20000 \(width x height\) is too big: 400,000,000 pixels, at most 67,108,864/,
    );
    await expect(data.loadImage(one, { transforms: [{ randomCrop: 28, padding: 20000 }] })).rejects.toThrow(
      /img000\.png: randomCrop padding 20000 to 40028x40028 \(width x height\) is too big/,
    );
    await expect(data.loadImage(one, { transforms: [{ randomResizedCrop: [9000, 9000] }] })).rejects.toThrow(
      /img000\.png: randomResizedCrop to 9000x9000 .* is too big/,
    );
    await expect(data.loadImage(one, { transforms: [{ resize: [0, 28] }] })).rejects.toThrow(/img000\.png: resize to 28x0 \(width x height\) is not a size/);
    expect(Date.now() - t0).toBeLessThan(5000);
    // a file whose header declares more pixels than the limit: refused from the header, with its size
    const big = join(mkdtempSync(join(tmpdir(), 'finetorch-big-')), 'huge.png');
    writeFileSync(big, pngHeaderOnly(8200, 8200));
    await expect(data.loadImage(big)).rejects.toThrow(
      /huge\.png: the image is too big to decode: 8200x8200 \(width x height\), 67,240,000 pixels; at most 67,108,864/,
    );
    rmSync(big, { force: true });
  }, 60000);
});

/** A small PNG whose IHDR declares width x height 8-bit grey, with one row of pixel data (the decoder reads the header first). */
function pngHeaderOnly(width: number, height: number): Buffer {
  const chunk = (type: string, body: Buffer) => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(body.length);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(Buffer.concat([Buffer.from(type, 'ascii'), body])));
    return Buffer.concat([len, Buffer.from(type, 'ascii'), body, crc]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8; // bit depth; colour type 0 (grey), compression, filter, interlace 0
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    chunk('IDAT', deflateSync(Buffer.alloc(width + 1))),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}
