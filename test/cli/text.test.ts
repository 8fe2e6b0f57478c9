// Text recipes through the CLI: a CSV and a JSONL of labelled sentences, a
// WordPiece vocab.txt and a tiny BERT config.json; train, eval and predict
// (a file of texts and --text), with the inputs tokenized as in training.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cli, only } from './cli-helpers';

let dir = '';
const POSITIVE = ['good', 'great', 'fine', 'nice', 'happy', 'love'];
const NEGATIVE = ['bad', 'awful', 'poor', 'sad', 'hate', 'terrible'];

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'finetorch-cli-text-'));
  const vocab = ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]', ...POSITIVE, ...NEGATIVE, 'the', 'movie', 'film', 'was', 'very', 'a', 'really', ','];
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
      max_position_embeddings: 32,
      type_vocab_size: 2,
      hidden_dropout_prob: 0.1,
      attention_probs_dropout_prob: 0.1,
    }),
  );
  const rows = Array.from({ length: 80 }, (_, i) => {
    const label = i % 2 ? 'positive' : 'negative';
    const word = (i % 2 ? POSITIVE : NEGATIVE)[Math.floor(i / 2) % 6];
    return { text: `the ${i % 3 ? 'movie' : 'film'} was ${i % 5 ? 'very ' : ''}${word}`, label };
  });
  // a comma inside quotes, as CSV allows
  writeFileSync(join(dir, 'reviews.csv'), 'label,text\n' + rows.map((r) => `${r.label},"${r.text.replace(' was', ', was')}"`).join('\n') + '\n');
  writeFileSync(join(dir, 'reviews.jsonl'), rows.map((r) => JSON.stringify({ review: r.text, sentiment: r.label })).join('\n') + '\n');
  writeFileSync(
    join(dir, 'csv.yaml'),
    `model: { arch: bert, config: config.json }
optimizer: { lr: 1.0e-2 }
data: { kind: csv, path: reviews.csv, tokenizer: vocab.txt, maxLength: 10, split: { train: 0.6, val: 0.2, test: 0.2 } }
epochs: 15
batchSize: 8
seed: 1
out: runs/csv
`,
  );
}, 60000);

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('text recipes', () => {
  it('trains a BERT classifier from a CSV, and eval and predict agree with it', () => {
    const r = cli(['train', '--config', join(dir, 'csv.yaml')]);
    expect(r.status, r.stderr).toBe(0);
    const start = r.events[0];
    expect(start).toMatchObject({ classes: ['negative', 'positive'], samples: { train: 48, val: 16, test: 16 }, model: { arch: 'bert', checkpoint: null } });
    const epochs = only(r.events, 'epoch');
    expect(epochs).toHaveLength(15);
    expect(epochs.at(-1)!.trainLoss as number).toBeLessThan(epochs[0].trainLoss as number);
    const test = only(r.events, 'eval')[0];
    expect(test.accuracy).toBeGreaterThan(0.8); // one word decides the label

    const ev = cli(['eval', '--checkpoint', join(dir, 'runs', 'csv')]);
    expect(ev.status, ev.stderr).toBe(0);
    expect(only(ev.events, 'eval')[0]).toMatchObject({ loss: test.loss, accuracy: test.accuracy, confusionMatrix: test.confusionMatrix });

    // predict on the whole CSV (labels come along) and on literal texts
    const p = cli([
      'predict',
      '--checkpoint',
      join(dir, 'runs', 'csv'),
      join(dir, 'reviews.csv'),
      '--text',
      'a really great film',
      '--text',
      'terrible , really awful',
      '--top',
      '2',
    ]);
    expect(p.status, p.stderr).toBe(0);
    const preds = only(p.events, 'prediction');
    expect(preds).toHaveLength(82);
    expect(preds[0]).toMatchObject({ input: `${join(dir, 'reviews.csv')}:2`, label: 'negative' });
    expect(preds[0].top).toHaveLength(2);
    const correct = preds.slice(0, 80).filter((e) => e.class === e.label).length;
    expect(correct / 80).toBeGreaterThan(0.8);
    expect(preds.slice(80).map((e) => [e.input, e.label])).toEqual([
      ['text 1', null],
      ['text 2', null],
    ]);
    const pretty = cli(['predict', '--checkpoint', join(dir, 'runs', 'csv'), '--text', 'so happy', '--pretty']);
    expect(pretty.stdout).toMatch(/predictions \(1\)\ninput +class +probability\n[- ]+\nso happy +(positive|negative) +0\.\d+/); // a text input shows its text, not `text 1`
  }, 180000);

  it('reads JSONL with other column names; a missing column is a data error (3)', () => {
    const base = ['--config', join(dir, 'csv.yaml'), '--epochs', '1', '--set', 'data.kind=jsonl', '--set', 'data.path=reviews.jsonl'];
    const r = cli(['train', ...base, '--out', join(dir, 'runs', 'jsonl'), '--set', 'data.textColumn=review', '--set', 'data.labelColumn=sentiment'], {
      cwd: dir,
    });
    expect(r.status, r.stderr).toBe(0);
    expect(r.events[0]).toMatchObject({ classes: ['negative', 'positive'], samples: { train: 48, val: 16, test: 16 } });
    const bad = cli(['train', ...base, '--out', join(dir, 'runs', 'jsonl-bad')], { cwd: dir });
    expect(bad.status).toBe(3);
    expect(bad.stderr).toMatch(/reviews\.jsonl:1: empty or missing text/);
    const tok = cli(['train', '--config', join(dir, 'csv.yaml'), '--out', join(dir, 'runs', 'tok'), '--set', 'data.tokenizer=missing-vocab.txt'], { cwd: dir });
    expect(tok.status).toBe(3);
    expect(tok.stderr).toMatch(/tokenizer .*missing-vocab\.txt does not exist/);
  }, 120000);
});
