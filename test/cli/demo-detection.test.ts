// `finetorch demo --task detection --quick` as a user runs it: the detector is
// pretrained on scenes of classes 0-4 (cached in the report folder with its
// sha256), every recipe runs on scenes of classes 5-9 and the report is
// written. Checked here: the table's structure, scores in range, the
// checkpoint's hash and class count, each recipe's trainable parameters
// counted from the architecture by hand. Which recipe wins is the demo's
// finding, not checked.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { io } from 'finetorch';
import { root } from '../reference';

let out = '';
let events: Array<Record<string, unknown>> = [];
let status: number | null = null;
let stderr = '';

const RECIPES = ['from scratch', 'head only', 'freeze first 3 blocks', 'full fine-tuning', 'differential LR + warmup'];

beforeAll(() => {
  out = mkdtempSync(join(tmpdir(), 'finetorch-demo-detection-'));
  const r = spawnSync(process.execPath, [join(root, 'dist', 'cli', 'main.js'), 'demo', '--task', 'detection', '--quick', '--json', '--out', out], {
    encoding: 'utf8',
    timeout: 600000,
  });
  status = r.status;
  stderr = r.stderr;
  events = r.stdout
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l));
}, 600000);
afterAll(() => rmSync(out, { recursive: true, force: true }));

describe('finetorch demo --task detection --quick', () => {
  it('exits 0 and reports every recipe with COCO scores in range', () => {
    expect(status, stderr).toBe(0);
    const results = events.filter((e) => e.type === 'result');
    expect(results.map((e) => e.run)).toEqual(RECIPES);
    for (const r of results)
      for (const k of ['map', 'map50', 'map75']) {
        expect(r[k] as number, `${r.run} ${k}`).toBeGreaterThanOrEqual(0);
        expect(r[k] as number, `${r.run} ${k}`).toBeLessThanOrEqual(1);
      }
    for (const r of results) expect(r.map as number).toBeLessThanOrEqual(r.map50 as number);
    const table = events.find((e) => e.type === 'table') as { columns: string[]; rows: Array<Record<string, unknown>> };
    expect(table.columns).toEqual(['recipe', 'trainable params', 'mAP', 'mAP@.5', 'mAP@.75', 'AR@100', 'epochs', 'train s', 'wall time s']);
    expect(table.rows.map((r) => r.recipe)).toEqual(RECIPES);
    for (const r of table.rows) expect(Number(r['wall time s'])).toBeGreaterThan(0);
    expect(events.at(-1)).toMatchObject({ type: 'end', status: 'ok', exitCode: 0 });
    const md = readFileSync(join(out, 'results.md'), 'utf8');
    expect(md).toMatch(/the layout is synthetic/);
    expect(md).toMatch(/\| head only \| 30750 \|/);
    expect(existsSync(join(out, 'curves.png'))).toBe(true);
  });

  it('trains what each recipe says: head only the box predictor, fewer parameters as more blocks freeze', () => {
    const rows = (events.find((e) => e.type === 'table') as { rows: Array<Record<string, number>> }).rows;
    const params = Object.fromEntries(rows.map((r) => [r.recipe, r['trainable params']]));
    // the new box predictor for 5 classes + background: cls_score 1024x6 + 6, bbox_pred 1024x24 + 24
    expect(params['head only']).toBe(1024 * 6 + 6 + 1024 * 24 + 24);
    // frozen BatchNorm: the fine-tuned body has no trainable affine parameters; from scratch (BatchNorm2d) has them:
    // twice the channels of ResNet-50's 53 BatchNorm layers (stem 64; per stage, bottlenecks of p, p, 4p and one downsample 4p)
    const bnChannels =
      64 +
      [
        [3, 64],
        [4, 128],
        [6, 256],
        [3, 512],
      ].reduce((n, [blocks, p]) => n + blocks * 6 * p + 4 * p, 0);
    expect(params['from scratch'] - params['full fine-tuning']).toBe(2 * bnChannels);
    expect(params['differential LR + warmup']).toBe(params['full fine-tuning']);
    expect(params['head only']).toBeLessThan(params['freeze first 3 blocks']);
    expect(params['freeze first 3 blocks']).toBeLessThan(params['full fine-tuning']);
  });

  it('keeps the pretrained detector (classes 0-4 + background) in the report folder with its sha256', () => {
    const pre = events.find((e) => e.type === 'pretrained') as { file: string; sha256: string; cached: boolean };
    expect(pre.cached).toBe(false);
    expect(pre.file).toBe(join(out, 'pretrained', 'detector-c0-4.safetensors'));
    expect(createHash('sha256').update(readFileSync(pre.file)).digest('hex')).toBe(pre.sha256);
    expect(JSON.parse(readFileSync(join(out, 'pretrained', 'pretrained.json'), 'utf8')).result.sha256).toBe(pre.sha256);
    const sd = io.load(pre.file);
    expect(sd['roi_heads.box_predictor.cls_score.weight'].shape).toEqual([6, 1024]);
    // trained with BatchNorm2d: its counters are in the checkpoint
    expect(Number(sd['backbone.body.bn1.num_batches_tracked'].item())).toBeGreaterThan(0);
    const summary = JSON.parse(readFileSync(join(out, 'results.json'), 'utf8'));
    expect(Object.keys(summary.recipes)).toEqual(RECIPES);
    expect(summary.pretrained.sha256).toBe(pre.sha256);
  });
});
