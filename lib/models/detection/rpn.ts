// torchvision's region proposal network: AnchorGenerator, RPNHead and
// RegionProposalNetwork (objectness per anchor, box deltas, top-n per level,
// clipping, NMS per level, post-NMS top-n).
import { Module } from '../../nn/module.js';
import { Conv2d } from '../../nn/layers.js';
import { Sequential } from '../../nn/containers.js';
import type { Tensor } from '../../tensor/tensor.js';
import { torch } from '../../tensor/index.js';
import { tensor } from '../../tensor/creation.js';
import { batchedNms, boxIou, clipBoxesToImage, removeSmallBoxes } from '../../ops/boxes.js';
import { bceWithLogits } from '../../nn/functional.js';
import { BETWEEN_THRESHOLDS, matchBoxes, sampleBalanced, smoothL1Sum } from './matcher.js';
import { BoxCoder } from './box-coder.js';
import type { ImageList } from './transform.js';

/** Anchors per level: one size per level, three aspect ratios (torchvision's defaults for Faster R-CNN FPN). */
export class AnchorGenerator {
  private readonly cellAnchors: Tensor[];
  constructor(
    readonly sizes: number[][] = [[32], [64], [128], [256], [512]],
    readonly aspectRatios: number[][] = sizes.map(() => [0.5, 1.0, 2.0]),
  ) {
    // generate_anchors, in float32 tensor ops as torchvision (then rounded, half to even)
    this.cellAnchors = sizes.map((scales, i) =>
      torch.noGrad(() =>
        torch.tidy(() => {
          const s = tensor(scales, { dtype: 'float32' });
          const hRatios = tensor(aspectRatios[i], { dtype: 'float32' }).sqrt();
          const wRatios = hRatios.reciprocal();
          const ws = wRatios.unsqueeze(1).mul(s.unsqueeze(0)).reshape(-1);
          const hs = hRatios.unsqueeze(1).mul(s.unsqueeze(0)).reshape(-1);
          return torch.keep(torch.stack([ws.neg(), hs.neg(), ws, hs], 1).div(2).round());
        }),
      ),
    );
  }
  numAnchorsPerLocation(): number[] {
    return this.sizes.map((s, i) => s.length * this.aspectRatios[i].length);
  }
  // the anchors of the last few batch and feature sizes: building them is a JS loop over every
  // position (~3.5 ms for a 320 px batch), the same for every batch of that size
  private readonly cache = new Map<string, Tensor>();
  private static readonly CACHED_SIZES = 8;

  /** The anchors of one image of the batch (all images share them): [sum over levels of H*W*A, 4]. A new tensor, the caller's to dispose. */
  anchors(images: ImageList, featureShapes: Array<[number, number]>): Tensor {
    const [H, W] = [images.tensors.shape[2], images.tensors.shape[3]];
    const device = images.tensors.device;
    const key = `${device} ${H}x${W} ${featureShapes.join(' ')}`;
    let cached = this.cache.get(key);
    if (!cached) {
      cached = torch.keep(this.build(H, W, device, featureShapes));
      this.cache.set(key, cached);
      if (this.cache.size > AnchorGenerator.CACHED_SIZES) {
        const [oldest, t] = this.cache.entries().next().value as [string, Tensor];
        this.cache.delete(oldest);
        t.dispose();
      }
    }
    return cached.clone();
  }
  private build(H: number, W: number, device: Tensor['device'], featureShapes: Array<[number, number]>): Tensor {
    return torch.tidy(() =>
      torch.cat(
        featureShapes.map(([gh, gw], level) => {
          const sy = Math.floor(H / gh);
          const sx = Math.floor(W / gw);
          const shifts: number[] = [];
          for (let y = 0; y < gh; y++) for (let x = 0; x < gw; x++) shifts.push(x * sx, y * sy, x * sx, y * sy);
          const shift = tensor(Float32Array.from(shifts), { shape: [gh * gw, 1, 4] });
          return shift.add(this.cellAnchors[level].unsqueeze(0)).reshape(-1, 4).to(device);
        }),
        0,
      ),
    );
  }
  dispose(): void {
    this.cellAnchors.forEach((t) => t.dispose());
    this.cache.forEach((t) => t.dispose());
    this.cache.clear();
  }
}

