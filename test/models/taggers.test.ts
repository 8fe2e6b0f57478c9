// Taggers against PyTorch: models.bilstmCrf with the same weights as a
// BiLSTM-CRF written in PyTorch (embedding -> nn.LSTM on packed sequences ->
// Linear -> pytorch-crf's algorithm; test/losses/crf_reference.py, run by
// Debian's /usr/bin/python3) gives the same emissions, NLL, every
// parameter's gradient (1e-5) and Viterbi paths; models.bertTagger with a
// BiLSTM-CRF head against transformers' BertModel + the same head (the
// Python that has transformers, as the other text tests; skipped without
// one): the same parameter names (state dicts load both ways with nothing
// missing or unexpected), emissions at each word's first piece, NLL and
// gradients. Then what fine-tuning needs: blocks for freeze and paramGroups,
// swapHead (classifier and CRF), models.save/models.load round trips,
// encoders from a Hugging Face folder or another text model, padding that
// never changes a sequence's output, and clear errors.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { torch, models, finetune, data, optim, type Tensor } from 'finetorch';
import { flat } from '../helpers';
import { root, transformersPython } from '../reference';
import { pythonReference } from '../losses/crf-reference';

interface Enc {
  shape: number[];
  data: number[];
}
const enc = (t: Tensor): Enc => ({ shape: t.shape, data: flat(t) });
const maxDiff = (a: Tensor, b: Enc): number => {
  expect(a.shape).toEqual(b.shape);
  const g = flat(a);
  return g.reduce((m, v, i) => Math.max(m, Math.abs(v - b.data[i])), 0);
};

interface TaggerRef {
  load: { missing: string[]; unexpected: string[] };
  names: string[];
  emissions: Enc;
  loss: number;
  grads: Record<string, Enc>;
  decode?: number[][];
}

let scratch = '';
beforeAll(() => {
  scratch = mkdtempSync(join(tmpdir(), 'finetorch-taggers-'));
});
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

// three sequences of lengths 6, 4 and 2 (0 is padding), tags -100 past the end
const inputIds = torch.tensor([
  [3, 7, 9, 2, 11, 5],
  [4, 4, 8, 13, 0, 0],
  [12, 6, 0, 0, 0, 0],
]);
const tags = torch.tensor([
  [0, 1, 2, 2, 3, 4],
  [4, 0, 1, 2, -100, -100],
  [3, 3, -100, -100, -100, -100],
]);

describe('models.bilstmCrf against a BiLSTM-CRF in PyTorch (packed sequences, pytorch-crf)', () => {
  for (const numLayers of [1, 2]) {
    it(`${numLayers} LSTM layer(s): same emissions, NLL, gradients (1e-5) and Viterbi paths`, () => {
      torch.manualSeed(3 + numLayers);
      const options = { vocabSize: 16, numTags: 5, embeddingDim: 6, hiddenSize: 5, numLayers, dropout: 0.3, paddingIdx: 0 };
      const model = models.bilstmCrf(options);
      // the CRF starts uniform(-0.1, 0.1): make its transitions matter
      torch.noGrad(() => model.crf!.namedParameters().forEach(([, p]) => p.mul_(20)));
      model.eval();
      const names = model.namedParameters().map(([n]) => n);
      expect(names.slice(0, 3)).toEqual(['embedding.weight', 'lstm.weight_ih_l0', 'lstm.weight_hh_l0']);
      expect(names.slice(-5)).toEqual(['classifier.weight', 'classifier.bias', 'crf.start_transitions', 'crf.end_transitions', 'crf.transitions']);
      const ref = pythonReference<TaggerRef>({
        job: 'bilstmCrf',
        options,
        params: Object.fromEntries(Object.entries(model.stateDict()).map(([k, v]) => [k, enc(v)])),
        inputIds: enc(inputIds),
        tags: enc(tags),
      });
      expect(ref.load).toEqual({ missing: [], unexpected: [] });
      expect(model.namedParameters().map(([n]) => n)).toEqual(ref.names);
      const emissions = model.forward(inputIds);
      expect(maxDiff(emissions, ref.emissions)).toBeLessThan(1e-5);
      const loss = model.loss(emissions, tags);
      expect(Math.abs((loss.item() as number) - ref.loss)).toBeLessThan(1e-5);
      loss.backward();
      for (const [name, p] of model.namedParameters()) expect(maxDiff(p.grad!, ref.grads[name]), `${name}.grad`).toBeLessThan(1e-5);
      expect(model.decode(inputIds)).toEqual(ref.decode);
      model.dispose();
    });
  }
});

