// The masking collator: its invariants, binomial 99.9% intervals for the 15% /
// 80% / 10% / 10% shares and for whole-word grouping, and the same statistics
// from transformers' own DataCollatorForLanguageModeling run on the same ids
// (two-proportion tests at 99.9%; the random streams differ, so not bitwise).
//
// The transformers comparison needs a Python with torch and transformers:
// FINETORCH_TRANSFORMERS_PYTHON, else the torch 2.x venv (.venv-torch2), else
// Debian's /usr/bin/python3; without one those tests are skipped, unless
// FINETORCH_REQUIRE_TRANSFORMERS=1, which makes that a failure.
import { describe, it, expect, beforeAll } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { data, torch, ArgumentError, type Tensor } from 'finetorch';
import { transformersPython } from '../reference';

const python = transformersPython('torch, transformers');

// A vocabulary of 1,000: 5 specials, 595 words, 400 '##' pieces (ids 600..999).
const V = 1000;
const vocab = [
  '[PAD]',
  '[UNK]',
  '[CLS]',
  '[SEP]',
  '[MASK]',
  ...Array.from({ length: 595 }, (_, i) => `w${i}`),
  ...Array.from({ length: 400 }, (_, i) => `##p${i}`),
];
const PAD = 0;
const UNK = 1;
const CLS = 2;
const SEP = 3;
const MASK = 4;
const SPECIAL = new Set([PAD, UNK, CLS, SEP, MASK]);
const isPiece = (id: number) => id >= 600;
const tokenizer = new data.WordPieceTokenizer(vocab);

// Rows of [CLS] tokens [SEP] [PAD]...: 70% words, 30% pieces (some right after
// [CLS], which start a word), a few [UNK]s, lengths from T/2 to T.
function makeIds(rows: number, T: number, seed: number): number[][] {
  const r = data.rng(seed);
  return Array.from({ length: rows }, () => {
    const n = Math.floor(T / 2 + r() * (T / 2 - 1));
    const row = [CLS];
    for (let i = 0; i < n - 2; i++) {
      const u = r();
      row.push(u < 0.01 ? UNK : u < 0.7 ? 5 + Math.floor(r() * 595) : 600 + Math.floor(r() * 400));
    }
    row.push(SEP);
    while (row.length < T) row.push(PAD);
    return row;
  });
}

interface Stats {
  eligible: number;
  chosen: number;
  masked: number;
  kept: number;
  randomized: number;
  words: number;
  wordsChosen: number;
  wordsPartly: number;
  chosenIneligible: number;
}

const rowsOf = (t: Tensor) => t.toArray() as number[][];

/** Counts on one masked batch, by this test's own definition of words and eligibility. */
function stats(ids: number[][], out: number[][], labels: number[][], attention?: number[][]): Stats {
  const s: Stats = { eligible: 0, chosen: 0, masked: 0, kept: 0, randomized: 0, words: 0, wordsChosen: 0, wordsPartly: 0, chosenIneligible: 0 };
  ids.forEach((row, b) => {
    const eligible = row.map((id, t) => !SPECIAL.has(id) && (attention ? attention[b][t] === 1 : true));
    let word: boolean[] = [];
    const closeWord = () => {
      if (!word.length) return;
      s.words++;
      const n = word.filter(Boolean).length;
      if (n === word.length) s.wordsChosen++;
      else if (n > 0) s.wordsPartly++;
      word = [];
    };
    row.forEach((id, t) => {
      const chosen = labels[b][t] !== -100;
      if (!eligible[t]) {
        closeWord();
        if (chosen) s.chosenIneligible++;
        return;
      }
      if (!(isPiece(id) && t > 0 && eligible[t - 1])) closeWord();
      word.push(chosen);
      s.eligible++;
      if (!chosen) return;
      s.chosen++;
      if (out[b][t] === MASK) s.masked++;
      else if (out[b][t] === id) s.kept++;
      else s.randomized++;
    });
    closeWord();
  });
  return s;
}