/** A 3x3 conv + ReLU, then per anchor an objectness logit and four box deltas. */
export class RPNHead extends Module {
  readonly conv: Sequential;
  readonly clsLogits: Conv2d;
  readonly bboxPred: Conv2d;
  constructor(inChannels: number, numAnchors: number) {
    super();
    // Conv2dNormActivation(norm None) with its ReLU: conv.0.0 is the convolution
    this.conv = this.registerModule('conv', new Sequential(new Sequential(new Conv2d(inChannels, inChannels, 3, { padding: 1 }))));
    this.clsLogits = this.registerModule('cls_logits', new Conv2d(inChannels, numAnchors, 1));
    this.bboxPred = this.registerModule('bbox_pred', new Conv2d(inChannels, numAnchors * 4, 1));
    // torchvision's RPNHead initialisation: weights N(0, 0.01), zero biases
    torch.noGrad(() => {
      for (const [name, p] of this.namedParameters()) {
        if (name.endsWith('bias')) p.zero_();
        else {
          const r = torch.randn(p.shape);
          p.copy_(r.mul(0.01));
          r.dispose();
        }
      }
    });
  }
  levels(features: Tensor[]): { objectness: Tensor[]; deltas: Tensor[] } {
    const objectness: Tensor[] = [];
    const deltas: Tensor[] = [];
    for (const f of features) {
      const c = this.conv.forward(f);
      const t = c.relu();
      c.dispose();
      objectness.push(this.clsLogits.forward(t));
      deltas.push(this.bboxPred.forward(t));
      t.dispose();
    }
    return { objectness, deltas };
  }
}

/** The int64 indices where a bool [K] mask is true (torch.where(mask)[0]). */
export function nonzero(mask: Tensor): Tensor {
  const all = torch.arange(mask.shape[0], undefined, 1, { dtype: 'int64', device: mask.device });
  const out = all.index(mask);
  all.dispose();
  return out;
}

/** [N, A*C, H, W] -> [N, H*W*A, C] (torchvision's permute_and_flatten). */
export function permuteAndFlatten(x: Tensor, c: number): Tensor {
  const [n, ac, h, w] = x.shape;
  return x
    .view(n, ac / c, c, h, w)
    .permute(0, 3, 4, 1, 2)
    .reshape(n, -1, c);
}

export interface RpnOptions {
  preNmsTopNTrain: number;
  preNmsTopNTest: number;
  postNmsTopNTrain: number;
  postNmsTopNTest: number;
  nmsThresh: number;
  fgIouThresh: number;
  bgIouThresh: number;
  batchSizePerImage: number;
  positiveFraction: number;
  scoreThresh: number;
}

export class RegionProposalNetwork extends Module {
  readonly head: RPNHead;
  readonly anchorGenerator = new AnchorGenerator();
  readonly boxCoder = new BoxCoder([1, 1, 1, 1]);
  readonly minSize = 1e-3;
  constructor(
    inChannels: number,
    readonly options: RpnOptions,
  ) {
    super();
    this.head = this.registerModule('head', new RPNHead(inChannels, this.anchorGenerator.numAnchorsPerLocation()[0]));
  }

