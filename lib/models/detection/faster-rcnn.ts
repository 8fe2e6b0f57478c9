// torchvision's fasterrcnn_resnet50_fpn: the transform, the backbone (ResNet-50
// + FPN), the RPN and the RoI heads, with torchvision 0.14's parameter names
// (backbone.body.*, backbone.fpn.*, rpn.*, roi_heads.*) and keyword arguments
// camelCased.
import { Architecture, type Block } from '../architecture.js';
import { Tensor } from '../../tensor/tensor.js';
import { torch } from '../../tensor/index.js';
import { ArgumentError } from '../../errors.js';
import { BackboneWithFPN, type NormLayer } from './backbone.js';
import { GeneralizedRCNNTransform, resizeBoxes } from './transform.js';
import { RegionProposalNetwork } from './rpn.js';
import { FastRCNNPredictor, RoIHeads, type Detections } from './roi-heads.js';
import type { LoadStateDictResult, StateDict } from '../../nn/module.js';
import { load as loadCheckpoint } from '../../io/index.js';

export type { Detections } from './roi-heads.js';

export interface FasterRCNNOptions {
  /** Classes including the background (torchvision: 91 for COCO). */
  numClasses?: number;
  /** How many of the body's stages train, from the top (0..5; default 3: layer2..layer4); the others' parameters are frozen. */
  trainableBackboneLayers?: number;
  /**
   * The body's normalisation (torchvision's norm_layer): 'frozen'
   * (FrozenBatchNorm2d, default; for fine-tuning loaded weights) or
   * 'batchnorm' (BatchNorm2d, as torchvision builds it with no weights; a
   * ResNet-50 with identity frozen statistics does not train from scratch).
   * A checkpoint trained with 'batchnorm' loads into 'frozen' (its running
   * statistics used, num_batches_tracked dropped).
   */
  normLayer?: NormLayer;
  minSize?: number;
  maxSize?: number;
  imageMean?: [number, number, number];
  imageStd?: [number, number, number];
  rpnPreNmsTopNTrain?: number;
  rpnPreNmsTopNTest?: number;
  rpnPostNmsTopNTrain?: number;
  rpnPostNmsTopNTest?: number;
  rpnNmsThresh?: number;
  rpnFgIouThresh?: number;
  rpnBgIouThresh?: number;
  rpnBatchSizePerImage?: number;
  rpnPositiveFraction?: number;
  rpnScoreThresh?: number;
  boxScoreThresh?: number;
  boxNmsThresh?: number;
  boxDetectionsPerImg?: number;
  boxFgIouThresh?: number;
  boxBgIouThresh?: number;
  boxBatchSizePerImage?: number;
  boxPositiveFraction?: number;
}

/** The defaults: torchvision 0.14's fasterrcnn_resnet50_fpn's (export's note for torchvision relies on that). */
export const FASTER_RCNN_DEFAULTS: Required<FasterRCNNOptions> = {
  numClasses: 91,
  trainableBackboneLayers: 3,
  normLayer: 'frozen',
  minSize: 800,
  maxSize: 1333,
  imageMean: [0.485, 0.456, 0.406],
  imageStd: [0.229, 0.224, 0.225],
  rpnPreNmsTopNTrain: 2000,
  rpnPreNmsTopNTest: 1000,
  rpnPostNmsTopNTrain: 2000,
  rpnPostNmsTopNTest: 1000,
  rpnNmsThresh: 0.7,
  rpnFgIouThresh: 0.7,
  rpnBgIouThresh: 0.3,
  rpnBatchSizePerImage: 256,
  rpnPositiveFraction: 0.5,
  rpnScoreThresh: 0,
  boxScoreThresh: 0.05,
  boxNmsThresh: 0.5,
  boxDetectionsPerImg: 100,
  boxFgIouThresh: 0.5,
  boxBgIouThresh: 0.5,
  boxBatchSizePerImage: 512,
  boxPositiveFraction: 0.25,
};

