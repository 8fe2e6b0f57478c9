// models.load checks a checkpoint against the shapes an architecture will
// have before building it: those shapes, computed from the options alone,
// must be exactly what the built model's state dict holds.
import { describe, it, expect } from 'vitest';
import { models } from 'finetorch';
import { expectedShapes } from '../../dist/models/expected-shapes.js';

const cases: Array<[string, Record<string, unknown>]> = [
  ['resnet18', { numClasses: 7 }],
  ['resnet18', { numClasses: 3, width: 8, inChannels: 1, smallStem: true }],
  ['resnet34', { numClasses: 5, width: 16 }],
  ['resnet50', { numClasses: 4, width: 8 }],
  ['resnet101', { numClasses: 2, width: 8, inChannels: 2 }],
  ['resnet152', { numClasses: 10, width: 4, smallStem: true }],
  ['resnet50', {}],
  ['vgg11', { numClasses: 3 }],
  ['vgg11_bn', { numClasses: 3 }],
  ['vgg16', { numClasses: 3 }],
  ['vgg16_bn', { numClasses: 3 }],
  ['efficientnet_b0', { numClasses: 6 }],
];

describe('expected state-dict shapes of the vision architectures', () => {
  for (const [arch, options] of cases) {
    it(`${arch} ${JSON.stringify(options)}: same names, order and shapes as the built model`, () => {
      const model = models.architectures[arch as keyof typeof models.architectures](options);
      const built = Object.entries(model.stateDict()).map(([k, t]) => [k, t.shape]);
      model.dispose();
      expect([...expectedShapes(arch, options)!.entries()]).toEqual(built);
    });
  }
});
