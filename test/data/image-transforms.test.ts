// torchvision's evaluation transform, Resize(N) + CenterCrop(M), on real
// photo files (sklearn's china.jpg / flower.jpg written as PNGs at several
// sizes by PIL): the geometry and the pixels against torchvision 0.14 on PIL
// images (make_image_transform_refs.py). Our 'bilinear' is PIL's resampling
// with PIL's fixed-point arithmetic, so PNGs match exactly (measured: max
// difference 0); JPEGs go through two decoders (libvips' and PIL's libjpeg),
// identical on this machine, allowed 2/255 (one IDCT rounding step, either
// side). Then a recipe on an ImageNet checkpoint gets the transform by
// default, records it in run.json, and predict prepares images with it.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { data, models, recipes, runRecipe, loadRun, type Transform, type Tensor } from 'finetorch';

const { IMAGENET_MEAN, IMAGENET_STD } = data;

interface Ref {
  file: string;
  name: string;
  ops: Array<Record<string, unknown>>;
  resized: [number, number] | null;
  shape: [number, number, number];
  ref: string;
}

let dir = '';
let refs: Ref[] = [];
const readRef = (r: Ref) => new Float32Array(readFileSync(r.ref).buffer.slice(0));

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'finetorch-image-transforms-'));
  execFileSync('/usr/bin/python3', [join(__dirname, 'make_image_transform_refs.py'), dir], { stdio: ['ignore', 'ignore', 'inherit'], timeout: 120000 });
  refs = JSON.parse(readFileSync(join(dir, 'refs.json'), 'utf8'));
}, 120000);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** torchvision's transforms as ours ('bilinear': torchvision's default interpolation). */
function transformsOf(ops: Ref['ops']): Transform[] {
  return ops.map((o) => {
    if ('resize' in o) return { resize: o.resize as number, interpolation: 'bilinear' as const };
    if ('centerCrop' in o) return { centerCrop: o.centerCrop as [number, number] };
    return {
      randomResizedCrop: o.randomResizedCrop as [number, number],
      scale: o.scale as [number, number],
      ratio: o.ratio as [number, number],
      interpolation: 'bilinear' as const,
    };
  });
}

function maxDifference(a: Float32Array, b: Float32Array): number {
  expect(a.length).toBe(b.length);
  let max = 0;
  for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs(a[i] - b[i]));
  return max;
}

