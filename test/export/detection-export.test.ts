// exportModel / `finetorch export` of a detection run (a small Faster R-CNN
// ResNet-50 FPN trained 1 epoch on Fashion-MNIST scenes). The run folder goes
// to safetensors (models.load rebuilds the detector with its options), that
// file to pth, which loads with strict=True into torchvision 0.14's
// fasterrcnn_resnet50_fpn(weights=None, weights_backbone=None) (BatchNorm2d
// in the body: the export adds the num_batches_tracked counters finetorch's
// FrozenBatchNorm2d lacks) and into the same model built with
// FrozenBatchNorm2d; both give the eval detections of finetorch's detector on
// the same images (one Python process). torchscript, onnx and hf are refused
// naming the format (the CLI too).
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { execFile } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { promisify } from 'node:util';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { data, exportModel, io, models, runRecipe, torch, type ExportResult, type Tensor } from 'finetorch';
import { cli } from '../cli/cli-helpers';

// the detector's options, and the same in torchvision's names (written here, not taken from the export's note)
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
  // a briefly trained detector scores low: keep its boxes so there is something to compare
  boxScoreThresh: 0.001,
  boxDetectionsPerImg: 20,
};
const TORCHVISION_KWARGS = {
  num_classes: 3, // two classes and the background
  min_size: 96,
  max_size: 96,
  rpn_pre_nms_top_n_train: 100,
  rpn_post_nms_top_n_train: 30,
  rpn_pre_nms_top_n_test: 100,
  rpn_post_nms_top_n_test: 30,
  rpn_batch_size_per_image: 32,
  box_batch_size_per_image: 16,
  box_score_thresh: 0.001,
  box_detections_per_img: 20,
};

interface Dets {
  boxes: number[][];
  scores: number[];
  labels: number[];
}

let dir: string;
let run: string;
let pth: ExportResult;
let safetensors: ExportResult;
let ours: Dets[];
let detector: InstanceType<typeof models.FasterRCNN>; // models.load of the safetensors export
let reference: { batchnormBody: string; frozenBody: string; batchnorm: Dets[]; frozen: Dets[] };

/** A PNG as the float32 [3, H, W] tensor in [0, 1] a detector takes (grey scenes repeated to three channels). */
async function imageTensor(path: string): Promise<Tensor> {
  const { data: px, info } = await sharp(path).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  const plane = info.width * info.height;
  const out = new Float32Array(3 * plane);
  for (let c = 0; c < 3; c++) for (let i = 0; i < plane; i++) out[c * plane + i] = px[i * info.channels + (info.channels === 1 ? 0 : c)] / 255;
  return torch.tensor(out, { shape: [3, info.height, info.width] });
}

beforeAll(async () => {
  torch.setNumThreads(1);
  dir = mkdtempSync(join(tmpdir(), 'ft-detection-export-'));
  const scenes = { canvas: 96, classes: [0, 7], objectsPerScene: [1, 2] as [number, number] };
  await data.detection.fashionScenes({ ...scenes, count: 3, seed: 1 }).writeScenes(join(dir, 'train'));
  await data.detection.fashionScenes({ ...scenes, count: 2, seed: 2, split: 'test' }).writeScenes(join(dir, 'test'));
  run = join(dir, 'run');
  await runRecipe(
    {
      task: 'detection',
      model: { ...MODEL },
      data: {
        kind: 'coco',
        annotations: join(dir, 'train/annotations.json'),
        images: join(dir, 'train/images'),
        split: { train: 0.67, val: 0.33, test: 0 },
      },
      optimizer: { type: 'SGD', lr: 0.005, momentum: 0.9 },
      epochs: 1,
      batchSize: 2,
      seed: 1,
    },
    { out: run },
  );
  // the run folder to safetensors; that file (no run.json beside it: its metadata names the detector) to pth
  safetensors = await exportModel(run, { to: 'safetensors', out: join(dir, 'exported.safetensors') });
  pth = await exportModel(safetensors.files[0], { to: 'pth', out: join(dir, 'exported.pth') });
  // the images, to torchvision, which runs while finetorch detects
  const images = await Promise.all(
    JSON.parse(readFileSync(join(dir, 'test/annotations.json'), 'utf8')).images.map((im: { file_name: string }) =>
      imageTensor(join(dir, 'test/images', im.file_name)),
    ),
  );
  io.save(Object.fromEntries(images.map((t, i) => [`image${i}`, t])), join(dir, 'images.pth'));
  writeFileSync(join(dir, 'kwargs.json'), JSON.stringify(TORCHVISION_KWARGS));
  const python = promisify(execFile)('/usr/bin/python3', [
    join(__dirname, 'detection_export_ref.py'),
    pth.files[0],
    join(dir, 'images.pth'),
    join(dir, 'kwargs.json'),
    join(dir, 'ref.json'),
  ]);
  detector = models.load(safetensors.files[0]) as InstanceType<typeof models.FasterRCNN>;
  detector.eval();
  const dets = detector.forward(images) as Array<{ boxes: Tensor; scores: Tensor; labels: Tensor }>;
  ours = dets.map((d) => ({ boxes: d.boxes.toArray() as number[][], scores: d.scores.toArray() as number[], labels: d.labels.toArray() as number[] }));
  await python;
  reference = JSON.parse(readFileSync(join(dir, 'ref.json'), 'utf8'));
}, 120_000);
afterAll(() => {
  detector?.dispose();
  rmSync(dir, { recursive: true, force: true });
});