const Z = 3.291; // two-sided 99.9%

/** k successes of n are consistent with probability p at 99.9% (normal approximation, continuity-corrected). */
function expectBinomial(what: string, k: number, n: number, p: number) {
  const sd = Math.sqrt(n * p * (1 - p));
  const lo = n * p - Z * sd - 0.5;
  const hi = n * p + Z * sd + 0.5;
  console.log(`${what}: ${k}/${n} = ${(k / n).toFixed(4)}, expected ${p.toFixed(4)}, 99.9% interval [${(lo / n).toFixed(4)}, ${(hi / n).toFixed(4)}]`);
  expect(k, what).toBeGreaterThanOrEqual(lo);
  expect(k, what).toBeLessThanOrEqual(hi);
}

/** Two observed shares k1/n1 and k2/n2 are consistent with one probability at 99.9% (pooled two-proportion z-test). */
function expectSameShare(what: string, k1: number, n1: number, k2: number, n2: number) {
  const p = (k1 + k2) / (n1 + n2);
  const sd = Math.sqrt(p * (1 - p) * (1 / n1 + 1 / n2));
  const z = sd === 0 ? 0 : Math.abs(k1 / n1 - k2 / n2) / sd;
  console.log(`${what}: finetorch ${k1}/${n1} = ${(k1 / n1).toFixed(4)}, transformers ${k2}/${n2} = ${(k2 / n2).toFixed(4)}, |z| = ${z.toFixed(2)}`);
  expect(z, what).toBeLessThanOrEqual(Z);
}

const T = 128;
const BIG = makeIds(512, T, 7); // 65,536 positions, about 47,000 eligible
const bigIds = torch.tensor(BIG, { dtype: 'int64' });
const base = { maskTokenId: MASK, vocabSize: V, specialIds: tokenizer, padTokenId: PAD, seed: 1234 } as const;

