// BERT WordPiece against Hugging Face's own tokenizers library (the Rust
// implementation, through @anush008/tokenizers) on a few hundred real
// sentences: WordNet glosses (Debian's wordnet-base) plus accents, CJK,
// control characters and sentence pairs. The vocabulary is built here from
// WordNet lemmas and subword pieces, so no download is needed.
import { describe, it, expect, beforeAll } from 'vitest';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRequire } from 'node:module';
import { data } from 'finetorch';

const require = createRequire(import.meta.url);
const hf = require('@anush008/tokenizers');

let vocab: string[] = [];
let sentences: string[] = [];
let vocabFile = '';

beforeAll(() => {
  const lemmas = readFileSync('/usr/share/wordnet/index.noun', 'utf8').split('\n').filter((l) => /^[a-z]+ /.test(l)).map((l) => l.split(' ')[0]);
  const chars = [...'abcdefghijklmnopqrstuvwxyz0123456789.,;:!?\'"()-[]/&%$'];
  const suffixes = ['s', 'es', 'ed', 'ing', 'ly', 'er', 'est', 'tion', 'ness', 'ment', 'al', 'ic', 'ous', 'ive', 'able'];
  const words = lemmas.filter((_, i) => i % 7 === 0).slice(0, 4000); // leave many words out so they split
  vocab = ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]', ...chars, ...chars.filter((c) => /[a-z0-9]/.test(c)).map((c) => `##${c}`), ...suffixes.map((s) => `##${s}`), ...words, '中', 'é'];
  vocab = [...new Set(vocab)];
  vocabFile = join(mkdtempSync(join(tmpdir(), 'finetorch-vocab-')), 'vocab.txt');
  writeFileSync(vocabFile, vocab.join('\n') + '\n');
  const glosses = readFileSync('/usr/share/wordnet/data.noun', 'utf8').split('\n').filter((l) => l.includes(' | ')).map((l) => l.slice(l.indexOf(' | ') + 3).trim());
  sentences = glosses.filter((_, i) => i % 251 === 0).slice(0, 300);
  sentences.push('Café Déjà Vu — naïve façade', 'Mixed 中文 text and ＡＢＣ', 'tab\tand\u0000null\u200bzero width', 'UPPER lower MiXeD', '', '!!!', 'supercalifragilisticexpialidocious'.repeat(5));
});

function reference(lowercase: boolean) {
  const ids = Object.fromEntries(vocab.map((t, i) => [t, i]));
  const t = new hf.Tokenizer(hf.WordPiece.init(ids, { unkToken: '[UNK]' }));
  t.setNormalizer(hf.bertNormalizer({ cleanText: true, handleChineseChars: true, stripAccents: lowercase, lowercase }));
  t.setPreTokenizer(hf.bertPreTokenizer());
  t.setPostProcessor(hf.bertProcessing(['[SEP]', ids['[SEP]']], ['[CLS]', ids['[CLS]']]));
  return t;
}

