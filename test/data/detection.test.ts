// data.detection: COCO and Pascal VOC readers on real files (PNG images made
// here, annotation files written by hand), errors naming file and annotation,
// box-aware transforms (flip and crop against the pixel arithmetic, resize
// against torchvision 0.14's GeneralizedRCNNTransform.resize run by Debian's
// /usr/bin/python3), seeded determinism, and the loader's tensors.
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { data, DataError } from 'finetorch';
import { rng } from '../../dist/data/tensor-loader.js';

const { detection } = data;
let dir: string;

/** A PNG of random pixels, width x height, RGB. */
async function png(path: string, width: number, height: number, seed: number): Promise<void> {
  const r = rng(seed);
  const pixels = Buffer.alloc(width * height * 3);
  for (let i = 0; i < pixels.length; i++) pixels[i] = Math.floor(r() * 256);
  await sharp(pixels, { raw: { width, height, channels: 3 } })
    .png()
    .toFile(path);
}

const coco = {
  images: [
    { id: 7, file_name: 'a.png', width: 40, height: 30 },
    { id: 3, file_name: 'b.png', width: 20, height: 24 },
    { id: 9, file_name: 'c.png', width: 16, height: 16 }, // no annotations: kept with no boxes
  ],
  annotations: [
    { id: 101, image_id: 7, category_id: 18, bbox: [2, 3, 10, 5], area: 50, iscrowd: 0 },
    { id: 102, image_id: 3, category_id: 1, bbox: [0, 0, 20, 24], area: 480, iscrowd: 0 },
    { id: 103, image_id: 7, category_id: 1, bbox: [30.5, 20, 9.5, 10], area: 95, iscrowd: 0 },
    { id: 104, image_id: 7, category_id: 18, bbox: [0, 0, 40, 30], area: 1200, iscrowd: 1 },
  ],
  categories: [
    { id: 18, name: 'dog' },
    { id: 1, name: 'person' },
  ],
};

const vocXml = (filename: string, width: number, height: number, objects: string[]) => `<?xml version="1.0" encoding="utf-8"?>
<!-- written by hand, in VOC 2012's layout -->
<annotation verified="no">
  <folder>VOC2012</folder>
  <filename>${filename}</filename>
  <source><database>The VOC2012 Database</database></source>
  <size><width>${width}</width><height>${height}</height><depth>3</depth></size>
  <segmented>0</segmented>
${objects.join('\n')}
</annotation>
`;
const vocObject = (name: string, [xmin, ymin, xmax, ymax]: number[], difficult = 0) =>
  `  <object><name>${name}</name><pose>Unspecified</pose><truncated>0</truncated><difficult>${difficult}</difficult>
    <bndbox><xmin>${xmin}</xmin><ymin>${ymin}</ymin><xmax>${xmax}</xmax><ymax>${ymax}</ymax></bndbox></object>`;

function writeVoc(root: string, files: Record<string, string>, splits: Record<string, string[]> = {}) {
  mkdirSync(join(root, 'Annotations'), { recursive: true });
  mkdirSync(join(root, 'ImageSets', 'Main'), { recursive: true });
  for (const [id, xml] of Object.entries(files)) writeFileSync(join(root, 'Annotations', `${id}.xml`), xml);
  for (const [split, ids] of Object.entries(splits)) writeFileSync(join(root, 'ImageSets', 'Main', `${split}.txt`), `${ids.join('\n')}\n`);
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'ft-detection-'));
  mkdirSync(join(dir, 'coco'));
  await png(join(dir, 'coco', 'a.png'), 40, 30, 1);
  await png(join(dir, 'coco', 'b.png'), 20, 24, 2);
  await png(join(dir, 'coco', 'c.png'), 16, 16, 3);
  writeFileSync(join(dir, 'coco.json'), JSON.stringify(coco));
  mkdirSync(join(dir, 'voc', 'JPEGImages'), { recursive: true });
  await png(join(dir, 'voc', 'JPEGImages', '2008_000001.png'), 40, 30, 4);
  await png(join(dir, 'voc', 'JPEGImages', '2008_000002.png'), 24, 20, 5);
  writeVoc(
    join(dir, 'voc'),
    {
      '2008_000001': vocXml('2008_000001.png', 40, 30, [vocObject('horse', [1, 1, 40, 30]), vocObject('cat &amp; co', [5, 6, 12, 20], 1)]),
      '2008_000002': vocXml('2008_000002.png', 24, 20, [vocObject('cat &amp; co', [3, 4, 10, 9])]),
    },
    { train: ['2008_000002'], trainval: ['2008_000001', '2008_000002'] },
  );
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