const INTEGER_OPTIONS = new Set([
  'numClasses',
  'trainableBackboneLayers',
  'minSize',
  'maxSize',
  'rpnPreNmsTopNTrain',
  'rpnPreNmsTopNTest',
  'rpnPostNmsTopNTrain',
  'rpnPostNmsTopNTest',
  'rpnBatchSizePerImage',
  'boxDetectionsPerImg',
  'boxBatchSizePerImage',
]);

const BLOCKS: Block[] = [
  { name: 'stem', paths: ['backbone.body.conv1', 'backbone.body.bn1'] },
  { name: 'layer1', paths: ['backbone.body.layer1'] },
  { name: 'layer2', paths: ['backbone.body.layer2'] },
  { name: 'layer3', paths: ['backbone.body.layer3'] },
  { name: 'layer4', paths: ['backbone.body.layer4'] },
  { name: 'fpn', paths: ['backbone.fpn'] },
  { name: 'rpn', paths: ['rpn'] },
  { name: 'roi_heads', paths: ['roi_heads.box_head'] },
  { name: 'head', paths: ['roi_heads.box_predictor'] },
];

function checkOptions(o: FasterRCNNOptions): Required<FasterRCNNOptions> {
  const fn = 'models.fasterrcnnResnet50Fpn';
  if (o === null || typeof o !== 'object') throw new ArgumentError(fn, 'options must be an object', 'options');
  for (const key of Object.keys(o)) if (!(key in FASTER_RCNN_DEFAULTS)) throw new ArgumentError(fn, `unknown option '${key}'`, key);
  const r = { ...FASTER_RCNN_DEFAULTS, ...o } as Required<FasterRCNNOptions>;
  for (const [key, v] of Object.entries(r)) {
    if (key === 'normLayer') {
      if (v !== 'frozen' && v !== 'batchnorm') throw new ArgumentError(fn, `normLayer must be 'frozen' or 'batchnorm', got ${JSON.stringify(v)}`, key);
    } else if (key === 'imageMean' || key === 'imageStd') {
      if (!Array.isArray(v) || v.length !== 3 || !v.every((x) => typeof x === 'number' && Number.isFinite(x) && (key === 'imageMean' || x > 0)))
        throw new ArgumentError(fn, `${key} must be three finite numbers${key === 'imageStd' ? ' above 0' : ''}, got ${JSON.stringify(v)}`, key);
    } else if (typeof v !== 'number' || !Number.isFinite(v) || v < 0 || (INTEGER_OPTIONS.has(key) && !Number.isInteger(v)))
      throw new ArgumentError(fn, `${key} must be a non-negative ${INTEGER_OPTIONS.has(key) ? 'integer' : 'number'}, got ${String(v)}`, key);
  }
  if (r.numClasses < 2) throw new ArgumentError(fn, `numClasses must be at least 2 (the background and one class), got ${r.numClasses}`, 'numClasses');
  if (r.trainableBackboneLayers > 5)
    throw new ArgumentError(fn, `trainableBackboneLayers must be in 0..5, got ${r.trainableBackboneLayers}`, 'trainableBackboneLayers');
  if (r.minSize < 1 || r.maxSize < 1) throw new ArgumentError(fn, `minSize and maxSize must be at least 1, got ${r.minSize} and ${r.maxSize}`, 'minSize');
  return r;
}

/** One image's ground truth in train mode: boxes [K, 4] (x1, y1, x2, y2, in the image's pixels) and int64 labels [K] (1..numClasses-1). */
export interface DetectionTarget {
  boxes: Tensor;
  labels: Tensor;
}

/** The four training losses, named as torchvision's. */
export interface DetectionLosses {
  loss_classifier: Tensor;
  loss_box_reg: Tensor;
  loss_objectness: Tensor;
  loss_rpn_box_reg: Tensor;
}

/**
 * Faster R-CNN. In eval mode, forward(images) takes a list of float32
 * [3, H, W] images (values in 0..1, any sizes) and returns per image its
 * detections { boxes [D, 4] in the image's pixels, scores [D], labels [D] }.
 */
