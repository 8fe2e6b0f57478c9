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
  const lemmas = readFileSync('/usr/share/wordnet/index.noun', 'utf8')
    .split('\n')
    .filter((l) => /^[a-z]+ /.test(l))
    .map((l) => l.split(' ')[0]);
  const chars = [...'abcdefghijklmnopqrstuvwxyz0123456789.,;:!?\'"()-[]/&%$'];
  const suffixes = ['s', 'es', 'ed', 'ing', 'ly', 'er', 'est', 'tion', 'ness', 'ment', 'al', 'ic', 'ous', 'ive', 'able'];
  const words = lemmas.filter((_, i) => i % 7 === 0).slice(0, 4000); // leave many words out so they split
  vocab = [
    '[PAD]',
    '[UNK]',
    '[CLS]',
    '[SEP]',
    '[MASK]',
    ...chars,
    ...chars.filter((c) => /[a-z0-9]/.test(c)).map((c) => `##${c}`),
    ...suffixes.map((s) => `##${s}`),
    ...words,
    '中',
    'é',
  ];
  vocab = [...new Set(vocab)];
  vocabFile = join(mkdtempSync(join(tmpdir(), 'finetorch-vocab-')), 'vocab.txt');
  writeFileSync(vocabFile, vocab.join('\n') + '\n');
  const glosses = readFileSync('/usr/share/wordnet/data.noun', 'utf8')
    .split('\n')
    .filter((l) => l.includes(' | '))
    .map((l) => l.slice(l.indexOf(' | ') + 3).trim());
  sentences = glosses.filter((_, i) => i % 251 === 0).slice(0, 300);
  sentences.push(
    'Café Déjà Vu — naïve façade',
    'Mixed 中文 text and ＡＢＣ',
    'tab\tand\u0000null\u200bzero width',
    'UPPER lower MiXeD',
    '',
    '!!!',
    'supercalifragilisticexpialidocious'.repeat(5),
  );
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
    const glosses = readFileSync('/usr/share/wordnet/data.noun', 'utf8')
      .split('\n')
      .filter((l) => l.includes(' | '))
      .map((l) => l.slice(l.indexOf(' | ') + 3).trim());
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

