// Split properties: disjoint and complete, deterministic for a seed, class
// proportions kept within one sample, every class in every part where counts
// allow; on balanced, 1:20 imbalanced and tiny classes.
import { describe, it, expect } from 'vitest';
import { data } from 'finetorch';

function labelsOf(counts: number[], seed = 1): number[] {
  const out: number[] = [];
  counts.forEach((n, c) => {
    for (let i = 0; i < n; i++) out.push(c);
  });
  // interleave deterministically so classes are not in blocks
  const p = data.permutation(out.length, seed);
  return p.map((i) => out[i]);
}

function checkSplit(labels: number[], fractions: number[], parts: number[][]) {
  const all = parts.flat().sort((a, b) => a - b);
  expect(all).toEqual(labels.map((_, i) => i)); // disjoint and complete
  const classes = [...new Set(labels)];
  for (const c of classes) {
    const n = labels.filter((l) => l === c).length;
    parts.forEach((part, p) => {
      const got = part.filter((i) => labels[i] === c).length;
      // within one sample of the exact share; for classes too small to give every part
      // one sample by proportion, presence in every part takes precedence
      if (n * Math.min(...fractions) >= 1) expect(Math.abs(got - fractions[p] * n), `class ${c} part ${p}`).toBeLessThanOrEqual(1 + 1e-9);
      if (n >= parts.length) expect(got, `class ${c} present in part ${p}`).toBeGreaterThan(0);
    });
  }
}

describe('data.split', () => {
  for (const [name, counts] of [
    ['balanced', [100, 100, 100]],
    ['imbalanced 1:20', [400, 20]],
    ['tiny classes', [3, 5, 50, 1]],
    ['odd sizes', [37, 11, 8]],
  ] as const) {
    it(`8:1:1 stratified, ${name}`, () => {
      const labels = labelsOf([...counts]);
      const parts = data.split(labels, [0.8, 0.1, 0.1], { seed: 3 });
      checkSplit(labels, [0.8, 0.1, 0.1], parts);
      expect(data.split(labels, [0.8, 0.1, 0.1], { seed: 3 })).toEqual(parts); // deterministic
      expect(data.split(labels, [0.8, 0.1, 0.1], { seed: 4 })).not.toEqual(parts);
    });
  }

  it('unstratified splits keep only the sizes', () => {
    const labels = labelsOf([90, 10]);
    const parts = data.split(labels, [0.5, 0.5], { stratify: false, seed: 1 });
    expect(parts.map((p) => p.length)).toEqual([50, 50]);
  });

  it('k-fold: every sample validated exactly once, folds stratified', () => {
    const labels = labelsOf([60, 20, 20]);
    const folds = data.kFold(labels, 5, { seed: 2 });
    expect(folds.flatMap((f) => f.val).sort((a, b) => a - b)).toEqual(labels.map((_, i) => i));
    for (const f of folds) {
      expect(f.train.length + f.val.length).toBe(100);
      expect(f.val.filter((i) => labels[i] === 1).length).toBe(4);
    }
  });

  it('bad fractions are clear errors', () => {
    expect(() => data.split([0, 1], [0.5, 0.6])).toThrow(/sum to 1/);
    expect(() => data.split([0, 1], [1])).toThrow(/two or more/);
    expect(() => data.kFold([0, 1], 1)).toThrow(/k must be an integer >= 2/);
  });
});
