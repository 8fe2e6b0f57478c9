// What train, eval and predict leave to look at, run as a user would on a
// tiny text task (a 1-layer BERT of width 16 on a CSV of three classes):
// train's curves.png and TensorBoard files (read back by TensorBoard 2.21:
// the values equal the events in events.jsonl), eval's report folder and
// per-class table, predict's texts and its accuracy on a labelled CSV
// (against a count done here).
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { transformersPython } from '../reference';
import { cli, only, parseEvents, type Event, type Run } from './cli-helpers';

let dir = '';
let train: Run;
const run = () => join(dir, 'runs', 'csv');
const POSITIVE = ['good', 'great', 'fine', 'nice', 'happy', 'love'];
const NEGATIVE = ['bad', 'awful', 'poor', 'sad', 'hate', 'terrible'];
const CLASSES = ['negative', 'neutral', 'positive'];

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'finetorch-cli-reports-'));
  const vocab = ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]', ...POSITIVE, ...NEGATIVE, 'the', 'movie', 'film', 'was', 'ok', 'plain'];
  writeFileSync(join(dir, 'vocab.txt'), vocab.join('\n') + '\n');
  writeFileSync(
    join(dir, 'config.json'),
    JSON.stringify({
      model_type: 'bert',
      vocab_size: vocab.length,
      hidden_size: 16,
      num_hidden_layers: 1,
      num_attention_heads: 2,
      intermediate_size: 32,
      max_position_embeddings: 16,
      type_vocab_size: 2,
    }),
  );
  const rows = Array.from({ length: 60 }, (_, i) => {
    const label = CLASSES[i % 3];
    const word = label === 'neutral' ? ['ok', 'plain'][i % 2] : (label === 'positive' ? POSITIVE : NEGATIVE)[Math.floor(i / 3) % 6];
    return { label, text: `the ${i % 2 ? 'movie' : 'film'} was ${word}` };
  });
  writeFileSync(join(dir, 'reviews.csv'), 'label,text\n' + rows.map((r) => `${r.label},"${r.text}"`).join('\n') + '\n');
  // a few held-out sentences with labels, one label that names no class, one row without a label
  writeFileSync(
    join(dir, 'new.jsonl'),
    [
      { text: 'the film was love', label: 'positive' },
      { text: 'the movie was hate', label: 'negative' },
      { text: 'the movie was plain', label: 'neutral' },
      { text: 'the film was sad', label: 'negative' },
      { text: 'the film was nice', label: 'mixed' },
      { text: `the movie was ${'very '.repeat(30)}good` },
    ]
      .map((r) => JSON.stringify(r))
      .join('\n') + '\n',
  );
  writeFileSync(
    join(dir, 'csv.yaml'),
    `model: { arch: bert, config: config.json }
optimizer: { lr: 2.0e-2 }
data: { kind: csv, path: reviews.csv, tokenizer: vocab.txt, maxLength: 8, split: { train: 0.6, val: 0.2, test: 0.2 } }
epochs: 3
batchSize: 8
seed: 3
out: runs/csv
`,
  );
  train = cli(['train', '--config', join(dir, 'csv.yaml'), '--tensorboard']);
}, 120000);

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const svgSize = (svg: string) =>
  svg
    .match(/<svg[^>]* width="(\d+)" height="(\d+)"/)!
    .slice(1)
    .map(Number);