describe('padding never changes a sequence (what pack_padded_sequence gives)', () => {
  for (const numLayers of [1, 2]) {
    it(`${numLayers} layer(s): each sequence alone gives its rows of the padded batch`, () => {
      torch.manualSeed(11);
      const model = models.bilstmCrf({ vocabSize: 16, numTags: 5, embeddingDim: 6, hiddenSize: 5, numLayers, head: 'linear' }).eval();
      const batch = model.forward(inputIds);
      [6, 4, 2].forEach((L, b) => {
        const alone = model.forward(inputIds.narrow(0, b, 1).narrow(1, 0, L));
        const rows = batch.narrow(0, b, 1).narrow(1, 0, L);
        expect(rows.sub(alone).abs().max().item() as number).toBeLessThan(1e-6);
      });
      model.dispose();
    });
  }
});

// a small BERT (Hugging Face config.json keys)
const config = {
  model_type: 'bert',
  vocab_size: 40,
  hidden_size: 16,
  num_hidden_layers: 2,
  num_attention_heads: 2,
  intermediate_size: 32,
  max_position_embeddings: 32,
  type_vocab_size: 2,
  hidden_dropout_prob: 0.1,
  attention_probs_dropout_prob: 0.1,
};
// two texts of 10 and 7 pieces ([CLS] ... [SEP]); words start at these pieces, -1 past the last word
const pieces = torch.tensor([
  [1, 5, 6, 7, 8, 9, 10, 11, 12, 2],
  [1, 13, 14, 15, 16, 17, 2, 0, 0, 0],
]);
const attentionMask = torch.tensor([
  [1, 1, 1, 1, 1, 1, 1, 1, 1, 1],
  [1, 1, 1, 1, 1, 1, 1, 0, 0, 0],
]);
const firstPieceIndex = torch.tensor([
  [1, 2, 4, 5, 7, 8],
  [1, 3, 4, 5, -1, -1],
]);
const wordTags = torch.tensor([
  [0, 1, 2, 0, 3, 4],
  [1, 2, 2, 0, -100, -100],
]);

const python = transformersPython();

describe.skipIf(!python)('models.bertTagger (BERT + BiLSTM + CRF) against transformers BertModel + the same head', () => {
  for (const head of ['bilstm-crf', 'linear'] as const) {
    it(`${head}: same parameter names, word-level emissions, NLL and gradients (1e-5)`, () => {
      torch.manualSeed(5);
      const model = models.bertTagger(config, { numTags: 5, head, lstmHiddenSize: 6 });
      if (model.crf) torch.noGrad(() => model.crf!.namedParameters().forEach(([, p]) => p.mul_(20)));
      model.eval();
      const ref = pythonReference<TaggerRef>(
        {
          job: 'bertTagger',
          config: Object.fromEntries(Object.entries(config).filter(([k]) => k !== 'model_type')),
          options: { numTags: 5, head, lstmHiddenSize: 6 },
          params: Object.fromEntries(Object.entries(model.stateDict()).map(([k, v]) => [k, enc(v)])),
          inputIds: enc(pieces),
          attentionMask: enc(attentionMask),
          firstPieceIndex: enc(firstPieceIndex),
          tags: enc(wordTags),
        },
        python!,
      );
      // every weight loaded into transformers' BertModel + head, nothing left over either way
      expect(ref.load).toEqual({ missing: [], unexpected: [] });
      expect(model.namedParameters().map(([n]) => n)).toEqual(ref.names);
      const emissions = model.forward(pieces, attentionMask, firstPieceIndex);
      expect(emissions.shape).toEqual([2, 6, 5]);
      expect(maxDiff(emissions, ref.emissions)).toBeLessThan(1e-5);
      const loss = model.loss(emissions, wordTags);
      expect(Math.abs((loss.item() as number) - ref.loss)).toBeLessThan(1e-5);
      loss.backward();
      for (const [name, p] of model.namedParameters()) expect(maxDiff(p.grad!, ref.grads[name]), `${name}.grad`).toBeLessThan(1e-5);
      if (ref.decode) expect(model.decode(pieces, attentionMask, firstPieceIndex)).toEqual(ref.decode);
      model.dispose();
    });
  }
});

