// task detection through the CLI, end to end: Fashion-MNIST scenes written
// as COCO (data.detection.writeScenes), `finetorch train` of a small Faster
// R-CNN (96 px, few proposals, 1 epoch) writes the run folder; `finetorch
// eval` prints COCO's numbers, which equal metrics.evaluateDetections on the
// detections of a model built here from the checkpoint's weights; `finetorch
// predict` lists boxes and writes one PNG per image with them drawn. Recipe
// fields that do not apply to detection are refused by their path.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { data, io, metrics, models, parseRecipe, recipes, runRecipe, torch, type Tensor } from 'finetorch';
import { cli, only, type Run } from './cli-helpers';

const MODEL = {
  arch: 'fasterrcnn_resnet50_fpn',
  minSize: 96,
  maxSize: 96,
  trainableBackboneLayers: 0,
  rpnPreNmsTopNTrain: 100,
  rpnPostNmsTopNTrain: 30,
  rpnPreNmsTopNTest: 100,
  rpnPostNmsTopNTest: 30,
  rpnBatchSizePerImage: 32,
  boxBatchSizePerImage: 16,
  // an untrained detector scores low: keep its boxes so the mAP and the drawing have something to work on
  boxScoreThresh: 0.01,
  boxDetectionsPerImg: 20,
};
const CLASSES = [0, 7]; // T-shirt/top, Sneaker
// biome-ignore lint/suspicious/noExplicitAny: a raw recipe object, edited field by field below
type RawRecipe = Record<string, any>;

let dir: string;
let train: Run;
let evalJson: Run; // eval --json of the COCO test part (the VOC case compares with it)
const recipe = () => ({
  task: 'detection',
  model: { ...MODEL },
  data: {
    kind: 'coco',
    annotations: 'train/annotations.json',
    images: 'train/images',
    testAnnotations: 'test/annotations.json',
    testImages: 'test/images',
    split: { train: 0.67, val: 0.33, test: 0 },
    augment: { horizontalFlip: 0.5 },
  },
  optimizer: { type: 'SGD', lr: 0.005, momentum: 0.9, weightDecay: 0.0001 },
  epochs: 1,
  batchSize: 2,
  out: 'run',
});

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'ft-cli-detection-'));
  const scenes = { canvas: 96, classes: CLASSES, objectsPerScene: [1, 2] as [number, number] };
  await data.detection.fashionScenes({ ...scenes, count: 6, seed: 1 }).writeScenes(join(dir, 'train'));
  await data.detection.fashionScenes({ ...scenes, count: 3, seed: 2, split: 'test' }).writeScenes(join(dir, 'test'));
  writeFileSync(join(dir, 'recipe.json'), JSON.stringify(recipe()));
  train = cli(['train', '--config', join(dir, 'recipe.json'), '--json']);
}, 120_000);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** An image file as the float32 [3, H, W] tensor in [0, 1] a detector takes (grey PNGs repeated to three channels). */
async function imageTensor(path: string): Promise<Tensor> {
  const { data: px, info } = await sharp(path).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  const plane = info.width * info.height;
  const out = new Float32Array(3 * plane);
  for (let c = 0; c < 3; c++) for (let i = 0; i < plane; i++) out[c * plane + i] = px[i * info.channels + (info.channels === 1 ? 0 : c)] / 255;
  return torch.tensor(out, { shape: [3, info.height, info.width] });
}

