// `finetorch train / eval / predict` for a tagger (the shipped small BERT with
// a CRF head on a toy CoNLL task), run as a user would: train's JSON Lines
// events carry the val entity F1 and the test entities; eval's entity report
// equals the counts of predict's spans against the gold spans, made here by
// set arithmetic on character spans; predict's offsets index the text they
// name; --resume continues; bad recipes and bad tags name the field / line.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cli, only, root, type Event } from './cli-helpers';

let dir = '';

/** Toy sentences with PER (one or two words) and LOC entities, from a seeded generator: [word, tag] rows. */
function sentences(n: number, seed: number): Array<Array<[string, string]>> {
  let s = seed;
  const pick = <T>(xs: T[]) => {
    s = (s * 1103515245 + 12345) % 2 ** 31;
    return xs[s % xs.length];
  };
  const names = ['Alice', 'Bob', 'Carol', 'Dave', 'Erin', 'Frank'];
  const places = ['Paris', 'London', 'Berlin', 'Rome', 'Oslo'];
  const verbs = ['visited', 'left', 'saw', 'liked'];
  return Array.from({ length: n }, (_, i) =>
    i % 2
      ? [
          [pick(names), 'B-PER'],
          ['Smith', 'I-PER'],
          [pick(verbs), 'O'],
          [pick(places), 'B-LOC'],
          ['.', 'O'],
        ]
      : [
          ['yesterday', 'O'],
          [pick(names), 'B-PER'],
          [pick(verbs), 'O'],
          ['the', 'O'],
          ['city', 'O'],
          ['of', 'O'],
          [pick(places), 'B-LOC'],
        ],
  );
}
const conll = (docs: Array<Array<[string, string]>>) => docs.map((d) => d.map(([w, t]) => `${w} ${t}`).join('\n') + '\n').join('\n');

/** Gold character spans of a sentence whose text is its words joined by single spaces (IOB2, written out by hand). */
function goldSpans(doc: Array<[string, string]>): Array<{ label: string; start: number; end: number }> {
  const spans: Array<{ label: string; start: number; end: number }> = [];
  let at = 0;
  for (const [w, t] of doc) {
    if (t.startsWith('B-')) spans.push({ label: t.slice(2), start: at, end: at + w.length });
    else if (t.startsWith('I-')) spans[spans.length - 1].end = at + w.length;
    at += w.length + 1;
  }
  return spans;
}

