// `finetorch demo --task detection`: the seed's claim for detection. A Faster
// R-CNN ResNet-50 FPN is pretrained (from random weights, BatchNorm2d in the
// backbone) on synthetic scenes of Fashion-MNIST classes 0-4, then trained on
// a few hundred scenes of classes 5-9 with each fine-tuning recipe (its
// backbone switched to frozen BatchNorm, as torchvision fine-tunes), against
// the same detector trained from scratch with the same budget and seed.
// Training scenes come from Fashion-MNIST's train split, test scenes from its
// test split. The pretrained detector is cached in the report folder.
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadReport } from '../../native/loader.js';
import { torch } from '../../tensor/index.js';
import { optim } from '../../optim/index.js';
import { models } from '../../models/index.js';
import { type FasterRCNN, loadFasterRcnn, type FasterRCNNOptions } from '../../models/detection/faster-rcnn.js';
import { finetune } from '../../finetune/index.js';
import { LRScheduler } from '../../optim/lr-scheduler.js';
import { fit } from '../../train/trainer.js';
import { evaluateDetector } from '../../train/detection-fit.js';
import { fashionScenes } from '../../data/detection/scenes.js';
import { DetectionLoader } from '../../data/detection/dataset.js';
import type { DetectionScores } from '../../metrics/detection.js';
import { curvesSvg, fmt, mean, writeReport, type Table } from './report.js';
import type { Reporter } from '../progress.js';

/** One way of training the detector for classes 5-9: the rows of the demo's table. */
export interface DetectionRecipe {
  name: string;
  pretrained: boolean;
  /** Declared blocks frozen from the bottom: stem, layer1..layer4, fpn, rpn, roi_heads, head (9). */
  freezeBlocks: number;
  /** One LR for every trainable block, or a bottom..top geometric spread over the blocks. */
  lr?: number;
  bottomLr?: number;
  topLr?: number;
  /** Linear warmup over the first epoch (every run then decays by cosine). */
  warmup: boolean;
}

// SGD with momentum 0.9 and weight decay 1e-4 (torchvision's reference
// detection recipe), batch 4. "Freeze first 3 blocks" is torchvision's
// default trainable_backbone_layers=3 (stem, layer1, layer2 frozen). Every
// run has the same epochs, scenes, seed and cosine decay.
export const DETECTION_RECIPES: DetectionRecipe[] = [
  { name: 'from scratch', pretrained: false, freezeBlocks: 0, lr: 0.02, warmup: true },
  { name: 'head only', pretrained: true, freezeBlocks: 8, lr: 0.02, warmup: false },
  { name: 'freeze first 3 blocks', pretrained: true, freezeBlocks: 3, lr: 0.01, warmup: true },
  { name: 'full fine-tuning', pretrained: true, freezeBlocks: 0, lr: 0.01, warmup: true },
  { name: 'differential LR + warmup', pretrained: true, freezeBlocks: 0, bottomLr: 0.001, topLr: 0.02, warmup: true },
];

/** The scenes, the model's size settings and the budgets; --quick shrinks everything. */
export function detectionDemoConfig(quick: boolean) {
  const canvas = quick ? 64 : 96;
  return {
    canvas,
    // items 0.75x..2x their 28 px, 21..56 px (quick: 0.6x..1.6x on a smaller canvas)
    scale: (quick ? [0.6, 1.6] : [0.75, 2]) as [number, number],
    objectsPerScene: [1, 4] as [number, number],
    pretrain: { scenes: quick ? 12 : 320, epochs: quick ? 1 : 4, lr: 0.02, seed: 1 },
    train: { scenes: quick ? 8 : 200, seed: 2 },
    test: { scenes: quick ? 8 : 120, seed: 3 },
    epochs: quick ? 1 : 3,
    batchSize: 4,
    clipGradNorm: 10,
    model: {
      minSize: canvas,
      maxSize: canvas,
      // fewer proposals and samples than torchvision's defaults: a few objects per scene, 2 cores
      rpnPreNmsTopNTrain: 300,
      rpnPostNmsTopNTrain: 100,
      rpnPreNmsTopNTest: 300,
      rpnPostNmsTopNTest: 100,
      rpnBatchSizePerImage: 128,
      boxBatchSizePerImage: 64,
    } satisfies FasterRCNNOptions,
  };
}
export type DetectionDemoConfig = ReturnType<typeof detectionDemoConfig>;