describe('data.maskTokens: invariants', () => {
  it('labels are -100 exactly where a token was not chosen; chosen tokens keep their id in labels; specials and pads are never chosen; the input is unchanged', () => {
    const before = rowsOf(bigIds);
    const { inputIds, labels } = data.maskTokens(bigIds, base);
    expect(inputIds.dtype).toBe('int64');
    expect(labels.dtype).toBe('int64');
    expect(inputIds.shape).toEqual([512, T]);
    expect(rowsOf(bigIds)).toEqual(before);
    const out = rowsOf(inputIds);
    const lab = rowsOf(labels);
    let chosen = 0;
    const wrong = { changedButNotChosen: 0, labelNotOriginal: 0, specialChosen: 0, outOfRange: 0 };
    for (let b = 0; b < BIG.length; b++)
      for (let t = 0; t < T; t++) {
        const id = BIG[b][t];
        if (lab[b][t] === -100) wrong.changedButNotChosen += Number(out[b][t] !== id);
        else {
          chosen++;
          wrong.labelNotOriginal += Number(lab[b][t] !== id);
          wrong.specialChosen += Number(SPECIAL.has(id));
        }
        wrong.outOfRange += Number(!(out[b][t] >= 0 && out[b][t] < V));
      }
    expect(wrong).toEqual({ changedButNotChosen: 0, labelNotOriginal: 0, specialChosen: 0, outOfRange: 0 });
    expect(chosen).toBeGreaterThan(1000);
  });

  it('positions where the attention mask is 0 are never chosen, even when their id is an ordinary token', () => {
    const ids = torch.tensor([Array(64).fill(10)], { dtype: 'int64' });
    const attention = torch.tensor([[...Array(32).fill(1), ...Array(32).fill(0)]], { dtype: 'int64' });
    const { labels } = data.maskTokens(ids, { ...base, mlmProbability: 1, attentionMask: attention });
    const lab = rowsOf(labels)[0];
    expect(lab.slice(0, 32).every((l) => l === 10)).toBe(true);
    expect(lab.slice(32).every((l) => l === -100)).toBe(true);
  });

  it('is deterministic in (seed, epoch, batchIndex); changing any of them changes the masking; a fresh collator at batch (2, 7) masks as one that ran through earlier batches', () => {
    const collator = new data.MaskedLMCollator(tokenizer, { seed: 99 });
    const ids = torch.tensor(BIG.slice(0, 32), { dtype: 'int64' });
    const key = (e: number, b: number, c = collator) => JSON.stringify(rowsOf(c.collate(ids, { epoch: e, batchIndex: b }).inputIds));
    const labelsKey = (e: number, b: number) => JSON.stringify(rowsOf(collator.collate(ids, { epoch: e, batchIndex: b }).labels));
    for (let e = 0; e < 3; e++) for (let b = 0; b < 8; b++) collator.collate(ids, { epoch: e, batchIndex: b });
    const resumed = new data.MaskedLMCollator(tokenizer, { seed: 99 });
    expect(key(2, 7, resumed)).toBe(key(2, 7));
    expect(labelsKey(0, 0)).toBe(labelsKey(0, 0));
    const keys = new Set([labelsKey(0, 0), labelsKey(0, 1), labelsKey(1, 0), labelsKey(1, 1)]);
    expect(keys.size).toBe(4);
    const other = new data.MaskedLMCollator(tokenizer, { seed: 100 });
    expect(key(0, 0, other)).not.toBe(key(0, 0));
    // the function and the collator agree; a bigint seed is the same seed
    const direct = data.maskTokens(ids, { ...base, seed: 99n, epoch: 1, batchIndex: 3 });
    expect(JSON.stringify(rowsOf(direct.inputIds))).toBe(key(1, 3));
  });

  it('random replacements are any id in [0, vocabSize), uniformly (chi-square over 10 bins at 99.9%), specials included', () => {
    const { inputIds, labels } = data.maskTokens(bigIds, { ...base, mlmProbability: 1, maskReplaceProb: 0, randomReplaceProb: 1 });
    const out = rowsOf(inputIds).flat();
    const lab = rowsOf(labels).flat();
    const drawn = out.filter((_, i) => lab[i] !== -100);
    const bins = Array(10).fill(0);
    for (const id of drawn) bins[Math.floor(id / 100)]++;
    const expected = drawn.length / 10;
    const chi2 = bins.reduce((s, k) => s + (k - expected) ** 2 / expected, 0);
    console.log(`random ids: ${drawn.length} draws, chi-square ${chi2.toFixed(2)} (df 9, 99.9% critical 27.88)`);
    expect(chi2).toBeLessThan(27.88);
    expect(drawn.some((id) => SPECIAL.has(id))).toBe(true);
  });

  it('whole-word masking chooses a token and its ## pieces together; a piece after a special token starts its own word; default is all [MASK]', () => {
    const collator = new data.MaskedLMCollator(tokenizer, { seed: 5, wholeWordMask: true });
    expect(collator.settings.maskReplaceProb).toBe(1);
    expect(collator.settings.randomReplaceProb).toBe(0);
    const { inputIds, labels } = collator.collate(bigIds);
    const s = stats(BIG, rowsOf(inputIds), rowsOf(labels));
    expect(s.wordsPartly).toBe(0);
    expect(s.chosenIneligible).toBe(0);
    expect(s.masked).toBe(s.chosen);
    // a hand-made row: [CLS] ##p (own word) w ##p ##p [SEP] with every word chosen
    const row = torch.tensor([[CLS, 600, 10, 601, 602, SEP]], { dtype: 'int64' });
    const all = data.maskTokens(row, { ...base, wholeWordMask: true, isContinuation: isPiece, mlmProbability: 1 });
    expect(rowsOf(all.labels)[0]).toEqual([-100, 600, 10, 601, 602, -100]);
  });
});

