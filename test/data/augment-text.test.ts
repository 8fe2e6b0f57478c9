// Text augmentation with Debian's WordNet: real synonyms, seeded, labels untouched.
import { describe, it, expect } from 'vitest';
import { data } from 'finetorch';

const wn = new data.WordNet();

describe('WordNet synonyms', () => {
  it('finds WordNet 3.0 synsets', () => {
    expect(wn.synonyms('car')).toEqual(expect.arrayContaining(['auto', 'automobile', 'machine', 'motorcar']));
    expect(wn.synonyms('happy')).toEqual(expect.arrayContaining(['glad', 'felicitous']));
    expect(wn.synonyms('contract')).toContain('declaration');
    expect(wn.synonyms('qwzxv')).toEqual([]);
  });
});

describe('EDA operations', () => {
  const text = 'The tenant shall pay the rent on time, every month.';

  it('synonym replacement swaps a content word for one of its WordNet synonyms, reproducibly', () => {
    for (let seed = 1; seed <= 20; seed++) {
      const a = data.synonymReplacement(text, { n: 1, random: data.rng(seed) });
      expect(data.synonymReplacement(text, { n: 1, random: data.rng(seed) })).toBe(a);
      // a is the text with exactly one non-stop word replaced by one of its synonyms
      const words = text.split(' ');
      const explained = words.some((w, i) => {
        const m = /^([^A-Za-z]*)([A-Za-z][A-Za-z'-]*)([^A-Za-z]*)$/.exec(w);
        if (!m || ['the', 'on', 'every'].includes(m[2].toLowerCase())) return false;
        return wn.synonyms(m[2]).some((syn) => [...words.slice(0, i), m[1] + syn + m[3], ...words.slice(i + 1)].join(' ') === a);
      });
      expect(explained, a).toBe(true);
    }
  });

  it('random deletion and swap keep the words of the sentence', () => {
    const del = data.randomDeletion(text, { p: 0.3, random: data.rng(2) });
    expect(del.split(' ').every((w) => text.split(' ').includes(w))).toBe(true);
    expect(del.split(' ').length).toBeLessThan(text.split(' ').length);
    const swapped = data.randomSwap(text, { n: 2, random: data.rng(3) });
    expect(swapped.split(' ').sort()).toEqual(text.split(' ').sort());
  });

  it('augmenting a dataset changes texts, never labels', () => {
    const ds = { texts: ['a good contract', 'a bad lease'], labels: [1, 0] };
    const random = data.rng(4);
    const augmented = { texts: ds.texts.map((t) => data.synonymReplacement(t, { random })), labels: [...ds.labels] };
    expect(augmented.labels).toEqual(ds.labels);
    expect(augmented.texts).not.toEqual(ds.texts);
  });
});