export interface DetectionDemoOptions {
  quick: boolean;
  out: string;
  seeds: number;
}

type Split = 'pretrain' | 'train' | 'test' | 'pretrain-test';
function scenes(c: DetectionDemoConfig, split: Split, classes: number[]) {
  const count = split === 'pretrain' ? c.pretrain.scenes : split === 'train' ? c.train.scenes : c.test.scenes;
  const seed = split === 'pretrain' ? c.pretrain.seed : split === 'train' ? c.train.seed : c.test.seed;
  return fashionScenes({
    count,
    classes,
    canvas: c.canvas,
    scale: c.scale,
    objectsPerScene: c.objectsPerScene,
    // training scenes from Fashion-MNIST's train split, test scenes from its test split
    split: split === 'pretrain' || split === 'train' ? 'train' : 'test',
    seed,
  });
}

const sha256 = (file: string) => createHash('sha256').update(readFileSync(file)).digest('hex');
const trainableCount = (m: FasterRCNN) =>
  m
    .parameters()
    .filter((p) => p.requiresGrad)
    .reduce((n, p) => n + p.numel(), 0);

interface TrainResult {
  seconds: number;
  trainLoss: number[];
  classifierLoss: number[];
}

/** Trains `model` on `loader` for `epochs` with SGD (momentum 0.9, weight decay 1e-4), cosine decay (and warmup), as the recipe says. */
async function train(
  model: FasterRCNN,
  loader: DetectionLoader,
  s: { lr?: number; bottomLr?: number; topLr?: number; warmup: boolean },
  o: { epochs: number; seed: number; clipGradNorm: number; reporter: Reporter; label: string },
): Promise<TrainResult> {
  const started = Date.now();
  const groups = finetune.paramGroups(
    model,
    s.lr !== undefined ? { lrs: model.blocks().map(() => s.lr!), weightDecay: 1e-4 } : { bottom: s.bottomLr!, top: s.topLr!, weightDecay: 1e-4 },
  );
  const optimizer = new optim.SGD(groups, { lr: s.lr ?? s.topLr!, momentum: 0.9 });
  const scheduler = new LRScheduler(optimizer, { kind: 'cosine', totalSteps: o.epochs * loader.length, warmupSteps: s.warmup ? loader.length : 0 });
  const trainLoss: number[] = [];
  const classifierLoss: number[] = [];
  o.reporter.stage(o.label, { epochs: o.epochs });
  try {
    await fit({
      model,
      optimizer,
      scheduler,
      train: loader,
      epochs: o.epochs,
      seed: o.seed,
      clipGradNorm: o.clipGradNorm,
      onEvent: (e) => {
        o.reporter.train(e);
        if (e.type === 'epoch') {
          trainLoss.push(e.trainLoss);
          classifierLoss.push((e as { losses?: Record<string, number> }).losses?.loss_classifier ?? NaN);
        }
      },
    });
  } finally {
    o.reporter.stage(null);
    optimizer.dispose();
  }
  return { seconds: (Date.now() - started) / 1000, trainLoss, classifierLoss };
}

/** What pretraining made: the checkpoint (in out/pretrained/), its sha256, how it scores on test scenes of classes 0-4. */
export interface Pretrained {
  file: string;
  sha256: string;
  cached: boolean;
  seconds: number;
  scores: { map: number; map50: number };
  config: DetectionDemoConfig['pretrain'];
}

const PRETRAINED_DIR = 'pretrained';
const PRETRAINED_FILE = 'detector-c0-4.safetensors';
const PRETRAINED_KEY = 'pretrained.json';

/**
 * Pretrains the detector on scenes of classes 0-4 once per report folder: a
 * rerun with the same settings reuses out/pretrained/ when the checkpoint's
 * sha256 matches the one recorded when it was made (else it is made again).
 */