describe('WordPiece tokenizer matches Hugging Face tokenizers', () => {
  for (const lowercase of [true, false]) {
    it(`${lowercase ? 'uncased' : 'cased'}: ids and token type ids on ${300 + 7} sentences and 100 pairs`, async () => {
      const ours = data.WordPieceTokenizer.fromVocabFile(vocabFile, { lowercase });
      const ref = reference(lowercase);
      let mismatches = 0;
      for (const s of sentences) {
        const want = await ref.encode(s);
        const got = ours.encode(s);
        if (JSON.stringify(got.ids) !== JSON.stringify(want.getIds())) mismatches++;
        expect(got.ids, s).toEqual(want.getIds());
        expect(got.tokenTypeIds).toEqual(want.getTypeIds());
      }
      for (let i = 0; i + 1 < 200; i += 2) {
        const want = await ref.encode(sentences[i], sentences[i + 1]);
        const got = ours.encode(sentences[i], sentences[i + 1]);
        expect(got.ids).toEqual(want.getIds());
        expect(got.tokenTypeIds).toEqual(want.getTypeIds());
      }
      expect(mismatches).toBe(0);
    });
  }

  it('truncation (longest first) and padding as Hugging Face does', async () => {
    const ours = data.WordPieceTokenizer.fromVocabFile(vocabFile);
    const ref = reference(true);
    ref.setTruncation(24);
    ref.setPadding({ maxLength: 24 });
    for (let i = 0; i + 1 < 40; i += 2) {
      const want = await ref.encode(sentences[i], sentences[i + 1]);
      const got = ours.encode(sentences[i], sentences[i + 1], { maxLength: 24, padding: 'max_length' });
      expect(got.ids).toEqual(want.getIds());
      expect(got.attentionMask).toEqual(want.getAttentionMask());
      expect(got.tokenTypeIds).toEqual(want.getTypeIds());
    }
  });

  it('batches as int64 tensors and reads a tokenizer.json', () => {
    const ours = data.WordPieceTokenizer.fromVocabFile(vocabFile);
    const b = ours.encodeBatch(['a dog', 'the cat sat on a mat']);
    expect(b.inputIds.dtype).toBe('int64');
    expect(b.inputIds.shape[0]).toBe(2);
    expect((b.attentionMask.toArray() as number[][])[0].filter((x) => x === 0).length).toBeGreaterThan(0);
    const json = join(mkdtempSync(join(tmpdir(), 'finetorch-tj-')), 'tokenizer.json');
    reference(true).save(json);
    const fromJson = data.WordPieceTokenizer.fromTokenizerJson(json);
    expect(fromJson.encode(sentences[3]).ids).toEqual(ours.encode(sentences[3]).ids);
  });
});

describe("RoBERTa's byte-level BPE matches Hugging Face tokenizers", () => {
  // A BPE vocabulary and merges trained here by the Rust library on WordNet glosses, then read back by finetorch.
  let file = '';
  let corpus: string[] = [];
  beforeAll(() => {
    const glosses = readFileSync('/usr/share/wordnet/data.noun', 'utf8').split('\n').filter((l) => l.includes(' | ')).map((l) => l.slice(l.indexOf(' | ') + 3).trim());
    const dir = mkdtempSync(join(tmpdir(), 'finetorch-bpe-'));
    writeFileSync(join(dir, 'corpus.txt'), glosses.filter((_, i) => i % 3 === 0).join('\n'));
    const t = new hf.Tokenizer(hf.BPE.init({}, []));
    t.setPreTokenizer(hf.byteLevelPreTokenizer(false, true));
    t.train([join(dir, 'corpus.txt')]);
    t.addSpecialTokens(['<s>', '<pad>', '</s>', '<unk>']);
    file = join(dir, 'tokenizer.json');
    t.save(file);
    corpus = glosses.filter((_, i) => i % 3 === 0 && i % 97 === 0).slice(0, 300);
    corpus.push("it's a dog's life; they'll   see 42 cats", '  leading spaces', 'trailing space ');
  }, 120000);

  function reference() {
    const t = hf.Tokenizer.fromFile(file);
    const ids = t.getVocab(true);
    t.setPostProcessor(hf.robertaProcessing(['</s>', ids['</s>']], ['<s>', ids['<s>']]));
    return t;
  }

  it(`ids on ${300 + 3} sentences and 50 pairs, truncation and padding`, async () => {
    const ours = data.ByteLevelBPETokenizer.fromTokenizerJson(file);
    const ref = reference();
    for (const s of corpus) expect(ours.encode(s).ids, s).toEqual((await ref.encode(s)).getIds());
    for (let i = 0; i + 1 < 100; i += 2) expect(ours.encode(corpus[i], corpus[i + 1]).ids).toEqual((await ref.encode(corpus[i], corpus[i + 1])).getIds());
    ref.setTruncation(20);
    ref.setPadding({ maxLength: 20, padId: ours.padId, padToken: '<pad>' });
    for (let i = 0; i + 1 < 40; i += 2) {
      const want = await ref.encode(corpus[i], corpus[i + 1]);
      const got = ours.encode(corpus[i], corpus[i + 1], { maxLength: 20, padding: 'max_length' });
      expect(got.ids).toEqual(want.getIds());
      expect(got.attentionMask).toEqual(want.getAttentionMask());
    }
    expect(ours.decode(ours.encode(corpus[5]).ids, { skipSpecialTokens: true })).toBe(corpus[5]);
  });
});
