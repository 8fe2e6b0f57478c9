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

// torchvision's _setup_scales: per level, 2 ** round(log2(height / largest image height)), the
// log2 and its rounding (half to even) in float32 as torch computes them.
function inferScales(features: Tensor[], imageSizes: Array<[number, number]>): number[] {
  const maxHeight = Math.max(...imageSizes.map((s) => s[0]));
  return features.map((f) => {
    const l = Math.fround(Math.log2(Math.fround(f.shape[2] / maxHeight)));
    let e = Math.round(l);
    if (Math.abs(l % 1) === 0.5 && e % 2 !== 0) e -= 1; // half to even, as torch.round
    return 2 ** e;
  });
}

export interface MultiScaleRoIAlignOptions {
  /** Sampling points per output cell and direction (torchvision's Faster R-CNN: 2; <= 0 adaptive). */
  samplingRatio: number;
  /** The box size mapped to canonicalLevel (default 224, as torchvision and the FPN paper). */
  canonicalScale?: number;
  /** The level of a canonicalScale-sized box (default 4). */
  canonicalLevel?: number;
  implementation?: OpsImplementation;
}

/**
 * torchvision.ops.MultiScaleRoIAlign: RoIAlign over a feature pyramid, each
 * box pooled from one level chosen by its size (level = floor(canonicalLevel
 * + log2(sqrt(area) / canonicalScale)), clamped to the pyramid), each level's
 * spatial scale inferred as the power of two nearest its height over the
 * largest image height. No parameters; gradients flow to the feature maps.
 */
export class MultiScaleRoIAlign {
  readonly featmapNames: string[];
  readonly outputSize: [number, number];
  readonly samplingRatio: number;
  readonly canonicalScale: number;
  readonly canonicalLevel: number;
  readonly implementation: OpsImplementation;
  /** Each level's spatial scale, inferred at the first forward and kept (as torchvision does); null before. */
  scales: number[] | null = null;

  constructor(featmapNames: string[], outputSize: number | [number, number], options: MultiScaleRoIAlignOptions) {
    const fn = 'ops.MultiScaleRoIAlign';
    if (!Array.isArray(featmapNames) || featmapNames.length === 0 || !featmapNames.every((n) => typeof n === 'string'))
      throw new ArgumentError(fn, `featmapNames must be a non-empty list of feature map names, got ${JSON.stringify(featmapNames)}`, 'featmapNames');
    const size = typeof outputSize === 'number' ? [outputSize, outputSize] : outputSize;
    if (!Array.isArray(size) || size.length !== 2 || !size.every((d) => Number.isInteger(d) && d >= 1))
      throw new ArgumentError(fn, `outputSize must be a positive integer or [height, width] of them, got ${JSON.stringify(outputSize)}`, 'outputSize');
    const samplingRatio = options?.samplingRatio;
    if (!Number.isInteger(samplingRatio)) throw new ArgumentError(fn, `samplingRatio must be an integer, got ${String(samplingRatio)}`, 'samplingRatio');
    this.featmapNames = [...featmapNames];
    this.outputSize = [size[0], size[1]];
    this.samplingRatio = samplingRatio;
    this.canonicalScale = numberArg(fn, 'canonicalScale', options.canonicalScale ?? 224);
    this.canonicalLevel = options.canonicalLevel ?? 4;
    if (!Number.isInteger(this.canonicalLevel))
      throw new ArgumentError(fn, `canonicalLevel must be an integer, got ${String(this.canonicalLevel)}`, 'canonicalLevel');
    this.implementation = implementationOf(fn, options.implementation);
  }

  /**
   * features: the pyramid by name (the featmapNames are taken in their order,
   * finest first); boxes: one [Ki, 4] tensor per image, in the images' frame;
   * imageSizes: each image's [height, width] before batching. Returns
   * [sum Ki, C, outputH, outputW], the boxes in image order.
   */
  forward(features: Record<string, Tensor>, boxes: Tensor[], imageSizes: Array<[number, number]>): Tensor {
    const fn = 'ops.MultiScaleRoIAlign';
    if (features === null || typeof features !== 'object') throw new ArgumentError(fn, 'features must be an object of feature maps by name', 'features');
    const maps = this.featmapNames.map((name) => {
      const f = features[name];
      if (f === undefined)
        throw new ArgumentError(
          fn,
          `features has no feature map '${name}' (it has ${
            Object.keys(features)
              .map((k) => `'${k}'`)
              .join(', ') || 'none'
          })`,
          'features',
        );
      return tensorArg(fn, `features['${name}']`, f);
    });
    if (!Array.isArray(boxes)) throw new ArgumentError(fn, 'boxes must be a list of [Ki, 4] tensors, one per image', 'boxes');
    boxes.forEach((b, i) => tensorArg(fn, `boxes[${i}]`, b));
    if (
      !Array.isArray(imageSizes) ||
      imageSizes.length === 0 ||
      !imageSizes.every((s) => Array.isArray(s) && s.length === 2 && s.every((d) => Number.isInteger(d) && d >= 1))
    )
      throw new ArgumentError(
        fn,
        `imageSizes must be a non-empty list of [height, width] (positive integers), got ${JSON.stringify(imageSizes)}`,
        'imageSizes',
      );
    this.scales ??= inferScales(maps, imageSizes);
    return new Tensor(
      native.multiScaleRoiAlign(
        maps.map((f) => f.handle),
        boxes.map((b) => b.handle),
        this.scales,
        this.outputSize[0],
        this.outputSize[1],
        this.samplingRatio,
        this.canonicalScale,
        this.canonicalLevel,
        this.implementation,
      ),
    );
  }
}
