// pretrain() of kind 'mlm' from code, on real English: the licence texts
// every Debian machine has in /usr/share/common-licenses, one line per
// document. A tiny BERT from scratch learns to fill in masked tokens; the
// output is a Hugging Face folder that models.fromPretrained loads as
// BertForMaskedLM; continuing from that folder (domain adaptation) works
// without naming a tokenizer; a run stopped by its signal mid-epoch and
// resumed ends bitwise equal to an uninterrupted one; the loss is
// cross-entropy over the masked positions only (checked by arithmetic).
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { transformersPython } from '../reference';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { torch, io, models, pretrain, ConfigError, DataError, type PretrainEvent, type MlmMetrics, type Tensor } from 'finetorch';
import { maskedLMLoss, packDocuments } from '../../dist/pretrain/index.js';
import { splitHeldOut } from '../../dist/pretrain/common.js';
import { loadTokenizer } from '../../dist/data/load-tokenizer.js';

const LICENSES = '/usr/share/common-licenses';
const python = transformersPython('torch, transformers');
// loads a pretrain output folder with transformers' Auto classes; prints the tokenizer's ids and the logits for one sentence
const HF_SCRIPT = `
import json, sys, torch
from transformers import AutoTokenizer, AutoModelForMaskedLM
tok = AutoTokenizer.from_pretrained(sys.argv[1])
model = AutoModelForMaskedLM.from_pretrained(sys.argv[1]).eval()
enc = tok([sys.argv[2]], return_tensors='pt')
with torch.no_grad():
    logits = model(**enc).logits
print(json.dumps({'tokenizer': type(tok).__name__, 'model': type(model).__name__, 'ids': enc['input_ids'][0].tolist(), 'logits': logits[0].flatten().tolist()}))
`;
let dir: string;
let corpus: string;
let vocabFile: string;

const SPECIALS = ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]'];

beforeAll(() => {
  torch.setNumThreads(1);
  dir = mkdtempSync(join(tmpdir(), 'ft-pretrain-mlm-'));
  // 160 lines of licence text, one document each
  const lines = ['Apache-2.0', 'GPL-3', 'MPL-2.0', 'LGPL-2.1']
    .flatMap((f) => readFileSync(join(LICENSES, f), 'utf8').split('\n'))
    .map((l) => l.trim())
    .filter((l) => l.length > 30)
    .slice(0, 160);
  corpus = join(dir, 'licences.txt');
  writeFileSync(corpus, lines.join('\n') + '\n');
  // a small WordPiece vocabulary: specials, characters and their ## pieces, the 150 most frequent words
  const counts = new Map<string, number>();
  for (const w of lines
    .join(' ')
    .toLowerCase()
    .match(/[a-z]+/g) ?? [])
    counts.set(w, (counts.get(w) ?? 0) + 1);
  const words = [...counts.entries()]
    .filter(([w]) => w.length > 1)
    .sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))
    .slice(0, 150)
    .map(([w]) => w);
  const chars = [...'abcdefghijklmnopqrstuvwxyz0123456789.,;:()"\'-/<>@'];
  vocabFile = join(dir, 'vocab.txt');
  writeFileSync(vocabFile, [...SPECIALS, ...chars, ...chars.map((c) => `##${c}`), ...words].join('\n') + '\n');
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const TINY_BERT = {
  hidden_size: 16,
  num_hidden_layers: 1,
  num_attention_heads: 2,
  intermediate_size: 32,
  max_position_embeddings: 32,
  hidden_dropout_prob: 0.1,
  attention_probs_dropout_prob: 0.1,
};

const config = (extra: Record<string, unknown> = {}) => ({
  kind: 'mlm',
  model: { arch: 'bert', config: TINY_BERT },
  tokenizer: vocabFile,
  data: { path: corpus, val: 0.2 },
  maxLength: 24,
  epochs: 8,
  batchSize: 16,
  lr: 3e-3,
  warmup: 0.1,
  seed: 4,
  ...extra,
});

const bytes = (f: string) => readFileSync(f);