  /**
   * Proposals per image (eval and train) plus what the losses need: the
   * objectness logits [N * total] and deltas [N * total, 4] of every anchor, and the anchors.
   */
  propose(images: ImageList, features: Tensor[]): { boxes: Tensor[]; scores: Tensor[]; objectness: Tensor; deltas: Tensor; anchors: Tensor } {
    const { objectness: obj, deltas: del } = this.head.levels(features);
    const numPerLevel = obj.map((o) => o.shape[1] * o.shape[2] * o.shape[3]);
    const n = images.tensors.shape[0];
    const objectness = torch
      .cat(
        obj.map((o) => permuteAndFlatten(o, 1)),
        1,
      )
      .reshape(-1, 1);
    const deltas = torch
      .cat(
        del.map((d) => permuteAndFlatten(d, 4)),
        1,
      )
      .reshape(-1, 4);
    [...obj, ...del].forEach((t) => t.dispose());
    const anchors = this.anchorGenerator.anchors(
      images,
      features.map((f) => [f.shape[2], f.shape[3]]),
    );
    const training = this.training;
    const preNmsTopN = training ? this.options.preNmsTopNTrain : this.options.preNmsTopNTest;
    const postNmsTopN = training ? this.options.postNmsTopNTrain : this.options.postNmsTopNTest;
    const total = anchors.shape[0];
    const result = torch.noGrad(() =>
      torch.tidy(() => {
        const allAnchors = torch.cat(
          Array.from({ length: n }, () => anchors),
          0,
        );
        const proposals = this.boxCoder.decodeSingle(deltas.detach(), allAnchors).reshape(n, total, 4);
        const scoresAll = objectness.detach().reshape(n, total);
        const boxesOut: Tensor[] = [];
        const scoresOut: Tensor[] = [];
        for (let i = 0; i < n; i++) {
          // top-n per level
          let offset = 0;
          const picks: Tensor[] = [];
          const levelIds: number[] = [];
          numPerLevel.forEach((count, level) => {
            const k = Math.min(preNmsTopN, count);
            const [, idx] = scoresAll.select(0, i).narrow(0, offset, count).topk(k, 0);
            picks.push(idx.add(offset));
            for (let j = 0; j < k; j++) levelIds.push(level);
            offset += count;
          });
          const top = torch.cat(picks, 0);
          let boxes = clipBoxesToImage(proposals.select(0, i).indexSelect(0, top), images.imageSizes[i]);
          let scores = scoresAll.select(0, i).indexSelect(0, top).sigmoid();
          let levels = tensor(levelIds, { dtype: 'int64', device: boxes.device });
          const pick = (keep: Tensor) => {
            boxes = boxes.indexSelect(0, keep);
            scores = scores.indexSelect(0, keep);
            levels = levels.indexSelect(0, keep);
          };
          pick(removeSmallBoxes(boxes, this.minSize));
          if (this.options.scoreThresh > 0) pick(nonzero(scores.ge(this.options.scoreThresh)));
          const keep = batchedNms(boxes, scores, levels, this.options.nmsThresh);
          pick(keep.narrow(0, 0, Math.min(postNmsTopN, keep.shape[0])));
          boxesOut.push(boxes);
          scoresOut.push(scores);
        }
        return { boxes: boxesOut, scores: scoresOut };
      }),
    );
    return { ...result, objectness, deltas, anchors };
  }

  /**
   * loss_objectness and loss_rpn_box_reg (torchvision's compute_loss): anchors
   * matched to the ground truth (IoU >= fgIouThresh positive, < bgIouThresh
   * negative, each box's best anchors positive), a balanced sample of them.
   */
  losses(anchors: Tensor, objectness: Tensor, deltas: Tensor, gtBoxes: Tensor[]): { loss_objectness: Tensor; loss_rpn_box_reg: Tensor } {
    return torch.tidy(() => {
      const total = anchors.shape[0];
      const positives: Tensor[] = [];
      const negatives: Tensor[] = [];
      const labels: Tensor[] = [];
      const regressionTargets: Tensor[] = [];
      torch.noGrad(() =>
        gtBoxes.forEach((gt, i) => {
          let label: Tensor;
          let matchedGt: Tensor;
          if (gt.shape[0] === 0) {
            label = torch.zeros([total], { dtype: 'float32', device: anchors.device });
            matchedGt = torch.zeros([total, 4], { dtype: 'float32', device: anchors.device });
          } else {
            const matches = matchBoxes(boxIou(gt, anchors), this.options.fgIouThresh, this.options.bgIouThresh, true);
            matchedGt = gt.indexSelect(0, matches.clamp(0));
            label = torch.where(matches.eq(BETWEEN_THRESHOLDS), -1, matches.ge(0).float());
          }
          const { positive, negative } = sampleBalanced(label, this.options.batchSizePerImage, this.options.positiveFraction);
          positives.push(positive.add(i * total));
          negatives.push(negative.add(i * total));
          labels.push(label);
          regressionTargets.push(this.boxCoder.encodeSingle(matchedGt, anchors));
        }),
      );
      const pos = torch.cat(positives, 0);
      const sampled = torch.cat([pos, ...negatives], 0);
      const targets = torch.cat(regressionTargets, 0);
      const boxLoss = smoothL1Sum(deltas.indexSelect(0, pos), targets.indexSelect(0, pos), 1 / 9).div(sampled.shape[0]);
      const objectnessLoss = bceWithLogits(objectness.flatten().indexSelect(0, sampled), torch.cat(labels, 0).indexSelect(0, sampled));
      return { loss_objectness: objectnessLoss, loss_rpn_box_reg: boxLoss };
    });
  }
}
