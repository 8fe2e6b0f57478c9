// The image architecture of a torchvision .pth from its names and shapes
// (files written by torchvision 0.14: make_arch_inference_refs.py): ResNet-18
// and -34 told apart by their block counts, ResNet-50 and EfficientNet-B0
// by their own names, the head's size read off; a network cut after layer2
// fits ResNet-18 and -34 alike and is ambiguous. A recipe without arch uses
// a unique guess and says so, and refuses an ambiguous one naming the candidates.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { io, models, recipes, ConfigError } from 'finetorch';

let dir = '';
const infer = (name: string) => {
  const sd = io.load(join(dir, name));
  try {
    return models.inferArchitecture(sd);
  } finally {
    Object.values(sd).forEach((t) => t.dispose());
  }
};

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'finetorch-infer-arch-'));
  execFileSync('/usr/bin/python3', [join(__dirname, 'make_arch_inference_refs.py'), dir], { stdio: ['ignore', 'ignore', 'inherit'], timeout: 120000 });
}, 120000);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('architecture inference from a .pth', () => {
  it('torchvision files: the architecture and its head size', () => {
    expect(infer('resnet18.pth')).toEqual({ arch: 'resnet18', candidates: ['resnet18'], options: { numClasses: 5, width: 64, smallStem: false } });
    expect(infer('resnet34.pth')).toMatchObject({ arch: 'resnet34', candidates: ['resnet34'], options: { numClasses: 5 } });
    expect(infer('resnet50.pth')).toMatchObject({ arch: 'resnet50', options: { numClasses: 1000 } });
    expect(infer('efficientnet_b0.pth')).toEqual({ arch: 'efficientnet_b0', candidates: ['efficientnet_b0'], options: { numClasses: 7 } });
  });

  it('part of a network fitting several architectures is ambiguous; foreign names fit none', () => {
    expect(infer('resnet18-to-layer2.pth')).toEqual({ arch: null, candidates: ['resnet18', 'resnet34'], options: {} });
    expect(infer('unknown.pth')).toEqual({ arch: null, candidates: [], options: {} });
  });

  it('a recipe without arch: a unique guess is used and said; an ambiguous one is refused naming the candidates', () => {
    const recipe = (checkpoint: string) => recipes.parseRecipe({ model: { checkpoint: join(dir, checkpoint) }, optimizer: { lr: 0.01 }, epochs: 1 });
    const built = recipes.buildModel(recipe('resnet18.pth'), 3);
    expect(built.model.arch).toBe('resnet18');
    expect(built.notes).toEqual([`architecture inferred: resnet18 from ${join(dir, 'resnet18.pth')}`]);
    expect(built.spec).toMatchObject({ arch: 'resnet18', options: { numClasses: 3 }, archInferredFrom: join(dir, 'resnet18.pth') });
    // the pretrained weights are in (the new head aside)
    const sd = io.load(join(dir, 'resnet18.pth'));
    expect(built.model.stateDict()['layer4.1.conv2.weight'].sub(sd['layer4.1.conv2.weight']).abs().max().item()).toBe(0);
    built.model.dispose();
    const refused = (() => {
      try {
        recipes.buildModel(recipe('resnet18-to-layer2.pth'), 3);
      } catch (err) {
        return err as ConfigError;
      }
      return null;
    })();
    expect(refused).toBeInstanceOf(ConfigError);
    expect(refused!.message).toMatch(
      /recipe\.model\.arch: missing, and .*resnet18-to-layer2\.pth cannot tell: its tensors fit several architectures \(resnet18, resnet34\): only part of a network is there; give model\.arch/,
    );
    expect(() => recipes.buildModel(recipe('unknown.pth'), 3)).toThrow(
      /unknown\.pth cannot tell: .*match none of the built-in image architectures; give model\.arch/,
    );
  });
});