function expectSameDetections(theirs: Dets[]): void {
  expect(theirs.length).toBe(ours.length);
  ours.forEach((d, i) => {
    const e = theirs[i];
    expect(d.labels).toEqual(e.labels);
    d.scores.forEach((s, j) => {
      expect(Math.abs(s - e.scores[j])).toBeLessThan(1e-4);
      d.boxes[j].forEach((b, c) => expect(Math.abs(b - e.boxes[j][c])).toBeLessThan(1e-3));
    });
  });
}

describe('export of a detection run to pth', () => {
  it('exportModel(file, { to: pth }) writes the file and says how torchvision builds the model', () => {
    expect(pth.files).toEqual([join(dir, 'exported.pth')]);
    const note = pth.notes.join('\n');
    expect(note).toContain('fasterrcnn_resnet50_fpn(weights=None, weights_backbone=None, num_classes=3, min_size=96, max_size=96,');
    for (const k of ['rpn_pre_nms_top_n_test=100', 'box_score_thresh=0.001', 'box_detections_per_img=20']) expect(note).toContain(k);
    expect(note).toMatch(/53 num_batches_tracked counters/); // the body's batch norms: bn1 and 3 per bottleneck (16) plus 4 downsamples
  });

  it("torchvision's weights=None model (BatchNorm2d body) loads it with strict=True and gives finetorch's detections", () => {
    expect(reference.batchnormBody).toBe('BatchNorm2d');
    expect(ours.reduce((n, d) => n + d.scores.length, 0)).toBeGreaterThan(5); // something to compare
    expectSameDetections(reference.batchnorm);
  });

  it('the same model built with FrozenBatchNorm2d loads it with strict=True too (it drops the counters) and gives the same detections', () => {
    expect(reference.frozenBody).toBe('FrozenBatchNorm2d');
    expectSameDetections(reference.frozen);
  });
});

describe('export of a detector to other formats', () => {
  it("safetensors of the run: models.load rebuilds the detector with its options and the run's tensors", () => {
    expect(safetensors.files).toEqual([join(dir, 'exported.safetensors')]);
    expect(detector.arch).toBe('fasterrcnn_resnet50_fpn');
    expect(detector.settings).toMatchObject({ numClasses: 3, minSize: 96, maxSize: 96, boxScoreThresh: 0.001, boxDetectionsPerImg: 20 });
    const a = detector.stateDict();
    const b = io.load(join(run, 'best', 'model.safetensors'));
    expect(Object.keys(a).sort()).toEqual(Object.keys(b).sort());
    for (const k of ['roi_heads.box_predictor.cls_score.weight', 'rpn.head.conv.0.0.weight', 'backbone.body.layer4.2.bn3.running_var'])
      expect(a[k].sub(b[k]).abs().max().item(), k).toBe(0);
  });

  it('pth of a bare weights file (no run.json, no metadata) that holds a detector: the counters added, num_classes from its box predictor', async () => {
    mkdirSync(join(dir, 'bare'));
    copyFileSync(join(run, 'best', 'model.safetensors'), join(dir, 'bare', 'weights.safetensors'));
    const r = await exportModel(join(dir, 'bare', 'weights.safetensors'), { to: 'pth' });
    expect(r.files).toEqual([join(dir, 'bare', 'export', 'model.pth')]);
    expect(r.notes.join('\n')).toMatch(/fasterrcnn_resnet50_fpn\(weights=None, weights_backbone=None, num_classes=3, \.\.\.\).*the file holds no options/);
    const given = Object.keys(detector.stateDict()); // the run's tensors (the safetensors test compares them)
    const written = Object.keys(io.load(r.files[0]));
    const added = written.filter((k) => !given.includes(k));
    expect(added.length).toBe(53);
    expect(added.every((k) => /^backbone\.body\..*(bn\d|downsample\.1)\.num_batches_tracked$/.test(k))).toBe(true);
  });

  it('torchscript, onnx and hf are refused naming the format, before the weights are read', async () => {
    for (const to of ['torchscript', 'onnx', 'hf'] as const)
      await expect(exportModel(run, { to, out: join(dir, `x-${to}`) })).rejects.toThrow(new RegExp(`to '${to}' is not available for a detector`));
    expect(existsSync(join(dir, 'x-onnx'))).toBe(false);
    // a detector passed as a Module
    await expect(exportModel(detector, { to: 'torchscript', out: join(dir, 'x.pt') })).rejects.toThrow(/to 'torchscript' is not available for a detector/);
    const r = cli(['export', '--checkpoint', join(run, 'best'), '--to', 'onnx', '--out', join(dir, 'x.onnx')]);
    expect(r.status).not.toBe(0);
    expect(r.stderr + r.stdout).toMatch(/to 'onnx' is not available for a detector/);
    expect(existsSync(join(dir, 'x.onnx'))).toBe(false);
  });
});
