// Text augmentation for small data sets (Wei & Zou's EDA): synonym replacement
// from WordNet (Debian's wordnet-base data files), random deletion and random
// swap. Seeded; labels are never touched (only texts go in and out).
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

export const WORDNET_DIR = '/usr/share/wordnet';
const POS = ['noun', 'verb', 'adj', 'adv'] as const;
const STOPWORDS = new Set(
  'a an the and or but if of at by for with about to from in on is are was were be been being this that these those it its i you he she we they me him her us them my your his our their not no do does did have has had will would can could shall should may might must'.split(
    ' ',
  ),
);

/** WordNet's synonym sets, read from the dictionary files (index.* and data.*). */
export class WordNet {
  private readonly index = new Map<string, Array<[number, number]>>(); // lemma -> [pos, offset]
  private readonly dataFiles: Buffer[] = [];

  constructor(readonly dir = WORDNET_DIR) {
    for (const [p, pos] of POS.entries()) {
      const indexFile = join(dir, `index.${pos}`);
      const dataFile = join(dir, `data.${pos}`);
      if (!existsSync(indexFile) || !existsSync(dataFile)) throw new Error(`WordNet: ${indexFile} or ${dataFile} is missing (apt-get install wordnet-base)`);
      this.dataFiles.push(readFileSync(dataFile));
      for (const line of readFileSync(indexFile, 'utf8').split('\n')) {
        if (!line || line.startsWith(' ')) continue; // license header lines start with spaces
        const f = line.split(' ');
        const synsets = Number(f[2]);
        const pointers = Number(f[3]);
        const offsets = f.slice(4 + pointers + 2, 4 + pointers + 2 + synsets).map(Number);
        const list = this.index.get(f[0]) ?? [];
        for (const o of offsets) list.push([p, o]);
        this.index.set(f[0], list);
      }
    }
  }

  /** Synonyms of a word over all its senses and parts of speech (not the word itself), in WordNet's order. */
  synonyms(word: string): string[] {
    const lemma = word.toLowerCase().replace(/ /g, '_');
    const out: string[] = [];
    for (const [p, offset] of this.index.get(lemma) ?? []) {
      const buf = this.dataFiles[p];
      const end = buf.indexOf(0x0a, offset);
      const f = buf.toString('utf8', offset, end).split(' ');
      const count = parseInt(f[3], 16);
      for (let i = 0; i < count; i++) {
        const w = f[4 + 2 * i].replace(/\(.*\)$/, '').replace(/_/g, ' ');
        if (w.toLowerCase() !== word.toLowerCase() && !out.includes(w)) out.push(w);
      }
    }
    return out;
  }
}

let shared: WordNet | null = null;
function wordnet(): WordNet {
  shared ??= new WordNet();
  return shared;
}

const core = (token: string) => /^([^A-Za-z]*)([A-Za-z][A-Za-z'-]*)([^A-Za-z]*)$/.exec(token);

/** Replaces up to n content words with a random WordNet synonym each. */
export function synonymReplacement(text: string, options: { n?: number; random: () => number; wordnet?: WordNet }): string {
  const wn = options.wordnet ?? wordnet();
  const tokens = text.split(' ');
  const candidates = tokens.map((t, i) => [i, core(t)] as const).filter(([, m]) => m && !STOPWORDS.has(m[2].toLowerCase()) && wn.synonyms(m[2]).length);
  // seeded shuffle of the candidates
  for (let i = candidates.length - 1; i > 0; i--) {
    const j = Math.floor(options.random() * (i + 1));
    [candidates[i], candidates[j]] = [candidates[j], candidates[i]];
  }
  for (const [i, m] of candidates.slice(0, options.n ?? 1)) {
    const syns = wn.synonyms(m![2]);
    tokens[i] = m![1] + syns[Math.floor(options.random() * syns.length)] + m![3];
  }
  return tokens.join(' ');
}

/** Deletes each word with probability p (keeps at least one). */
export function randomDeletion(text: string, options: { p?: number; random: () => number }): string {
  const tokens = text.split(' ');
  if (tokens.length <= 1) return text;
  const kept = tokens.filter(() => options.random() >= (options.p ?? 0.1));
  return kept.length ? kept.join(' ') : tokens[Math.floor(options.random() * tokens.length)];
}

/** Swaps two random words, n times. */
export function randomSwap(text: string, options: { n?: number; random: () => number }): string {
  const tokens = text.split(' ');
  if (tokens.length < 2) return text;
  for (let k = 0; k < (options.n ?? 1); k++) {
    const i = Math.floor(options.random() * tokens.length);
    const j = Math.floor(options.random() * tokens.length);
    [tokens[i], tokens[j]] = [tokens[j], tokens[i]];
  }
  return tokens.join(' ');
}
