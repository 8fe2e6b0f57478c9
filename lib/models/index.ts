// The `models` namespace: built-in architectures and loading them with weights.
import { load as loadStateDict } from '../io/index.js';
import { Architecture } from './architecture.js';
import * as vision from './vision.js';

export { Architecture } from './architecture.js';
export type { Block } from './architecture.js';
export type { VisionOptions } from './vision.js';

/** Architectures by the names torchvision uses. */
export const architectures = {
  resnet18: vision.resnet18, resnet34: vision.resnet34, resnet50: vision.resnet50, resnet101: vision.resnet101, resnet152: vision.resnet152,
  vgg11: vision.vgg11, vgg11_bn: vision.vgg11Bn, vgg16: vision.vgg16, vgg16_bn: vision.vgg16Bn,
  efficientnet_b0: vision.efficientnetB0,
} as const;
export type ArchitectureName = keyof typeof architectures;

/**
 * Builds `arch` and loads the checkpoint at `path` into it. With numClasses
 * different from the checkpoint's head, the head is left freshly initialised
 * (the fine-tuning case) and every other weight must load.
 */
export function load(path: string, options: { arch: ArchitectureName; numClasses?: number }): Architecture {
  const make = architectures[options?.arch];
  if (!make) throw new TypeError(`models.load: unknown arch ${JSON.stringify(options?.arch)} (expected one of ${Object.keys(architectures).join(', ')})`);
  const sd = loadStateDict(path);
  const probe = make({ numClasses: 1 });
  const headWeight = sd[`${probe.head().path}.weight`];
  probe.dispose();
  const checkpointClasses = headWeight?.shape[0];
  const numClasses = options.numClasses ?? checkpointClasses ?? 1000;
  const model = make({ numClasses });
  const result = model.loadStateDict(sd, { strict: false });
  const head = model.head().path + '.';
  const problems = [
    ...result.missingKeys.filter((k) => !(numClasses !== checkpointClasses && k.startsWith(head))).map((k) => `missing ${k}`),
    ...result.unexpectedKeys.map((k) => `unexpected ${k}`),
    ...result.mismatchedKeys.filter((m) => !m.key.startsWith(head)).map((m) => `size mismatch for ${m.key}: checkpoint [${m.got}], model [${m.expected}]`),
  ];
  if (problems.length) throw new Error(`models.load(${path}, ${options.arch}): the checkpoint does not fit:\n  ${problems.join('\n  ')}`);
  return model;
}

export const models = { ...vision, architectures, load } as const;
