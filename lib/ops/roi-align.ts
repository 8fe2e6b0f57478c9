// RoIAlign (torchvision.ops.roi_align): bilinear crops of a feature map, one
// fixed-size output per box, differentiable with respect to the feature map.
// Native (native/detection.cc): C++ loops for CPU tensors, ATen tensor ops
// for the other devices.
import { native } from '../native/loader.js';
import { Tensor } from '../tensor/tensor.js';
import { ArgumentError } from '../errors.js';

/** Which implementation runs: 'auto' (loops on the CPU, tensor ops elsewhere), or one of them by name. */
export type OpsImplementation = 'auto' | 'loops' | 'tensorOps';
const IMPLEMENTATIONS: readonly string[] = ['auto', 'loops', 'tensorOps'];

export interface RoiAlignOptions {
  /** Scale from the boxes' coordinates to the feature map's (e.g. 1/16 for a stride-16 map); default 1. */
  spatialScale?: number;
  /** Sampling points per output cell in each direction; <= 0 (the default, -1) takes ceil(box size / output size) per box. */
  samplingRatio?: number;
  /** Shift the box by -0.5 pixel so that sampling points align with pixel centres (Detectron2's ROIAlignV2); default false, as torchvision's Faster R-CNN. */
  aligned?: boolean;
  /** 'tensorOps' runs the version CUDA tensors use on any device (to compare); default 'auto'. */
  implementation?: OpsImplementation;
}

/** @internal Checks the implementation option (shared with the NMS functions). */
export function implementationOf(fn: string, value: unknown): OpsImplementation {
  const v = value ?? 'auto';
  if (typeof v !== 'string' || !IMPLEMENTATIONS.includes(v))
    throw new ArgumentError(fn, `implementation must be 'auto', 'loops' or 'tensorOps', got ${JSON.stringify(v)}`, 'implementation');
  return v as OpsImplementation;
}

/** @internal A Tensor argument, or an ArgumentError naming it. */
export function tensorArg(fn: string, name: string, v: unknown): Tensor {
  if (!(v instanceof Tensor)) throw new ArgumentError(fn, `${name} must be a Tensor, got ${v === null ? 'null' : typeof v}`, name);
  return v;
}

/** @internal A finite number argument. */
export function numberArg(fn: string, name: string, v: unknown): number {
  if (typeof v !== 'number' || !Number.isFinite(v)) throw new ArgumentError(fn, `${name} must be a finite number, got ${String(v)}`, name);
  return v;
}

/**
 * RoIAlign over `input` [N, C, H, W] for each box: [K, C, outputH, outputW].
 * `boxes` is either a float [K, 5] tensor whose rows are (batch index, x1, y1,
 * x2, y2) or a list of N float [Ki, 4] tensors, one per image (the rows
 * concatenated in image order). Coordinates are in the input image's frame;
 * spatialScale maps them onto the feature map. Boxes may reach outside the
 * map (samples beyond one pixel outside read 0). As torchvision, the
 * gradient flows to `input` only, not to the boxes.
 */
export function roiAlign(input: Tensor, boxes: Tensor | Tensor[], outputSize: number | [number, number], options: RoiAlignOptions = {}): Tensor {
  const fn = 'ops.roiAlign';
  tensorArg(fn, 'input', input);
  if (Array.isArray(boxes)) boxes.forEach((b, i) => tensorArg(fn, `boxes[${i}]`, b));
  else tensorArg(fn, 'boxes', boxes);
  const size = typeof outputSize === 'number' ? [outputSize, outputSize] : outputSize;
  if (!Array.isArray(size) || size.length !== 2 || !size.every((d) => Number.isInteger(d) && d >= 1))
    throw new ArgumentError(fn, `outputSize must be a positive integer or [height, width] of them, got ${JSON.stringify(outputSize)}`, 'outputSize');
  const spatialScale = options.spatialScale ?? 1;
  if (typeof spatialScale !== 'number' || !Number.isFinite(spatialScale) || spatialScale <= 0)
    throw new ArgumentError(fn, `spatialScale must be a positive finite number, got ${String(spatialScale)}`, 'spatialScale');
  const samplingRatio = options.samplingRatio ?? -1;
  if (!Number.isInteger(samplingRatio)) throw new ArgumentError(fn, `samplingRatio must be an integer, got ${String(samplingRatio)}`, 'samplingRatio');
  const aligned = options.aligned ?? false;
  if (typeof aligned !== 'boolean') throw new ArgumentError(fn, `aligned must be a boolean, got ${String(aligned)}`, 'aligned');
  const implementation = implementationOf(fn, options.implementation);
  const boxHandles = Array.isArray(boxes) ? boxes.map((b) => b.handle) : boxes.handle;
  return new Tensor(native.roiAlign(input.handle, boxHandles, size[0], size[1], spatialScale, samplingRatio, aligned, implementation));
}
