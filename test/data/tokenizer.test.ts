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