async function pretrainDetector(c: DetectionDemoConfig, out: string, reporter: Reporter): Promise<Pretrained> {
  const dir = join(out, PRETRAINED_DIR);
  const file = join(dir, PRETRAINED_FILE);
  const keyFile = join(dir, PRETRAINED_KEY);
  const key = JSON.stringify({
    canvas: c.canvas,
    scale: c.scale,
    objectsPerScene: c.objectsPerScene,
    model: c.model,
    pretrain: c.pretrain,
    batchSize: c.batchSize,
  });
  if (existsSync(keyFile) && existsSync(file)) {
    let saved: { key?: string; result?: Pretrained } = {};
    try {
      saved = JSON.parse(readFileSync(keyFile, 'utf8'));
    } catch {
      // unreadable: pretrain again
    }
    if (saved.key === key && saved.result) {
      if (sha256(file) === saved.result.sha256) return { ...saved.result, file, cached: true };
      reporter.message(`${file} does not match the sha256 in ${keyFile} (damaged or replaced): pretraining again`, 'warn');
    }
  }
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const started = Date.now();
  const classes = [0, 1, 2, 3, 4];
  torch.manualSeed(c.pretrain.seed);
  // from random weights: BatchNorm2d in the body, every stage trained (torchvision with weights=None)
  const model = models.fasterrcnnResnet50Fpn({ ...c.model, numClasses: 6, normLayer: 'batchnorm', trainableBackboneLayers: 5 });
  try {
    const loader = new DetectionLoader(scenes(c, 'pretrain', classes), { batchSize: c.batchSize, shuffle: true, seed: c.pretrain.seed });
    await train(
      model,
      loader,
      { lr: c.pretrain.lr, warmup: true },
      { epochs: c.pretrain.epochs, seed: c.pretrain.seed, clipGradNorm: c.clipGradNorm, reporter, label: 'pretraining on classes 0-4' },
    );
    const s = await evaluateDetector(model, new DetectionLoader(scenes(c, 'pretrain-test', classes), { batchSize: c.batchSize }));
    models.save(model, file);
    const result: Pretrained = {
      file,
      sha256: sha256(file),
      cached: false,
      seconds: (Date.now() - started) / 1000,
      scores: { map: s.map, map50: s.map50 },
      config: c.pretrain,
    };
    writeFileSync(keyFile, JSON.stringify({ key, result }, null, 2) + '\n');
    return result;
  } finally {
    model.dispose();
  }
}

/** The detector a recipe starts from: random (BatchNorm2d) or the pretrained one (frozen BatchNorm) with a fresh box predictor. */
function startingModel(r: DetectionRecipe, c: DetectionDemoConfig, pretrained: string, seed: number): FasterRCNN {
  torch.manualSeed(seed);
  const model = r.pretrained
    ? loadFasterRcnn(pretrained, { ...c.model, normLayer: 'frozen', trainableBackboneLayers: 5 })
    : models.fasterrcnnResnet50Fpn({ ...c.model, numClasses: 6, normLayer: 'batchnorm', trainableBackboneLayers: 5 });
  // torchvision's tutorial step (also for the random model, so both draw the same fresh predictor for a seed)
  torch.manualSeed(seed);
  model.swapHead(6);
  if (r.freezeBlocks) finetune.freeze(model, { blocks: r.freezeBlocks });
  return model;
}

export interface RecipeResult {
  seed: number;
  test: DetectionScores;
  trainSeconds: number;
  seconds: number;
  trainableParameters: number;
  trainLoss: number[];
  classifierLoss: number[];
}

const lrText = (r: DetectionRecipe) =>
  r.lr !== undefined ? `lr ${r.lr}` : `lr ${r.bottomLr} (stem) .. ${r.topLr} (box predictor), geometric over the 9 blocks`;

