// torchvision's RoIHeads for Faster R-CNN: MultiScaleRoIAlign over the
// pyramid, TwoMLPHead (fc6, fc7), FastRCNNPredictor (cls_score, bbox_pred),
// and the post-processing (softmax, per-class boxes, score threshold, small
// boxes removed, per-class NMS, detections per image).
import { Module } from '../../nn/module.js';
import { Linear } from '../../nn/layers.js';
import type { Tensor } from '../../tensor/tensor.js';
import { torch } from '../../tensor/index.js';
import { MultiScaleRoIAlign } from '../../ops/roi-align.js';
import { batchedNms, clipBoxesToImage, removeSmallBoxes } from '../../ops/boxes.js';
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
          const labelsAll = torch.arange(numClasses, undefined, 1, { dtype: 'int64' }).reshape(1, -1).expand(k, numClasses);
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
}