describe('tokenizer constructors take what users pass', () => {
  let dir = '';
  let bpeJson = '';
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'finetorch-ctor-'));
    // a small BPE tokenizer trained by the Rust library, written out as tokenizer.json and as vocab.json + merges.txt
    const glosses = readFileSync('/usr/share/wordnet/data.noun', 'utf8')
      .split('\n')
      .filter((l) => l.includes(' | '))
      .map((l) => l.slice(l.indexOf(' | ') + 3).trim());
    writeFileSync(join(dir, 'corpus.txt'), glosses.filter((_, i) => i % 50 === 0).join('\n'));
    const t = new hf.Tokenizer(hf.BPE.init({}, []));
    t.setPreTokenizer(hf.byteLevelPreTokenizer(false, true));
    t.train([join(dir, 'corpus.txt')]);
    t.addSpecialTokens(['<s>', '<pad>', '</s>', '<unk>']);
    bpeJson = join(dir, 'tokenizer.json');
    t.save(bpeJson);
    const json = JSON.parse(readFileSync(bpeJson, 'utf8'));
    const vocab = { ...json.model.vocab };
    for (const a of json.added_tokens) vocab[a.content] = a.id;
    writeFileSync(join(dir, 'vocab.json'), JSON.stringify(vocab));
    const merges = (json.model.merges as Array<string | string[]>).map((m) => (typeof m === 'string' ? m : m.join(' ')));
    writeFileSync(join(dir, 'merges.txt'), '#version: 0.2\n' + merges.join('\n') + '\n');
  }, 120000);

  it("WordPieceTokenizer: a vocab.txt path, a tokenizer.json path, a token list, a Map and an object give the factory methods' ids", () => {
    const text = sentences.slice(0, 20);
    const viaFile = data.WordPieceTokenizer.fromVocabFile(vocabFile);
    const want = text.map((s) => viaFile.encode(s, null).ids);
    const json = join(dir, 'wordpiece.json');
    reference(true).save(json);
    const viaJson = data.WordPieceTokenizer.fromTokenizerJson(json);
    // the reference tokenizer gives the same ids, so the forms below are checked against Hugging Face too
    expect(text.map((s) => viaJson.encode(s).ids)).toEqual(want);
    const forms = [
      new data.WordPieceTokenizer(vocabFile),
      new data.WordPieceTokenizer(json),
      new data.WordPieceTokenizer(vocab),
      new data.WordPieceTokenizer(new Map(vocab.map((t, i) => [t, i]))),
      new data.WordPieceTokenizer(Object.fromEntries(vocab.map((t, i) => [t, i]))),
    ];
    for (const tok of forms) {
      expect(tok.vocabSize).toBe(vocab.length);
      expect(text.map((s) => tok.encode(s).ids)).toEqual(want);
    }
    // cased from a path: the option still applies
    const cased = data.WordPieceTokenizer.fromVocabFile(vocabFile, { lowercase: false });
    expect(new data.WordPieceTokenizer(vocabFile, { lowercase: false }).encode('UPPER Dog').ids).toEqual(cased.encode('UPPER Dog').ids);
  });

  it('WordPieceTokenizer: anything else is a TypeError saying what it expects', () => {
    expect(() => new data.WordPieceTokenizer(42 as never)).toThrow(/expected a vocab\.txt or tokenizer\.json path, a token list.*got number/);
    expect(() => new data.WordPieceTokenizer(new Set(['a']) as never)).toThrow(/expected .*Map \/ object of token -> id; got a Set/);
    expect(() => new data.WordPieceTokenizer({ a: 'x' } as never)).toThrow(/id of token "a" must be an integer >= 0, got "x"/);
    expect(() => new data.WordPieceTokenizer(join(dir, 'missing.txt'))).toThrow(TypeError);
    expect(() => new data.WordPieceTokenizer(join(dir, 'missing.txt'))).toThrow(/cannot read .*missing\.txt/);
    expect(() => new data.WordPieceTokenizer(dir)).toThrow(/is a folder/);
    expect(() => new data.WordPieceTokenizer(bpeJson)).toThrow(/not a WordPiece tokenizer \(model\.type is "BPE"\)/);
  });

  it('ByteLevelBPETokenizer: a tokenizer.json path, vocab.json + merges.txt paths, and an object/Map with a merge list give the same ids', () => {
    const ref = data.ByteLevelBPETokenizer.fromTokenizerJson(bpeJson);
    const want = corpusOf().map((s) => ref.encode(s).ids);
    const json = JSON.parse(readFileSync(bpeJson, 'utf8'));
    const vocab = JSON.parse(readFileSync(join(dir, 'vocab.json'), 'utf8')) as Record<string, number>;
    const merges = readFileSync(join(dir, 'merges.txt'), 'utf8').split('\n').slice(1).filter(Boolean);
    const forms = [
      new data.ByteLevelBPETokenizer(bpeJson),
      data.ByteLevelBPETokenizer.fromFiles(join(dir, 'vocab.json'), join(dir, 'merges.txt')),
      new data.ByteLevelBPETokenizer(join(dir, 'vocab.json'), join(dir, 'merges.txt')),
      new data.ByteLevelBPETokenizer(vocab, merges),
      new data.ByteLevelBPETokenizer(
        new Map(Object.entries(vocab)),
        merges.map((m) => m.split(' ') as [string, string]),
      ),
    ];
    expect(json.model.merges.length).toBeGreaterThan(100);
    for (const tok of forms) {
      expect(tok.vocabSize).toBe(Math.max(...Object.values(vocab)) + 1);
      expect(corpusOf().map((s) => tok.encode(s).ids)).toEqual(want);
    }
  });

  it('ByteLevelBPETokenizer: anything else is a TypeError saying what it expects', () => {
    expect(() => new data.ByteLevelBPETokenizer(7 as never, [])).toThrow(
      /expected a vocab\.json or tokenizer\.json path, a token list .* or a Map \/ object of token -> id; got number/,
    );
    expect(() => new data.ByteLevelBPETokenizer({ '<s>': 0 })).toThrow(/needs its merges/);
    expect(() => new data.ByteLevelBPETokenizer({ '<s>': 0, '<pad>': 1, '</s>': 2 }, ['a b c'])).toThrow(/merge 1 must be "a b" or \["a", "b"\], got "a b c"/);
    expect(() => new data.ByteLevelBPETokenizer(vocabFile)).toThrow(/is not valid JSON/);
  });

  function corpusOf(): string[] {
    return ["it's a dog's life; they'll   see 42 cats", ...sentences.slice(0, 30)];
  }
});
