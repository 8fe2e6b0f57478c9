// Token-classification data: words with offsets, spans <-> tags, the CoNLL
// and JSONL-spans readers, sub-word alignment and windows, merging and
// first-piece packing. The alignment is compared with transformers itself
// (BertTokenizerFast and RobertaTokenizerFast on pre-split words, word_ids(),
// and run_ner's tokenize_and_align_labels written out in Python), through the
// Python that test/reference.ts finds.
// @torch2: the transformers comparisons must run (not skip) in CI's libtorch 2.x leg, which has that Python
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { data, torch } from 'finetorch';
import { root, transformersPython } from '../reference';

const python = transformersPython('torch, transformers, tokenizers');
const vocabFile = join(root, 'assets', 'bert-tiny-debian', 'vocab.txt');
const LABELS = ['O', 'B-A', 'I-A', 'B-B', 'I-B'];

const dir = mkdtempSync(join(tmpdir(), 'finetorch-tokcls-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const file = (name: string, body: string) => {
  const p = join(dir, name);
  writeFileSync(p, body);
  return p;
};

/** A small deterministic generator (mulberry32). */
function random(seed: number) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function glosses(): string[] {
  return readFileSync('/usr/share/wordnet/data.noun', 'utf8')
    .split('\n')
    .filter((l) => l.includes(' | '))
    .map((l) => l.slice(l.indexOf(' | ') + 3).trim());
}

// Run by the transformers Python: BertTokenizerFast on the asset vocabulary
// and RobertaTokenizerFast on a byte-level BPE it trains here, on the same
// pre-split words; run_ner.py's tokenize_and_align_labels as written there.
const REFERENCE = `
import json, sys
from transformers import BertTokenizerFast, RobertaTokenizerFast
from tokenizers import ByteLevelBPETokenizer
job = json.load(open(sys.argv[1]))
label_list = job['labelNames']
label_to_id = {l: i for i, l in enumerate(label_list)}
b_to_i_label = []
for idx, label in enumerate(label_list):
    if label.startswith("B-") and label.replace("B-", "I-") in label_list:
        b_to_i_label.append(label_list.index(label.replace("B-", "I-")))
    else:
        b_to_i_label.append(idx)

def align(word_ids, label, label_all_tokens):
    previous_word_idx = None
    label_ids = []
    for word_idx in word_ids:
        if word_idx is None:
            label_ids.append(-100)
        elif word_idx != previous_word_idx:
            label_ids.append(label_to_id[label[word_idx]])
        else:
            if label_all_tokens:
                label_ids.append(b_to_i_label[label_to_id[label[word_idx]]])
            else:
                label_ids.append(-100)
        previous_word_idx = word_idx
    return label_ids

bert = BertTokenizerFast(job['vocab'], do_lower_case=True)
bpe = ByteLevelBPETokenizer(add_prefix_space=True)
bpe.train_from_iterator(job['bpeCorpus'], vocab_size=1500, min_frequency=2, special_tokens=['<s>', '<pad>', '</s>', '<unk>'], show_progress=False)
bpe.save(job['bpeFile'])
roberta = RobertaTokenizerFast(tokenizer_file=job['bpeFile'], add_prefix_space=True)
out = {'texts': [], 'docs': []}
for text in job['texts']:
    enc = bert(text, return_offsets_mapping=True)
    words = {}
    for w, (s, e) in zip(enc.word_ids(), enc['offset_mapping']):
        if w is None:
            continue
        a, b = words.get(w, (s, e))
        words[w] = (min(a, s), max(b, e))
    out['texts'].append([list(words[w]) for w in sorted(words)])
for doc in job['docs']:
    words, labels = doc['words'], doc['labels']
    enc = bert(words, is_split_into_words=True)
    cut = bert(words, is_split_into_words=True, truncation=True, max_length=16)
    rob = roberta(words, is_split_into_words=True)
    out['docs'].append({
        'ids': enc['input_ids'], 'wordIds': enc.word_ids(),
        'labels': align(enc.word_ids(), labels, False), 'labelsAll': align(enc.word_ids(), labels, True),
        'cutIds': cut['input_ids'], 'cutWordIds': cut.word_ids(),
        'robertaIds': rob['input_ids'], 'robertaWordIds': rob.word_ids(),
        'robertaLabels': align(rob.word_ids(), labels, False),
    })
print(json.dumps(out))
`;

interface Reference {
  texts: number[][][];
  docs: Array<{
    ids: number[];
    wordIds: Array<number | null>;
    labels: number[];
    labelsAll: number[];
    cutIds: number[];
    cutWordIds: Array<number | null>;
    robertaIds: number[];
    robertaWordIds: Array<number | null>;
    robertaLabels: number[];
  }>;
}

describe.skipIf(!python)('sub-word alignment matches transformers (BertTokenizerFast, RobertaTokenizerFast, run_ner)', () => {
  let texts: string[] = [];
  let docs: Array<{ words: string[]; labels: string[] }> = [];
  let ref: Reference;
  const bpeFile = join(dir, 'bpe-tokenizer.json');
  beforeAll(() => {
    const all = glosses();
    texts = all.filter((_, i) => i % 157 === 0).slice(0, 250);
    texts.push(
      'Café Déjà Vu — naïve façade',
      "U.S.A. isn't $3.50 (approx.), is it?!",
      'Mixed 中文 text and ＡＢＣ',
      'tab\tand\u0000null\u200bzero width',
      'UPPER lower MiXeD   spaces\n\nnewlines',
      'supercalifragilisticexpialidocious'.repeat(4) + ' short',
      '',
      '!!!',
    );
    const rand = random(7);
    docs = texts.map((t) => {
      const { words } = data.splitWords(t);
      return { words, labels: words.map(() => LABELS[Math.floor(rand() * LABELS.length)]) };
    });
    const job = join(dir, 'job.json');
    writeFileSync(
      job,
      JSON.stringify({ vocab: vocabFile, labelNames: LABELS, texts, docs, bpeFile, bpeCorpus: all.filter((_, i) => i % 5 === 0).slice(0, 6000) }),
    );
    ref = JSON.parse(execFileSync(python!, ['-c', REFERENCE, job], { encoding: 'utf8', timeout: 300000, maxBuffer: 1 << 28 }));
  }, 300000);

  it('splitWords: the words and offsets of BERT pre-tokenisation on 258 texts (offset_mapping grouped by word_ids)', () => {
    // The texts are in the Basic Multilingual Plane, where Python's offsets equal JavaScript's string indices.
    texts.forEach((t, i) => {
      const { words, offsets } = data.splitWords(t);
      expect(offsets, t).toEqual(ref.texts[i]);
      expect(words).toEqual(offsets.map(([s, e]) => t.slice(s, e)));
    });
  });

  it('WordPiece: ids, word ids and run_ner labels (first piece, and label_all_tokens) on 258 documents', () => {
    const tok = data.WordPieceTokenizer.fromVocabFile(vocabFile);
    let pieces = 0;
    let later = 0;
    docs.forEach((d, i) => {
      const want = ref.docs[i];
      const enc = tok.encodeWords(d.words);
      expect(enc.ids).toEqual(want.ids);
      expect(enc.wordIds).toEqual(want.wordIds);
      const cut = tok.encodeWords(d.words, { maxLength: 16 });
      expect(cut.ids).toEqual(want.cutIds);
      expect(cut.wordIds).toEqual(want.cutWordIds);
      for (const labelAllTokens of [false, true]) {
        const windows = data.encodeWords(tok, d.words, { maxLength: 100000, labels: d.labels, labelNames: LABELS, labelAllTokens });
        expect(windows).toHaveLength(1);
        expect(windows[0].inputIds).toEqual(want.ids);
        expect(windows[0].wordIds).toEqual(want.wordIds.map((w) => w ?? -1));
        expect(windows[0].labels).toEqual(labelAllTokens ? want.labelsAll : want.labels);
      }
      pieces += want.ids.length - 2;
      later += want.labels.filter((l, p) => l === -100 && want.wordIds[p] !== null).length;
    });
    // the comparison covers words split into several pieces, not only whole-word pieces
    expect(later).toBeGreaterThan(pieces / 10);
  });

  it('byte-level BPE (RoBERTa, add_prefix_space): ids, word ids and labels on 258 documents', () => {
    const tok = data.ByteLevelBPETokenizer.fromTokenizerJson(bpeFile);
    docs.forEach((d, i) => {
      const want = ref.docs[i];
      const enc = tok.encodeWords(d.words);
      expect(enc.ids, d.words.join(' ')).toEqual(want.robertaIds);
      expect(enc.wordIds).toEqual(want.robertaWordIds);
      const [window] = data.encodeWords(tok, d.words, { maxLength: 100000, labels: d.labels, labelNames: LABELS });
      expect(window.inputIds).toEqual(want.robertaIds);
      expect(window.labels).toEqual(want.robertaLabels);
    });
  });
});

// A vocabulary where a word of n letters 'a' is n pieces: 'a', '##a', ...
const aTokenizer = () => new data.WordPieceTokenizer(['[PAD]', '[UNK]', '[CLS]', '[SEP]', 'a', '##a', 'b']);

describe('windows over long documents', () => {
  it('cuts whole words into windows with a stride in pieces (worked by hand)', () => {
    // pieces per word: 1 2 3 1 2 1; maxLength 6 leaves 4 pieces a window; stride 2 pieces
    const words = ['a', 'aa', 'aaa', 'a', 'aa', 'a'];
    const windows = data.encodeWords(aTokenizer(), words, { maxLength: 6, stride: 2, labels: [0, 1, 2, 0, 1, 2] });
    expect(windows.map((w) => w.wordStart)).toEqual([0, 1, 2, 3]);
    expect(windows.map((w) => w.wordIds)).toEqual([
      [-1, 0, 1, 1, -1],
      [-1, 1, 1, -1],
      [-1, 2, 2, 2, 3, -1],
      [-1, 3, 4, 4, 5, -1],
    ]);
    expect(windows.map((w) => w.firstPieceIndex)).toEqual([[1, 2], [1], [1, 4], [1, 2, 4]]);
    expect(windows[2].inputIds).toEqual([2, 4, 5, 5, 4, 3]);
    expect(windows[2].labels).toEqual([-100, 2, -100, -100, 0, -100]);
    expect(windows[3].wordLabels).toEqual([0, 1, 2]);
    expect(windows[0].attentionMask).toEqual([1, 1, 1, 1, 1]);
  });

  it('a word longer than a window keeps its first pieces; no stride means no overlap', () => {
    const windows = data.encodeWords(aTokenizer(), ['b', 'aaaaaa', 'b'], { maxLength: 5 });
    expect(windows.map((w) => w.wordIds)).toEqual([
      [-1, 0, -1],
      [-1, 1, 1, 1, -1],
      [-1, 2, -1],
    ]);
  });

  it('on real documents: windows fit, words stay whole, overlaps stay within the stride, every word is covered', () => {
    const tok = data.WordPieceTokenizer.fromVocabFile(vocabFile);
    const text = glosses().slice(0, 60).join(' ');
    const { words } = data.splitWords(text);
    const perWord = words.map((w) => tok.tokenizeWords([w]).ids);
    for (const [maxLength, stride] of [
      [32, 0],
      [32, 8],
      [64, 30],
      [128, 16],
    ]) {
      const windows = data.encodeWords(tok, words, { maxLength, stride });
      const seen = new Set<number>();
      windows.forEach((win, k) => {
        expect(win.inputIds.length).toBeLessThanOrEqual(maxLength);
        expect(win.inputIds[0]).toBe(tok.clsId);
        expect(win.inputIds[win.inputIds.length - 1]).toBe(tok.sepId);
        win.firstPieceIndex.forEach((pos, j) => {
          const w = win.wordStart + j;
          seen.add(w);
          expect(win.inputIds.slice(pos, pos + perWord[w].length)).toEqual(perWord[w]);
        });
        if (k > 0) {
          const prev = windows[k - 1];
          const prevEnd = prev.wordStart + prev.firstPieceIndex.length;
          expect(win.wordStart).toBeGreaterThan(prev.wordStart);
          let overlap = 0;
          for (let w = win.wordStart; w < prevEnd; w++) overlap += perWord[w].length;
          expect(overlap).toBeLessThanOrEqual(stride);
          // the overlap is as long as the stride allows: one more word would pass it
          if (win.wordStart - 1 > prev.wordStart) expect(overlap + perWord[win.wordStart - 1].length).toBeGreaterThan(stride);
        }
      });
      expect(seen.size).toBe(words.length);
      expect(windows.length).toBeGreaterThan(1);
    }
  });

  it('mergeWindowPredictions takes each word from the window where it is farthest from an edge (worked by hand)', () => {
    // ten one-piece words, windows of 4 words with a stride of 2: words 0-3, 2-5, 4-7, 6-9
    const windows = data.encodeWords(aTokenizer(), Array(10).fill('a'), { maxLength: 6, stride: 2 });
    expect(windows.map((w) => w.wordStart)).toEqual([0, 2, 4, 6]);
    const predictions = windows.map((w, k) => w.firstPieceIndex.map(() => k));
    // positions 1..4 sit 0, 1, 1, 0 pieces from an edge
    expect(data.mergeWindowPredictions(windows, predictions)).toEqual([0, 0, 0, 1, 1, 2, 2, 3, 3, 3]);
    // rows padded for a batch are cut to each window's words
    expect(
      data.mergeWindowPredictions(
        windows,
        predictions.map((r) => [...r, -1, -1]),
      ),
    ).toEqual([0, 0, 0, 1, 1, 2, 2, 3, 3, 3]);
    expect(() => data.mergeWindowPredictions(windows, predictions.slice(1))).toThrow(/3 prediction rows for 4 windows/);
    expect(() => data.mergeWindowPredictions(windows, [[0], ...predictions.slice(1)])).toThrow(/window 0 has 4 words but its predictions have 1 entries/);
  });

  it('windows and merging give back each word of a long document its own label', () => {
    const tok = data.WordPieceTokenizer.fromVocabFile(vocabFile);
    const { words } = data.splitWords(glosses().slice(100, 140).join(' '));
    const rand = random(3);
    const labels = words.map(() => LABELS[Math.floor(rand() * LABELS.length)]);
    const windows = data.encodeWords(tok, words, { maxLength: 48, stride: 16, labels, labelNames: LABELS });
    expect(windows.length).toBeGreaterThan(3);
    const merged = data.mergeWindowPredictions(
      windows,
      windows.map((w) => w.wordLabels!.map((id) => LABELS[id])),
    );
    expect(merged).toEqual(labels);
  });

  it('batchWindows pads into int64 tensors', () => {
    const windows = data.encodeWords(aTokenizer(), ['a', 'aa', 'aaa', 'a'], { maxLength: 6, labels: [1, 0, 2, 1] });
    const b = data.batchWindows(windows, { padId: 0 });
    expect(b.inputIds.dtype).toBe('int64');
    expect(b.inputIds.toArray()).toEqual([
      [2, 4, 4, 5, 3, 0],
      [2, 4, 5, 5, 4, 3],
    ]);
    expect(b.attentionMask.toArray()).toEqual([
      [1, 1, 1, 1, 1, 0],
      [1, 1, 1, 1, 1, 1],
    ]);
    expect(b.firstPieceIndex.toArray()).toEqual([
      [1, 2],
      [1, 4],
    ]);
    expect(b.labels!.toArray()).toEqual([
      [-100, 1, 0, -100, -100, -100],
      [-100, 2, -100, -100, 1, -100],
    ]);
    expect(b.wordLabels!.toArray()).toEqual([
      [1, 0],
      [2, 1],
    ]);
  });

  it('bad arguments are errors that say what is wrong', () => {
    const tok = aTokenizer();
    expect(() => data.encodeWords(tok, ['a'], { maxLength: 2 })).toThrow(/maxLength must be an integer >= 3/);
    expect(() => data.encodeWords(tok, ['a'], { maxLength: 6, stride: 4 })).toThrow(/stride must be an integer from 0 to 3/);
    expect(() => data.encodeWords(tok, ['a', 'a'], { labels: ['O'] })).toThrow(/1 labels for 2 words/);
    expect(() => data.encodeWords(tok, ['a'], { labels: ['B-X'] })).toThrow(/pass labelNames/);
    expect(() => data.encodeWords(tok, ['a'], { labels: ['B-X'], labelNames: LABELS })).toThrow(/label "B-X" of word 0 is not in labelNames/);
    expect(() => data.encodeWords(tok, ['a'], { labels: [1], labelAllTokens: true })).toThrow(/labelAllTokens needs labelNames/);
    expect(() => data.encodeWords({} as never, ['a'])).toThrow(/tokenizer must be/);
  });
});

describe('packFirstPieces', () => {
  it('gathers each word’s first piece left-aligned, zeros and a false mask on padding, gradients to the first pieces only', () => {
    const hidden = torch.randn([2, 5, 3], { requiresGrad: true });
    const index = [
      [1, 2, 4],
      [1, 3, -1],
    ];
    const { words, mask } = data.packFirstPieces(hidden, index);
    expect(words.shape).toEqual([2, 3, 3]);
    expect(mask.dtype).toBe('bool');
    expect(mask.toArray()).toEqual([
      [true, true, true],
      [true, true, false],
    ]);
    const h = hidden.toArray() as number[][][];
    const want = index.map((row, b) => row.map((p) => (p < 0 ? [0, 0, 0] : h[b][p])));
    const got = words.toArray() as number[][][];
    got.flat(2).forEach((v, i) => expect(v).toBeCloseTo(want.flat(2)[i], 6));
    words
      .mul(torch.tensor([1, 2, 3]))
      .sum()
      .backward();
    const grad = hidden.grad!.toArray() as number[][][];
    const picked = new Set(index.flatMap((row, b) => row.filter((p) => p >= 0).map((p) => `${b},${p}`)));
    grad.forEach((rows, b) => rows.forEach((g, p) => expect(g).toEqual(picked.has(`${b},${p}`) ? [1, 2, 3] : [0, 0, 0])));
  });

  it('takes the batch tensor from batchWindows and checks its input', () => {
    const windows = data.encodeWords(aTokenizer(), ['a', 'aa', 'aaa', 'a', 'a'], { maxLength: 6 });
    const b = data.batchWindows(windows, { padId: 0 });
    const hidden = torch.randn([b.inputIds.shape[0], b.inputIds.shape[1], 4]);
    const { words, mask } = data.packFirstPieces(hidden, b.firstPieceIndex);
    // windows: a aa | aaa a | a
    expect(words.shape).toEqual([3, 2, 4]);
    expect(mask.toArray()).toEqual([
      [true, true],
      [true, true],
      [true, false],
    ]);
    expect(() => data.packFirstPieces(hidden, [[9]])).toThrow(/firstPieceIndex must be \[3, words\]/);
    expect(() => data.packFirstPieces(hidden, [[9], [1], [1]])).toThrow(/firstPieceIndex holds 9, outside -1\.\.5/);
    expect(() => data.packFirstPieces(hidden.select(0, 0), [[1]])).toThrow(/hidden must be a \[batch, sequence, hidden\] tensor/);
    expect(() => data.packFirstPieces(hidden, torch.tensor([[1], [1], [1]], { dtype: 'int32' }))).toThrow(/must be int64/);
  });
});

describe('predictions back to words and character spans', () => {
  it('a licence text through windows, a batch, packed first pieces, argmax and merging gives its spans back', () => {
    // Apache-2.0 with spans on every "License"/"Licensor" (L) and "Work"/"Works" (W), as JSONL
    const text = readFileSync('/usr/share/common-licenses/Apache-2.0', 'utf8').slice(0, 6000);
    const spans = [...text.matchAll(/\b(Licen[sc]e|Licensor|Works?)\b/g)].map((m) => ({
      start: m.index!,
      end: m.index! + m[0].length,
      label: m[0].startsWith('W') ? 'W' : 'L',
    }));
    const p = file('apache.jsonl', `${JSON.stringify({ id: 'apache', text, spans })}\n`);
    const [doc] = data.readJsonlSpans(p).documents;
    expect(doc.spans).toEqual(spans);
    const names = ['O', 'B-L', 'I-L', 'B-W', 'I-W'];
    const tok = data.WordPieceTokenizer.fromVocabFile(vocabFile);
    const windows = data.encodeWords(tok, doc.words, { maxLength: 64, stride: 16, labels: doc.tags, labelNames: names });
    expect(windows.length).toBeGreaterThan(20);
    const batch = data.batchWindows(windows, { padId: tok.padId });
    // a stand-in for an encoder: one-hot scores of the piece labels, so only first pieces hold the answer
    const labels = batch.labels!;
    const hidden = torch.oneHot(labels.clamp(0, null), names.length).float().mul(labels.ge(0).unsqueeze(-1).float());
    const { words, mask } = data.packFirstPieces(hidden, batch.firstPieceIndex);
    const ids = words.argmax(-1).toArray() as number[][];
    expect(mask.toArray()).toEqual(windows.map((w) => ids[0].map((_, j) => j < w.firstPieceIndex.length)));
    // rows padded to the batch's word count: merging cuts them to each window's words
    const tags = data.mergeWindowPredictions(
      windows,
      ids.map((row) => row.map((id) => names[id])),
    );
    expect(tags).toEqual(doc.tags);
    expect(data.tagsToSpans(doc.offsets, tags)).toEqual(spans);
  });
});

describe('words and spans', () => {
  it('splitWords keeps offsets into the original text (punctuation, CJK, deleted characters, astral characters)', () => {
    const text = ' Hello,world  a\u200bb 中文 x😀y\u200b ';
    const { words, offsets } = data.splitWords(text);
    expect(words).toEqual(['Hello', ',', 'world', 'a\u200bb', '中', '文', 'x😀y']);
    expect(offsets).toEqual([
      [1, 6],
      [6, 7],
      [7, 12],
      [14, 17],
      [18, 19],
      [19, 20],
      [21, 25],
    ]);
    expect(data.splitWords('   \u200b ')).toEqual({ words: [], offsets: [] });
  });

  it('spansToTags in IOB2 and IOBES, worked by hand; a boundary inside a word takes the whole word', () => {
    const text = 'Alice Smith met Bob in New Yorkshire.';
    const { offsets } = data.splitWords(text);
    const spans = [
      { start: 0, end: 11, label: 'PER' },
      { start: 16, end: 19, label: 'PER' },
      { start: 23, end: 30, label: 'LOC' }, // "New York" ends inside "Yorkshire"
    ];
    expect(data.spansToTags(offsets, spans)).toEqual(['B-PER', 'I-PER', 'O', 'B-PER', 'O', 'B-LOC', 'I-LOC', 'O']);
    expect(data.spansToTags(offsets, spans, 'IOBES')).toEqual(['B-PER', 'E-PER', 'O', 'S-PER', 'O', 'B-LOC', 'E-LOC', 'O']);
    expect(data.tagsToSpans(offsets, ['B-PER', 'I-PER', 'O', 'B-PER', 'O', 'B-LOC', 'I-LOC', 'O'])).toEqual([
      { start: 0, end: 11, label: 'PER' },
      { start: 16, end: 19, label: 'PER' },
      { start: 23, end: 36, label: 'LOC' },
    ]);
    // predictions read leniently (conlleval) by default, strictly on request
    expect(data.tagsToSpans(offsets, ['I-PER', 'I-PER', 'O', 'O', 'O', 'O', 'O', 'O'])).toEqual([{ start: 0, end: 11, label: 'PER' }]);
    expect(data.tagsToSpans(offsets, ['I-PER', 'I-PER', 'O', 'O', 'O', 'O', 'O', 'O'], 'IOB2', { mode: 'strict' })).toEqual([]);
  });

  it('spans -> tags -> spans gives the spans back on 300 random documents in every scheme', () => {
    const rand = random(11);
    const pick = <T>(xs: T[]) => xs[Math.floor(rand() * xs.length)];
    const vocabulary = ['the', 'licence', 'shall', 'not', 'be', 'liable', ',', '.', '(', ')', 'Software', 'WITHOUT', 'warranty', 'naïve', '中', 'x😀'];
    let entities = 0;
    for (let d = 0; d < 300; d++) {
      const n = 1 + Math.floor(rand() * 40);
      const text = Array.from({ length: n }, () => pick(vocabulary)).join(pick([' ', '  ', '\n']));
      const { offsets } = data.splitWords(text);
      const spans: Array<{ start: number; end: number; label: string }> = [];
      for (let w = 0; w < offsets.length; ) {
        if (rand() < 0.3) {
          const len = 1 + Math.floor(rand() * 4);
          const last = Math.min(offsets.length, w + len) - 1;
          spans.push({ start: offsets[w][0], end: offsets[last][1], label: pick(['A', 'B', 'C']) });
          w = last + 1;
        } else w++;
      }
      entities += spans.length;
      for (const scheme of ['IOB1', 'IOB2', 'IOE1', 'IOE2', 'IOBES', 'BILOU'] as const) {
        const tags = data.spansToTags(offsets, spans, scheme);
        expect(data.tagsToSpans(offsets, tags, scheme)).toEqual(spans);
        if (scheme !== 'IOB1' && scheme !== 'IOE1') expect(data.tagsToSpans(offsets, tags, scheme, { mode: 'strict' })).toEqual(spans);
      }
    }
    expect(entities).toBeGreaterThan(500);
  });

  it('spansToTags rejects overlapping spans, two spans in one word and spans over no word', () => {
    const { offsets } = data.splitWords('abc def  ghi');
    expect(() =>
      data.spansToTags(offsets, [
        { start: 0, end: 5, label: 'A' },
        { start: 4, end: 7, label: 'B' },
      ]),
    ).toThrow(/span 1 \{"start":4,"end":7,"label":"B"\} overlaps span 0/);
    expect(() =>
      data.spansToTags(offsets, [
        { start: 0, end: 1, label: 'A' },
        { start: 2, end: 3, label: 'B' },
      ]),
    ).toThrow(/fall in the same word 0/);
    expect(() => data.spansToTags(offsets, [{ start: 7, end: 9, label: 'A' }])).toThrow(/covers no word/);
    expect(() => data.spansToTags(offsets, [{ start: 0, end: 3, label: 'A' }], 'XYZ' as never)).toThrow(/unknown tag scheme "XYZ"/);
    expect(() => data.tagsToSpans(offsets, ['O'])).toThrow(/1 tags for 3 words/);
  });
});

describe('readers', () => {
  it('readConllTags: documents with text, offsets, tags and spans; -DOCSTART- grouping; conversion', () => {
    const p = file('ok.conll', '-DOCSTART- -X- O O\n\nEU NNP B-ORG\nrejects VBZ O\nGerman JJ B-MISC\n\nPeter NNP B-PER\nBlackburn NNP I-PER\n');
    const c = data.readConllTags(p);
    expect(c.documents).toHaveLength(2);
    expect(c.documents[0]).toEqual({
      text: 'EU rejects German',
      words: ['EU', 'rejects', 'German'],
      offsets: [
        [0, 2],
        [3, 10],
        [11, 17],
      ],
      tags: ['B-ORG', 'O', 'B-MISC'],
      spans: [
        { start: 0, end: 2, label: 'ORG' },
        { start: 11, end: 17, label: 'MISC' },
      ],
      line: 3,
    });
    expect(c.documents[1].line).toBe(7);
    expect(c.types).toEqual(['MISC', 'ORG', 'PER']);
    expect(c.tags).toEqual(['B-MISC', 'B-ORG', 'B-PER', 'I-PER', 'O']);
    const whole = data.readConllTags(p, { documents: 'docstart', convertTo: 'IOBES' });
    expect(whole.documents).toHaveLength(1);
    expect(whole.documents[0].tags).toEqual(['S-ORG', 'O', 'S-MISC', 'B-PER', 'E-PER']);
    expect(whole.documents[0].spans.map((s) => s.label)).toEqual(['ORG', 'MISC', 'PER']);
    // IOB1 (CoNLL-2003's original tags) read as such and converted
    const iob1 = file('iob1.conll', 'a I-X\nb I-X\nc B-X\nd O\n');
    expect(data.readConllTags(iob1, { scheme: 'IOB1', convertTo: 'IOB2' }).documents[0].tags).toEqual(['B-X', 'I-X', 'B-X', 'O']);
  });

  it('readConllTags: a bad tag on line N names the file, line N and the tag', () => {
    const lines = ['The O', 'EU B-ORG', 'said O', '', 'Peter B-PER', 'Blackburn I-PER', 'spoke O', 'in O', 'Bonn I-LOC', 'today O'];
    const p = file('bad-order.conll', lines.join('\n'));
    expect(() => data.readConllTags(p)).toThrow(
      /bad-order\.conll:9: tag "I-LOC" after "O" is not valid IOB2 .*well-formed tag there is "B-LOC".*scheme: 'IOB1'/,
    );
    const q = file('bad-prefix.conll', 'a O\nb O\nc S-X\n');
    expect(() => data.readConllTags(q)).toThrow(/bad-prefix\.conll:3: tag "S-X" is not a IOB2 tag/);
    expect(() => data.readConllTags(q, { scheme: 'IOBES' })).not.toThrow();
    const r = file('open.conll', 'a B-X\nb I-X\n\nc O\n');
    expect(() => data.readConllTags(r, { scheme: 'IOBES' })).toThrow(/open\.conll:2: tag "I-X" after "B-X" is not valid IOBES/);
    const s = file('cols.conll', 'a O\nlonely\n');
    expect(() => data.readConllTags(s)).toThrow(/cols\.conll:2: expected "word \.\.\. tag"/);
    expect(() => data.readConllTags(join(dir, 'missing.conll'))).toThrow(/missing\.conll: cannot read/);
  });

  it('readConll (the plain reader) names a missing tag column and an unreadable file', () => {
    const p = file('plain.conll', 'EU NNP B-ORG\nrejects VBZ O\n');
    expect(data.readConll(p).sentences[0].tags).toEqual(['B-ORG', 'O']);
    expect(() => data.readConll(p, { tagColumn: 3 })).toThrow(/plain\.conll:1: no tag column 3 \(the line has 3 columns\)/);
    expect(() => data.readConll(join(dir, 'absent.conll'))).toThrow(/absent\.conll: cannot read/);
  });

  it('readJsonlSpans: words, tags and spans from text and character spans, ids kept, code point offsets converted', () => {
    const p = file(
      'ok.jsonl',
      [
        JSON.stringify({ id: 'mit', text: 'THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY.', spans: [{ start: 34, end: 50, label: 'warranty' }] }),
        '',
        JSON.stringify({ text: 'No spans here.', spans: [] }),
      ].join('\n'),
    );
    const c = data.readJsonlSpans(p, { scheme: 'IOBES' });
    expect(c.documents).toHaveLength(2);
    const [d] = c.documents;
    expect(d.id).toBe('mit');
    expect(d.line).toBe(1);
    expect(d.words).toEqual(['THE', 'SOFTWARE', 'IS', 'PROVIDED', '"', 'AS', 'IS', '"', ',', 'WITHOUT', 'WARRANTY', '.']);
    expect(d.tags).toEqual(['O', 'O', 'O', 'O', 'O', 'O', 'O', 'O', 'O', 'B-warranty', 'E-warranty', 'O']);
    expect(data.tagsToSpans(d.offsets, d.tags, 'IOBES')).toEqual(d.spans);
    expect(c.documents[1].line).toBe(3);
    expect(c.types).toEqual(['warranty']);
    // Python counts code points: the emoji is one character there, two here
    const q = file('cp.jsonl', JSON.stringify({ text: '😀 Apache licence', spans: [{ start: 2, end: 8, label: 'name' }] }) + '\n');
    const e = data.readJsonlSpans(q, { offsetUnit: 'codepoint' }).documents[0];
    expect(e.spans).toEqual([{ start: 3, end: 9, label: 'name' }]);
    expect(e.tags).toEqual(['O', 'B-name', 'O']);
  });

  it('readJsonlSpans: errors name the file, line and span', () => {
    const ok = JSON.stringify({ text: 'fine', spans: [] });
    const doc = (spans: unknown[]) => [ok, ok, JSON.stringify({ text: 'abc def ghi', spans })].join('\n');
    expect(() => data.readJsonlSpans(file('range.jsonl', doc([{ start: 8, end: 12, label: 'A' }])))).toThrow(
      /range\.jsonl:3: span 0 \{"start":8,"end":12,"label":"A"\} is out of range: the text has 11 characters/,
    );
    expect(() =>
      data.readJsonlSpans(
        file(
          'overlap.jsonl',
          doc([
            { start: 0, end: 3, label: 'A' },
            { start: 4, end: 11, label: 'B' },
            { start: 2, end: 5, label: 'C' },
          ]),
        ),
      ),
    ).toThrow(/overlap\.jsonl:3: span 2 \{"start":2,"end":5,"label":"C"\} overlaps span 0|overlap\.jsonl:3: span 1 .* overlaps span 2/);
    expect(() => data.readJsonlSpans(file('label.jsonl', doc([{ start: 0, end: 3 }])))).toThrow(/label\.jsonl:3: span 0: label must be a non-empty string/);
    expect(() => data.readJsonlSpans(file('json.jsonl', `${ok}\n{"text": "x",`))).toThrow(/json\.jsonl:2: not valid JSON/);
    expect(() => data.readJsonlSpans(file('nospans.jsonl', `${ok}\n${JSON.stringify({ text: 'x' })}`))).toThrow(/nospans\.jsonl:2: "spans" must be an array/);
    expect(() => data.readJsonlSpans(file('notext.jsonl', JSON.stringify({ spans: [] })))).toThrow(/notext\.jsonl:1: "text" must be a string/);
  });
});