export class FasterRCNN extends Architecture {
  readonly transform: GeneralizedRCNNTransform;
  readonly backbone: BackboneWithFPN;
  readonly rpn: RegionProposalNetwork;
  readonly roiHeads: RoIHeads;
  /** The options it was built with, defaults filled in (numClasses follows swapHead). */
  readonly settings: Required<FasterRCNNOptions>;
  // archOptions() (what a checkpoint's metadata records), kept in step by swapHead
  private readonly specOptions: Record<string, unknown>;

  constructor(options: FasterRCNNOptions = {}) {
    super();
    const o = checkOptions(options);
    this.settings = o;
    this.specOptions = { ...o };
    Object.defineProperty(this, 'arch', { value: 'fasterrcnn_resnet50_fpn', enumerable: true });
    Object.defineProperty(this, 'spec', {
      value: { kind: 'Container', options: this.specOptions, blocks: BLOCKS, head: 'roi_heads.box_predictor' },
      enumerable: false,
    });
    this.transform = new GeneralizedRCNNTransform({ minSize: o.minSize, maxSize: o.maxSize, imageMean: o.imageMean, imageStd: o.imageStd });
    this.backbone = this.registerModule('backbone', new BackboneWithFPN(o.normLayer));
    this.rpn = this.registerModule(
      'rpn',
      new RegionProposalNetwork(256, {
        preNmsTopNTrain: o.rpnPreNmsTopNTrain,
        preNmsTopNTest: o.rpnPreNmsTopNTest,
        postNmsTopNTrain: o.rpnPostNmsTopNTrain,
        postNmsTopNTest: o.rpnPostNmsTopNTest,
        nmsThresh: o.rpnNmsThresh,
        fgIouThresh: o.rpnFgIouThresh,
        bgIouThresh: o.rpnBgIouThresh,
        batchSizePerImage: o.rpnBatchSizePerImage,
        positiveFraction: o.rpnPositiveFraction,
        scoreThresh: o.rpnScoreThresh,
      }),
    );
    this.roiHeads = this.registerModule(
      'roi_heads',
      new RoIHeads(o.numClasses, {
        scoreThresh: o.boxScoreThresh,
        nmsThresh: o.boxNmsThresh,
        detectionsPerImg: o.boxDetectionsPerImg,
        fgIouThresh: o.boxFgIouThresh,
        bgIouThresh: o.boxBgIouThresh,
        batchSizePerImage: o.boxBatchSizePerImage,
        positiveFraction: o.boxPositiveFraction,
      }),
    );
    // torchvision's _resnet_fpn_extractor: only the top trainableBackboneLayers stages of the body train
    const trained = ['layer4', 'layer3', 'layer2', 'layer1', 'conv1'].slice(0, o.trainableBackboneLayers);
    if (o.trainableBackboneLayers === 5) trained.push('bn1'); // as torchvision: the stem's norm trains with all five (BatchNorm2d's affine)
    for (const [name, p] of this.backbone.body.namedParameters()) if (!trained.some((t) => name.startsWith(t))) p.requiresGrad = false;
  }

  /**
   * A new box predictor (roi_heads.box_predictor) for numClasses (background
   * included), randomly initialised: the step of torchvision's fine-tuning
   * tutorial that adapts a COCO detector to new classes.
   */
  swapHead(numClasses: number): FastRCNNPredictor {
    if (!Number.isInteger(numClasses) || numClasses < 2)
      throw new ArgumentError(
        'FasterRCNN.swapHead',
        `numClasses must be an integer of at least 2 (the background and one class), got ${String(numClasses)}`,
        'numClasses',
      );
    const predictor = new FastRCNNPredictor(1024, numClasses);
    this.replaceChild('roi_heads.box_predictor', predictor);
    this.roiHeads.boxPredictor = predictor;
    this.settings.numClasses = numClasses;
    this.specOptions.numClasses = numClasses;
    return predictor;
  }