describe('Resize + CenterCrop as torchvision', () => {
  it('Resize(N) gives the shorter side N and the long side int(N * long / short), as torchvision', async () => {
    const resized = refs.filter((r) => r.resized);
    expect(resized.length).toBeGreaterThanOrEqual(8);
    for (const r of resized) {
      const out = await data.loadImage(r.file, { transforms: [{ resize: r.ops[0].resize as number, interpolation: 'bilinear' }] });
      expect([out.shape[2], out.shape[1]], `${r.name} ${JSON.stringify(r.ops)}`).toEqual(r.resized);
    }
    // 640x427 to 256 is 383.7 wide: truncated, not rounded
    expect(refs.find((r) => r.name === 'landscape')!.resized).toEqual([383, 256]);
  });

  it('pixels of PNGs equal torchvision on PIL exactly (crop offsets with Python rounding; padding; the RandomResizedCrop fallback)', async () => {
    for (const r of refs.filter((x) => x.name !== 'jpeg')) {
      const out = await data.loadImage(r.file, { transforms: transformsOf(r.ops) });
      expect(out.shape, r.name).toEqual(r.shape);
      expect(maxDifference(out.data, readRef(r)), `${r.name} ${JSON.stringify(r.ops)}`).toBe(0);
    }
  });

  it('a JPEG photo: within 2/255 of torchvision (two JPEG decoders)', async () => {
    const r = refs.find((x) => x.name === 'jpeg')!;
    const out = await data.loadImage(r.file, { transforms: transformsOf(r.ops) });
    expect(maxDifference(out.data, readRef(r))).toBeLessThanOrEqual(2 / 255 + 1e-7);
  });

  it('training transforms: RandomResizedCrop to crop, or the resize and a random crop; evaluation: the centre crop', () => {
    const input = { kind: 'image' as const, channels: 3 as const, size: null, normalize: null, resize: 256, crop: 224 };
    expect(recipes.imageTransforms(input, undefined, false)).toEqual([{ resize: 256, interpolation: 'bilinear' }, { centerCrop: 224 }]);
    expect(recipes.imageTransforms(input, { horizontalFlip: 0.5 }, true)).toEqual([
      { resize: 256, interpolation: 'bilinear' },
      { randomCrop: 224, padding: undefined },
      { horizontalFlip: 0.5 },
    ]);
    expect(recipes.imageTransforms(input, { randomResizedCrop: { scale: [0.08, 1] }, horizontalFlip: 0.5 }, true)).toEqual([
      { randomResizedCrop: 224, scale: [0.08, 1], interpolation: 'bilinear' },
      { horizontalFlip: 0.5 },
    ]);
  });

  it('imageSize with resize/crop, or a crop larger than the resize, is refused naming the field', async () => {
    const root = join(dir, 'conflicts');
    for (const c of ['a', 'b']) {
      mkdirSync(join(root, c), { recursive: true });
      copyFileSync(refs[0].file, join(root, c, '0.png'));
    }
    const recipe = (data: Record<string, unknown>) =>
      recipes.parseRecipe({ model: { arch: 'resnet18' }, data: { kind: 'imageFolder', root, ...data }, optimizer: { lr: 0.1 }, epochs: 1 });
    await expect(recipes.buildData(recipe({ imageSize: 64, crop: 56 }))).rejects.toThrow(
      /recipe\.data\.imageSize: give imageSize \(stretch to a square\) or resize\/crop/,
    );
    await expect(recipes.buildData(recipe({ resize: 56, crop: 64 }))).rejects.toThrow(/recipe\.data\.crop: 64 is more than resize 56/);
  });

  it('an ImageNet checkpoint gets Resize(256) + CenterCrop(224) by default, said and kept in run.json; predict prepares images so', async () => {
    // an "ImageNet" checkpoint: a 1000-class head on a 3-channel stem (a narrow ResNet keeps it small)
    const ck = join(dir, 'imagenet-resnet18.safetensors');
    const net = models.resnet18({ width: 8, numClasses: 1000 });
    models.save(net, ck);
    net.dispose();
    const root = join(dir, 'folder');
    const pngs = refs.filter((r) => r.name !== 'jpeg' && r.name !== 'small').map((r) => r.file);
    for (const c of ['a', 'b']) {
      mkdirSync(join(root, c), { recursive: true });
      [...new Set(pngs)].forEach((f, i) => copyFileSync(f, join(root, c, `${i}.png`)));
    }
    const notes: string[] = [];
    const out = join(dir, 'run');
    await runRecipe(
      {
        model: { checkpoint: ck },
        data: { kind: 'imageFolder', root, split: { train: 0.5, val: 0, test: 0.5 }, prefetch: 0 },
        optimizer: { lr: 1e-3 },
        epochs: 1,
        batchSize: 4,
        out,
      },
      { onEvent: (e) => e.type === 'start' && notes.push(...e.notes) },
    );
    expect(notes.join('\n')).toMatch(/images: resize 256 \+ center crop 224 \(torchvision's ImageNet evaluation transform\)/);
    const run = JSON.parse(readFileSync(join(out, 'run.json'), 'utf8'));
    expect(run.input).toMatchObject({ kind: 'image', resize: 256, crop: 224, size: null });
    expect(run.notes.join('\n')).toMatch(/resize 256 \+ center crop 224/);

    // predict: the file prepared as torchvision's Resize(256), CenterCrop(224), ToTensor, Normalize(ImageNet)
    const landscape = refs.find((r) => r.name === 'landscape' && r.ops[0].resize === 256)!;
    const prepared = await recipes.prepareInputs(run.input, { paths: [landscape.file] });
    let x: Float32Array | null = null;
    for await (const b of prepared.source.batches(0)) x = Float32Array.from((b.input as Tensor).flatten().toArray() as number[]);
    const ref = readRef(landscape);
    const plane = 224 * 224;
    const expected = ref.map((v, i) => (v - IMAGENET_MEAN[Math.floor(i / plane)]) / IMAGENET_STD[Math.floor(i / plane)]);
    expect(maxDifference(x!, expected)).toBeLessThan(1e-6);
    const loaded = loadRun(out);
    const predictions = await loaded.predict([landscape.file]);
    expect(predictions).toHaveLength(1);
    loaded.dispose();
  }, 120000);
});
