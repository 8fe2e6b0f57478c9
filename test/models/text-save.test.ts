// models.save / models.load for text models: BERT, RoBERTa and DistilBERT with
// each head (sequence classification, token classification, masked LM) come
// back exactly: the same parameters and buffers, bit for bit, the same task,
// config.json and number of classes, the same logits; with nothing but the
// file. Files that do not describe a model that fits are refused with an error
// naming the file and what is wrong, before a model is built.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { torch, io, models, finetune, type Architecture, type Tensor } from 'finetorch';

const ARCHS = ['bert', 'roberta', 'distilbert'] as const;
const TASKS = ['sequenceClassification', 'tokenClassification', 'maskedLM'] as const;

const tiny = {
  bert: {
    model_type: 'bert',
    vocab_size: 40,
    hidden_size: 16,
    num_hidden_layers: 2,
    num_attention_heads: 2,
    intermediate_size: 20,
    max_position_embeddings: 24,
  },
  roberta: {
    model_type: 'roberta',
    vocab_size: 40,
    hidden_size: 16,
    num_hidden_layers: 2,
    num_attention_heads: 2,
    intermediate_size: 20,
    max_position_embeddings: 24,
    pad_token_id: 1,
    id2label: { '0': 'neg', '1': 'pos', '2': 'mixed' },
  },
  distilbert: { model_type: 'distilbert', vocab_size: 40, dim: 16, n_layers: 2, n_heads: 2, hidden_dim: 20, max_position_embeddings: 24, dropout: 0.05 },
};

let dir = '';
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'finetorch-text-save-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const ids = () =>
  torch.tensor(
    [
      [2, 5, 7, 9, 3],
      [2, 6, 8, 3, 0],
    ],
    { dtype: 'int64' },
  );
const mask = () =>
  torch.tensor(
    [
      [1, 1, 1, 1, 1],
      [1, 1, 1, 1, 0],
    ],
    { dtype: 'int64' },
  );

/** The safetensors header's __metadata__, read straight from the bytes (8-byte little-endian length, then JSON). */
function fileMetadata(path: string): Record<string, string> {
  const bytes = readFileSync(path);
  const length = Number(bytes.readBigUInt64LE(0));
  return JSON.parse(bytes.subarray(8, 8 + length).toString('utf8')).__metadata__;
}

/** Every parameter and buffer of `b` equals `a`'s exactly (same names, shapes, dtypes, values). */
function expectSameState(a: Architecture, b: Architecture): void {
  const sa = a.stateDict();
  const sb = b.stateDict();
  expect(Object.keys(sb).sort()).toEqual(Object.keys(sa).sort());
  for (const [k, t] of Object.entries(sa)) {
    expect(sb[k].shape, k).toEqual(t.shape);
    expect(sb[k].dtype, k).toBe(t.dtype);
    expect(sb[k].ne(t).sum().item(), k).toBe(0);
  }
}

const logits = (m: Architecture, arch: string): Tensor => {
  m.eval();
  return torch.noGrad(() => (arch === 'distilbert' ? m.forward(ids(), mask()) : m.forward(ids(), mask(), torch.zerosLike(ids()))));
};

/** Weights nobody could get by building the model afresh: every float changed by a seeded random amount. */
function perturb(m: Architecture): void {
  torch.noGrad(() => {
    for (const p of m.parameters()) p.add_(torch.randn(p.shape).mul(0.1));
  });
}

