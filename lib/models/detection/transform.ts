// torchvision's GeneralizedRCNNTransform: normalise, resize so the short side
// is minSize (the long side at most maxSize), batch with zero padding to a
// multiple of 32, and map detections back to the original sizes.
import { Tensor } from '../../tensor/tensor.js';
import { torch } from '../../tensor/index.js';
import { tensor, zeros } from '../../tensor/creation.js';
import { detectionResizeSize } from '../../data/detection/transforms.js';
import { ArgumentError } from '../../errors.js';

export interface TransformOptions {
  minSize: number;
  maxSize: number;
  imageMean: [number, number, number];
  imageStd: [number, number, number];
  sizeDivisible?: number;
}

export interface ImageList {
  /** The padded batch [N, 3, H, W]. */
  tensors: Tensor;
  /** Each image's [height, width] after resizing, before padding. */
  imageSizes: Array<[number, number]>;
}

/** Boxes [K, 4] scaled from one image size to another (ratios in float32, as torchvision's resize_boxes). */
export function resizeBoxes(boxes: Tensor, from: [number, number], to: [number, number]): Tensor {
  const f = Math.fround;
  const rh = f(f(to[0]) / f(from[0]));
  const rw = f(f(to[1]) / f(from[1]));
  const ratios = tensor([rw, rh, rw, rh], { dtype: boxes.dtype, device: boxes.device });
  const out = boxes.mul(ratios);
  ratios.dispose();
  return out;
}

/** For each output index along one side: the two input indices and their weights, as ATen's upsample_bilinear2d (align_corners false) computes them in float32. */
function linearTaps(inSize: number, outSize: number, device: Tensor['device']): { i0: Tensor; i1: Tensor; w0: Tensor; w1: Tensor } {
  const f = Math.fround;
  const scale = f(inSize / outSize);
  const i0: number[] = [];
  const i1: number[] = [];
  const w0 = new Float32Array(outSize);
  const w1 = new Float32Array(outSize);
  for (let o = 0; o < outSize; o++) {
    const src = Math.max(f(f(scale * (o + 0.5)) - 0.5), 0);
    const lo = Math.min(Math.floor(src), inSize - 1);
    const lambda = Math.min(Math.max(f(src - lo), 0), 1);
    i0.push(lo);
    i1.push(lo < inSize - 1 ? lo + 1 : lo);
    w1[o] = lambda;
    w0[o] = f(1 - lambda);
  }
  const long = (v: number[]) => tensor(v, { dtype: 'int64', device });
  const float = (v: Float32Array) => tensor(v, { dtype: 'float32', device });
  return { i0: long(i0), i1: long(i1), w0: float(w0), w1: float(w1) };
}

/**
 * F.interpolate(image[None], size, mode='bilinear', align_corners=False)[0]
 * for one [C, H, W] image, as tensor ops (on the image's device, libtorch's
 * threads): each output pixel is w0y (w0x a + w1x b) + w1y (w0x c + w1x d),
 * the products and sums in ATen's kernel's order, so the values are the same.
 */
export function resizeBilinear(image: Tensor, outHeight: number, outWidth: number): Tensor {
  const [, h, w] = image.shape;
  if (h === outHeight && w === outWidth) return image.clone();
  return torch.tidy(() => {
    const ys = linearTaps(h, outHeight, image.device);
    const xs = linearTaps(w, outWidth, image.device);
    const horizontal = (rows: Tensor) => rows.indexSelect(2, xs.i0).mul(xs.w0).add(rows.indexSelect(2, xs.i1).mul(xs.w1));
    const top = horizontal(image.indexSelect(1, ys.i0));
    const bottom = horizontal(image.indexSelect(1, ys.i1));
    return top.mul(ys.w0.reshape(-1, 1)).add(bottom.mul(ys.w1.reshape(-1, 1)));
  });
}

export class GeneralizedRCNNTransform {
  readonly sizeDivisible: number;
  constructor(readonly options: TransformOptions) {
    this.sizeDivisible = options.sizeDivisible ?? 32;
  }

  /** Normalised, resized and batched images; targets' boxes resized alike (train mode). */
  apply(images: Tensor[], targetBoxes?: Tensor[]): { images: ImageList; boxes?: Tensor[] } {
    const fn = 'fasterrcnnResnet50Fpn.forward';
    if (!Array.isArray(images) || images.length === 0) throw new ArgumentError(fn, 'images must be a non-empty list of [3, H, W] float tensors', 'images');
    const resized: Tensor[] = [];
    const sizes: Array<[number, number]> = [];
    const boxes: Tensor[] = [];
    const { minSize, maxSize, imageMean, imageStd } = this.options;
    const mean = tensor(imageMean, { dtype: 'float32' }).reshape(3, 1, 1);
    const std = tensor(imageStd, { dtype: 'float32' }).reshape(3, 1, 1);
    try {
      images.forEach((image, i) => {
        if (!(image instanceof Tensor) || image.ndim !== 3 || image.shape[0] !== 3 || image.dtype !== 'float32')
          throw new ArgumentError(
            fn,
            `images[${i}] must be a float32 [3, H, W] tensor, got ${image instanceof Tensor ? `${image.dtype} [${image.shape}]` : typeof image}`,
            'images',
          );
        const [, h, w] = image.shape;
        if (h < 1 || w < 1) throw new ArgumentError(fn, `images[${i}] is empty (${h}x${w} pixels)`, 'images');
        const [oh, ow] = detectionResizeSize(h, w, minSize, maxSize);
        resized.push(torch.tidy(() => resizeBilinear(image.sub(mean.to(image.device)).div(std.to(image.device)), oh, ow)));
        sizes.push([oh, ow]);
        if (targetBoxes) boxes.push(resizeBoxes(targetBoxes[i], [h, w], [oh, ow]));
      });
      const d = this.sizeDivisible;
      const H = Math.ceil(Math.max(...sizes.map((s) => s[0])) / d) * d;
      const W = Math.ceil(Math.max(...sizes.map((s) => s[1])) / d) * d;
      const padded = resized.map((im, i) =>
        torch.tidy(() => {
          const [h, w] = sizes[i];
          const wide = w < W ? torch.cat([im, zeros([3, h, W - w], { dtype: 'float32', device: im.device })], 2) : im;
          return h < H ? torch.cat([wide, zeros([3, H - h, W], { dtype: 'float32', device: im.device })], 1) : wide.clone();
        }),
      );
      const batch = torch.stack(padded, 0);
      padded.forEach((t) => t.dispose());
      return { images: { tensors: batch, imageSizes: sizes }, boxes: targetBoxes ? boxes : undefined };
    } finally {
      resized.forEach((t) => t.dispose());
      mean.dispose();
      std.dispose();
    }
  }
}
