// torchvision's BoxCoder: box regression deltas (dx, dy, dw, dh), divided by
// per-coordinate weights, relative to reference boxes.
import type { Tensor } from '../../tensor/tensor.js';
import { torch } from '../../tensor/index.js';

export class BoxCoder {
  constructor(
    readonly weights: [number, number, number, number],
    /** dw and dh are clamped to this before exp (log(1000 / 16), as torchvision). */
    readonly bboxXformClip = Math.log(1000 / 16),
  ) {}

  /** Decodes codes [N, 4k] relative to boxes [N, 4]: [N, k, 4]. */
  decodeSingle(relCodes: Tensor, boxes: Tensor): Tensor {
    return torch.tidy(() => {
      const b = boxes.to(relCodes.dtype);
      const widths = b.select(1, 2).sub(b.select(1, 0));
      const heights = b.select(1, 3).sub(b.select(1, 1));
      const ctrX = b.select(1, 0).add(widths.mul(0.5));
      const ctrY = b.select(1, 1).add(heights.mul(0.5));
      const n = relCodes.shape[0];
      // k spelt out: reshape cannot infer -1 when there are no boxes (an image without proposals)
      const codes = relCodes.reshape(n, relCodes.shape[1] / 4, 4);
      const [wx, wy, ww, wh] = this.weights;
      const dx = codes.select(2, 0).div(wx);
      const dy = codes.select(2, 1).div(wy);
      const dw = codes.select(2, 2).div(ww).clamp(null, this.bboxXformClip);
      const dh = codes.select(2, 3).div(wh).clamp(null, this.bboxXformClip);
      const predCtrX = dx.mul(widths.unsqueeze(1)).add(ctrX.unsqueeze(1));
      const predCtrY = dy.mul(heights.unsqueeze(1)).add(ctrY.unsqueeze(1));
      const halfW = dw.exp().mul(widths.unsqueeze(1)).mul(0.5);
      const halfH = dh.exp().mul(heights.unsqueeze(1)).mul(0.5);
      return torch.stack([predCtrX.sub(halfW), predCtrY.sub(halfH), predCtrX.add(halfW), predCtrY.add(halfH)], 2);
    });
  }

  /** Encodes matched ground-truth boxes [N, 4] relative to reference boxes [N, 4]: [N, 4] (torchvision's encode_boxes). */
  encodeSingle(matched: Tensor, proposals: Tensor): Tensor {
    return torch.tidy(() => {
      const [wx, wy, ww, wh] = this.weights;
      const col = (t: Tensor, i: number) => t.select(1, i);
      const exWidths = col(proposals, 2).sub(col(proposals, 0));
      const exHeights = col(proposals, 3).sub(col(proposals, 1));
      const exCtrX = col(proposals, 0).add(exWidths.mul(0.5));
      const exCtrY = col(proposals, 1).add(exHeights.mul(0.5));
      const gtWidths = col(matched, 2).sub(col(matched, 0));
      const gtHeights = col(matched, 3).sub(col(matched, 1));
      const gtCtrX = col(matched, 0).add(gtWidths.mul(0.5));
      const gtCtrY = col(matched, 1).add(gtHeights.mul(0.5));
      const dx = gtCtrX.sub(exCtrX).div(exWidths).mul(wx);
      const dy = gtCtrY.sub(exCtrY).div(exHeights).mul(wy);
      const dw = gtWidths.div(exWidths).log().mul(ww);
      const dh = gtHeights.div(exHeights).log().mul(wh);
      return torch.stack([dx, dy, dw, dh], 1);
    });
  }
}
