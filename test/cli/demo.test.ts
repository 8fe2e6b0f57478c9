// `finetorch demo`: the shipped checkpoint is what its provenance says
// (checked by PyTorch rebuilding the model from torchvision's BasicBlock), and
// the quick demo runs as a user would run it, writes its report and shows
// fine-tuning beating training from scratch; its backbone adapted by
// reconstruction keeps the original's names and shapes, with new values, and
// is reused by a second run in the same report folder.
import { describe, it, expect, beforeAll } from 'vitest';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { torch, models, io } from 'finetorch';
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
      'head only, adapted',
      'freeze first 4 blocks',
      'freeze first 4 blocks, adapted',
      'full fine-tuning',
      'full fine-tuning, adapted',
      'differential LR + warmup',
      'differential LR + warmup, adapted',
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
    expect(md).toContain('| head only, adapted |');
    expect(md).toContain('| focal (gamma 2, alpha 0.25/0.75) |');
    expect(md).toContain('**Adapting the backbone by reconstruction first: head only ');
    const png = await sharp(join(out, 'curves.png')).metadata();
    expect([png.format, png.width, png.height]).toEqual(['png', 1000, 420]);

    // the adaptation: made once, from training images only, written in the report folder
    const adaptation = events.find((e) => e.type === 'adaptation');
    expect(adaptation.cached).toBe(false);
    expect(adaptation.backbone).toBe(join(out, 'adaptation', 'backbone.safetensors'));
    expect(adaptation.config.data).toMatchObject({ kind: 'fashionMnist', classes: [5, 6, 7, 8, 9] });
    expect(adaptation.samples.train + adaptation.samples.val).toBe(5 * adaptation.config.data.perClass);
    expect(adaptation.val.mse).toBeGreaterThan(0);
    expect(adaptation.val.mse).toBeLessThan(1); // sanity: below the pixel variance (about 1 after normalisation)
    // the adapted backbone has the original's names and shapes (head left out) and different values
    const original = io.load(checkpoint);
    const adapted = io.load(adaptation.backbone);
    const backboneKeys = Object.keys(original).filter((k) => !k.startsWith('fc.'));
    expect(Object.keys(adapted).sort()).toEqual(backboneKeys.sort());
    let changed = 0;
    for (const k of backboneKeys) {
      expect(adapted[k].shape).toEqual(original[k].shape);
      if (adapted[k].dtype === 'int64') continue; // num_batches_tracked
      const diff = adapted[k].sub(original[k]).abs().max().item() as number;
      if (diff > 1e-4) changed++;
    }
    expect(changed).toBeGreaterThan(backboneKeys.length / 2);
    for (const t of [...Object.values(original), ...Object.values(adapted)]) t.dispose();
    // what adaptation did, per strategy, in valid ranges
    expect(Object.keys(json.adaptationEffect)).toEqual(['head only', 'freeze first 4 blocks', 'full fine-tuning', 'differential LR + warmup']);
    for (const e of Object.values(json.adaptationEffect) as Array<Record<string, number | string>>) {
      for (const k of ['original', 'adapted']) expect(e[k]).toBeGreaterThan(0.3);
      expect(Math.abs((e.adapted as number) - (e.original as number) - (e.difference as number))).toBeLessThan(1e-9);
      expect(['helped', 'hurt', 'no clear difference']).toContain(e.verdict);
    }

    // a second run into the same folder reuses the adapted backbone (a short one: 1 epoch, 2 labels per class)
    const bytes = readFileSync(adaptation.backbone);
    const again = spawnSync(
      process.execPath,
      [join(root, 'dist', 'cli', 'main.js'), 'demo', '--quick', '--json', '--out', out, '--epochs', '1', '--labels-per-class', '2'],
      { encoding: 'utf8', timeout: 600000 },
    );
    expect(again.stderr).toBe('');
    expect(again.status).toBe(0);
    const reused = again.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l))
      .find((e) => e.type === 'adaptation');
    expect(reused.cached).toBe(true);
    expect(readFileSync(adaptation.backbone).equals(bytes)).toBe(true);
    rmSync(out, { recursive: true, force: true });
  }, 900000);
});