describe('reports from the CLI', () => {
  it('train writes curves.svg/png and TensorBoard files whose scalars equal the training events', async () => {
    expect(train.status, train.stderr).toBe(0);
    const svg = readFileSync(join(run(), 'curves.svg'), 'utf8');
    const meta = await sharp(join(run(), 'curves.png')).metadata();
    expect([meta.width, meta.height]).toEqual(svgSize(svg));
    expect(svg).toContain('training loss per step');

    const tbDir = join(run(), 'tensorboard');
    expect(readdirSync(tbDir)).toEqual([expect.stringMatching(/^events\.out\.tfevents\./)]);
    const py = transformersPython('tensorboard');
    if (!py) return;
    const read = `
import json, sys
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
acc = EventAccumulator(sys.argv[1], size_guidance={'scalars': 0}); acc.Reload()
print(json.dumps({t: [[e.step, e.value] for e in acc.Scalars(t)] for t in acc.Tags()['scalars']}))`;
    const tb = JSON.parse(execFileSync(py, ['-c', read, tbDir], { encoding: 'utf8' })) as Record<string, Array<[number, number]>>;
    // events.jsonl is the run's own record of the same events
    const events = parseEvents(readFileSync(join(run(), 'events.jsonl'), 'utf8'));
    const steps = only(events, 'step');
    const epochs = only(events, 'epoch');
    expect(steps.length).toBeGreaterThan(10);
    expect(tb['train/loss']).toEqual(steps.map((s) => [s.step, Math.fround(s.loss as number)]));
    expect(tb['train/lr/group0']).toEqual(steps.map((s) => [s.step, Math.fround((s.lrs as number[])[0])]));
    expect(tb['val/accuracy']).toEqual(epochs.map((e) => [(e.epoch as number) + 1, Math.fround((e.val as { accuracy: number }).accuracy)]));
    expect(tb['val/loss']).toEqual(epochs.map((e) => [(e.epoch as number) + 1, Math.fround((e.val as { loss: number }).loss)]));
    expect(tb['train/epoch_loss']).toHaveLength(3);
  });

  it('eval prints the per-class table and writes eval-test/ (report.md, per-class.csv, confusion.svg/png)', async () => {
    const ev = cli(['eval', '--checkpoint', run()]);
    expect(ev.status, ev.stderr).toBe(0);
    const result = only(ev.events, 'eval')[0];
    const cm = result.confusionMatrix as number[][];
    const table = ev.events.find((e) => e.type === 'table' && e.title === 'per class (test)') as Event & { rows: Array<Record<string, number | string>> };
    expect(table.rows.map((r) => r.class)).toEqual([...CLASSES, 'accuracy', 'macro avg', 'weighted avg']);
    const end = only(ev.events, 'end')[0];
    const out = join(run(), 'eval-test');
    expect(end.report).toBe(out);
    for (const f of ['report.md', 'per-class.csv', 'confusion.svg', 'confusion.png', 'metrics.json']) expect(existsSync(join(out, f)), f).toBe(true);
    // per class, from the confusion matrix by hand: recall = diagonal / row sum, precision = diagonal / column sum
    const csv = readFileSync(join(out, 'per-class.csv'), 'utf8').trim().split('\n').slice(1, 4);
    csv.forEach((line, i) => {
      const [name, precision, recall, , support] = line.split(',');
      const rowSum = cm[i].reduce((a, b) => a + b, 0);
      const colSum = cm.reduce((a, r) => a + r[i], 0);
      expect(name).toBe(CLASSES[i]);
      expect(Number(support)).toBe(rowSum);
      expect(Number(recall)).toBeCloseTo(rowSum ? cm[i][i] / rowSum : 0, 12);
      expect(Number(precision)).toBeCloseTo(colSum ? cm[i][i] / colSum : 0, 12);
    });
    expect(readFileSync(join(out, 'report.md'), 'utf8')).toContain('![confusion matrix](confusion.png)');
    const meta = await sharp(join(out, 'confusion.png')).metadata();
    expect([meta.width, meta.height]).toEqual(svgSize(readFileSync(join(out, 'confusion.svg'), 'utf8')));

    const pretty = cli(['eval', '--checkpoint', run(), '--split', 'val', '--report', join(dir, 'val-report'), '--pretty']);
    expect(pretty.status, pretty.stderr).toBe(0);
    expect(pretty.stdout).toMatch(/per class \(val\)\nclass +precision +recall +f1 +support\n/);
    expect(pretty.stdout).toContain(`report: ${join(dir, 'val-report')}`);
    expect(existsSync(join(dir, 'val-report', 'per-class.csv'))).toBe(true);
  });

  it('predict shows the texts and, on a labelled file, the accuracy the predictions give', () => {
    const p = cli(['predict', '--checkpoint', run(), join(dir, 'reviews.csv'), join(dir, 'new.jsonl')]);
    expect(p.status, p.stderr).toBe(0);
    const preds = only(p.events, 'prediction');
    expect(preds).toHaveLength(66);
    expect(preds[0]).toMatchObject({ input: `${join(dir, 'reviews.csv')}:2`, text: 'the film was bad', label: 'negative' });
    // the count, done here: labels that name a class
    const labelled = preds.filter((e) => CLASSES.includes(e.label as string));
    const correct = labelled.filter((e) => e.class === e.label).length;
    expect(labelled).toHaveLength(64);
    const end = only(p.events, 'end')[0];
    expect(end).toMatchObject({ predictions: 66, labelled: 64, correct });
    expect(end.accuracy).toBeCloseTo(correct / 64, 12);
    const warn = only(p.events, 'message').find((m) => m.level === 'warn');
    expect(warn?.text).toMatch(/1 input\(s\) have a label that names no class \("mixed" x1\): left out of the accuracy/);

    const pretty = cli(['predict', '--checkpoint', run(), join(dir, 'new.jsonl'), '--pretty']);
    expect(pretty.status, pretty.stderr).toBe(0);
    expect(pretty.stdout).toMatch(/\nthe movie was plain +(negative|neutral|positive) +0\.\d+ +neutral\n/);
    expect(pretty.stdout).toMatch(/\nthe movie was very very [a-z ]+…/); // the long text, shortened
    expect(pretty.stdout).toMatch(/accuracy on the 4 labelled input\(s\): \d+\.\d\d% \(\d\/4\)/);
    expect(pretty.stdout).toMatch(/per class \(4 labelled inputs\)\nclass +precision +recall +f1 +support\n/);
  });
});
