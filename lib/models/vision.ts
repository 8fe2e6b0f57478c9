// torchvision's image classifiers with torchvision's parameter names:
// ResNet-18/34/50/101/152, VGG-11/16 (with and without BatchNorm), EfficientNet-B0.
import { native } from '../native/loader.js';
import { Architecture, type ArchitectureSpec, type Block } from './architecture.js';

export interface VisionOptions {
  /** Size of the classification head (1000 for ImageNet). */
  numClasses?: number;
  /** Dropout in the classifier (VGG 0.5, EfficientNet 0.2 by default). */
  dropout?: number;
}

/** ResNet only: a narrower or smaller-image variant with torchvision's module names. */
export interface ResNetOptions extends VisionOptions {
  /** Channels of layer1 (torchvision: 64); layer2..4 have 2x, 4x, 8x. */
  width?: number;
  /** Input channels (3 for RGB, 1 for greyscale). */
  inChannels?: number;
  /** A 3x3 stride-1 stem without max-pool, for 28x28/32x32 images (the CIFAR variant). */
  smallStem?: boolean;
}

function checkClasses(arch: string, o: VisionOptions): number {
  const n = o.numClasses ?? 1000;
  if (!Number.isInteger(n) || n < 1) throw new TypeError(`${arch}: numClasses must be a positive integer, got ${String(o.numClasses)}`);
  if (o.dropout !== undefined && !(o.dropout >= 0 && o.dropout <= 1)) throw new TypeError(`${arch}: dropout must be in [0, 1], got ${o.dropout}`);
  return n;
}

function build(arch: string, spec: ArchitectureSpec): Architecture {
  return Architecture.wrap(native.createModule(spec.kind, spec.options), arch, spec);
}

const resnetBlocks: Block[] = [
  { name: 'stem', paths: ['conv1', 'bn1'] },
  { name: 'layer1', paths: ['layer1'] },
  { name: 'layer2', paths: ['layer2'] },
  { name: 'layer3', paths: ['layer3'] },
  { name: 'layer4', paths: ['layer4'] },
  { name: 'head', paths: ['fc'] },
];

function resnet(depth: number) {
  const arch = `resnet${depth}`;
  return (o: ResNetOptions = {}): Architecture => {
    for (const key of ['width', 'inChannels'] as const) {
      const v = o[key];
      if (v !== undefined && !(Number.isInteger(v) && v >= 1 && v <= 4096))
        throw new TypeError(`${arch}: ${key} must be an integer in 1..4096, got ${String(v)}`);
    }
    if (o.smallStem !== undefined && typeof o.smallStem !== 'boolean') throw new TypeError(`${arch}: smallStem must be a boolean, got ${String(o.smallStem)}`);
    const options = { depth, numClasses: checkClasses(arch, o), width: o.width ?? 64, inChannels: o.inChannels ?? 3, smallStem: o.smallStem ?? false };
    const stem = options.smallStem ? { path: 'conv1', stride: 1, padding: 1 } : { path: 'conv1', stride: 2, padding: 3 };
    return build(arch, { kind: 'ResNet', options, blocks: resnetBlocks, head: 'fc', stem });
  };
}

// VGG's features split into its five conv stages at the max-pools.
function vggBlocks(depth: 11 | 16, batchNorm: boolean): Block[] {
  const convs = depth === 11 ? [1, 1, 2, 2, 2] : [2, 2, 3, 3, 3];
  const perConv = batchNorm ? 3 : 2;
  const blocks: Block[] = [];
  let i = 0;
  convs.forEach((n, s) => {
    const count = n * perConv + 1; // + the max-pool
    blocks.push({ name: `stage${s + 1}`, paths: Array.from({ length: count }, (_, k) => `features.${i + k}`) });
    i += count;
  });
  blocks.push({ name: 'classifier', paths: ['classifier.0', 'classifier.3'] });
  blocks.push({ name: 'head', paths: ['classifier.6'] });
  return blocks;
}

function vgg(depth: 11 | 16, batchNorm: boolean) {
  const arch = `vgg${depth}${batchNorm ? '_bn' : ''}`;
  return (o: VisionOptions = {}): Architecture =>
    build(arch, {
      kind: 'VGG',
      options: { depth, batchNorm, numClasses: checkClasses(arch, o), dropout: o.dropout ?? 0.5 },
      blocks: vggBlocks(depth, batchNorm),
      head: 'classifier.6',
      stem: { path: 'features.0', stride: 1, padding: 1 },
    });
}

/** The stem convolution's path per architecture (known without building the model). */
export const STEM_PATHS: Record<string, string> = {
  resnet18: 'conv1',
  resnet34: 'conv1',
  resnet50: 'conv1',
  resnet101: 'conv1',
  resnet152: 'conv1',
  vgg11: 'features.0',
  vgg11_bn: 'features.0',
  vgg16: 'features.0',
  vgg16_bn: 'features.0',
  efficientnet_b0: 'features.0.0',
};

/** The head's path per architecture (known without building the model). */
export const HEAD_PATHS: Record<string, string> = {
  resnet18: 'fc',
  resnet34: 'fc',
  resnet50: 'fc',
  resnet101: 'fc',
  resnet152: 'fc',
  vgg11: 'classifier.6',
  vgg11_bn: 'classifier.6',
  vgg16: 'classifier.6',
  vgg16_bn: 'classifier.6',
  efficientnet_b0: 'classifier.1',
};

export const resnet18 = resnet(18);
export const resnet34 = resnet(34);
export const resnet50 = resnet(50);
export const resnet101 = resnet(101);
export const resnet152 = resnet(152);
export const vgg11 = vgg(11, false);
export const vgg11Bn = vgg(11, true);
export const vgg16 = vgg(16, false);
export const vgg16Bn = vgg(16, true);

export function efficientnetB0(o: VisionOptions & { stochasticDepthProb?: number } = {}): Architecture {
  const blocks: Block[] = [
    { name: 'stem', paths: ['features.0'] },
    ...[1, 2, 3, 4, 5, 6, 7].map((i) => ({ name: `stage${i}`, paths: [`features.${i}`] })),
    { name: 'top', paths: ['features.8'] },
    { name: 'head', paths: ['classifier.1'] },
  ];
  return build('efficientnet_b0', {
    kind: 'EfficientNetB0',
    options: { numClasses: checkClasses('efficientnet_b0', o), dropout: o.dropout ?? 0.2, stochasticDepthProb: o.stochasticDepthProb ?? 0.2 },
    blocks,
    head: 'classifier.1',
    stem: { path: 'features.0.0', stride: 2, padding: 1 },
  });
}