  /**
   * As Module.loadStateDict. With normLayer 'frozen', the body's
   * num_batches_tracked entries (in checkpoints of models built with
   * BatchNorm2d, e.g. torchvision's weights=None or normLayer 'batchnorm') are
   * dropped, as torchvision's FrozenBatchNorm2d drops them. With 'batchnorm',
   * a checkpoint without them (a frozen model's) loads too: the counters
   * missing are left as they are (they only matter for momentum=None).
   */
  override loadStateDict(dict: StateDict | Map<string, Tensor>, options: { strict?: boolean } = {}): LoadStateDictResult {
    const entries = dict instanceof Map ? [...dict.entries()] : Object.entries(dict ?? {});
    const counter = (k: string) => k.startsWith('backbone.body.') && k.endsWith('.num_batches_tracked');
    if (this.settings.normLayer === 'frozen') return super.loadStateDict(new Map(entries.filter(([k]) => !counter(k))), options);
    // 'batchnorm': counters the checkpoint lacks keep the model's own values
    const given = new Map(entries);
    const own = this.stateDict();
    for (const [k, t] of Object.entries(own)) if (counter(k) && !given.has(k)) given.set(k, t);
    try {
      return super.loadStateDict(given, options);
    } finally {
      Object.values(own).forEach((t) => t.dispose());
    }
  }

  /** Detections per image (eval mode; runs without gradients). */
  detect(images: Tensor[]): Detections[] {
    return torch.noGrad(() =>
      torch.tidy(() => {
        const { images: list } = this.transform.apply(images);
        const features = this.backbone.pyramid(list.tensors);
        const { boxes: proposals } = this.rpn.propose(list, Object.values(features));
        const { logits, deltas } = this.roiHeads.scoresAndDeltas(features, proposals, list.imageSizes);
        const dets = this.roiHeads.postprocess(logits, deltas, proposals, list.imageSizes);
        return dets.map((d, i) => {
          const [, h, w] = images[i].shape;
          return { boxes: resizeBoxes(d.boxes, list.imageSizes[i], [h, w]), scores: d.scores, labels: d.labels };
        });
      }),
    );
  }

  /**
   * The four training losses for images and their targets (as forward in
   * train mode). The samplers draw with torch.randperm: torch.manualSeed makes
   * them repeat; batch sizes above the anchor and proposal counts take every one.
   */
  losses(images: Tensor[], targets: DetectionTarget[]): DetectionLosses {
    const fn = 'fasterrcnnResnet50Fpn.forward';
    if (!Array.isArray(targets) || targets.length !== images.length)
      throw new ArgumentError(
        fn,
        `targets must be a list of { boxes, labels }, one per image (${images.length}), got ${Array.isArray(targets) ? targets.length : typeof targets}`,
        'targets',
      );
    targets.forEach((t, i) => {
      const boxes = t?.boxes;
      const labels = t?.labels;
      if (!(boxes instanceof Tensor) || boxes.ndim !== 2 || boxes.shape[1] !== 4 || boxes.dtype !== 'float32')
        throw new ArgumentError(fn, `targets[${i}].boxes must be a float32 [K, 4] tensor (x1, y1, x2, y2)`, 'targets');
      if (!(labels instanceof Tensor) || labels.ndim !== 1 || labels.shape[0] !== boxes.shape[0] || labels.dtype !== 'int64')
        throw new ArgumentError(fn, `targets[${i}].labels must be an int64 [K] tensor, K = ${boxes.shape[0]} as its boxes`, 'targets');
      if (boxes.shape[0] > 0) {
        const bad = torch.noGrad(() =>
          boxes
            .select(1, 2)
            .le(boxes.select(1, 0))
            .logicalOr(boxes.select(1, 3).le(boxes.select(1, 1))),
        );
        const row = bad.any().item() ? (bad.long().argmax().item() as number) : -1;
        bad.dispose();
        if (row >= 0) throw new ArgumentError(fn, `targets[${i}].boxes[${row}] has no width or height (x2 <= x1 or y2 <= y1)`, 'targets');
        const [lo, hi] = [labels.min().item() as number, labels.max().item() as number];
        if (lo < 1 || hi >= this.settings.numClasses)
          throw new ArgumentError(
            fn,
            `targets[${i}].labels must be in 1..${this.settings.numClasses - 1} (0 is the background), got ${lo < 1 ? lo : hi}`,
            'targets',
          );
      }
    });
    return torch.tidy(() => {
      const { images: list, boxes } = this.transform.apply(
        images,
        targets.map((t) => t.boxes),
      );
      const gtBoxes = boxes as Tensor[];
      const features = this.backbone.pyramid(list.tensors);
      const { boxes: proposals, objectness, deltas, anchors } = this.rpn.propose(list, Object.values(features));
      const rpnLosses = this.rpn.losses(anchors, objectness, deltas, gtBoxes);
      const heads = this.roiHeads.losses(
        features,
        proposals,
        list.imageSizes,
        gtBoxes,
        targets.map((t) => t.labels),
      );
      return { loss_classifier: heads.loss_classifier, loss_box_reg: heads.loss_box_reg, ...rpnLosses };
    });
  }