describe('bertTagger for fine-tuning', () => {
  it('names: bert.* as Hugging Face, then lstm, classifier, crf per head', () => {
    for (const [head, rest] of [
      ['linear', ['classifier']],
      ['crf', ['classifier', 'crf']],
      ['bilstm-crf', ['lstm', 'classifier', 'crf']],
    ] as const) {
      const model = models.bertTagger(config, { numTags: 3, head });
      const names = model.namedParameters().map(([n]) => n);
      expect(names[0]).toBe('bert.embeddings.word_embeddings.weight');
      expect(names).toContain('bert.encoder.layer.1.output.LayerNorm.bias');
      expect(names.some((n) => n.startsWith('bert.pooler'))).toBe(false);
      expect([...new Set(names.filter((n) => !n.startsWith('bert.')).map((n) => n.split('.')[0]))]).toEqual(rest);
      // per-piece emissions without firstPieceIndex
      expect(model.forward(pieces, attentionMask).shape).toEqual([2, 10, 3]);
      model.dispose();
    }
  });

  it('freeze: the first N blocks are the embeddings and the first encoder layers', () => {
    const model = models.bertTagger(config, { numTags: 5, head: 'bilstm-crf' });
    expect(finetune.blocksOf(model).map((b) => b.name)).toEqual(['embeddings', 'layer0', 'layer1', 'head']);
    const frozen = finetune.freeze(model, { blocks: 2 });
    expect(frozen.length).toBeGreaterThan(0);
    expect(frozen.every((n) => n.startsWith('bert.embeddings.') || n.startsWith('bert.encoder.layer.0.'))).toBe(true);
    for (const [name, p] of model.namedParameters())
      expect(p.requiresGrad, name).toBe(!(name.startsWith('bert.embeddings.') || name.startsWith('bert.encoder.layer.0.')));
    // a frozen block gets no gradient
    model.loss(model.forward(pieces, attentionMask, firstPieceIndex), wordTags).backward();
    const grads = Object.fromEntries(model.namedParameters().map(([n, p]) => [n, p.grad]));
    expect(grads['bert.embeddings.word_embeddings.weight']).toBeNull();
    expect(grads['bert.encoder.layer.1.attention.self.query.weight']).not.toBeNull();
    expect(grads['crf.transitions']).not.toBeNull();
    model.dispose();
  });

  it('paramGroups: the encoder at 2e-5, the head (BiLSTM, classifier, CRF) at 1e-3', () => {
    const model = models.bertTagger(config, { numTags: 3, head: 'bilstm-crf' });
    const groups = finetune.paramGroups(model, { lrs: [2e-5, 2e-5, 2e-5, 1e-3], weightDecay: 0.01 });
    const numel = (ts: Tensor[]) => ts.reduce((n, t) => n + t.numel(), 0);
    const ofBlock = (block: string) => numel(groups.filter((g) => g.block === block).flatMap((g) => g.params));
    const named = (re: RegExp) =>
      numel(
        model
          .namedParameters()
          .filter(([n]) => re.test(n))
          .map(([, p]) => p),
      );
    expect(groups.filter((g) => g.block === 'head').every((g) => g.lr === 1e-3)).toBe(true);
    expect(groups.filter((g) => g.block !== 'head').every((g) => g.lr === 2e-5)).toBe(true);
    expect(ofBlock('head')).toBe(named(/^(lstm|classifier|crf)\./));
    expect(ofBlock('embeddings')).toBe(named(/^bert\.embeddings\./));
    expect(ofBlock('layer1')).toBe(named(/^bert\.encoder\.layer\.1\./));
    expect(numel(groups.flatMap((g) => g.params))).toBe(numel(model.parameters()));
    // 1-D parameters (biases, LayerNorm, CRF start/end) without weight decay
    expect(groups.filter((g) => g.weightDecay === 0).every((g) => g.params.every((p) => p.ndim === 1))).toBe(true);
    model.dispose();
  });

  it('swapHead with a new tag count replaces the classifier and the CRF, keeps the encoder and the BiLSTM', () => {
    const model = models.bertTagger(config, { numTags: 3, head: 'bilstm-crf', lstmHiddenSize: 6 });
    const before = Object.fromEntries(Object.entries(model.stateDict()).map(([k, v]) => [k, v.clone()]));
    finetune.swapHead(model, 7);
    const after = model.stateDict();
    expect(after['classifier.weight'].shape).toEqual([7, 12]);
    expect(after['crf.transitions'].shape).toEqual([7, 7]);
    expect(after['crf.start_transitions'].shape).toEqual([7]);
    expect(model.numTags).toBe(7);
    expect(model.crf!.numTags).toBe(7);
    for (const k of Object.keys(before).filter((k) => !/^(classifier|crf)\./.test(k))) expect(after[k].sub(before[k]).abs().max().item(), k).toBe(0);
    expect(model.forward(pieces, attentionMask, firstPieceIndex).shape).toEqual([2, 6, 7]);
    expect(finetune.headOf(model).path).toBe('classifier');
    model.dispose();
  });

  it('models.save / models.load round trip (after swapHead too): same class, options, weights and emissions', () => {
    torch.manualSeed(9);
    const model = models.bertTagger(config, { numTags: 4, head: 'bilstm-crf', lstmHiddenSize: 6 }).eval();
    finetune.swapHead(model, 6);
    const path = join(scratch, 'bert-bilstm-crf.safetensors');
    models.save(model, path);
    expect(models.savedArchitecture(path)?.arch).toBe('bertTagger');
    const back = models.load(path) as InstanceType<typeof models.BertTagger>;
    expect(back).toBeInstanceOf(models.BertTagger);
    back.eval();
    expect(back.numTags).toBe(6);
    expect(back.archOptions()).toEqual(model.archOptions());
    const a = model.forward(pieces, attentionMask, firstPieceIndex);
    const b = back.forward(pieces, attentionMask, firstPieceIndex);
    expect(a.sub(b).abs().max().item()).toBe(0);
    expect(back.decode(pieces, attentionMask, firstPieceIndex)).toEqual(model.decode(pieces, attentionMask, firstPieceIndex));

    const lstmCrf = models.bilstmCrf({ vocabSize: 16, numTags: 5, embeddingDim: 6, hiddenSize: 5, dropout: 0.2 }).eval();
    const p2 = join(scratch, 'bilstm-crf.safetensors');
    models.save(lstmCrf, p2);
    const back2 = models.load(p2) as InstanceType<typeof models.BiLstmCrf>;
    expect(back2).toBeInstanceOf(models.BiLstmCrf);
    expect(back2.archOptions()).toEqual(lstmCrf.archOptions());
    expect(back2.eval().forward(inputIds).sub(lstmCrf.forward(inputIds)).abs().max().item()).toBe(0);
    [model, back, lstmCrf, back2].forEach((m) => m.dispose());
  });

  it("encoders: a Hugging Face token-classification folder's encoder loads (its classifier does not); a masked-LM model's encoder is taken", () => {
    torch.manualSeed(2);
    const hf = models.bert({ ...config, num_labels: 9 }, { task: 'tokenClassification' });
    const dir = join(scratch, 'hf-token');
    models.savePretrained(hf, dir);
    const tagger = models.bertTagger(dir, { numTags: 3, head: 'crf' });
    const mine = tagger.stateDict();
    const theirs = hf.stateDict();
    const encoderKeys = Object.keys(theirs).filter((k) => k.startsWith('bert.') && !k.includes('position_ids'));
    expect(encoderKeys.length).toBeGreaterThan(10);
    for (const k of encoderKeys) expect(mine[k].sub(theirs[k]).abs().max().item(), k).toBe(0);
    expect(mine['classifier.weight'].shape).toEqual([3, 16]);

    const mlm = models.bert(config, { task: 'maskedLM' });
    const fromMlm = models.bertTagger(mlm, { numTags: 3, head: 'linear' });
    const w = 'bert.encoder.layer.1.output.dense.weight';
    expect(fromMlm.stateDict()[w].sub(mlm.stateDict()[w]).abs().max().item()).toBe(0);
    [hf, tagger, mlm, fromMlm].forEach((m) => m.dispose());
  });

  it('rejects bad options and inputs, naming them', () => {
    expect(() => models.bertTagger(config, { numTags: 0 })).toThrow(/numTags must be a positive integer, got 0/);
    expect(() => models.bertTagger(config, { numTags: 3, head: 'lstm' as never })).toThrow(/head must be one of 'linear', 'crf', 'bilstm-crf', got "lstm"/);
    expect(() => models.bertTagger({ model_type: 'gpt2' }, { numTags: 3 })).toThrow(/model_type must be bert, roberta or distilbert, got "gpt2"/);
    expect(() => models.bertTagger('/nonexistent/folder', { numTags: 3 })).toThrow(/\/nonexistent\/folder does not exist/);
    expect(() => models.bilstmCrf({ vocabSize: 10, numTags: 3, paddingIdx: 10 })).toThrow(/paddingIdx must be a token id in 0\.\.9, got 10/);
    expect(() => models.bilstmCrf({ vocabSize: 10, numTags: 3, dropout: 1.5 })).toThrow(/dropout must be a probability/);
    const m = models.bilstmCrf({ vocabSize: 10, numTags: 3 });
    expect(() => m.forward(torch.tensor([[1, 2, 10]]))).toThrow(/token id 10 is outside the vocabulary 0\.\.9/);
    expect(() => m.forward(torch.tensor([[0, 2, 3]]))).toThrow(/must be a left-aligned prefix/);
    expect(() => m.forward(torch.tensor([[1.5, 2]]))).toThrow(/inputIds must be int64/);
    const t = models.bertTagger(config, { numTags: 3, head: 'crf' });
    expect(() => t.forward(pieces, attentionMask, torch.tensor([[1, 2]]))).toThrow(/firstPieceIndex must be int64 \[2, words\]/);
    expect(() =>
      t.forward(
        pieces,
        attentionMask,
        torch.tensor([
          [1, 40],
          [1, 2],
        ]),
      ),
    ).toThrow(/firstPieceIndex holds 40/);
    [m, t].forEach((x) => x.dispose());
  });
});

