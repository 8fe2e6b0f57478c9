// WordPiece vocabulary training on real text from this machine: licence texts
// (/usr/share/common-licenses) and Debian copyright files. The vocabulary is
// trained on the licences and half of the copyright files, and the other half
// (paragraphs not seen in training) is encoded by finetorch's WordPieceTokenizer
// and by Hugging Face's tokenizers (the Rust library through
// @anush008/tokenizers; and, where a Python with them is found, Python's
// tokenizers.BertWordPieceTokenizer and transformers' BertTokenizerFast), which
// must give identical ids. Quality is compared with tokenizers' own
// WordPieceTrainer of the same size (tokens per word on the held-out text): a
// sanity check, not an equality.
import { describe, it, expect, beforeAll } from 'vitest';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { data, ArgumentError } from 'finetorch';
import { transformersPython } from '../reference';

const require = createRequire(import.meta.url);
const hf = require('@anush008/tokenizers');

const python = transformersPython('tokenizers, transformers');

const read = (f: string) => {
  try {
    return readFileSync(f, 'utf8');
  } catch {
    return '';
  }
};
const paragraphs = (text: string) =>
  text
    .split(/\n\s*\n/)
    .map((p) => p.trim())
    .filter(Boolean);

const VOCAB_SIZE = 8000;
let train: string[] = [];
let heldOut: string[] = [];
let dir = '';
let trained: InstanceType<typeof data.WordPieceVocabulary>;

beforeAll(() => {
  const licences = readdirSync('/usr/share/common-licenses')
    .sort()
    .map((f) => read(join('/usr/share/common-licenses', f)));
  const copyrights = readdirSync('/usr/share/doc')
    .sort()
    .map((d) => join('/usr/share/doc', d, 'copyright'))
    .filter((f) => existsSync(f))
    .map(read)
    .filter(Boolean);
  train = [...licences, ...copyrights.filter((_, i) => i % 2 === 0)];
  const seen = new Set(train.flatMap(paragraphs));
  const unseen = [...new Set(copyrights.filter((_, i) => i % 2 === 1).flatMap(paragraphs))].filter((p) => !seen.has(p));
  const step = Math.max(1, Math.floor(unseen.length / 1500));
  heldOut = unseen.filter((_, i) => i % step === 0);
  heldOut.push('Ünïcödé façade — naïve 中文 ÅNGSTRÖM', 'GPL-2+ or LGPL-2.1+; see /usr/share/common-licenses', 'tab\tand\u0000null\u200bzero width');
  dir = mkdtempSync(join(tmpdir(), 'finetorch-wordpiece-'));
  trained = data.trainWordPiece(train, { vocabSize: VOCAB_SIZE });
  trained.saveVocab(join(dir, 'vocab.txt'));
  console.log(
    `trained on ${train.length} files: ${trained.stats.words} words (${trained.stats.uniqueWords} distinct), alphabet ${trained.stats.alphabet}, ` +
      `${trained.stats.merges} merges, ${trained.stats.seconds.toFixed(2)} s; ${heldOut.length} held-out paragraphs`,
  );
}, 120000);

async function rustTokenizer(vocabFile: string, lowercase: boolean) {
  const t = new hf.Tokenizer(await hf.WordPiece.fromFile(vocabFile, { unkToken: '[UNK]' }));
  t.setNormalizer(hf.bertNormalizer({ cleanText: true, handleChineseChars: true, stripAccents: lowercase, lowercase }));
  t.setPreTokenizer(hf.bertPreTokenizer());
  const tokens = readFileSync(vocabFile, 'utf8').split('\n');
  t.setPostProcessor(hf.bertProcessing(['[SEP]', tokens.indexOf('[SEP]')], ['[CLS]', tokens.indexOf('[CLS]')]));
  return t;
}

