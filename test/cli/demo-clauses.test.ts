// `finetorch demo --task clauses --quick` as a user runs it: every approach of
// the clause-extraction table runs (keywords, BiLSTM-CRF from scratch, the
// small BERT with linear / CRF / BiLSTM-CRF heads, general and adapted) and the
// report is written. Checked independently of the demo: its data files split
// by source package (no package in both training and test), the training
// budget, the keyword row's spans found again from the test file, and each
// trained row's saved run (run.json names the head the row says). F1 figures
// are only checked to be valid: what they are is the demo's finding.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { root } from '../reference';

let out = '';
let events: Array<Record<string, unknown>> = [];
let status: number | null = null;
let stderr = '';

const readJsonl = (path: string) =>
  readFileSync(path, 'utf8')
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l));

beforeAll(() => {
  out = mkdtempSync(join(tmpdir(), 'finetorch-demo-clauses-'));
  const r = spawnSync(process.execPath, [join(root, 'dist', 'cli', 'main.js'), 'demo', '--task', 'clauses', '--quick', '--json', '--out', out], {
    encoding: 'utf8',
    timeout: 900000,
  });
  status = r.status;
  stderr = r.stderr;
  events = r.stdout
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l));
}, 900000);
afterAll(() => rmSync(out, { recursive: true, force: true }));

describe('finetorch demo --task clauses --quick', () => {
  it('exits 0 and reports every approach with valid entity F1', () => {
    expect(status, stderr).toBe(0);
    const results = events.filter((e) => e.type === 'result');
    expect(results.map((e) => e.run)).toEqual([
      'keywords (no training)',
      'BiLSTM-CRF, from scratch',
      'BERT + linear, cross-entropy',
      'BERT + linear, focal',
      'BERT + CRF',
      "BERT + BiLSTM-CRF, focal (the seed's)",
      'adapted BERT + BiLSTM-CRF, focal',
    ]);
    for (const r of results)
      for (const k of ['microF1', 'macroF1', 'rareF1']) {
        expect(r[k] as number).toBeGreaterThanOrEqual(0);
        expect(r[k] as number).toBeLessThanOrEqual(1);
      }
    // the keyword baseline finds clauses (it needs no training)
    expect(results[0].microF1 as number).toBeGreaterThan(0.3);
    expect(events.at(-1)).toMatchObject({ type: 'end', status: 'ok', exitCode: 0 });
    const summary = JSON.parse(readFileSync(join(out, 'results.json'), 'utf8'));
    expect(summary.types).toHaveLength(15);
    expect(summary.rare).toHaveLength(5);
    expect(readFileSync(join(out, 'results.md'), 'utf8')).toMatch(/\| 32 \| BERT \+ BiLSTM-CRF, focal \(the seed's\) \|/);
  });

  it('trains on the budget and tests on other packages', () => {
    const dir = join(out, 'data', 'budget-32-seed-0');
    const train = readJsonl(join(dir, 'train.jsonl'));
    const test = readJsonl(join(dir, 'test.jsonl'));
    expect(train).toHaveLength(32);
    expect(test).toHaveLength(40);
    const packages = (docs: Array<{ package: string }>) => new Set(docs.map((d) => d.package));
    const shared = [...packages(train)].filter((p) => packages(test).has(p));
    expect(shared).toEqual([]);
    // spans lie inside their text and carry one of the summary's types
    const types = new Set(JSON.parse(readFileSync(join(out, 'results.json'), 'utf8')).types);
    for (const d of [...train, ...test])
      for (const s of d.spans) {
        expect(s.start).toBeGreaterThanOrEqual(0);
        expect(s.end).toBeLessThanOrEqual(d.text.length);
        expect(types.has(s.label)).toBe(true);
      }
  });

  it('keeps a run folder per trained row, with the head the row names', () => {
    const runs = join(out, 'runs', 'budget-32-seed-0');
    const folders = readdirSync(runs).sort();
    expect(folders).toHaveLength(6);
    const head = (name: string) => JSON.parse(readFileSync(join(runs, name, 'run.json'), 'utf8')).model;
    const seeds = folders.find((f) => f.startsWith('bert-bilstm-crf'))!;
    expect(head(seeds).arch).toBe('bertTagger');
    expect(head(seeds).options.head).toBe('bilstm-crf');
    expect(head(folders.find((f) => f.startsWith('bilstm-crf'))!).arch).toBe('bilstmCrf');
    for (const f of folders) expect(existsSync(join(runs, f, 'metrics.json'))).toBe(true);
  });
});