  /** Eval mode: detect(images); train mode: forward(images, targets) gives losses(images, targets). */
  // biome-ignore lint/suspicious/noExplicitAny: forward takes lists (images, targets) and returns detections or losses, not Module's tensors-to-tensor signature
  override forward(...args: any[]): any {
    const [images, targets] = args as [Tensor[], DetectionTarget[] | undefined];
    if (!Array.isArray(images)) throw new ArgumentError('fasterrcnnResnet50Fpn.forward', 'images must be a list of [3, H, W] float32 tensors', 'images');
    if (this.training) {
      if (targets === undefined)
        throw new ArgumentError('fasterrcnnResnet50Fpn.forward', 'in training mode, targets must be given (call model.eval() to detect)', 'targets');
      return this.losses(images, targets);
    }
    return this.detect(images);
  }
}

/** torchvision's fasterrcnn_resnet50_fpn(weights=None, ...): randomly initialised; load torchvision's weights with loadStateDict. */
export function fasterrcnnResnet50Fpn(options: FasterRCNNOptions = {}): FasterRCNN {
  return new FasterRCNN(options);
}

/**
 * Builds a Faster R-CNN from a state dict saved by torchvision (e.g.
 * fasterrcnn_resnet50_fpn's COCO .pth) or by finetorch. The model gets the
 * checkpoint's class count, every weight must fit; when `numClasses` differs,
 * the box predictor is then replaced by a new one for that many classes (the
 * fine-tuning tutorial's step). Other options as fasterrcnnResnet50Fpn.
 */
export function loadFasterRcnn(path: string, options: FasterRCNNOptions = {}): FasterRCNN {
  const fn = 'models.loadFasterRcnn';
  if (typeof path !== 'string') throw new ArgumentError(fn, 'path must be a string', 'path');
  const sd = loadCheckpoint(path);
  try {
    const cls = sd['roi_heads.box_predictor.cls_score.weight'];
    if (!cls) throw new Error(`${path}: not a Faster R-CNN checkpoint (no roi_heads.box_predictor.cls_score.weight)`);
    const model = new FasterRCNN({ ...options, numClasses: cls.shape[0] });
    const result = model.loadStateDict(sd, { strict: false });
    const problems = [
      ...result.missingKeys.map((k) => `missing ${k}`),
      ...result.unexpectedKeys.map((k) => `unexpected ${k}`),
      ...result.mismatchedKeys.map((m) => `size mismatch for ${m.key}: checkpoint [${m.got}], model [${m.expected}]`),
    ];
    if (problems.length) {
      model.dispose();
      throw new Error(`${path}: the checkpoint does not fit fasterrcnn_resnet50_fpn:\n  ${problems.join('\n  ')}`);
    }
    if (options.numClasses !== undefined && options.numClasses !== cls.shape[0]) model.swapHead(options.numClasses);
    return model;
  } finally {
    Object.values(sd).forEach((t) => t.dispose());
  }
}
