// torchvision's RoIHeads for Faster R-CNN: MultiScaleRoIAlign over the
// pyramid, TwoMLPHead (fc6, fc7), FastRCNNPredictor (cls_score, bbox_pred),
// and the post-processing (softmax, per-class boxes, score threshold, small
// boxes removed, per-class NMS, detections per image).
import { Module } from '../../nn/module.js';
import { Linear } from '../../nn/layers.js';
import type { Tensor } from '../../tensor/tensor.js';
import { torch } from '../../tensor/index.js';
import { MultiScaleRoIAlign } from '../../ops/roi-align.js';
import { batchedNms, boxIou, clipBoxesToImage, removeSmallBoxes } from '../../ops/boxes.js';
import { crossEntropy } from '../../nn/functional.js';
import { matchBoxes, sampleBalanced, smoothL1Sum, BELOW_LOW_THRESHOLD, BETWEEN_THRESHOLDS } from './matcher.js';
import { BoxCoder } from './box-coder.js';
import { nonzero } from './rpn.js';

export class TwoMLPHead extends Module {
  readonly fc6: Linear;
  readonly fc7: Linear;
  constructor(inChannels: number, representationSize: number) {
    super();
    this.fc6 = this.registerModule('fc6', new Linear(inChannels, representationSize));
    this.fc7 = this.registerModule('fc7', new Linear(representationSize, representationSize));
  }
  override forward(x: Tensor): Tensor {
    return torch.tidy(() => this.fc7.forward(this.fc6.forward(x.flatten(1)).relu()).relu());
  }
}

/** The box predictor (roi_heads.box_predictor): class logits and per-class box deltas. */
export class FastRCNNPredictor extends Module {
  readonly clsScore: Linear;
  readonly bboxPred: Linear;
  constructor(inChannels: number, numClasses: number) {
    super();
    this.clsScore = this.registerModule('cls_score', new Linear(inChannels, numClasses));
    this.bboxPred = this.registerModule('bbox_pred', new Linear(inChannels, numClasses * 4));
  }
  scoresAndDeltas(x: Tensor): { logits: Tensor; deltas: Tensor } {
    return { logits: this.clsScore.forward(x), deltas: this.bboxPred.forward(x) };
  }
  override forward(x: Tensor): Tensor {
    return this.clsScore.forward(x);
  }
}

export interface RoiHeadsOptions {
  scoreThresh: number;
  nmsThresh: number;
  detectionsPerImg: number;
  fgIouThresh: number;
  bgIouThresh: number;
  batchSizePerImage: number;
  positiveFraction: number;
}

export interface Detections {
  boxes: Tensor;
  scores: Tensor;
  labels: Tensor;
}

export class RoIHeads extends Module {
  readonly boxRoiPool = new MultiScaleRoIAlign(['0', '1', '2', '3'], 7, { samplingRatio: 2 });
  readonly boxHead: TwoMLPHead;
  boxPredictor: FastRCNNPredictor;
  readonly boxCoder = new BoxCoder([10, 10, 5, 5]);
  constructor(
    numClasses: number,
    readonly options: RoiHeadsOptions,
  ) {
    super();
    this.boxHead = this.registerModule('box_head', new TwoMLPHead(256 * 7 * 7, 1024));
    this.boxPredictor = this.registerModule('box_predictor', new FastRCNNPredictor(1024, numClasses));
  }

  /** Class logits [sum Ki, C] and box deltas [sum Ki, 4C] of the proposals. */
  scoresAndDeltas(features: Record<string, Tensor>, proposals: Tensor[], imageSizes: Array<[number, number]>): { logits: Tensor; deltas: Tensor } {
    const pooled = this.boxRoiPool.forward(features, proposals, imageSizes);
    const h = this.boxHead.forward(pooled);
    pooled.dispose();
    const out = this.boxPredictor.scoresAndDeltas(h);
    h.dispose();
    return out;
  }