// A COCO file with one change, written next to the images; returns its path.
function cocoWith(name: string, change: (c: typeof coco) => void): string {
  const c = structuredClone(coco);
  change(c);
  const path = join(dir, `${name}.json`);
  writeFileSync(path, JSON.stringify(c));
  return path;
}

describe('readCoco', () => {
  it('reads images, xyxy boxes and labels 1..K in category-id order; crowd left out; images without boxes kept', () => {
    const d = detection.readCoco(join(dir, 'coco.json'), join(dir, 'coco'));
    expect(d.classes).toEqual(['__background__', 'person', 'dog']);
    expect(d.categoryIds).toEqual([0, 1, 18]);
    expect(d.skippedCrowd).toBe(1);
    expect(d.samples.map((s) => [s.id, s.width, s.height, s.path])).toEqual([
      [7, 40, 30, join(dir, 'coco', 'a.png')],
      [3, 20, 24, join(dir, 'coco', 'b.png')],
      [9, 16, 16, join(dir, 'coco', 'c.png')],
    ]);
    expect(d.samples[0].boxes).toEqual([
      [2, 3, 12, 8],
      [30.5, 20, 40, 30],
    ]);
    expect(d.samples[0].labels).toEqual([2, 1]);
    expect(d.samples[1]).toMatchObject({ boxes: [[0, 0, 20, 24]], labels: [1] });
    expect(d.samples[2]).toMatchObject({ boxes: [], labels: [] });
  });

  it('categoryIdsAsLabels: labels are the category ids, classes indexed by id (as torchvision counts COCO)', () => {
    const d = detection.readCoco(join(dir, 'coco.json'), join(dir, 'coco'), { categoryIdsAsLabels: true });
    expect(d.classes).toHaveLength(19);
    expect([d.classes[0], d.classes[1], d.classes[2], d.classes[18]]).toEqual(['__background__', 'person', 'N/A', 'dog']);
    expect(d.samples[0].labels).toEqual([18, 1]);
  });

  it('errors name the file, the annotation id and the image', () => {
    const read =
      (path: string, options = {}) =>
      () =>
        detection.readCoco(path, join(dir, 'coco'), options);
    const outside = cocoWith('outside', (c) => {
      c.annotations[2].bbox = [30.5, 20, 10, 10];
    });
    expect(read(outside)).toThrow(DataError);
    expect(read(outside)).toThrow(
      `${outside}: annotation id 103 (image a.png): box [x1, y1, x2, y2] = [30.5,20,40.5,30] is outside its image (40x30, width x height)`,
    );
    // 'clip' keeps it, clipped; 'drop' leaves it out and counts it
    expect(detection.readCoco(outside, join(dir, 'coco'), { outside: 'clip' }).samples[0].boxes[1]).toEqual([30.5, 20, 40, 30]);
    const dropped = detection.readCoco(outside, join(dir, 'coco'), { outside: 'drop' });
    expect([dropped.samples[0].boxes, dropped.samples[0].labels, dropped.droppedBoxes]).toEqual([[[2, 3, 12, 8]], [2], 1]);
    const empty = cocoWith('empty', (c) => {
      c.annotations[0].bbox = [2, 3, 0, 5];
    });
    expect(read(empty)).toThrow(/annotation id 101 \(image a\.png\): box .* is empty: needs x2 > x1 and y2 > y1/);
    expect(detection.readCoco(empty, join(dir, 'coco'), { emptyBoxes: 'drop' }).samples[0].labels).toEqual([1]);
    expect(read(empty, { emptyBoxes: 'skip' })).toThrow("readCoco: emptyBoxes must be 'error' or 'drop', got \"skip\"");
    const unknown = cocoWith('unknown', (c) => {
      c.annotations[1].category_id = 5;
    });
    expect(read(unknown)).toThrow(`${unknown}: annotation id 102: unknown category_id 5 (the categories are 1, 18)`);
    const noImage = cocoWith('noimage', (c) => {
      c.annotations[1].image_id = 4;
    });
    expect(read(noImage)).toThrow(/annotation id 102: image_id 4 is not among the images/);
    const missing = cocoWith('missing', (c) => {
      c.images[2].file_name = 'gone.png';
    });
    expect(read(missing)).toThrow(`image id 9: ${join(dir, 'coco', 'gone.png')} does not exist`);
    const badBox = cocoWith('badbox', (c) => {
      (c.annotations[0] as { bbox: unknown }).bbox = [1, 2, 3];
    });
    expect(read(badBox)).toThrow(/annotation id 101: bbox must be \[x, y, width, height\]/);
    writeFileSync(join(dir, 'broken.json'), '{"images": [');
    expect(read(join(dir, 'broken.json'))).toThrow(/broken\.json: not valid JSON/);
    expect(read(join(dir, 'nope.json'))).toThrow(/readCoco: cannot read .*nope\.json/);
  });
});

