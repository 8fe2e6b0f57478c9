// finetune.adaptInputChannels: a pretrained RGB stem made to take 1 or n
// channels with timm's adapt_input_conv rule. The weights against the rule
// recomputed in Python on a torchvision ResNet-18 (make_input_channel_refs.py);
// a 1-channel Fashion-MNIST batch through the adapted model equals the
// original model on the grey images repeated to RGB (summed filters); a
// recipe on 1-channel data and that .pth, with no arch (finetorch train),
// infers the architecture, adapts the stem by itself, says both and records them.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { torch, io, nn, models, finetune, fashionMnist, loadRun, recipes, type Tensor } from 'finetorch';
import { cli } from '../cli/cli-helpers';

let dir = '';
let adapted: Record<string, Tensor> = {};
const maxAbs = (a: Tensor, b: Tensor) => a.sub(b).abs().max().item() as number;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'finetorch-input-channels-'));
  execFileSync('/usr/bin/python3', [join(__dirname, 'make_input_channel_refs.py'), dir], { stdio: ['ignore', 'ignore', 'inherit'], timeout: 120000 });
  adapted = io.load(join(dir, 'adapted.pth'));
}, 120000);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('adaptInputChannels', () => {
  it('the stem weights equal timm adapt_input_conv recomputed in Python (1, 2, 4, 5 channels)', () => {
    const sd = io.load(join(dir, 'resnet18.pth'));
    for (const n of [1, 2, 4, 5]) {
      const w = finetune.adaptConvWeight(sd['conv1.weight'], n);
      expect(w.shape).toEqual([64, n, 7, 7]);
      expect(maxAbs(w, adapted[`in${n}`]), `${n} channels`).toBeLessThan(1e-6);
    }
  });

  it('a 1-channel Fashion-MNIST batch through the adapted ResNet equals the original on the grey images repeated to RGB', () => {
    const { images } = fashionMnist('test');
    const x = images.narrow(0, 0, 16).unsqueeze(1).float().div(255);
    const original = models.load(join(dir, 'resnet18.pth'), { arch: 'resnet18' }).eval();
    const grey = models.load(join(dir, 'resnet18.pth'), { arch: 'resnet18' }).eval();
    expect(finetune.adaptInputChannels(grey, 1)).toEqual({ path: 'conv1', from: 3, to: 1 });
    expect(maxAbs(grey.stateDict()['conv1.weight'], adapted.in1)).toBeLessThan(1e-6);
    const expected = torch.noGrad(() => original.forward(x.repeat([1, 3, 1, 1])));
    const got = torch.noGrad(() => grey.forward(x));
    expect(got.shape).toEqual([16, 10]);
    expect(maxAbs(got, expected)).toBeLessThan(1e-5);
    // n channels: repeating RGB filters scaled by 3/n keeps the response to an image repeated the same way
    const six = models.load(join(dir, 'resnet18.pth'), { arch: 'resnet18' }).eval();
    finetune.adaptInputChannels(six, 6);
    const rgb = torch.rand([4, 3, 32, 32]);
    expect(
      maxAbs(
        torch.noGrad(() => six.forward(rgb.repeat([1, 2, 1, 1]))),
        torch.noGrad(() => original.forward(rgb)),
      ),
    ).toBeLessThan(1e-5);
    for (const m of [original, grey, six]) m.dispose();
  });

  it('EfficientNet-B0 (features.0.0) too; frozen stays frozen; a module without a declared stem is refused', () => {
    const net = models.efficientnetB0({ numClasses: 4 }).eval();
    const x = torch.rand([2, 1, 32, 32]);
    const before = torch.noGrad(() => net.forward(x.repeat([1, 3, 1, 1])));
    net.getSubmodule('features.0.0').parameters()[0].requiresGrad = false;
    expect(finetune.adaptInputChannels(net, 1)).toEqual({ path: 'features.0.0', from: 3, to: 1 });
    expect(
      maxAbs(
        torch.noGrad(() => net.forward(x)),
        before,
      ),
    ).toBeLessThan(1e-5);
    expect(net.getSubmodule('features.0.0').parameters()[0].requiresGrad).toBe(false);
    net.dispose();
    // a module of one's own: its stem is given
    const seq = new nn.Sequential(new nn.Conv2d(3, 4, 3, { padding: 1 }), new nn.ReLU());
    expect(() => finetune.adaptInputChannels(seq, 1)).toThrow(/does not declare its stem: pass \{path, stride, padding\}/);
    const rgb = torch.rand([1, 3, 8, 8]);
    const reference = seq.forward(rgb.sum(1, true).div(3).repeat([1, 3, 1, 1]));
    expect(finetune.adaptInputChannels(seq, 1, { path: '0', stride: 1, padding: 1 })).toEqual({ path: '0', from: 3, to: 1 });
    expect(maxAbs(seq.forward(rgb.sum(1, true).div(3)), reference)).toBeLessThan(1e-5);
    expect(() => finetune.adaptInputChannels(seq, 0)).toThrow(/inChannels must be an integer in 1\.\.4096, got 0/);
  });

  it('a recipe: 1-channel data and a torchvision .pth without arch: architecture inferred, stem adapted, both said and in run.json; loadRun rebuilds it', async () => {
    const ck = join(dir, 'resnet18.pth');
    const recipe = {
      model: { checkpoint: ck },
      data: { kind: 'fashionMnist', classes: ['Sandal', 'Bag'], perClass: 8, testPerClass: 4, val: 0.25 },
      optimizer: { type: 'SGD', lr: 1e-3 },
      checkpoint: { optimizerState: false },
      epochs: 1,
      batchSize: 12,
      out: join(dir, 'run'),
    };
    // the model before training: the adapted stem is timm's sum of the pretrained filters
    const built = recipes.buildModel(recipes.parseRecipe(recipe), 2, { inChannels: 1 });
    expect(maxAbs(built.model.stateDict()['conv1.weight'], adapted.in1)).toBeLessThan(1e-6);
    built.model.dispose();
    // through the CLI: the notes printed, and in the start event of events.jsonl and run.json
    writeFileSync(join(dir, 'recipe.json'), JSON.stringify(recipe));
    const r = cli(['train', '--config', join(dir, 'recipe.json'), '--pretty']);
    expect(r.status, r.stderr).toBe(0);
    const notes = [
      `architecture inferred: resnet18 from ${ck}`,
      "input channels: the pretrained stem conv1 adapted from 3 to 1 channels (timm's adapt_input_conv: RGB filters summed), as the data has",
    ];
    for (const note of notes) expect(r.stdout).toContain(note);
    const start = JSON.parse(readFileSync(join(dir, 'run', 'events.jsonl'), 'utf8').split('\n')[0]);
    expect(start).toMatchObject({ type: 'start', notes });
    const run = JSON.parse(readFileSync(join(dir, 'run', 'run.json'), 'utf8'));
    expect(run.model).toMatchObject({
      arch: 'resnet18',
      options: { inChannels: 1, numClasses: 2 },
      stemAdapted: { path: 'conv1', from: 3, to: 1 },
      archInferredFrom: ck,
    });
    expect(run.notes).toEqual(notes);
    const metrics = JSON.parse(readFileSync(join(dir, 'run', 'metrics.json'), 'utf8'));
    const loaded = loadRun(join(dir, 'run'));
    const again = await loaded.evaluate('test');
    expect(again.loss).toBeCloseTo(metrics.test.loss, 5);
    loaded.dispose();
  }, 120000);
});
