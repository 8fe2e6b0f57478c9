// `finetorch inspect`: run as a user would (the built CLI in a child process)
// on checkpoints made by torchvision, TorchScript and the text references.
import { describe, it, expect, beforeAll } from 'vitest';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { reference, root } from '../reference';

// torchvision's published parameter counts (1000 classes) and head input widths
const PUBLISHED: Record<string, [number, number]> = {
  resnet18: [11_689_512, 512],
  resnet34: [21_797_672, 512],
  resnet50: [25_557_032, 2048],
  resnet101: [44_549_160, 2048],
  resnet152: [60_192_808, 2048],
  vgg11: [132_863_336, 4096],
  vgg11_bn: [132_868_840, 4096],
  vgg16: [138_357_544, 4096],
  vgg16_bn: [138_365_992, 4096],
  efficientnet_b0: [5_288_548, 1280],
};
const ARCHS = Object.keys(PUBLISHED);

let vision = '';
let text = '';
let scripted = '';
beforeAll(() => {
  vision = reference('make-vision-fixtures.py', 'vision', ARCHS, [...ARCHS.map((a) => `${a}.io.safetensors`), 'resnet18.train.safetensors']);
  scripted = reference('make-vision-fixtures.py', 'vision-jit', ['resnet18'], ['resnet18.script.pt', 'resnet18.trace.pt', 'resnet18.train.safetensors']);
  text = reference('make-text-fixtures.py', 'text', [], ['bert/io.safetensors', 'roberta/io.safetensors', 'distilbert/io.safetensors']);
}, 600000);

function run(...args: string[]) {
  return spawnSync(process.execPath, [join(root, 'dist', 'cli', 'main.js'), ...args], { encoding: 'utf8' });
}

describe('finetorch inspect', () => {
  for (const arch of ARCHS) {
    it(`recognises ${arch} and counts its parameters as torchvision does`, () => {
      const r = run('inspect', '--json', join(vision, `${arch}.pth`));
      expect(r.status, r.stderr).toBe(0);
      const report = JSON.parse(r.stdout);
      const [published, width] = PUBLISHED[arch];
      expect(report.architecture).toBe(arch);
      expect(report.numClasses).toBe(10);
      expect(report.parameters).toBe(published - 990 * (width + 1)); // the fixtures have 10 classes
      expect(report.blocks.reduce((n: number, b: { parameters: number }) => n + b.parameters, 0)).toBe(report.parameters);
    });
  }

  it('reads safetensors, TorchScript and Hugging Face checkpoints', () => {
    const st = JSON.parse(run('inspect', '--json', join(vision, 'resnet18.safetensors')).stdout);
    expect(st).toMatchObject({ format: 'safetensors', architecture: 'resnet18', head: { path: 'fc', shape: [10, 512] } });
    expect(st.dtypes).toEqual({ float32: 102, int64: 20 });
    const ts = JSON.parse(run('inspect', '--json', join(scripted, 'resnet18.script.pt')).stdout);
    expect(ts).toMatchObject({ format: 'torchscript', architecture: 'resnet18' });
    for (const arch of ['bert', 'roberta', 'distilbert']) {
      const hf = JSON.parse(run('inspect', '--json', join(text, arch, 'pytorch_model.bin')).stdout);
      expect(hf.architecture).toBe(arch);
      expect(hf.numClasses).toBe(3);
      expect(hf.blocks[0].name).toBe('embeddings');
    }
  });

  it('prints a readable report, and clear errors with exit codes', () => {
    const r = run('inspect', join(vision, 'resnet50.pth'));
    expect(r.stdout).toMatch(/architecture {2}resnet50 \(10 classes\)/);
    expect(r.stdout).toMatch(/head {10}fc \[10, 2048\]/);
    const bad = run('inspect', join(root, 'package.json'));
    expect(bad.status).toBe(1);
    expect(bad.stderr).toMatch(/not a checkpoint finetorch can read/);
    expect(run('inspect').status).toBe(2);
    expect(run('frobnicate').stderr).toMatch(/unknown command 'frobnicate'/);
  });
});