describe('data.MaskedLMCollator with a byte-level BPE (RoBERTa) tokenizer', () => {
  it("takes <mask> and the specials from the vocabulary; a word runs from a 'Ġ' token to the next", () => {
    const bpe = new data.ByteLevelBPETokenizer(['<s>', '<pad>', '</s>', '<unk>', '<mask>', 'Ġhello', 'Ġwor', 'ld', ','], []);
    const collator = new data.MaskedLMCollator(bpe, { seed: 3, wholeWordMask: true, mlmProbability: 0.5 });
    expect(collator.settings.maskTokenId).toBe(4);
    expect(collator.settings.specialIds).toEqual([0, 1, 2, 3, 4]);
    const row = [0, ...Array(20).fill([5, 6, 7, 8]).flat(), 2, 1, 1];
    const labels = rowsOf(collator.collate(torch.tensor(Array(50).fill(row), { dtype: 'int64' })).labels);
    let words = 0;
    let chosen = 0;
    for (const lab of labels) {
      expect([lab[0], ...lab.slice(-3)]).toEqual([-100, -100, -100, -100]);
      for (let i = 1; i + 3 < row.length - 3; i += 4) {
        const second = lab.slice(i + 1, i + 4).map((l) => l !== -100);
        expect(new Set(second).size).toBe(1); // 'Ġwor' 'ld' ',' together
        words += 2;
        chosen += Number(lab[i] !== -100) + Number(second[0]);
      }
    }
    expectBinomial('BPE words chosen', chosen, words, 0.5);
  });
});

describe('data.maskTokens: shares within binomial 99.9% intervals', () => {
  for (const [mlm, mask, random] of [
    [0.15, 0.8, 0.1],
    [0.3, 0.5, 0.4],
  ]) {
    it(`mlmProbability ${mlm}, maskReplaceProb ${mask}, randomReplaceProb ${random}`, () => {
      const { inputIds, labels } = data.maskTokens(bigIds, { ...base, mlmProbability: mlm, maskReplaceProb: mask, randomReplaceProb: random });
      const s = stats(BIG, rowsOf(inputIds), rowsOf(labels));
      expect(s.chosenIneligible).toBe(0);
      expectBinomial('chosen of eligible', s.chosen, s.eligible, mlm);
      // a random draw can hit [MASK] or the original id (1 / V each)
      expectBinomial('[MASK] of chosen', s.masked, s.chosen, mask + random / V);
      expectBinomial('random of chosen', s.randomized, s.chosen, (random * (V - 2)) / V);
      expectBinomial('unchanged of chosen', s.kept, s.chosen, 1 - mask - random + random / V);
    });
  }

  it('whole words: each word chosen with mlmProbability, never partly; with explicit 0.8 / 0.1 the replacement shares hold per token', () => {
    const { inputIds, labels } = data.maskTokens(bigIds, {
      ...base,
      wholeWordMask: true,
      isContinuation: tokenizer,
      maskReplaceProb: 0.8,
      randomReplaceProb: 0.1,
    });
    const s = stats(BIG, rowsOf(inputIds), rowsOf(labels));
    expect(s.wordsPartly).toBe(0);
    expectBinomial('words chosen', s.wordsChosen, s.words, 0.15);
    expectBinomial('[MASK] of chosen tokens', s.masked, s.chosen, 0.8 + 0.1 / V);
    expectBinomial('unchanged of chosen tokens', s.kept, s.chosen, 0.1 + 0.1 / V);
  });
});