describe('end to end with the data pipeline and the shipped small BERT', () => {
  it('splitWords -> encodeWords (its WordPiece) -> batchWindows -> bertTagger(assets/bert-tiny-debian, bilstm-crf): the loss falls and decode gives the training tags', () => {
    torch.manualSeed(0);
    const tokenizer = data.loadTokenizer(join(root, 'assets', 'bert-tiny-debian'), { lowercase: true });
    // O, B-YEAR, B-LIC, I-LIC per word
    const texts: Array<[string, number[]]> = [
      ['Copyright 2009 the Foo authors under the GNU General Public License', [0, 1, 0, 0, 0, 0, 0, 2, 3, 3, 3]],
      ['Released in 1998 under the Apache License', [0, 0, 1, 0, 0, 2, 3]],
      ['Copyright 2015 Jane Doe , licensed under the MIT License', [0, 1, 0, 0, 0, 0, 0, 0, 2, 3]],
      ['This package since 2003 uses the BSD License', [0, 0, 0, 1, 0, 0, 2, 3]],
    ];
    const windows = texts.flatMap(([text, labels]) => data.encodeWords(tokenizer, data.splitWords(text).words, { maxLength: 64, labels }));
    const batch = data.batchWindows(windows, { padId: 0 });
    // some words are several pieces: the word sequence is shorter than the piece sequence
    expect(batch.firstPieceIndex.shape[1]).toBeLessThan(batch.inputIds.shape[1] - 2);
    const model = models.bertTagger(join(root, 'assets', 'bert-tiny-debian'), { numTags: 4, head: 'bilstm-crf', lstmHiddenSize: 32 });
    const named = model.namedParameters();
    const optimizer = new optim.AdamW([
      { params: named.filter(([n]) => n.startsWith('bert.')).map(([, p]) => p), lr: 1e-4 },
      { params: named.filter(([n]) => !n.startsWith('bert.')).map(([, p]) => p), lr: 1e-2 },
    ]);
    model.train();
    const seen: number[] = [];
    for (let step = 0; step < 40; step++)
      seen.push(
        torch.tidy(() => {
          optimizer.zeroGrad();
          const loss = model.loss(model.forward(batch.inputIds, batch.attentionMask, batch.firstPieceIndex), batch.wordLabels!);
          loss.backward();
          optimizer.step();
          return loss.item() as number;
        }),
      );
    expect(seen.at(-1)!).toBeLessThan(seen[0] * 0.05);
    model.eval();
    expect(model.decode(batch.inputIds, batch.attentionMask, batch.firstPieceIndex)).toEqual(texts.map(([, labels]) => labels));
    model.dispose();
  });
});