describe('readVoc', () => {
  it('reads every annotation: boxes [xmin - 1, ymin - 1, xmax, ymax], sorted class names, difficult flags, entities decoded', () => {
    const d = detection.readVoc(join(dir, 'voc'));
    expect(d.classes).toEqual(['__background__', 'cat & co', 'horse']);
    expect(d.samples.map((s) => s.id)).toEqual(['2008_000001', '2008_000002']);
    expect(d.samples[0]).toMatchObject({
      path: join(dir, 'voc', 'JPEGImages', '2008_000001.png'),
      width: 40,
      height: 30,
      boxes: [
        [0, 0, 40, 30],
        [4, 5, 12, 20],
      ],
      labels: [2, 1],
      difficult: [false, true],
    });
  });

  it('a split reads its ids; difficult: false drops those objects; given classes fix the labels', () => {
    const train = detection.readVoc(join(dir, 'voc'), { split: 'train', classes: ['horse', 'cat & co', 'dog'] });
    expect(train.classes).toEqual(['__background__', 'horse', 'cat & co', 'dog']);
    expect(train.samples).toHaveLength(1);
    expect(train.samples[0]).toMatchObject({ boxes: [[2, 3, 10, 9]], labels: [2] });
    const easy = detection.readVoc(join(dir, 'voc'), { split: 'trainval', difficult: false });
    expect(easy.samples[0].labels).toEqual([2]);
  });

  it('errors name the XML file and the object (index and line)', () => {
    const root = join(dir, 'voc-bad');
    mkdirSync(join(root, 'JPEGImages'), { recursive: true });
    writeFileSync(join(root, 'JPEGImages', 'x.png'), ''); // only its existence is checked when reading
    const one = (objects: string[], size = [40, 30]) => {
      rmSync(join(root, 'Annotations'), { recursive: true, force: true });
      writeVoc(root, { x: vocXml('x.png', size[0], size[1], objects) });
      return () => detection.readVoc(root, { classes: ['horse'] });
    };
    const file = join(root, 'Annotations', 'x.xml');
    expect(one([vocObject('horse', [1, 1, 5, 5]), vocObject('zebra', [1, 1, 5, 5])])).toThrow(
      `${file}: object 1: unknown class "zebra" (the classes are horse)`,
    );
    expect(one([vocObject('horse', [10, 1, 9, 5])])).toThrow(/x\.xml: object 0 \(line 9\), horse: box .*\[9,0,9,5\] is empty/);
    expect(one([vocObject('horse', [1, 1, 41, 5])])).toThrow(/x\.xml: object 0 \(line 9\), horse: box .* is outside its image \(40x30/);
    expect(one([vocObject('horse', [1, 1, 5, 5]).replace('<ymax>5</ymax>', '<ymax>five</ymax>')])).toThrow(
      /object 0 \(line 9\): <bndbox> needs <ymax> as a number, got "five"/,
    );
    expect(one([], [0, 30])).toThrow(/x\.xml: <size>: needs <width> and <height> as positive integers/);
    // malformed XML: the line is named
    rmSync(join(root, 'Annotations'), { recursive: true, force: true });
    writeVoc(root, { x: '<annotation>\n  <size><width>4</width>\n</annotation>\n' });
    expect(() => detection.readVoc(root)).toThrow(`${file}: line 3: </annotation> closes <size> (opened on line 2)`);
    expect(() => detection.readVoc(join(dir, 'nowhere'))).toThrow(/readVoc: cannot read .*nowhere.*Annotations/);
    expect(() => detection.readVoc(join(dir, 'voc'), { split: 'val' })).toThrow(/readVoc: cannot read .*val\.txt/);
  });

  it('parseXml: attributes, self-closing tags, CDATA, numeric entities', () => {
    const el = detection.parseXml('<a x=\'1\' y = "&lt;2&gt;"><b/><c><![CDATA[<raw>]]>&#65;&#x42;</c></a>', 'mem.xml');
    expect(el.attributes).toEqual({ x: '1', y: '<2>' });
    expect(el.children.map((c) => c.name)).toEqual(['b', 'c']);
    expect(el.children[1].text).toBe('<raw>AB');
    expect(() => detection.parseXml('<a>&nbsp;</a>', 'mem.xml')).toThrow('mem.xml: line 1: unknown entity &nbsp;');
    expect(() => detection.parseXml('<a>\n<b>\n', 'mem.xml')).toThrow(/<b> \(line 2\) is never closed/);
  });
});

// ---- box-aware transforms ----

/** An image of random float32 values, C x H x W, with boxes. */
function randomImage(seed: number, C: number, H: number, W: number, boxes: number[][]) {
  const r = rng(seed);
  const d = new Float32Array(C * H * W);
  for (let i = 0; i < d.length; i++) d[i] = r();
  return { data: d, channels: C, height: H, width: W, boxes, labels: boxes.map((_, i) => i + 1) };
}
const at = (im: { data: Float32Array; height: number; width: number }, c: number, y: number, x: number) => im.data[(c * im.height + y) * im.width + x];

describe('detection transforms', () => {
  it('horizontalFlip mirrors the pixels and the boxes (x1 = W - x2); probability 0 leaves both', () => {
    const im = randomImage(1, 2, 5, 7, [[1, 0, 3, 2]]);
    const out = detection.applyDetectionTransforms(im, [{ horizontalFlip: 1 }], rng(0), 'mem');
    for (let c = 0; c < 2; c++) for (let y = 0; y < 5; y++) for (let x = 0; x < 7; x++) expect(at(out, c, y, x)).toBe(at(im, c, y, 6 - x));
    expect(out.boxes).toEqual([[4, 0, 6, 2]]);
    expect(detection.applyDetectionTransforms(im, [{ horizontalFlip: 0 }], rng(0), 'mem')).toEqual(im);
    expect(() => detection.applyDetectionTransforms(im, [{ horizontalFlip: 2 }], rng(0), 'x.png')).toThrow(
      'x.png: horizontalFlip is a probability in [0, 1], got 2',
    );
    expect(() => detection.applyDetectionTransforms(im, [{ flip: 1 } as never], rng(0), 'x.png')).toThrow(/x\.png: unknown detection transform \{"flip":1\}/);
  });

  it('randomCrop takes a window, moves and clips boxes, drops the vanished and (minVisible) the mostly cut; the same seed gives the same crop', () => {
    const boxes = [
      [0, 0, 20, 20], // the whole image: clipped to the window
      [2, 2, 4, 4], // small, somewhere
      [15, 15, 20, 20], // a corner
    ];
    const im = randomImage(2, 1, 20, 20, boxes);
    const seen = new Set<string>();
    for (let seed = 0; seed < 12; seed++) {
      const out = detection.applyDetectionTransforms(im, [{ randomCrop: [8, 10] }], rng(seed), 'mem');
      const again = detection.applyDetectionTransforms(im, [{ randomCrop: [8, 10] }], rng(seed), 'mem');
      expect(again).toEqual(out);
      expect([out.height, out.width]).toEqual([8, 10]);
      // find the window from the first box (the whole image clipped) and the pixels
      expect(out.boxes[0]).toEqual([0, 0, 10, 8]);
      const r = rng(seed);
      const left = Math.floor(r() * 11);
      const top = Math.floor(r() * 13);
      seen.add(`${left},${top}`);
      for (let y = 0; y < 8; y++) for (let x = 0; x < 10; x++) expect(at(out, 0, y, x)).toBe(at(im, 0, top + y, left + x));
      const expected = boxes
        .map((b, i) => [Math.max(0, b[0] - left), Math.max(0, b[1] - top), Math.min(10, b[2] - left), Math.min(8, b[3] - top), i + 1])
        .filter((b) => b[2] > b[0] && b[3] > b[1]);
      expect(out.boxes).toEqual(expected.map((b) => b.slice(0, 4)));
      expect(out.labels).toEqual(expected.map((b) => b[4]));
    }
    expect(seen.size).toBeGreaterThan(6); // the windows do move
    // minVisible 0.15: the whole-image box keeps 80 of 400 pixels² in any window (stays); the corner box
    // [15, 15, 20, 20] in the window at (left 9, top 11) keeps 4 x 4 = 16 of 25 (stays) ...
    const fixed = (left: number, top: number) => {
      const values = [(left + 0.5) / 11, (top + 0.5) / 13]; // draws that give this window
      return () => values.shift() as number;
    };
    expect(detection.applyDetectionTransforms(im, [{ randomCrop: [8, 10], minVisible: 0.15 }], fixed(9, 11), 'mem').labels).toEqual([1, 3]);
    // ... and at (left 8, top 8) keeps [7, 7, 10, 8], 3 x 1 = 3 of 25: dropped
    expect(detection.applyDetectionTransforms(im, [{ randomCrop: [8, 10], minVisible: 0.15 }], fixed(8, 8), 'mem').labels).toEqual([1]);
    expect(() => detection.applyDetectionTransforms(im, [{ randomCrop: 30 }], rng(0), 'x.png')).toThrow(
      'x.png: randomCrop 30x30 (height x width) is larger than the image 20x20',
    );
  });

  it('resize equals torchvision GeneralizedRCNNTransform.resize: size, pixels (1e-5) and boxes (1e-4)', () => {
    // (C, H, W, minSize, maxSize): up and down, the max-size cap, odd ratios
    const cases = [
      [3, 30, 40, 50, 1333],
      [3, 37, 53, 20, 1333],
      [1, 12, 90, 30, 100], // the long side caps the scale
      [3, 64, 48, 64, 64],
      [2, 25, 25, 33, 1000], // 33 / 25 in float32 times 25 is just under 33: 32
      [3, 30, 45, 35, 1000],
    ].map(([C, H, W, minSize, maxSize], k) => ({
      ...randomImage(10 + k, C, H, W, [
        [0, 0, W, H],
        [1.5, 2.25, W / 2, H / 3],
      ]),
      minSize,
      maxSize,
    }));
    const input = JSON.stringify({
      cases: cases.map((c) => ({ image: Array.from(c.data), shape: [c.channels, c.height, c.width], boxes: c.boxes, minSize: c.minSize, maxSize: c.maxSize })),
    });
    const r = spawnSync('/usr/bin/python3', [join(__dirname, '..', 'fixtures', 'detection_resize_reference.py')], {
      input,
      encoding: 'utf8',
      maxBuffer: 1 << 27,
      env: { ...process.env, OMP_NUM_THREADS: '1' },
    });
    if (r.status !== 0) throw new Error(`detection_resize_reference.py failed: ${r.stderr}`);
    const ref = JSON.parse(r.stdout) as { image: number[]; shape: number[]; boxes: number[][] }[];
    cases.forEach((c, k) => {
      const out = detection.applyDetectionTransforms(c, [{ resize: { minSize: c.minSize, maxSize: c.maxSize } }], rng(0), 'mem');
      expect([out.channels, out.height, out.width], `case ${k}`).toEqual(ref[k].shape);
      expect(detection.detectionResizeSize(c.height, c.width, c.minSize, c.maxSize)).toEqual(ref[k].shape.slice(1));
      let worst = 0;
      out.data.forEach((v, i) => {
        worst = Math.max(worst, Math.abs(v - ref[k].image[i]));
      });
      expect(worst, `case ${k}: largest pixel difference`).toBeLessThan(1e-5);
      out.boxes.forEach((b, i) => b.forEach((v, j) => expect(Math.abs(v - ref[k].boxes[i][j]), `case ${k} box ${i}`).toBeLessThan(1e-4)));
    });
    // several minSize values: one drawn per image
    const im = cases[0];
    const sizes = new Set(
      [0, 1, 2, 3, 4, 5, 6, 7].map((s) => detection.applyDetectionTransforms(im, [{ resize: { minSize: [20, 40], maxSize: 1333 } }], rng(s), 'mem').height),
    );
    expect([...sizes].sort()).toEqual([20, 40]);
  });
});

describe('DetectionDataset and DetectionLoader', () => {
  it('items decode the image and apply the transforms; batches are lists of image tensors and targets', async () => {
    const d = detection.readCoco(join(dir, 'coco.json'), join(dir, 'coco'));
    const ds = new detection.DetectionDataset(d.samples, { transforms: [{ horizontalFlip: 1 }] });
    const item = await ds.get(0, rng(0));
    expect(item.shape).toEqual([3, 30, 40]);
    expect(item.boxes).toEqual([
      [28, 3, 38, 8],
      [0, 20, 9.5, 30],
    ]);
    // the pixels are the PNG's, mirrored: compare with sharp's decode
    const { data: raw } = await sharp(join(dir, 'coco', 'a.png'))
      .raw()
      .toBuffer({ resolveWithObject: true });
    expect(item.data[0 * 1200 + 5 * 40 + 0]).toBeCloseTo(raw[(5 * 40 + 39) * 3 + 0] / 255, 6);
    expect(item.data[2 * 1200 + 7 * 40 + 3]).toBeCloseTo(raw[(7 * 40 + 36) * 3 + 2] / 255, 6);

    const loader = new detection.DetectionLoader(ds, { batchSize: 2, shuffle: true, seed: 3 });
    const batches = [];
    for await (const b of loader.batches(0)) batches.push(b);
    expect(batches.map((b) => b.images.length)).toEqual([2, 1]);
    const all = batches.flatMap((b) => b.images.map((im, i) => ({ im, t: b.targets[i], source: b.sources[i] })));
    expect(all.map((x) => x.source).sort()).toEqual(d.samples.map((s) => s.path).sort());
    for (const { im, t, source } of all) {
      const s = d.samples.find((x) => x.path === source)!;
      expect(im.shape).toEqual([3, s.height, s.width]);
      expect(t.boxes.shape).toEqual([s.boxes.length, 4]);
      expect(t.boxes.dtype).toBe('float32');
      expect(t.labels.dtype).toBe('int64');
      expect(Array.from(t.labels.dataSync() as BigInt64Array, Number)).toEqual(s.labels);
    }
  });

  it('random transforms are the same for the same seed and epoch, and differ between epochs', async () => {
    const d = detection.readCoco(join(dir, 'coco.json'), join(dir, 'coco'));
    const ds = new detection.DetectionDataset(d.samples, { transforms: [{ randomCrop: 12 }, { horizontalFlip: 0.5 }] });
    const epoch = async (seed: number, e: number) => {
      const out = [];
      for await (const b of new detection.DetectionLoader(ds, { batchSize: 2, shuffle: true, seed }).batches(e))
        for (let i = 0; i < b.images.length; i++)
          out.push({ source: b.sources[i], pixels: Array.from(b.images[i].dataSync()), boxes: b.targets[i].boxes.toArray() });
      return out;
    };
    const first = await epoch(5, 0);
    expect(await epoch(5, 0)).toEqual(first);
    expect(await epoch(5, 1)).not.toEqual(first);
    expect(first.every((x) => x.pixels.length === 3 * 12 * 12)).toBe(true);
  });

  it('an image whose size differs from its annotation is a DataError naming both', async () => {
    const d = detection.readCoco(
      cocoWith('wrongsize', (c) => {
        c.images[1].width = 21;
      }),
      join(dir, 'coco'),
    );
    const ds = new detection.DetectionDataset(d.samples);
    await expect(ds.get(1, rng(0))).rejects.toThrow(
      `${join(dir, 'coco', 'b.png')}: the image is 20x24 (width x height) but its annotations (image 3) say 21x24`,
    );
  });
});
