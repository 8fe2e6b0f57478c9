// Which built-in image architecture a state dict (a torchvision .pth) is,
// from its parameter names and shapes: every architecture's state dict is
// computed (expected-shapes.ts, sized like the checkpoint: ResNet width,
// stem kernel, input channels, head size) and compared with the file's.
// Block counts tell ResNet-18 from -34 and 50/101/152 apart, BatchNorm keys
// VGG from VGG_bn; a file that holds only part of a network (a truncated
// backbone) can fit several, and is then ambiguous.
import type { StateDict } from '../nn/module.js';
import { expectedShapes } from './expected-shapes.js';
import { HEAD_PATHS, STEM_PATHS } from './vision.js';

export interface ArchitectureInference {
  /** The one architecture whose whole state dict the file holds (the head may be missing), else null. */
  arch: string | null;
  /** Architectures whose names and shapes the file's tensors fit; several (or one that the file holds only part of) when arch is null. */
  candidates: string[];
  /** Options read off the tensors for `arch`: numClasses (head rows), and for ResNets width, inChannels, smallStem; inChannels for another stem. */
  options: Record<string, unknown>;
}

const VISION_ARCHS = Object.keys(HEAD_PATHS);
const sameShape = (a: readonly number[], b: readonly number[]) => a.length === b.length && a.every((d, i) => d === b[i]);

/** The options `arch` would need to have the file's shapes (before comparing them). */
function optionsFor(arch: string, sd: StateDict): Record<string, unknown> {
  const options: Record<string, unknown> = {};
  const head = sd[`${HEAD_PATHS[arch]}.weight`];
  if (head?.shape.length === 2) options.numClasses = head.shape[0];
  const stem = sd[`${STEM_PATHS[arch]}.weight`];
  if (stem?.shape.length === 4) {
    if (stem.shape[1] !== 3) options.inChannels = stem.shape[1];
    if (arch.startsWith('resnet')) {
      options.width = stem.shape[0];
      options.smallStem = stem.shape[2] === 3;
    }
  }
  return options;
}

/** How the file's tensors compare with `arch`'s: every tensor a tensor of the architecture (fits), and nothing but the head missing (complete). */
function compare(arch: string, sd: StateDict, options: Record<string, unknown>): { fits: boolean; complete: boolean } {
  const expected = expectedShapes(arch, options);
  if (!expected) return { fits: false, complete: false };
  // only ResNets build other stems; an adapted one (1 channel, ...) is the same architecture
  const stem = expected.get(`${STEM_PATHS[arch]}.weight`);
  if (stem && options.inChannels !== undefined) expected.set(`${STEM_PATHS[arch]}.weight`, [stem[0], options.inChannels as number, stem[2], stem[3]]);
  const head = HEAD_PATHS[arch];
  for (const [key, t] of Object.entries(sd)) {
    const shape = expected.get(key);
    if (!shape || !sameShape(shape, t.shape)) return { fits: false, complete: false };
  }
  const complete = [...expected.keys()].every((k) => k in sd || k.startsWith(`${head}.`) || k.endsWith('num_batches_tracked'));
  return { fits: true, complete };
}

/** The built-in image architecture of a state dict: see ArchitectureInference. */
export function inferVisionArchitecture(sd: StateDict): ArchitectureInference {
  const candidates: string[] = [];
  const complete: string[] = [];
  const optionsOf: Record<string, Record<string, unknown>> = {};
  if (Object.keys(sd).length)
    for (const arch of VISION_ARCHS) {
      const options = optionsFor(arch, sd);
      const c = compare(arch, sd, options);
      if (!c.fits) continue;
      candidates.push(arch);
      optionsOf[arch] = options;
      if (c.complete) complete.push(arch);
    }
  if (complete.length === 1) return { arch: complete[0], candidates: complete, options: optionsOf[complete[0]] };
  return { arch: null, candidates: complete.length ? complete : candidates, options: {} };
}