describe('data.trainWordPiece', () => {
  it('the vocabulary: specials first, then the alphabet in code point order, every token once, exactly vocabSize tokens', () => {
    const v = trained.vocab;
    expect(v.length).toBe(VOCAB_SIZE);
    expect(v.slice(0, 5)).toEqual(['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]']);
    expect(new Set(v).size).toBe(v.length);
    const alphabet = v.slice(5, 5 + trained.stats.alphabet);
    expect(alphabet.every((c) => [...c].length === 1)).toBe(true);
    expect(alphabet.map((c) => c.codePointAt(0)!)).toEqual(alphabet.map((c) => c.codePointAt(0)!).sort((a, b) => a - b));
    // uncased: no capitals, no combining accents
    expect(v.slice(5).some((t) => /[A-Z]/.test(t))).toBe(false);
    expect(v.some((t) => /\p{Mn}/u.test(t))).toBe(false);
    for (const t of ['the', 'license', 'copyright', '##s']) expect(v).toContain(t);
    expect(trained.text()).toBe(readFileSync(join(dir, 'vocab.txt'), 'utf8'));
    // the same text gives the same vocabulary
    expect(data.trainWordPiece(train.slice(0, 40), { vocabSize: 2000 }).vocab).toEqual(data.trainWordPiece(train.slice(0, 40), { vocabSize: 2000 }).vocab);
  });

  it('merges the most frequent pair first, "##" pieces joined without their prefix (hug/pug/pun/bun/hugs)', () => {
    const text = [...Array(10).fill('hug'), ...Array(5).fill('pug'), ...Array(12).fill('pun'), ...Array(4).fill('bun'), ...Array(5).fill('hugs')].join(' ');
    const v = data.trainWordPiece([text], { vocabSize: 1000, specialTokens: ['[PAD]', '[UNK]', '[CLS]', '[SEP]'] });
    // pairs: ##u ##g 20, ##u ##n 16, h ##u 15, p ##u 17 -> after ##ug: h ##ug 15, p ##u 12, ...
    const merged = v.vocab.slice(4 + 7 + 4); // specials, the alphabet b g h n p s u, then ##u ##n ##g ##s
    expect(v.vocab.slice(4, 11)).toEqual(['b', 'g', 'h', 'n', 'p', 's', 'u']);
    expect(merged.slice(0, 4)).toEqual(['##ug', '##un', 'hug', 'pun']);
    // minFrequency 2 stops when no pair occurs twice: every remaining word is one token
    expect(v.vocab.length).toBeLessThan(1000);
    const tok = v.tokenizer();
    for (const w of ['hug', 'pug', 'pun', 'bun', 'hugs']) expect(tok.tokenize(w)).toEqual([w]);
    // minFrequency above every count: no merges at all
    expect(data.trainWordPiece([text], { vocabSize: 1000, minFrequency: 100 }).stats.merges).toBe(0);
  });

  it('held-out licence text: WordPieceTokenizer and Hugging Face tokenizers (Rust) give identical ids with the trained vocab.txt', async () => {
    const ours = data.WordPieceTokenizer.fromVocabFile(join(dir, 'vocab.txt'));
    const ref = await rustTokenizer(join(dir, 'vocab.txt'), true);
    const unk = ours.tokenToId('[UNK]');
    let tokens = 0;
    let unks = 0;
    let split = 0;
    let mismatches = 0;
    for (const p of heldOut) {
      const want = (await ref.encode(p)).getIds();
      const got = ours.encode(p).ids;
      if (JSON.stringify(got) !== JSON.stringify(want)) mismatches++;
      tokens += got.length;
      unks += got.filter((i) => i === unk).length;
      split += ours.basicTokens(p).filter((w) => ours.wordPieces(w).length > 1).length;
    }
    console.log(`held-out: ${heldOut.length} paragraphs, ${tokens} tokens, ${split} words split into pieces, ${unks} [UNK]; ${mismatches} mismatches`);
    expect(mismatches).toBe(0);
    expect(split).toBeGreaterThan(100); // the comparison exercises word pieces, not just whole words
    expect(unks).toBeGreaterThan(0);
  });

  it('cased training (lowercase: false) keeps capitals and accents, and matches Hugging Face uncased=false', async () => {
    const cased = data.trainWordPiece(train.slice(0, 300), { vocabSize: 3000, lowercase: false });
    expect(cased.vocab.some((t) => /[A-Z]/.test(t))).toBe(true);
    const file = join(dir, 'cased-vocab.txt');
    cased.saveVocab(file);
    const ours = cased.tokenizer();
    expect(ours.options.lowercase).toBe(false);
    const ref = await rustTokenizer(file, false);
    for (const p of heldOut.slice(0, 300)) expect(ours.encode(p).ids, p).toEqual((await ref.encode(p)).getIds());
  });

  it('1M words (WordNet glosses) to a 30,000-token vocabulary: time and memory', () => {
    const glosses = ['noun', 'verb', 'adj', 'adv'].flatMap((pos) =>
      readFileSync(`/usr/share/wordnet/data.${pos}`, 'utf8')
        .split('\n')
        .filter((l) => !l.startsWith('  ') && l.includes(' | '))
        .map((l) => l.slice(l.indexOf(' | ') + 3).trim()),
    );
    const texts: string[] = [];
    let words = 0;
    for (const g of glosses) {
      if (words >= 1e6) break;
      texts.push(g);
      words += g.split(/\s+/).length;
    }
    const v = data.trainWordPiece(texts, { vocabSize: 30000 });
    console.log(
      `${words} whitespace words (${v.stats.words} BERT words, ${v.stats.uniqueWords} distinct) -> ${v.vocab.length} tokens in ${v.stats.seconds.toFixed(2)} s, rss ${(process.memoryUsage().rss / 1e6).toFixed(0)} MB`,
    );
    expect(v.vocab.length).toBe(30000);
    expect(v.stats.seconds).toBeLessThan(60);
  }, 120000);

  it('bad options and texts: ArgumentError naming what was wrong', () => {
    const cases: Array<[unknown, unknown, RegExp]> = [
      [['a b'], { vocabSize: 3 }, /vocabSize must be an integer in \[6, 2097152\), got 3/],
      [['a b'], { vocabSize: 100, minFrequency: -1 }, /minFrequency must be an integer/],
      [['a b'], { vocabSize: 100, limitAlphabet: 0 }, /limitAlphabet must be an integer in \[1,/],
      [['a b'], { vocabSize: 100, specialTokens: ['[PAD]', '[CLS]'] }, /specialTokens must include \[UNK\] \[SEP\]/],
      [['a b'], { vocabSize: 100, specialTokens: ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[PAD]'] }, /duplicates/],
      [['a b'], { vocabSize: 100, continuingSubwordPrefix: '' }, /continuingSubwordPrefix must be a non-empty string/],
      [['a', 7], { vocabSize: 100 }, /texts\[1\] is number, not a string/],
      ['just a string', { vocabSize: 100 }, /texts must be an array or other iterable of strings/],
      [['a b'], undefined, /options must be an object/],
    ];
    for (const [texts, options, message] of cases) {
      const call = () => data.trainWordPiece(texts as string[], options as never);
      expect(call).toThrow(ArgumentError);
      expect(call).toThrow(message);
    }
  });
});

describe.skipIf(!python)('data.trainWordPiece against Python tokenizers and transformers', () => {
  let result: { tokenizers: number[][]; transformers: number[][]; versions: string; seconds: number };

  beforeAll(() => {
    writeFileSync(join(dir, 'train.json'), JSON.stringify(train));
    writeFileSync(join(dir, 'held.json'), JSON.stringify(heldOut));
    const script = `
import json, os, sys, time, warnings
warnings.simplefilter('ignore')
import tokenizers, transformers
from tokenizers import BertWordPieceTokenizer
from transformers import BertTokenizerFast
d, size = sys.argv[1], int(sys.argv[2])
held = json.load(open(os.path.join(d, 'held.json')))
# the trained vocab.txt read by tokenizers and by transformers (5.x: from_pretrained(folder) or vocab=path;
# its vocab_file= keyword is ignored there and leaves a vocabulary of the special tokens only)
ours = BertWordPieceTokenizer(os.path.join(d, 'vocab.txt'))
fast = BertTokenizerFast.from_pretrained(d)
out = {'tokenizers': [e.ids for e in ours.encode_batch(held)], 'transformers': fast(held)['input_ids'],
       'versions': f'tokenizers {tokenizers.__version__}, transformers {transformers.__version__}'}
# tokenizers' own WordPieceTrainer with BertWordPieceTokenizer.train's defaults, on the same text
theirs = BertWordPieceTokenizer()
t0 = time.time()
theirs.train_from_iterator(json.load(open(os.path.join(d, 'train.json'))), vocab_size=size, min_frequency=2, limit_alphabet=1000,
                           special_tokens=['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]'], show_progress=False)
out['seconds'] = time.time() - t0
os.makedirs(os.path.join(d, 'hf'), exist_ok=True)
theirs.save_model(os.path.join(d, 'hf'))
json.dump(out, sys.stdout)
`;
    const r = spawnSync(python!, ['-c', script, dir, String(VOCAB_SIZE)], { encoding: 'utf8', maxBuffer: 1 << 28, timeout: 300000 });
    if (r.status !== 0) throw new Error(`Python reference failed: ${r.stderr}`);
    result = JSON.parse(r.stdout);
  }, 300000);

  it('tokenizers.BertWordPieceTokenizer(vocab.txt) and transformers BertTokenizerFast give our ids on every held-out paragraph', () => {
    const ours = data.WordPieceTokenizer.fromVocabFile(join(dir, 'vocab.txt'));
    const got = heldOut.map((p) => ours.encode(p).ids);
    const differ = (want: number[][]) => want.filter((w, i) => JSON.stringify(w) !== JSON.stringify(got[i])).length;
    console.log(`${result.versions}: ${differ(result.tokenizers)} and ${differ(result.transformers)} of ${heldOut.length} paragraphs differ`);
    expect(result.tokenizers).toEqual(got);
    expect(result.transformers).toEqual(got);
  });

  it("quality: tokens per held-out word within 3% of tokenizers' own WordPieceTrainer of the same size; the vocabularies mostly agree", () => {
    const theirs = data.WordPieceTokenizer.fromVocabFile(join(dir, 'hf', 'vocab.txt'));
    const ours = data.WordPieceTokenizer.fromVocabFile(join(dir, 'vocab.txt'));
    let words = 0;
    let oursPieces = 0;
    let theirPieces = 0;
    for (const p of heldOut) {
      words += ours.basicTokens(p).length;
      oursPieces += ours.tokenize(p).length;
      theirPieces += theirs.tokenize(p).length;
    }
    const theirVocab = new Set(
      readFileSync(join(dir, 'hf', 'vocab.txt'), 'utf8')
        .split('\n')
        .filter(Boolean),
    );
    const shared = trained.vocab.filter((t) => theirVocab.has(t)).length;
    console.log(
      `held-out ${words} words: finetorch ${(oursPieces / words).toFixed(4)} tokens/word (trained in ${trained.stats.seconds.toFixed(2)} s), ` +
        `tokenizers ${(theirPieces / words).toFixed(4)} (${result.seconds.toFixed(2)} s); ${shared} of ${trained.vocab.length} tokens shared (${theirVocab.size} theirs)`,
    );
    expect(Math.abs(oursPieces / theirPieces - 1)).toBeLessThan(0.03);
    expect(shared / trained.vocab.length).toBeGreaterThan(0.95);
  });
});