describe('masked-LM loss', () => {
  it('is the mean cross-entropy over the positions whose label is not -100', () => {
    const logits = [
      [
        [1, 2, 0.5],
        [0, 0, 3],
      ],
      [
        [2, -1, 0],
        [0.3, 0.2, 0.1],
      ],
    ];
    const labels = [
      [2, -100],
      [-100, 0],
    ];
    const ce = (row: number[], k: number) => Math.log(row.reduce((a, v) => a + Math.exp(v), 0)) - row[k];
    const want = (ce(logits[0][0], 2) + ce(logits[1][1], 0)) / 2;
    const got = maskedLMLoss(torch.tensor(logits), torch.tensor(labels, { dtype: 'int64' })) as Tensor;
    expect(got.item()).toBeCloseTo(want, 6);
    // nothing masked: 0, not NaN
    const none = maskedLMLoss(torch.tensor(logits, { requiresGrad: true }), torch.full([2, 2], -100, { dtype: 'int64' })) as Tensor;
    expect(none.item()).toBe(0);
  });
});

describe('packing documents into blocks (data.pack)', () => {
  it('joins the documents end to end and cuts blocks of maxLength; only the last is shorter, nothing is lost', () => {
    const docs = [
      [2, 10, 11, 3],
      [2, 12, 3],
      [2, 13, 14, 15, 16, 3],
      [2, 3],
    ];
    expect(packDocuments(docs, 4)).toEqual([
      [2, 10, 11, 3],
      [2, 12, 3, 2],
      [13, 14, 15, 16],
      [3, 2, 3],
    ]);
    expect(packDocuments(docs, 15)).toEqual([docs.flat()]);
    expect(packDocuments([[2, 5, 3]], 3)).toEqual([[2, 5, 3]]);
  });

  it('packs the training documents and the held-out ones apart ([CLS] ... [SEP] each), no padding; resumes exactly', async () => {
    const tokenizer = loadTokenizer(vocabFile);
    const lines = readFileSync(corpus, 'utf8').trim().split('\n');
    const parts = splitHeldOut(lines.length, 0.2, 4);
    // blocks of 24 from the tokens of each part's documents, [CLS] and [SEP] included
    const blocks = (indices: number[]) => Math.ceil(indices.reduce((n, i) => n + tokenizer.encode(lines[i]).ids.length, 0) / 24);
    const c = config({ data: { path: corpus, val: 0.2, pack: true }, epochs: undefined, steps: 12 });
    const events: PretrainEvent[] = [];
    const a = await pretrain(c, { out: join(dir, 'packed'), onEvent: (e) => events.push(e) });
    const start = events.find((e) => e.type === 'start') as { samples: { train: number; val: number }; batchesPerEpoch: number };
    expect(start.samples).toEqual({ train: blocks(parts.train), val: blocks(parts.val) });
    expect(start.batchesPerEpoch).toBe(Math.ceil(start.samples.train / 16));
    expect((a.metrics as MlmMetrics).samples).toBe(blocks(parts.val));
    // stopped mid-epoch and resumed: bitwise equal to the uninterrupted run
    const controller = new AbortController();
    const stopped = join(dir, 'packed-stopped');
    const part = await pretrain(c, {
      out: stopped,
      signal: controller.signal,
      onEvent: (e) => {
        if (e.type === 'step' && e.step === 7) controller.abort();
      },
    });
    expect(part.status).toBe('interrupted');
    const b = await pretrain(c, { resumeFrom: stopped });
    expect(bytes(join(b.output!, 'model.safetensors')).equals(bytes(join(a.output!, 'model.safetensors')))).toBe(true);
    expect(b.metrics).toEqual(a.metrics);
  });
});