describe('data.maskTokens: bad options', () => {
  const ids = torch.tensor([[CLS, 10, 11, SEP]], { dtype: 'int64' });
  const cases: Array<[string, object, RegExp]> = [
    ['mlmProbability above 1', { mlmProbability: 1.5 }, /mlmProbability must be a number in \[0, 1\], got 1.5/],
    ['negative maskReplaceProb', { maskReplaceProb: -0.1 }, /maskReplaceProb must be a number in \[0, 1\]/],
    ['NaN randomReplaceProb', { randomReplaceProb: Number.NaN }, /randomReplaceProb must be a number in \[0, 1\], got NaN/],
    ['mask + random above 1', { maskReplaceProb: 0.8, randomReplaceProb: 0.3 }, /must not exceed 1, got 0.8 \+ 0.3/],
    ['mask id outside the vocabulary', { maskTokenId: 1000 }, /maskTokenId must be an integer id inside the vocabulary \[0, 1000\), got 1000/],
    ['a bad special id', { specialIds: [0, -1] }, /specialIds\[1\] must be an integer id/],
    ['wholeWordMask without isContinuation', { wholeWordMask: true }, /wholeWordMask needs isContinuation/],
    ['a fractional seed', { seed: 1.5 }, /seed must be an integer >= 0/],
    ['a negative epoch', { epoch: -1 }, /epoch must be an integer >= 0/],
    ['vocabSize 0', { vocabSize: 0 }, /vocabSize must be an integer >= 1/],
  ];
  for (const [what, patch, message] of cases)
    it(`${what}: ArgumentError`, () => {
      const call = () => data.maskTokens(ids, { ...base, specialIds: [0, 1, 2, 3, 4], ...patch } as never);
      expect(call).toThrow(ArgumentError);
      expect(call).toThrow(message);
    });

  it('ids outside the vocabulary, float ids, a mismatched attention mask, a tokenizer without [MASK]', () => {
    expect(() =>
      data.maskTokens(
        torch.tensor(
          [
            [2, 5],
            [7, 1000],
          ],
          { dtype: 'int64' },
        ),
        base,
      ),
    ).toThrow(/holds 1000 at row 1, position 1, outside the vocabulary \[0, 1000\)/);
    expect(() => data.maskTokens(torch.tensor([[2.5]]), base)).toThrow(/inputIds must be an integer tensor, got float32/);
    expect(() => data.maskTokens(ids, { ...base, attentionMask: torch.ones([1, 3], { dtype: 'int64' }) })).toThrow(
      /attentionMask has shape \[1,3\], inputIds \[1,4\]/,
    );
    const noMask = new data.WordPieceTokenizer(['[PAD]', '[UNK]', '[CLS]', '[SEP]', 'a']);
    expect(() => new data.MaskedLMCollator(noMask, { seed: 1 })).toThrow(/no mask token/);
    expect(() => new data.MaskedLMCollator(tokenizer, { seed: 1, mlmProbability: 2 })).toThrow(ArgumentError);
  });
});