const testDocs = sentences(12, 3);

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'ft-cli-tagger-'));
  writeFileSync(join(dir, 'train.conll'), conll(sentences(48, 1)));
  writeFileSync(join(dir, 'val.conll'), conll(sentences(8, 2)));
  writeFileSync(join(dir, 'test.conll'), conll(testDocs));
  writeFileSync(
    join(dir, 'tagger.yaml'),
    [
      'task: tokenClassification',
      `model: { checkpoint: ${join(root, 'assets', 'bert-tiny-debian')}, head: crf }`,
      'data: { kind: conll, path: train.conll, valPath: val.conll, testPath: test.conll, split: { train: 1, val: 0, test: 0 }, maxLength: 32 }',
      'optimizer: { lr: 1.0e-4, headLr: 1.0e-2 }',
      'epochs: 2',
      'batchSize: 8',
      'out: run',
    ].join('\n') + '\n',
  );
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('finetorch train / eval / predict with a tagger', () => {
  it('train: JSON Lines with val entity F1 per epoch, best/ and last/, the test entities; --resume continues', () => {
    const r = cli(['train', '--config', join(dir, 'tagger.yaml'), '--json']);
    expect(r.status, r.stderr).toBe(0);
    const start = only(r.events, 'start')[0];
    expect(start.classes).toEqual(['O', 'B-LOC', 'B-PER', 'I-PER']);
    expect(start.samples).toEqual({ train: 48, val: 8, test: 12 });
    const epochs = only(r.events, 'epoch') as Array<Event & { val: { entities: { f1: number } }; best: boolean }>;
    expect(epochs.length).toBe(2);
    for (const e of epochs) expect(e.val.entities.f1).toBeGreaterThanOrEqual(0);
    expect(only(r.events, 'checkpoint').map((e) => String(e.path).split('/').pop())).toContain('best');
    const evalEvent = only(r.events, 'eval')[0] as Event & { entities: { support: number }; report: { types: Record<string, unknown> } };
    expect(evalEvent.split).toBe('test');
    expect(evalEvent.entities.support).toBe(24); // 12 sentences, a PER and a LOC each
    expect(Object.keys(evalEvent.report.types)).toEqual(['LOC', 'PER']);
    const end = only(r.events, 'end')[0] as Event & { test: { entities: { f1: number } } };
    expect(end.test.entities.f1).toBe((evalEvent as unknown as { entities: { f1: number } }).entities.f1);
    expect(existsSync(join(dir, 'run', 'events.jsonl'))).toBe(true);
    // one more epoch from last/
    const more = cli(['train', '--resume', join(dir, 'run', 'last'), '--epochs', '3', '--json']);
    expect(more.status, more.stderr).toBe(0);
    expect(only(more.events, 'resumed')[0]).toMatchObject({ epoch: 2, batch: 0 });
    expect(only(more.events, 'epoch').map((e) => e.epoch)).toEqual([2]);
  }, 300_000);

  it("eval: the entity report equals predict's spans counted against the gold spans", () => {
    const ev = cli(['eval', '--checkpoint', join(dir, 'run'), '--json']);
    expect(ev.status, ev.stderr).toBe(0);
    const report = (only(ev.events, 'eval')[0] as unknown as { report: { types: Record<string, Row>; microAvg: Row; macroAvg: Row } }).report;
    type Row = { precision: number; recall: number; f1: number; support: number };

    // the same documents as text (CoNLL words joined by spaces) through predict
    const texts = testDocs.map((d) => d.map(([w]) => w).join(' '));
    writeFileSync(join(dir, 'test.txt'), texts.join('\n') + '\n');
    const pr = cli(['predict', '--checkpoint', join(dir, 'run'), join(dir, 'test.txt'), '--json']);
    expect(pr.status, pr.stderr).toBe(0);
    const predictions = only(pr.events, 'prediction') as Array<
      Event & { text: string; spans: Array<{ label: string; start: number; end: number; text: string }> }
    >;
    expect(predictions.map((p) => p.text)).toEqual(texts);
    const count: Record<string, { tp: number; pred: number; gold: number }> = {};
    const at = (t: string) => (count[t] ??= { tp: 0, pred: 0, gold: 0 });
    predictions.forEach((p, i) => {
      const gold = goldSpans(testDocs[i]);
      const key = (s: { label: string; start: number; end: number }) => `${s.label}:${s.start}:${s.end}`;
      const goldKeys = new Set(gold.map(key));
      for (const s of gold) at(s.label).gold++;
      for (const s of p.spans) {
        at(s.label).pred++;
        if (goldKeys.has(key(s))) at(s.label).tp++;
      }
    });
    const prf = (c: { tp: number; pred: number; gold: number }) => {
      const precision = c.pred ? c.tp / c.pred : 0;
      const recall = c.gold ? c.tp / c.gold : 0;
      return { precision, recall, f1: precision + recall ? (2 * precision * recall) / (precision + recall) : 0, support: c.gold };
    };
    for (const type of ['LOC', 'PER']) {
      const want = prf(at(type));
      for (const k of ['precision', 'recall', 'f1', 'support'] as const) expect(report.types[type][k], `${type} ${k}`).toBeCloseTo(want[k], 12);
    }
    const all = Object.values(count).reduce((a, c) => ({ tp: a.tp + c.tp, pred: a.pred + c.pred, gold: a.gold + c.gold }), { tp: 0, pred: 0, gold: 0 });
    expect(report.microAvg.f1).toBeCloseTo(prf(all).f1, 12);
    expect(report.macroAvg.f1).toBeCloseTo((prf(at('LOC')).f1 + prf(at('PER')).f1) / 2, 12);
    expect(all.gold).toBe(24);

    const text = cli(['eval', '--checkpoint', join(dir, 'run'), '--pretty']);
    expect(text.status, text.stderr).toBe(0);
    expect(text.stdout).toMatch(/entities \(test, seqeval\)/);
    expect(text.stdout).toMatch(/micro avg/);
    expect(text.stdout).toMatch(/weighted avg/);
  }, 300_000);

  it('predict: spans of lines, JSONL rows and --text, whose offsets index the text they name', () => {
    writeFileSync(join(dir, 'new.jsonl'), JSON.stringify({ text: 'Carol Smith saw Oslo .' }) + '\n' + JSON.stringify({ text: '' }) + '\n');
    const r = cli(['predict', '--checkpoint', join(dir, 'run'), join(dir, 'new.jsonl'), '--text', 'yesterday Erin left the city of Rome', '--json']);
    expect(r.status, r.stderr).toBe(0);
    const p = only(r.events, 'prediction') as Array<
      Event & { input: string; text: string; spans: Array<{ label: string; start: number; end: number; text: string }> }
    >;
    expect(p.map((x) => x.input)).toEqual([`${join(dir, 'new.jsonl')}:1`, `${join(dir, 'new.jsonl')}:2`, 'text 1']);
    for (const x of p) for (const s of x.spans) expect(x.text.slice(s.start, s.end)).toBe(s.text);
    // the trained model on sentences of its training patterns
    expect(p[0].spans).toEqual([
      { label: 'PER', start: 0, end: 11, text: 'Carol Smith' },
      { label: 'LOC', start: 16, end: 20, text: 'Oslo' },
    ]);
    expect(p[1].spans).toEqual([]);
    expect(p[2].spans).toEqual([
      { label: 'PER', start: 10, end: 14, text: 'Erin' },
      { label: 'LOC', start: 32, end: 36, text: 'Rome' },
    ]);
    const pretty = cli(['predict', '--checkpoint', join(dir, 'run'), '--text', 'Carol Smith saw Oslo .', '--pretty']);
    expect(pretty.status, pretty.stderr).toBe(0);
    expect(pretty.stdout).toMatch(/spans \(2 in 1 text\)/);
    expect(pretty.stdout).toMatch(/PER .* Carol Smith/);
  }, 300_000);

  it('errors: a recipe field that does not fit (exit 2), a tag the model does not know and a tag wrong for the scheme (exit 3, file:line)', () => {
    const bad = cli(['train', '--config', join(dir, 'tagger.yaml'), '--set', 'loss.type=crossEntropy', '--out', join(dir, 'bad'), '--json']);
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/recipe\.loss\.type: a crf head trains its CRF on 'crf' or 'crf\+focal'/);
    writeFileSync(join(dir, 'odd.conll'), 'Alice B-PER\nleft O\n\nBob B-ORG\nleft O\n');
    const odd = cli(['eval', '--checkpoint', join(dir, 'run'), '--set', `data.testPath=${join(dir, 'odd.conll')}`, '--json']);
    expect(odd.status).toBe(3);
    expect(odd.stderr).toMatch(/odd\.conll:4: tag "B-ORG" .* is not one of the model's tags/);
    writeFileSync(join(dir, 'wrong.conll'), 'Alice B-PER\nleft O\n\nBob I-LOC\n');
    const wrong = cli(['train', '--config', join(dir, 'tagger.yaml'), '--set', `data.path=${join(dir, 'wrong.conll')}`, '--out', join(dir, 'wrong'), '--json']);
    expect(wrong.status).toBe(3);
    expect(wrong.stderr).toMatch(/wrong\.conll:4: .*I-LOC/);
  }, 300_000);
});