describe('pretrain (mlm)', () => {
  let first: { out: string; metrics: MlmMetrics };

  it('pretrains a BERT from scratch and writes a Hugging Face folder that fromPretrained loads as BertForMaskedLM', async () => {
    const out = join(dir, 'scratch');
    const events: PretrainEvent[] = [];
    const r = await pretrain(config(), { out, onEvent: (e) => events.push(e) });
    expect(r.status).toBe('ok');
    const start = events.find((e) => e.type === 'start')!;
    expect(start).toMatchObject({
      kind: 'mlm',
      samples: { train: 128, val: 32 },
      batchesPerEpoch: 8,
      epochs: 8,
      totalSteps: 64,
      model: { arch: 'bert', from: null },
    });
    const m = r.metrics as MlmMetrics;
    expect(m.samples).toBe(32);
    expect(m.perplexity).toBeCloseTo(Math.exp(m.loss), 6);
    expect(m.accuracy).toBeGreaterThanOrEqual(0);
    expect(m.accuracy).toBeLessThanOrEqual(1);
    // about 15% of the held-out tokens that are not special (24 tokens at most per line, less [CLS] and [SEP])
    expect(m.tokens).toBeGreaterThan(0.08 * 32 * 22);
    expect(m.tokens).toBeLessThan(0.15 * 32 * 24 * 1.5);
    // it learned: the held-out loss is well below guessing uniformly among the vocabulary
    const vocabSize = readFileSync(vocabFile, 'utf8').trim().split('\n').length;
    expect(m.loss).toBeLessThan(Math.log(vocabSize) - 0.5);

    expect(r.output).toBe(join(out, 'model'));
    expect(readdirSync(r.output!).sort()).toEqual(['config.json', 'model.safetensors', 'tokenizer_config.json', 'vocab.txt']);
    const hf = JSON.parse(readFileSync(join(r.output!, 'config.json'), 'utf8'));
    expect(hf).toMatchObject({ architectures: ['BertForMaskedLM'], model_type: 'bert', vocab_size: vocabSize, hidden_size: 16, pad_token_id: 0 });
    expect(readFileSync(join(r.output!, 'vocab.txt'), 'utf8')).toBe(readFileSync(vocabFile, 'utf8'));
    // the folder's weights are the trained ones (last/), under transformers' names
    const saved = io.load(join(r.output!, 'model.safetensors'));
    const trained = io.load(join(out, 'last', 'model.safetensors'));
    expect(Object.keys(saved)).toContain('bert.embeddings.word_embeddings.weight');
    for (const k of Object.keys(saved).filter((k) => k in trained))
      expect(Array.from(saved[k].dataSync() as Float32Array), k).toEqual(Array.from(trained[k].dataSync() as Float32Array));
    const model = models.fromPretrained(r.output!);
    expect(model.task).toBe('maskedLM');
    model.eval();
    const logits = model.forward(torch.tensor([[2, 40, 41, 3]], { dtype: 'int64' }));
    expect(logits.shape).toEqual([1, 4, vocabSize]);
    first = { out, metrics: m };
  });

  it.skipIf(!python)('the folder loads in transformers (AutoTokenizer, AutoModelForMaskedLM): same token ids, logits within 1e-5', () => {
    const sentence = 'Licensed under the Apache License, Version 2.0 (the "License").';
    const folder = join(first.out, 'model');
    const hf = JSON.parse(
      execFileSync(python!, ['-c', HF_SCRIPT, folder, sentence], { encoding: 'utf8', timeout: 300000, stdio: ['ignore', 'pipe', 'ignore'] }),
    );
    expect(hf).toMatchObject({ tokenizer: 'BertTokenizer', model: 'BertForMaskedLM' });
    const model = models.fromPretrained(folder);
    model.eval();
    const ids = torch.tensor([hf.ids], { dtype: 'int64' });
    const ours = Array.from(model.forward(ids).dataSync() as Float32Array);
    expect(ours.length).toBe(hf.logits.length);
    const diff = Math.max(...ours.map((v, i) => Math.abs(v - hf.logits[i])));
    expect(diff).toBeLessThan(1e-5);
    expect(loadTokenizer(folder).encode(sentence).ids).toEqual(hf.ids);
  });

  it('continues pretraining from a Hugging Face folder with its own tokenizer (domain adaptation)', async () => {
    const events: PretrainEvent[] = [];
    const r = await pretrain(config({ model: { fromPretrained: join(first.out, 'model') }, tokenizer: undefined, epochs: 1 }), {
      out: join(dir, 'adapted'),
      onEvent: (e) => events.push(e),
    });
    expect(r.status).toBe('ok');
    expect(events.find((e) => e.type === 'start')).toMatchObject({ model: { arch: 'bert', from: join(first.out, 'model') } });
    // starting from the pretrained weights, the held-out loss is no worse than after the first run (same held-out masks)
    expect((r.metrics as MlmMetrics).loss).toBeLessThan(first.metrics.loss + 0.2);
    expect(existsSync(join(r.output!, 'vocab.txt'))).toBe(true);
  });

  it('resumes exactly: stopped by its signal mid-epoch and resumed, it ends bitwise equal to an uninterrupted run', async () => {
    const c = config({ epochs: undefined, steps: 12 });
    const a = await pretrain(c, { out: join(dir, 'straight') });
    const controller = new AbortController();
    const stopped = join(dir, 'stopped');
    const part = await pretrain(c, {
      out: stopped,
      signal: controller.signal,
      onEvent: (e) => {
        if (e.type === 'step' && e.step === 10) controller.abort();
      },
    });
    expect(part.status).toBe('interrupted');
    const events: PretrainEvent[] = [];
    const b = await pretrain(c, { resumeFrom: stopped, onEvent: (e) => events.push(e) });
    expect(events.find((e) => e.type === 'resumed')).toMatchObject({ epoch: 1, batch: 3, step: 11 });
    expect(events.filter((e) => e.type === 'step')).toHaveLength(1);
    expect(bytes(join(b.output!, 'model.safetensors')).equals(bytes(join(a.output!, 'model.safetensors')))).toBe(true);
    expect(b.metrics).toEqual(a.metrics);
  });

  it('trains a WordPiece vocabulary on the training documents, keeps it in the run folder and resumes with it', async () => {
    const c = config({ tokenizer: { train: { vocabSize: 120 } }, epochs: 1 });
    const out = join(dir, 'trained-vocab');
    const controller = new AbortController();
    const part = await pretrain(c, {
      out,
      signal: controller.signal,
      onEvent: (e) => {
        if (e.type === 'step' && e.step === 2) controller.abort();
      },
    });
    expect(part.status).toBe('interrupted');
    const vocab = readFileSync(join(out, 'vocab.txt'), 'utf8').trim().split('\n');
    expect(vocab.slice(0, 5)).toEqual(SPECIALS);
    expect(vocab.length).toBeLessThanOrEqual(120);
    expect(vocab.some((t) => t.startsWith('##'))).toBe(true);
    const r = await pretrain(c, { resumeFrom: join(out, 'last') });
    expect(r.status).toBe('ok');
    expect(readFileSync(join(r.output!, 'vocab.txt'), 'utf8').trim().split('\n')).toEqual(vocab);
    expect(JSON.parse(readFileSync(join(r.output!, 'config.json'), 'utf8')).vocab_size).toBe(vocab.length);
    const straight = await pretrain(c, { out: join(dir, 'trained-vocab-straight') });
    expect(bytes(join(r.output!, 'model.safetensors')).equals(bytes(join(straight.output!, 'model.safetensors')))).toBe(true);
  });

  it('refuses what does not fit, naming the field', async () => {
    const run = (c: Record<string, unknown>) => pretrain(c, { out: join(dir, 'refused'), force: true });
    await expect(run(config({ tokenizer: undefined }))).rejects.toThrow(/pretrain\.tokenizer.*needs a tokenizer/);
    await expect(run(config({ maxLength: 40 }))).rejects.toThrow(/pretrain\.maxLength.*more than the model's 32 positions/);
    await expect(run(config({ model: { arch: 'bert', config: { ...TINY_BERT, vocab_size: 50 } } }))).rejects.toThrow(/vocab_size is 50 but the tokenizer has/);
    await expect(run(config({ data: { path: join(dir, 'nothing.txt') } }))).rejects.toBeInstanceOf(DataError);
    await expect(run(config({ tokenizer: join(dir, 'missing-vocab.txt') }))).rejects.toBeInstanceOf(ConfigError);
  });
});