describe.skipIf(!python)('data.maskTokens: the same statistics as transformers DataCollatorForLanguageModeling', () => {
  // transformers gets the same ids, with offsets that make its words this test's words (a piece adjoins the
  // token before it unless that is special); for each run, the counts from both are compared.
  const runs = [
    { mlm: 0.15, mask: 0.8, random: 0.1, wwm: false, seed: 11 },
    { mlm: 0.3, mask: 0.5, random: 0.4, wwm: false, seed: 12 },
    { mlm: 0.15, mask: 0.8, random: 0.1, wwm: true, seed: 13 },
  ];
  let hf: {
    version: string;
    len: number;
    specialIds: number[];
    runs: Array<{ input_ids: number[][]; labels: number[][]; mask_replace_prob: number; random_replace_prob: number }>;
  };

  beforeAll(() => {
    const dir = mkdtempSync(join(tmpdir(), 'finetorch-mlm-'));
    writeFileSync(join(dir, 'vocab.txt'), `${vocab.join('\n')}\n`);
    const script = `
import json, sys, warnings
warnings.simplefilter('ignore')
import transformers
from transformers import BertTokenizerFast, DataCollatorForLanguageModeling
cfg = json.load(sys.stdin)
tok = BertTokenizerFast(vocab=cfg['vocab'])  # 5.x: vocab=, not vocab_file= (ignored there)
special = set(tok.all_special_ids)
cont = set(i for i in range(len(tok)) if tok.convert_ids_to_tokens(i).startswith('##'))
out = {'version': transformers.__version__, 'len': len(tok), 'specialIds': sorted(special), 'runs': []}
for run in cfg['runs']:
    coll = DataCollatorForLanguageModeling(tok, mlm_probability=run['mlm'], mask_replace_prob=run['mask'],
                                           random_replace_prob=run['random'], whole_word_mask=run['wwm'], seed=run['seed'])
    examples = []
    for row in cfg['ids']:
        offsets, end, prev_special = [], 0, True
        for t in row:
            if t in special:
                offsets.append((0, 0)); prev_special = True; continue
            start = end if (t in cont and not prev_special) else end + 1
            end = start + 1; offsets.append((start, end)); prev_special = False
        examples.append({'input_ids': row, 'offset_mapping': offsets} if run['wwm'] else {'input_ids': row})
    b = coll(examples)
    out['runs'].append({'input_ids': b['input_ids'].tolist(), 'labels': b['labels'].tolist(),
                        'mask_replace_prob': coll.mask_replace_prob, 'random_replace_prob': coll.random_replace_prob})
json.dump(out, sys.stdout)
`;
    const r = spawnSync(python!, ['-c', script], {
      input: JSON.stringify({ vocab: join(dir, 'vocab.txt'), ids: BIG, runs }),
      encoding: 'utf8',
      maxBuffer: 1 << 28,
      timeout: 300000,
    });
    if (r.status !== 0) throw new Error(`transformers reference failed: ${r.stderr}`);
    hf = JSON.parse(r.stdout);
  }, 300000);

  it('transformers sees the same vocabulary and special ids', () => {
    expect(hf.len).toBe(V);
    expect(hf.specialIds).toEqual([...SPECIAL].sort());
    expect(data.specialTokenIds(tokenizer).sort()).toEqual(hf.specialIds);
  });

  runs.forEach((run, i) => {
    it(`${run.wwm ? 'whole words, ' : ''}mlm ${run.mlm}, mask ${run.mask}, random ${run.random}`, () => {
      const theirs = stats(BIG, hf.runs[i].input_ids, hf.runs[i].labels);
      const collator = new data.MaskedLMCollator(tokenizer, {
        seed: run.seed,
        mlmProbability: run.mlm,
        wholeWordMask: run.wwm,
        ...(run.wwm ? {} : { maskReplaceProb: run.mask, randomReplaceProb: run.random }),
      });
      // under whole-word masking transformers 5.x forces mask 1 / random 0; so do our defaults
      expect([collator.settings.maskReplaceProb, collator.settings.randomReplaceProb]).toEqual([hf.runs[i].mask_replace_prob, hf.runs[i].random_replace_prob]);
      const { inputIds, labels } = collator.collate(bigIds);
      const ours = stats(BIG, rowsOf(inputIds), rowsOf(labels));
      console.log(`transformers ${hf.version} run ${i}:`, JSON.stringify({ ours, theirs }));
      expect(theirs.chosenIneligible).toBe(0);
      expect(ours.chosenIneligible).toBe(0);
      expect(Math.max(...hf.runs[i].input_ids.flat())).toBeLessThan(V);
      expectSameShare('chosen of eligible', ours.chosen, ours.eligible, theirs.chosen, theirs.eligible);
      expectSameShare('[MASK] of chosen', ours.masked, ours.chosen, theirs.masked, theirs.chosen);
      expectSameShare('random of chosen', ours.randomized, ours.chosen, theirs.randomized, theirs.chosen);
      expectSameShare('unchanged of chosen', ours.kept, ours.chosen, theirs.kept, theirs.chosen);
      if (run.wwm) {
        expect(theirs.wordsPartly).toBe(0);
        expect(ours.wordsPartly).toBe(0);
        expectSameShare('words chosen', ours.wordsChosen, ours.words, theirs.wordsChosen, theirs.words);
      }
    });
  });
});
