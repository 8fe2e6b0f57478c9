// torchvision parity: every image architecture, built by finetorch and loaded
// from torchvision's own .pth (and from .safetensors), gives torchvision's
// eval-mode logits within 1e-4; one training step of ResNet-18 matches too.
import { describe, it, expect, beforeAll } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { torch, nn, optim, io, models, type Tensor } from 'finetorch';
import { flat } from '../helpers';
import { reference } from '../reference';

const ARCHS = ['resnet18', 'resnet34', 'resnet50', 'resnet101', 'resnet152', 'vgg11', 'vgg11_bn', 'vgg16', 'vgg16_bn', 'efficientnet_b0'] as const;
let dir = '';
beforeAll(() => {
  dir = reference('make-vision-fixtures.py', 'vision', [...ARCHS], [...ARCHS.map((a) => `${a}.io.safetensors`), 'resnet18.train.safetensors']);
}, 600000);

function maxAbsDiff(a: Tensor, b: Tensor): number {
  expect(a.shape).toEqual(b.shape);
  return a.sub(b).abs().max().item() as number;
}

describe('torchvision architectures match torchvision', () => {
  for (const arch of ARCHS) {
    for (const ext of ['pth', 'safetensors']) {
      it(`${arch} from .${ext}: eval logits within 1e-4`, () => {
        const file = join(dir, `${arch}.${ext}`);
        const model = models.load(file, { arch });
        // names and order are torchvision's, exactly
        const checkpoint = io.load(file);
        expect(Object.keys(model.stateDict())).toEqual(Object.keys(checkpoint));
        Object.values(checkpoint).forEach((t) => t.dispose());
        model.eval();
        const ref = io.load(join(dir, `${arch}.io.safetensors`));
        const diff = torch.noGrad(() => maxAbsDiff(model.forward(ref.input), ref.output));
        console.log(`parity ${arch} .${ext}: max abs diff ${diff.toExponential(2)}`);
        expect(diff).toBeLessThanOrEqual(1e-4);
        model.dispose();
      });
    }
  }

  it('resnet18: one SGD step in train mode (loss, gradients, BatchNorm statistics, weights)', () => {
    const model = models.load(join(dir, 'resnet18.pth'), { arch: 'resnet18' });
    const ref = io.load(join(dir, 'resnet18.io.safetensors'));
    const want = io.load(join(dir, 'resnet18.train.safetensors'));
    model.train();
    const opt = new optim.SGD(model.parameters(), { lr: 0.1, momentum: 0.9 });
    const loss = nn.functional.crossEntropy(model.forward(ref.input), want.target);
    expect(Math.abs((loss.item() as number) - (want.loss.item() as number))).toBeLessThan(1e-4);
    loss.backward();
    const params = Object.fromEntries(model.namedParameters());
    for (const name of ['conv1.weight', 'layer3.1.bn2.weight', 'fc.weight'])
      expect(maxAbsDiff(params[name].grad!, want[`grad.${name}`]), name).toBeLessThan(1e-4);
    opt.step();
    const sd = model.stateDict();
    for (const name of ['conv1.weight', 'bn1.running_mean', 'bn1.running_var', 'layer4.1.bn2.running_var', 'fc.bias'])
      expect(maxAbsDiff(sd[name], want[`after.${name}`]), name).toBeLessThan(1e-4);
  });
});

describe('blocks, head and fine-tuning entry points', () => {
  it('each architecture declares ordered blocks and its head', () => {
    const r = models.resnet50({ numClasses: 2 });
    expect(r.blocks().map((b) => b.name)).toEqual(['stem', 'layer1', 'layer2', 'layer3', 'layer4', 'head']);
    expect(r.head().path).toBe('fc');
    expect(r.head().module.parameters()[0].shape).toEqual([2, 2048]);
    const v = models.vgg16Bn({ numClasses: 3 });
    expect(v.blocks().map((b) => b.name)).toEqual(['stage1', 'stage2', 'stage3', 'stage4', 'stage5', 'classifier', 'head']);
    expect(v.blocks()[0].paths).toEqual(['features.0', 'features.1', 'features.2', 'features.3', 'features.4', 'features.5', 'features.6']);
    expect(v.head().path).toBe('classifier.6');
    const e = models.efficientnetB0({ numClasses: 4 });
    expect(e.blocks().map((b) => b.name)).toEqual(['stem', 'stage1', 'stage2', 'stage3', 'stage4', 'stage5', 'stage6', 'stage7', 'top', 'head']);
    expect(e.head().module.parameters()[0].shape).toEqual([4, 1280]);
    // every parameter belongs to exactly one block
    for (const m of [r, v, e]) {
      const inBlocks = m.blocks().flatMap((b) => b.modules.flatMap((mod) => mod.parameters().map((p) => p.id)));
      expect(new Set(inBlocks).size).toBe(m.parameters().length);
      expect(inBlocks.length).toBe(m.parameters().length);
    }
  });

  it('models.load with another numClasses keeps every weight but the head', () => {
    const file = join(dir, 'resnet18.pth');
    const model = models.load(file, { arch: 'resnet18', numClasses: 2 });
    expect(model.head().module.parameters()[0].shape).toEqual([2, 512]);
    const sd = io.load(file);
    expect(flat(model.stateDict()['layer4.1.conv2.weight'])).toEqual(flat(sd['layer4.1.conv2.weight']));
    model.eval();
    expect(model.forward(torch.randn([1, 3, 64, 64])).shape).toEqual([1, 2]);
  });

  it('swapping the head natively: forward uses the new head', () => {
    const model = models.resnet18({ numClasses: 1000 });
    model.replaceChild('fc', new nn.Linear(512, 2));
    expect(model.forward(torch.randn([2, 3, 64, 64])).shape).toEqual([2, 2]);
  });

  it('a model saved with io.save loads back identically', () => {
    const tmp = mkdtempSync(join(tmpdir(), 'finetorch-model-'));
    const a = models.efficientnetB0({ numClasses: 3 });
    io.save(a.stateDict(), join(tmp, 'm.safetensors'));
    const b = models.load(join(tmp, 'm.safetensors'), { arch: 'efficientnet_b0' });
    const x = torch.randn([1, 3, 64, 64]);
    a.eval();
    b.eval();
    expect(flat(b.forward(x))).toEqual(flat(a.forward(x)));
    rmSync(tmp, { recursive: true, force: true });
  });

  it('bad input: unknown arch, checkpoint of another architecture', () => {
    expect(() => models.load(join(dir, 'resnet18.pth'), { arch: 'resnet99' as never })).toThrow(/unknown arch "resnet99"/);
    expect(() => models.load(join(dir, 'resnet18.pth'), { arch: 'resnet50' })).toThrow(/does not fit[\s\S]*size mismatch for layer1\.0\.conv1\.weight/);
    expect(() => models.resnet18({ numClasses: 0 })).toThrow(/numClasses must be a positive integer/);
  });
});
