// `finetorch demo`: the shipped checkpoint is what its provenance says
// (checked by PyTorch rebuilding the model from torchvision's BasicBlock), and
// the quick demo runs as a user would run it, writes its report and shows
// fine-tuning beating training from scratch.
import { describe, it, expect, beforeAll } from 'vitest';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { torch, models } from 'finetorch';
import { reference, root } from '../reference';

const checkpoint = join(root, 'assets', 'fashion-resnet18w16-c0-4.safetensors');
const provenance = JSON.parse(readFileSync(checkpoint.replace('.safetensors', '.json'), 'utf8'));

describe('the demo checkpoint', () => {
  let ref: { logits64: number[][]; accuracy0to4: number; count0to4: number };
  beforeAll(() => {
    const sha = createHash('sha256').update(readFileSync(checkpoint)).digest('hex');
    expect(sha).toBe(provenance.sha256);
    const dir = reference('make-demo-reference.py', `demo-${sha.slice(0, 12)}`, [checkpoint], ['demo-reference.json']);
    ref = JSON.parse(readFileSync(join(dir, 'demo-reference.json'), 'utf8'));
  }, 300000);

  it('is small and loads without naming its architecture', () => {
    const size = readFileSync(checkpoint).length;
    expect(size).toBeLessThan(5 * 1024 * 1024);
    const model = models.load(checkpoint);
    expect(model.arch).toBe('resnet18');
    expect(model.archOptions()).toMatchObject({ width: 16, inChannels: 1, smallStem: true, numClasses: 5 });
    expect(model.blocks().map((b) => b.name)).toEqual(['stem', 'layer1', 'layer2', 'layer3', 'layer4', 'head']);
    model.dispose();
    // naming the same arch (options left undefined) keeps the saved options; another arch is an error listing the misfits
    const named = models.load(checkpoint, { arch: 'resnet18', width: undefined, numClasses: 3 });
    expect(named.archOptions()).toMatchObject({ width: 16, inChannels: 1, smallStem: true, numClasses: 3 });
    named.dispose();
    expect(() => models.load(checkpoint, { arch: 'resnet34' })).toThrow(/does not fit/);
  });

  it("gives PyTorch's logits, and PyTorch measures the accuracy its provenance claims", async () => {
    const { fashion, prepare } = await import('../../dist/cli/demo/tasks.js');
    const model = models.load(checkpoint);
    model.eval();
    const raw = fashion('test').images.narrow(0, 0, 64);
    const logits = torch.noGrad(() => model.forward(prepare(raw))).toArray() as number[][];
    let maxDiff = 0;
    logits.forEach((row, i) =>
      row.forEach((v, j) => {
        maxDiff = Math.max(maxDiff, Math.abs(v - ref.logits64[i][j]));
      }),
    );
    expect(maxDiff).toBeLessThan(1e-4);
    expect(ref.count0to4).toBe(5000);
    expect(Math.abs(ref.accuracy0to4 - provenance.test.accuracy)).toBeLessThanOrEqual(1 / 5000);
    expect(ref.accuracy0to4).toBeGreaterThan(0.85);
  });
});

describe('finetorch demo --quick', () => {
  it('fine-tunes, beats from-scratch, and writes the report folder', async () => {
    const out = mkdtempSync(join(tmpdir(), 'finetorch-demo-'));
    const r = spawnSync(process.execPath, [join(root, 'dist', 'cli', 'main.js'), 'demo', '--quick', '--json', '--out', out], {
      encoding: 'utf8',
      timeout: 600000,
    });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const events = r.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(events[0].type).toBe('start');
    const done = events[events.length - 1];
    expect([done.type, done.status, done.exitCode]).toEqual(['end', 'ok', 0]);
    expect(events.filter((e) => e.type === 'table')).toHaveLength(2);
    const results = events.filter((e) => e.type === 'result');
    expect(results.filter((e) => e.task === 'classes 5-9').map((e) => e.run)).toEqual([
      'from scratch',
      'head only',
      'freeze first 4 blocks',
      'full fine-tuning',
      'differential LR + warmup',
    ]);
    expect(results.filter((e) => e.task === 'imbalanced 1:20')).toHaveLength(2);
    // the seed's claim, measured: some fine-tuning strategy beats training from scratch
    const scratch = results.find((e) => e.run === 'from scratch').accuracy;
    const best = Math.max(...results.filter((e) => e.task === 'classes 5-9' && e.run !== 'from scratch').map((e) => e.accuracy));
    console.log(`demo --quick: best fine-tuned ${(best * 100).toFixed(1)}% vs from scratch ${(scratch * 100).toFixed(1)}% in ${done.seconds.toFixed(0)} s`);
    expect(best).toBeGreaterThan(scratch);
    for (const e of results) expect(e.accuracy).toBeGreaterThan(e.task === 'classes 5-9' ? 0.3 : 0.5);
    const json = JSON.parse(readFileSync(join(out, 'results.json'), 'utf8'));
    expect(json.fineTunedBeatsScratch).toBe(true);
    expect(json.scratchAccuracy).toBeCloseTo(scratch, 12);
    const md = readFileSync(join(out, 'results.md'), 'utf8');
    expect(md).toContain('| differential LR + warmup |');
    expect(md).toContain('| focal (gamma 2, alpha 0.25/0.75) |');
    const png = await sharp(join(out, 'curves.png')).metadata();
    expect([png.format, png.width, png.height]).toEqual(['png', 1000, 420]);
    rmSync(out, { recursive: true, force: true });
  }, 600000);
});
