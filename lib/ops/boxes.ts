// Box utilities and non-maximum suppression (torchvision.ops' nms,
// batched_nms, box_area, box_iou, clip_boxes_to_image, remove_small_boxes).
// Boxes are [K, 4] (x1, y1, x2, y2) with x1 <= x2 and y1 <= y2. NMS runs
// natively (native/detection.cc); the helpers are ATen expressions there,
// differentiable like torchvision's.
import { native } from '../native/loader.js';
import { Tensor } from '../tensor/tensor.js';
import { ArgumentError } from '../errors.js';
import { implementationOf, numberArg, tensorArg, type OpsImplementation } from './roi-align.js';

export interface NmsOptions {
  /** 'tensorOps' runs the version CUDA tensors use (IoU matrix on the device, greedy pass on the CPU) on any device; default 'auto'. */
  implementation?: OpsImplementation;
}

/**
 * Non-maximum suppression: the int64 indices of the boxes kept, by
 * decreasing score. Greedy: the best remaining box is kept and every later
 * box whose IoU with it is greater than iouThreshold is dropped. Boxes with
 * equal scores are taken in index order (a stable sort, as torchvision's CPU
 * kernel).
 */
export function nms(boxes: Tensor, scores: Tensor, iouThreshold: number, options: NmsOptions = {}): Tensor {
  const fn = 'ops.nms';
  tensorArg(fn, 'boxes', boxes);
  tensorArg(fn, 'scores', scores);
  numberArg(fn, 'iouThreshold', iouThreshold);
  return new Tensor(native.nms(boxes.handle, scores.handle, iouThreshold, implementationOf(fn, options.implementation)));
}

/**
 * NMS within each category (`idxs`, an integer [K] tensor): boxes of different
 * categories never suppress each other. As torchvision: up to 1000 boxes on
 * the CPU (5000 on other devices) one NMS over the boxes offset by
 * idx * (max coordinate + 1); above that one NMS per category, the kept
 * indices then sorted by decreasing score.
 */
export function batchedNms(boxes: Tensor, scores: Tensor, idxs: Tensor, iouThreshold: number, options: NmsOptions = {}): Tensor {
  const fn = 'ops.batchedNms';
  tensorArg(fn, 'boxes', boxes);
  tensorArg(fn, 'scores', scores);
  tensorArg(fn, 'idxs', idxs);
  numberArg(fn, 'iouThreshold', iouThreshold);
  return new Tensor(native.batchedNms(boxes.handle, scores.handle, idxs.handle, iouThreshold, implementationOf(fn, options.implementation)));
}

/** The area of each box, [K] ((x2 - x1) * (y2 - y1); half floats computed in float32, small integers in int32). */
export function boxArea(boxes: Tensor): Tensor {
  tensorArg('ops.boxArea', 'boxes', boxes);
  return new Tensor(native.boxArea(boxes.handle));
}

/** Pairwise intersection over union, [N, M]. */
export function boxIou(boxes1: Tensor, boxes2: Tensor): Tensor {
  const fn = 'ops.boxIou';
  tensorArg(fn, 'boxes1', boxes1);
  tensorArg(fn, 'boxes2', boxes2);
  return new Tensor(native.boxIou(boxes1.handle, boxes2.handle));
}

/** Boxes [..., 4] with x clamped to [0, width] and y to [0, height]; size is [height, width], as torchvision. */
export function clipBoxesToImage(boxes: Tensor, size: [number, number]): Tensor {
  const fn = 'ops.clipBoxesToImage';
  tensorArg(fn, 'boxes', boxes);
  if (!Array.isArray(size) || size.length !== 2 || !size.every((d) => typeof d === 'number' && Number.isFinite(d) && d >= 0))
    throw new ArgumentError(fn, `size must be [height, width] (non-negative numbers), got ${JSON.stringify(size)}`, 'size');
  return new Tensor(native.clipBoxesToImage(boxes.handle, size[0], size[1]));
}

/** The int64 indices of the boxes whose width and height are both at least minSize. */
export function removeSmallBoxes(boxes: Tensor, minSize: number): Tensor {
  const fn = 'ops.removeSmallBoxes';
  tensorArg(fn, 'boxes', boxes);
  numberArg(fn, 'minSize', minSize);
  return new Tensor(native.removeSmallBoxes(boxes.handle, minSize));
}