describe('models.save -> models.load: text models come back exactly', () => {
  for (const arch of ARCHS)
    for (const task of TASKS) {
      it(`${arch} ${task}`, () => {
        torch.manualSeed(7);
        const a = models[arch](tiny[arch], { task, numClasses: task === 'maskedLM' ? undefined : 4 });
        perturb(a);
        const path = join(dir, `${arch}-${task}.safetensors`);
        models.save(a, path);

        // what the file says, read without finetorch
        const meta = fileMetadata(path);
        expect(meta['finetorch.arch']).toBe(arch);
        expect(JSON.parse(meta['finetorch.options'])).toEqual(task === 'maskedLM' ? { task } : { task, numClasses: 4 });
        expect(JSON.parse(meta['finetorch.config'])).toEqual(tiny[arch]);

        const b = models.load(path) as Architecture & { task: string; hfConfig: object };
        expect(b.arch).toBe(arch);
        expect(b.task).toBe(task);
        expect(b.hfConfig).toEqual(tiny[arch]);
        expect(b.archOptions()).toEqual(a.archOptions());
        expect(b.blockPaths()).toEqual(a.blockPaths());
        expectSameState(a, b);
        const [la, lb] = [logits(a, arch), logits(b, arch)];
        expect(lb.shape).toEqual(task === 'maskedLM' ? [2, 5, 40] : task === 'tokenClassification' ? [2, 5, 4] : [2, 4]);
        expect(lb.ne(la).sum().item()).toBe(0);
        a.dispose();
        b.dispose();
      });
    }

  it('a head swapped after building is saved at its new size', () => {
    torch.manualSeed(3);
    const a = models.roberta(tiny.roberta); // 3 labels from id2label
    finetune.swapHead(a, 6);
    const path = join(dir, 'swapped.safetensors');
    models.save(a, path);
    expect(JSON.parse(fileMetadata(path)['finetorch.options'])).toEqual({ task: 'sequenceClassification', numClasses: 6 });
    const b = models.load(path);
    expect(logits(b, 'roberta').shape).toEqual([2, 6]);
    expectSameState(a, b);
  });

  it('the caller may ask for another task or number of classes: the encoder loads, the new head starts fresh', () => {
    torch.manualSeed(5);
    const mlm = models.bert(tiny.bert, { task: 'maskedLM' });
    perturb(mlm);
    const path = join(dir, 'mlm.safetensors');
    models.save(mlm, path);
    const cls = models.load(path, { task: 'sequenceClassification', numClasses: 3 }) as Architecture & { task: string };
    expect(cls.task).toBe('sequenceClassification');
    const sm = mlm.stateDict();
    const sc = cls.stateDict();
    const encoder = Object.keys(sm).filter((k) => k.startsWith('bert.'));
    expect(encoder.length).toBeGreaterThan(20);
    for (const k of encoder) expect(sc[k].ne(sm[k]).sum().item(), k).toBe(0);
    expect(sc['classifier.weight'].shape).toEqual([3, 16]);

    // a saved token classifier read with more classes
    const tok = models.distilbert(tiny.distilbert, { task: 'tokenClassification', numClasses: 2 });
    models.save(tok, join(dir, 'tok.safetensors'));
    expect(logits(models.load(join(dir, 'tok.safetensors'), { numClasses: 9 }), 'distilbert').shape).toEqual([2, 5, 9]);
  });

  it('a config the caller gives is used instead of the saved one, and must fit the weights', () => {
    const a = models.bert(tiny.bert, { numClasses: 2 });
    const path = join(dir, 'bert.safetensors');
    models.save(a, path);
    const b = models.load(path, { config: { ...tiny.bert, hidden_dropout_prob: 0 } }) as Architecture & { hfConfig: Record<string, unknown> };
    expect(b.hfConfig.hidden_dropout_prob).toBe(0);
    expectSameState(a, b);
    expect(() => models.load(path, { config: { ...tiny.bert, hidden_size: 32 } })).toThrow(
      /bert\.safetensors, bert\): the checkpoint does not fit:\s+size mismatch for bert\.embeddings\.word_embeddings\.weight: checkpoint \[40,16\], model \[40,32\]/,
    );
  });
});

