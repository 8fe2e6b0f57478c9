// What every built-in architecture declares for the recipes: its ordered
// blocks (stem, stages, head) and which module is its head.
import { Module } from '../nn/module.js';
import type { ArchitectureKind } from '../native/binding.js';

export interface Block {
  /** 'stem', 'layer1', ..., 'head'. */
  name: string;
  /** Dotted paths of the modules that make up the block. */
  paths: string[];
}

/** The stem convolution of an image model: its dotted path and the geometry a replacement needs (kernel and bias come from its weights). */
export interface StemConv {
  path: string;
  stride: number;
  padding: number;
}

export interface ArchitectureSpec {
  /** The native module kind and its options. */
  kind: ArchitectureKind;
  options: Record<string, unknown>;
  blocks: Block[];
  /** Dotted path of the head (the last block's classifier layer). */
  head: string;
  /** Image models: the first convolution, which sees the input channels (what adaptInputChannels rebuilds). */
  stem?: StemConv;
  /** Names of forward()'s arguments, for models that take named inputs (text models). */
  inputNames?: readonly string[];
}

/** A built-in architecture: an nn.Module that knows its blocks and its head. */
export class Architecture extends Module {
  /** The architecture's name ('resnet50', 'vgg16_bn', ...). */
  readonly arch!: string;
  private spec!: ArchitectureSpec;

  static wrap(handle: Module['handle'], arch: string, spec: ArchitectureSpec): Architecture {
    const m = Module.fromHandle(handle) as Architecture;
    Object.setPrototypeOf(m, Architecture.prototype);
    Object.defineProperty(m, 'arch', { value: arch, enumerable: true });
    Object.defineProperty(m, 'spec', { value: spec, enumerable: false });
    if (spec.inputNames) m.inputNames = spec.inputNames;
    return m;
  }

  /** The ordered blocks, bottom (stem) to top (head), with their modules. */
  blocks(): Array<Block & { modules: Module[] }> {
    return this.spec.blocks.map((b) => ({ ...b, paths: [...b.paths], modules: b.paths.map((p) => this.getSubmodule(p)) }));
  }

  /** The blocks' names and paths only (no module handles are made). */
  /** The options it was built with (depth, width, numClasses, ...), as saved in a checkpoint's metadata. */
  archOptions(): Record<string, unknown> {
    return { ...this.spec.options };
  }

  blockPaths(): Block[] {
    return this.spec.blocks.map((b) => ({ ...b, paths: [...b.paths] }));
  }

  /** Image models: the first convolution (ResNet conv1, VGG features.0, EfficientNet features.0.0), or null. */
  stemConv(): StemConv | null {
    return this.spec.stem ? { ...this.spec.stem } : null;
  }

  /** The head: its dotted path and module (ResNet `fc`, VGG `classifier.6`, ...). */
  head(): { path: string; module: Module } {
    return { path: this.spec.head, module: this.getSubmodule(this.spec.head) };
  }
}