describe('finetorch train / eval / predict with task detection', () => {
  it('train writes the run folder: run.json, best/ and last/ checkpoints, metrics.json with the test mAP', () => {
    expect(train.status, train.stderr).toBe(0);
    const out = join(dir, 'run');
    for (const f of ['run.json', 'metrics.json', 'events.jsonl', 'best/model.safetensors', 'best/trainer.json', 'last/model.safetensors'])
      expect(existsSync(join(out, f)), f).toBe(true);
    const run = JSON.parse(readFileSync(join(out, 'run.json'), 'utf8'));
    expect(run.model.arch).toBe('fasterrcnn_resnet50_fpn');
    expect(run.model.options).toMatchObject({ numClasses: 3, minSize: 96, trainableBackboneLayers: 0 });
    expect(run.classes).toEqual(['__background__', 'T-shirt/top', 'Sneaker']);
    expect(run.input).toEqual({ kind: 'detection', channels: 3 });
    const start = only(train.events, 'start')[0] as unknown as { samples: Record<string, number>; model: { trainable: number; parameters: number } };
    expect(start.samples).toEqual({ train: 4, val: 2, test: 3 });
    // trainableBackboneLayers 0: the body is frozen, FPN / RPN / RoI heads train
    expect(start.model.trainable).toBeLessThan(start.model.parameters / 2);
    const epoch = only(train.events, 'epoch')[0] as unknown as { losses: Record<string, number>; detection: { map: number } };
    expect(Object.keys(epoch.losses).sort()).toEqual(['loss_box_reg', 'loss_classifier', 'loss_objectness', 'loss_rpn_box_reg']);
    expect(epoch.detection.map).toBeGreaterThanOrEqual(0);
    const m = JSON.parse(readFileSync(join(out, 'metrics.json'), 'utf8'));
    expect(m.best.metric).toBe('map');
    expect(Object.keys(m.test)).toEqual(expect.arrayContaining(['map', 'map50', 'map75', 'mapSmall', 'mapMedium', 'mapLarge', 'ar100']));
  });

  it("eval's COCO numbers equal evaluateDetections on the checkpoint's detections of the test images; text mode prints the table", async () => {
    const r = cli(['eval', '--checkpoint', join(dir, 'run'), '--json']);
    evalJson = r;
    expect(r.status, r.stderr).toBe(0);
    const ev = only(r.events, 'eval')[0] as unknown as { samples: number; detection: Record<string, number> };
    expect(ev.samples).toBe(3);
    // the reference: the checkpoint's weights in a detector built here, the ground truth read from the COCO file
    const run = JSON.parse(readFileSync(join(dir, 'run', 'run.json'), 'utf8'));
    const model = models.fasterrcnnResnet50Fpn(run.model.options);
    const sd = io.load(join(dir, 'run', 'best', 'model.safetensors'));
    model.loadStateDict(sd);
    Object.values(sd).forEach((t) => t.dispose());
    model.eval();
    const coco = JSON.parse(readFileSync(join(dir, 'test', 'annotations.json'), 'utf8'));
    const predictions = [];
    const truths = [];
    for (const image of coco.images) {
      const t = await imageTensor(join(dir, 'test', 'images', image.file_name));
      const [d] = model.detect([t]);
      t.dispose();
      predictions.push({ boxes: d.boxes, scores: d.scores, labels: d.labels });
      const anns = coco.annotations.filter((a: { image_id: number }) => a.image_id === image.id);
      truths.push({
        boxes: anns.map((a: { bbox: number[] }) => [a.bbox[0], a.bbox[1], a.bbox[0] + a.bbox[2], a.bbox[1] + a.bbox[3]]),
        labels: anns.map((a: { category_id: number }) => a.category_id),
      });
    }
    const want = metrics.evaluateDetections(predictions, truths);
    expect(want.map50).toBeGreaterThan(0); // some boxes hit: the numbers compared are not all zero
    model.dispose();
    for (const k of ['map', 'map50', 'map75', 'mapSmall', 'mapMedium', 'mapLarge', 'ar1', 'ar10', 'ar100'] as const)
      expect(ev.detection[k], k).toBeCloseTo(want[k], 6);
    const text = cli(['eval', '--checkpoint', join(dir, 'run', 'best'), '--pretty']);
    expect(text.status, text.stderr).toBe(0);
    expect(text.stdout).toContain(metrics.formatDetectionScores(want));
    expect(text.stdout).toMatch(/per class \(test\)[\s\S]*T-shirt\/top[\s\S]*Sneaker/);
  });

  it('a voc recipe (--config) reads the same test scenes written as Pascal VOC: the same numbers', () => {
    // Annotations/<id>.xml with 1-based inclusive corners (xmin = x1 + 1), JPEGImages/, ImageSets/Main/test.txt
    const voc = join(dir, 'voc');
    for (const d of ['Annotations', 'JPEGImages', 'ImageSets/Main']) mkdirSync(join(voc, d), { recursive: true });
    const coco = JSON.parse(readFileSync(join(dir, 'test', 'annotations.json'), 'utf8'));
    const names = Object.fromEntries(coco.categories.map((c: { id: number; name: string }) => [c.id, c.name]));
    const ids: string[] = [];
    for (const image of coco.images) {
      const id = image.file_name.replace('.png', '');
      ids.push(id);
      copyFileSync(join(dir, 'test', 'images', image.file_name), join(voc, 'JPEGImages', image.file_name));
      const objects = coco.annotations
        .filter((a: { image_id: number }) => a.image_id === image.id)
        .map(
          (a: { bbox: number[]; category_id: number }) =>
            `<object><name>${names[a.category_id]}</name><difficult>0</difficult><bndbox><xmin>${a.bbox[0] + 1}</xmin><ymin>${a.bbox[1] + 1}</ymin><xmax>${a.bbox[0] + a.bbox[2]}</xmax><ymax>${a.bbox[1] + a.bbox[3]}</ymax></bndbox></object>`,
        );
      writeFileSync(
        join(voc, 'Annotations', `${id}.xml`),
        `<annotation><filename>${image.file_name}</filename><size><width>${image.width}</width><height>${image.height}</height><depth>1</depth></size>${objects.join('')}</annotation>`,
      );
    }
    writeFileSync(join(voc, 'ImageSets', 'Main', 'test.txt'), ids.join('\n') + '\n');
    const r0 = recipe();
    const config = {
      ...r0,
      data: { kind: 'voc', root: 'voc', testImageSet: 'test', classes: ['T-shirt/top', 'Sneaker'], split: { train: 1, val: 0, test: 0 } },
    };
    writeFileSync(join(dir, 'voc.json'), JSON.stringify(config));
    const viaVoc = cli(['eval', '--checkpoint', join(dir, 'run', 'best'), '--config', join(dir, 'voc.json'), '--json']);
    expect(viaVoc.status, viaVoc.stderr).toBe(0);
    const scores = (r: Run) => (only(r.events, 'eval')[0] as unknown as { detection: Record<string, unknown> }).detection;
    expect(scores(viaVoc)).toEqual(scores(evalJson));
  });

  it('predict lists boxes and writes one PNG per image, its size, with the boxes drawn in colour on the grey scene', async () => {
    const out = join(dir, 'drawn');
    const r = cli(['predict', '--checkpoint', join(dir, 'run'), join(dir, 'test', 'images'), '--score-thresh', '0', '--out', out, '--json']);
    expect(r.status, r.stderr).toBe(0);
    const preds = only(r.events, 'prediction') as unknown as Array<{
      input: string;
      image: string;
      width: number;
      boxes: Array<{ class: string; score: number; box: number[] }>;
    }>;
    expect(preds).toHaveLength(3);
    for (const p of preds) {
      expect(p.image.startsWith(out)).toBe(true);
      const drawn = await sharp(p.image).raw().toBuffer({ resolveWithObject: true });
      const given = await sharp(p.input).raw().toBuffer({ resolveWithObject: true });
      expect([drawn.info.width, drawn.info.height]).toEqual([given.info.width, given.info.height]);
      expect(p.boxes.length).toBeGreaterThan(0); // score threshold 0: every detection kept
      for (const b of p.boxes) {
        expect(['T-shirt/top', 'Sneaker']).toContain(b.class);
        expect(b.score).toBeGreaterThanOrEqual(0);
        // the outline's corner pixel: coloured where the input is grey
        const x = Math.min(Math.max(Math.round(b.box[0]), 0), drawn.info.width - 1);
        const y = Math.min(Math.max(Math.round(b.box[3]) - 1, 0), drawn.info.height - 1);
        const at = (y * drawn.info.width + x) * drawn.info.channels;
        const [red, green, blue] = drawn.data.subarray(at, at + 3);
        expect(red === green && green === blue, `pixel (${x}, ${y}) of ${p.image}`).toBe(false);
      }
    }
  });

  it("freeze and differential LRs work on the detector's blocks; without freeze, trainableBackboneLayers decides what trains", () => {
    const BLOCKS = ['stem', 'layer1', 'layer2', 'layer3', 'layer4', 'fpn', 'rpn', 'roi_heads', 'head'];
    const stages = (name: string) => /^backbone\.body\.(conv1|layer\d)/.exec(name)?.[1];
    // torchvision's trainable_backbone_layers 2: layer3 and layer4 of the body train, the rest of it does not
    const plain = parseRecipe({ ...recipe(), model: { ...MODEL, trainableBackboneLayers: 2 } });
    const a = recipes.buildDetector(plain, 3).model;
    const partsA = recipes.buildOptimizer(plain, a, 2);
    for (const [name, p] of a.namedParameters()) {
      const stage = stages(name);
      if (stage) expect(p.requiresGrad, name).toBe(stage === 'layer3' || stage === 'layer4');
      else expect(p.requiresGrad, name).toBe(true);
    }
    expect(partsA.groups.every((g) => g.lr === 0.005)).toBe(true);
    a.dispose();
    // the whole body trainable, the first two blocks frozen, LRs geometric from 1e-4 (stem) to 1e-2 (head)
    const tuned = parseRecipe({
      ...recipe(),
      model: { ...MODEL, trainableBackboneLayers: 5 },
      freeze: { blocks: 2 },
      optimizer: { type: 'SGD', bottomLr: 1e-4, topLr: 1e-2, momentum: 0.9 },
      schedule: { kind: 'cosine', warmupSteps: 1 },
    });
    const b = recipes.buildDetector(tuned, 3).model;
    const partsB = recipes.buildOptimizer(tuned, b, 2);
    for (const [name, p] of b.namedParameters()) expect(p.requiresGrad, name).toBe(!['conv1', 'layer1'].includes(stages(name) ?? ''));
    expect([...new Set(partsB.groups.map((g) => g.block))]).toEqual(BLOCKS.slice(2));
    for (const g of partsB.groups) expect(g.lr, g.block).toBeCloseTo(1e-4 * 100 ** (BLOCKS.indexOf(g.block) / (BLOCKS.length - 1)), 12);
    expect(partsB.scheduler).toBeDefined();
    b.dispose();
  });

  it('recipe fields that do not apply to detection are refused by their path; a bad recipe exits 2 naming the field', async () => {
    const issues = (change: (r: RawRecipe) => void) => {
      const r = recipe() as RawRecipe;
      change(r);
      try {
        parseRecipe(r);
      } catch (err) {
        return (err as { issues: Array<{ path: string }> }).issues.map((i) => i.path);
      }
      return [];
    };
    expect(issues(() => {})).toEqual([]);
    expect(issues((r) => (r.loss = { type: 'focal' }))).toEqual(['recipe.loss.type']);
    expect(issues((r) => (r.monitor = 'accuracy'))).toEqual(['recipe.monitor']);
    expect(issues((r) => (r.model.width = 16))).toEqual(['recipe.model.width']);
    expect(issues((r) => (r.model.arch = 'resnet18'))).toEqual(['recipe.model.arch']);
    expect(issues((r) => (r.data = { kind: 'fashionMnist' }))).toEqual(['recipe.data.kind']);
    expect(issues((r) => (r.tta = { hflip: true }))).toEqual(['recipe.tta']);
    expect(issues((r) => (r.ema = { decay: 0.99 }))).toEqual(['recipe.ema']);
    expect(issues((r) => (r.data.bogus = 1))).toEqual(['recipe.data.bogus']);
    expect(issues((r) => (r.model.minSize = 0))).toEqual(['recipe.model.minSize']);
    // the other way: coco data and detector options need task detection
    expect(issues((r) => delete r.task)).toEqual(expect.arrayContaining(['recipe.data.kind', 'recipe.model.minSize']));
    // test annotations whose categories differ from the training set's: a data error naming the file
    const other = join(dir, 'other.json');
    const coco = JSON.parse(readFileSync(join(dir, 'test', 'annotations.json'), 'utf8'));
    writeFileSync(
      other,
      JSON.stringify({
        ...coco,
        categories: [
          { id: 1, name: 'T-shirt/top' },
          { id: 2, name: 'Bag' },
        ],
      }),
    );
    const bad = recipe() as RawRecipe;
    bad.data.testAnnotations = other;
    await expect(runRecipe(bad, { baseDir: dir, out: join(dir, 'run-bad') })).rejects.toThrow(/other\.json: its classes \(T-shirt\/top, Bag\) differ/);
    writeFileSync(join(dir, 'bad.json'), JSON.stringify({ ...recipe(), loss: { labelSmoothing: 0.1 } }));
    const r = cli(['train', '--config', join(dir, 'bad.json')]);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('recipe.loss.labelSmoothing');
  });
});