describe('models.load refuses text files that do not describe a model that fits', () => {
  /** A saved BERT classifier's tensors with `metadata` changed. */
  function withMetadata(name: string, change: Record<string, string | undefined>): string {
    const a = models.bert(tiny.bert, { numClasses: 3 });
    const base = join(dir, `base-${name}.safetensors`);
    models.save(a, base);
    const metadata = Object.fromEntries(Object.entries({ ...fileMetadata(base), ...change }).filter(([, v]) => v !== undefined)) as Record<string, string>;
    const path = join(dir, `${name}.safetensors`);
    io.save(a.stateDict(), path, { metadata });
    return path;
  }

  it('options of the wrong family or out of range, a config that is not a JSON object', () => {
    const cases: Array<[Record<string, string | undefined>, RegExp]> = [
      [{ 'finetorch.options': '{"width": 4}' }, /finetorch\.options has an unknown option "width" for a text model/],
      [
        { 'finetorch.options': '{"task": "summarization"}' },
        /finetorch\.options\.task must be one of sequenceClassification, tokenClassification, maskedLM, got "summarization"/,
      ],
      [{ 'finetorch.options': '{"task": "sequenceClassification", "numClasses": 0}' }, /finetorch\.options\.numClasses must be a positive integer, got 0/],
      [{ 'finetorch.config': '{"vocab_size": ' }, /the metadata finetorch\.config is not JSON/],
      [{ 'finetorch.config': '[1, 2]' }, /the metadata finetorch\.config is not a JSON object/],
      [
        { 'finetorch.config': JSON.stringify({ ...tiny.bert, vocab_size: 'many' }) },
        /config \(the metadata finetorch\.config\): config\.json: "vocab_size" must be a number/,
      ],
      [{ 'finetorch.config': undefined }, /text models need \{config\}/],
    ];
    cases.forEach(([change, pattern], i) => {
      const path = withMetadata(`bad-${i}`, change);
      expect(() => models.load(path), JSON.stringify(change)).toThrow(pattern);
      expect(() => models.load(path)).toThrow(path);
    });
    // a vision file may not carry a text config
    const r = models.resnet18({ numClasses: 2, width: 4 });
    const vision = join(dir, 'vision.safetensors');
    models.save(r, vision);
    io.save(r.stateDict(), join(dir, 'vision-config.safetensors'), { metadata: { ...fileMetadata(vision), 'finetorch.config': '{}' } });
    expect(() => models.load(join(dir, 'vision-config.safetensors'))).toThrow(/finetorch\.config is for text models, not resnet18/);
    expect(() => models.load(vision, { task: 'maskedLM' })).toThrow(
      /vision\.safetensors, resnet18\): task applies to text models \(bert, roberta, distilbert\) only/,
    );
  });

  it('a declared number of classes the head does not have', () => {
    const path = withMetadata('classes', { 'finetorch.options': '{"task": "sequenceClassification", "numClasses": 2000000000}' });
    expect(() => models.load(path)).toThrow(/the head classifier\.weight is \[3,16\], but the metadata finetorch\.options declares 2000000000 classes/);
  });

  it('a config declaring a model far larger than the file is refused before it is built', () => {
    // a 1e9-element encoder would take 4 GB; the file has some 20 kB
    const huge = { ...tiny.bert, vocab_size: 40, hidden_size: 16, num_hidden_layers: 100000, intermediate_size: 20 };
    const path = withMetadata('huge', { 'finetorch.config': JSON.stringify(huge) });
    const before = process.memoryUsage().rss;
    expect(() => models.load(path)).toThrow(/the encoder's weights have \d+ elements, more than the file's \d+ bytes could hold/);
    expect(process.memoryUsage().rss - before).toBeLessThan(200e6);
  });

  it('a file an older models.save wrote (native sizes, no config) asks for the config, and loads with it', () => {
    const a = models.bert(tiny.bert, { numClasses: 3 });
    const legacyOptions = { ...a.archOptions() }; // what the older models.save wrote: the native options
    const path = withMetadata('legacy', { 'finetorch.options': JSON.stringify(legacyOptions), 'finetorch.config': undefined });
    expect(() => models.load(path)).toThrow(/written by an older models\.save that did not record the model's config\.json; give \{config\}/);
    const b = models.load(path, { config: tiny.bert }) as Architecture & { task: string };
    expect(b.task).toBe('sequenceClassification');
    expect(b.stateDict()['classifier.weight'].shape).toEqual([3, 16]);
  });
});