/** Runs the detection demo: pretraining (or its cache), each recipe per seed, the table and the report folder. */
export async function runDetectionDemo(
  o: DetectionDemoOptions,
  reporter: Reporter,
  config: DetectionDemoConfig = detectionDemoConfig(o.quick),
  recipes: DetectionRecipe[] = DETECTION_RECIPES,
): Promise<{ files: string[]; summary: Record<string, unknown> }> {
  const started = Date.now();
  const c = config;
  reporter.emit({ type: 'start', command: 'demo', task: 'detection', out: o.out, quick: o.quick, seeds: o.seeds, threads: torch.getNumThreads() });
  reporter.message(
    `finetorch demo --task detection: Faster R-CNN ResNet-50 FPN, ${c.canvas} px synthetic scenes of Fashion-MNIST items, ${recipes.length} recipes x ${o.seeds} seed(s), ${torch.getNumThreads()} threads`,
  );
  const pretrained = await pretrainDetector(c, o.out, reporter);
  reporter.emit({ type: 'pretrained', ...pretrained });
  reporter.message(
    `pretrained on ${c.pretrain.scenes} scenes of classes 0-4${pretrained.cached ? ` (reused from ${join(o.out, PRETRAINED_DIR)})` : ''}: mAP ${pretrained.scores.map.toFixed(3)}, mAP@.5 ${pretrained.scores.map50.toFixed(3)} on ${c.test.scenes} test scenes of classes 0-4 (${pretrained.seconds.toFixed(0)} s)`,
  );

  const classes = [5, 6, 7, 8, 9];
  const trainSet = scenes(c, 'train', classes);
  const testLoader = new DetectionLoader(scenes(c, 'test', classes), { batchSize: c.batchSize });
  const results = new Map<string, RecipeResult[]>();
  for (let seed = 0; seed < o.seeds; seed++) {
    for (const r of recipes) {
      const t0 = Date.now();
      const model = startingModel(r, c, pretrained.file, seed);
      try {
        const trainableParameters = trainableCount(model);
        const loader = new DetectionLoader(trainSet, { batchSize: c.batchSize, shuffle: true, seed });
        const t = await train(model, loader, r, { epochs: c.epochs, seed, clipGradNorm: c.clipGradNorm, reporter, label: r.name });
        const test = await evaluateDetector(model, testLoader);
        const res: RecipeResult = {
          seed,
          test,
          trainSeconds: t.seconds,
          seconds: (Date.now() - t0) / 1000,
          trainableParameters,
          trainLoss: t.trainLoss,
          classifierLoss: t.classifierLoss,
        };
        (results.get(r.name) ?? results.set(r.name, []).get(r.name)!).push(res);
        if (reporter.json)
          reporter.emit({
            type: 'result',
            task: 'detection classes 5-9',
            run: r.name,
            seed,
            map: test.map,
            map50: test.map50,
            map75: test.map75,
            seconds: res.seconds,
          });
        else
          reporter.message(
            `${r.name.padEnd(26)} seed ${seed}: mAP ${test.map.toFixed(3)}, mAP@.5 ${test.map50.toFixed(3)}, AR@100 ${test.ar100.toFixed(3)} (${res.seconds.toFixed(1)} s)`,
          );
      } finally {
        model.dispose();
      }
    }
  }

  const table: Table = {
    title: `Detection of classes 5-9 after ${c.epochs} epoch(s) on ${c.train.scenes} scenes (${c.test.scenes} test scenes)`,
    columns: ['recipe', 'trainable params', 'mAP', 'mAP@.5', 'mAP@.75', 'AR@100', 'epochs', 'train s', 'wall time s'],
    rows: recipes.map((r) => {
      const rs = results.get(r.name)!;
      const f = (k: keyof DetectionScores) =>
        fmt(
          rs.map((x) => x.test[k] as number),
          3,
        );
      return {
        recipe: r.name,
        'trainable params': rs[0].trainableParameters,
        mAP: f('map'),
        'mAP@.5': f('map50'),
        'mAP@.75': f('map75'),
        'AR@100': f('ar100'),
        epochs: c.epochs,
        'train s': fmt(
          rs.map((x) => x.trainSeconds),
          1,
        ),
        'wall time s': fmt(
          rs.map((x) => x.seconds),
          1,
        ),
      };
    }),
    notes: [
      ...recipes.map(
        (r) =>
          `${r.name}: ${r.pretrained ? 'pretrained on classes 0-4, frozen BatchNorm, new box predictor' : 'random weights, BatchNorm2d'}, ${r.freezeBlocks ? `first ${r.freezeBlocks} of 9 blocks frozen` : 'all blocks trained'}, SGD momentum 0.9, weight decay 1e-4, ${lrText(r)}, ${r.warmup ? 'one epoch warmup, ' : ''}cosine decay`,
      ),
      `every run: batch ${c.batchSize}, gradient norm clipped at ${c.clipGradNorm}, the same scenes and seed; mAP is COCO's mAP@[.5:.95] (evaluateDetections), on scenes made from Fashion-MNIST's test split`,
    ],
  };
  const scratch = mean(results.get('from scratch')?.map((x) => x.test.map) ?? [NaN]);
  const fineTuned = recipes.filter((r) => r.pretrained).map((r) => ({ name: r.name, map: mean(results.get(r.name)!.map((x) => x.test.map)) }));
  const best = fineTuned.length ? fineTuned.reduce((a, b) => (b.map > a.map ? b : a)) : null;
  const verdict = best
    ? `Best fine-tuning recipe: ${best.name}, mAP ${best.map.toFixed(3)} vs ${scratch.toFixed(3)} from scratch (same scenes, epochs and seed).`
    : `From scratch: mAP ${scratch.toFixed(3)}.`;
  const seconds = (Date.now() - started) / 1000;
  const summary = {
    task: 'detection',
    quick: o.quick,
    seeds: o.seeds,
    threads: torch.getNumThreads(),
    libtorch: loadReport.libtorch.version,
    seconds,
    config: c,
    pretrained,
    recipes: Object.fromEntries(recipes.map((r) => [r.name, { recipe: r, runs: results.get(r.name)! }])),
    scratchMap: scratch,
    bestFineTuned: best,
    fineTunedBeatsScratch: best ? best.map > scratch : null,
  };
  const curves = (key: 'trainLoss' | 'classifierLoss') => recipes.map((r) => ({ label: r.name, values: results.get(r.name)![0][key] }));
  const svg = curvesSvg(
    { title: 'Training loss, classes 5-9 (seed 0)', yLabel: 'sum of the four losses', curves: curves('trainLoss') },
    { title: 'Classifier loss (seed 0)', yLabel: 'loss_classifier', curves: curves('classifierLoss') },
  );
  const files = await writeReport(o.out, {
    title: 'finetorch demo: detection, fine-tuned vs from scratch on synthetic Fashion-MNIST scenes',
    intro: [
      `Faster R-CNN ResNet-50 FPN (torchvision's structure), ${c.canvas} x ${c.canvas} px scenes of 1-4 Fashion-MNIST items each placed at random scales (${c.scale.join('x..')}x) on grey noise. The items are real images, the layout is synthetic.`,
      `Pretrained from random weights (BatchNorm2d) on ${c.pretrain.scenes} scenes of classes 0-4 for ${c.pretrain.epochs} epochs: mAP ${pretrained.scores.map.toFixed(3)} (mAP@.5 ${pretrained.scores.map50.toFixed(3)}) on ${c.test.scenes} test scenes of classes 0-4; checkpoint ${PRETRAINED_DIR}/${PRETRAINED_FILE}, sha256 ${pretrained.sha256.slice(0, 16)}…${pretrained.cached ? ' (reused)' : ''}.`,
      `Then ${c.train.scenes} scenes of classes 5-9 (train split), tested on ${c.test.scenes} scenes of classes 5-9 (test split); ${o.seeds} seed(s) (mean ± sd), ${torch.getNumThreads()} threads, libtorch ${loadReport.libtorch.version}, total ${seconds.toFixed(0)} s.`,
      '',
      `**${verdict}**`,
    ],
    tables: [table],
    svg,
    caption: 'training loss and classifier loss per epoch',
    json: summary,
  });
  reporter.table(table.title, table.rows, { columns: table.columns });
  reporter.message(verdict);
  reporter.message(`report: ${o.out} (results.md, results.json, curves.png) in ${seconds.toFixed(0)} s`);
  reporter.emit({
    type: 'end',
    status: 'ok',
    exitCode: 0,
    seconds,
    report: o.out,
    files,
    scratchMap: scratch,
    bestFineTuned: best,
    fineTunedBeatsScratch: summary.fineTunedBeatsScratch,
  });
  return { files, summary };
}