  /** torchvision's postprocess_detections, per image in the resized frame. */
  postprocess(logits: Tensor, deltas: Tensor, proposals: Tensor[], imageSizes: Array<[number, number]>): Detections[] {
    return torch.noGrad(() =>
      torch.tidy(() => {
        const numClasses = logits.shape[1];
        const predBoxes = this.boxCoder.decodeSingle(deltas, torch.cat(proposals, 0));
        const predScores = logits.softmax(-1);
        const out: Detections[] = [];
        let offset = 0;
        proposals.forEach((p, i) => {
          const k = p.shape[0];
          const boxesAll = clipBoxesToImage(predBoxes.narrow(0, offset, k), imageSizes[i]);
          const scoresAll = predScores.narrow(0, offset, k);
          offset += k;
          const labelsAll = torch.arange(numClasses, undefined, 1, { dtype: 'int64', device: logits.device }).reshape(1, -1).expand(k, numClasses);
          // drop the background class, one candidate per (proposal, class)
          let boxes = boxesAll.narrow(1, 1, numClasses - 1).reshape(-1, 4);
          let scores = scoresAll.narrow(1, 1, numClasses - 1).reshape(-1);
          let labels = labelsAll.narrow(1, 1, numClasses - 1).reshape(-1);
          const pick = (keep: Tensor) => {
            boxes = boxes.indexSelect(0, keep);
            scores = scores.indexSelect(0, keep);
            labels = labels.indexSelect(0, keep);
          };
          pick(nonzero(scores.gt(this.options.scoreThresh)));
          pick(removeSmallBoxes(boxes, 1e-2));
          const keep = batchedNms(boxes, scores, labels, this.options.nmsThresh);
          pick(keep.narrow(0, 0, Math.min(this.options.detectionsPerImg, keep.shape[0])));
          out.push({ boxes, scores, labels });
        });
        return out;
      }),
    );
  }

  /**
   * loss_classifier and loss_box_reg (torchvision's select_training_samples
   * and fastrcnn_loss): the ground-truth boxes join the proposals, each is
   * matched (IoU >= fgIouThresh: the box's class, < bgIouThresh: background),
   * a balanced sample is taken (in index order, as torchvision), classified
   * and, for the positives, regressed toward its box.
   */
  losses(
    features: Record<string, Tensor>,
    proposals: Tensor[],
    imageSizes: Array<[number, number]>,
    gtBoxes: Tensor[],
    gtLabels: Tensor[],
  ): { loss_classifier: Tensor; loss_box_reg: Tensor } {
    return torch.tidy(() => {
      const sampledProposals: Tensor[] = [];
      const labels: Tensor[] = [];
      const regressionTargets: Tensor[] = [];
      torch.noGrad(() =>
        proposals.forEach((p, i) => {
          const gt = gtBoxes[i];
          const all = torch.cat([p, gt], 0);
          let label: Tensor;
          let matchedGt: Tensor;
          if (gt.shape[0] === 0) {
            label = torch.zeros([all.shape[0]], { dtype: 'int64', device: all.device });
            matchedGt = torch.zeros([all.shape[0], 4], { dtype: 'float32', device: all.device });
          } else {
            const matches = matchBoxes(boxIou(gt, all), this.options.fgIouThresh, this.options.bgIouThresh, false);
            const clamped = matches.clamp(0);
            label = torch.where(matches.eq(BELOW_LOW_THRESHOLD), 0, gtLabels[i].indexSelect(0, clamped));
            label = torch.where(matches.eq(BETWEEN_THRESHOLDS), -1, label);
            matchedGt = gt.indexSelect(0, clamped);
          }
          const { positive, negative } = sampleBalanced(label, this.options.batchSizePerImage, this.options.positiveFraction);
          const keep = torch.cat([positive, negative], 0).sort(0)[0];
          const kept = all.indexSelect(0, keep);
          sampledProposals.push(kept);
          labels.push(label.indexSelect(0, keep));
          regressionTargets.push(this.boxCoder.encodeSingle(matchedGt.indexSelect(0, keep), kept));
        }),
      );
      const { logits, deltas } = this.scoresAndDeltas(features, sampledProposals, imageSizes);
      const label = torch.cat(labels, 0);
      const targets = torch.cat(regressionTargets, 0);
      const classification = crossEntropy(logits, label);
      const pos = nonzero(label.gt(0));
      const n = logits.shape[0];
      // each positive's deltas for its own class
      const rows = deltas.reshape(n, -1, 4).indexSelect(0, pos);
      const own = rows.gather(1, label.indexSelect(0, pos).reshape(-1, 1, 1).expand(-1, 1, 4)).reshape(-1, 4);
      const boxLoss = smoothL1Sum(own, targets.indexSelect(0, pos), 1 / 9).div(label.shape[0]);
      return { loss_classifier: classification, loss_box_reg: boxLoss };
    });
  }
}
