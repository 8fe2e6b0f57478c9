// Train/validation/test splits and k-fold, stratified by class: deterministic
// for a seed, class proportions kept within one sample, and every class in
// every part where its count allows (for a class too small to reach every
// part by proportion, e.g. 3 samples in 8:1:1, presence takes precedence).
import { permutation, rng } from './tensor-loader.js';

export interface SplitOptions {
  stratify?: boolean;
  seed?: number;
}

function checkFractions(fractions: number[]): void {
  if (!Array.isArray(fractions) || fractions.length < 2 || fractions.some((f) => !(f > 0)))
    throw new TypeError(`split: fractions must be two or more positive numbers, got ${JSON.stringify(fractions)}`);
  const total = fractions.reduce((a, b) => a + b, 0);
  if (Math.abs(total - 1) > 1e-9) throw new TypeError(`split: fractions must sum to 1, got ${total}`);
}

// Sizes for n items over the parts: largest remainder, then at least one per
// part when n allows (taken from the largest part).
function allocate(n: number, fractions: number[]): number[] {
  const exact = fractions.map((f) => f * n);
  const sizes = exact.map(Math.floor);
  let left = n - sizes.reduce((a, b) => a + b, 0);
  const order = exact.map((e, i) => [e - Math.floor(e), i] as const).sort((a, b) => b[0] - a[0] || a[1] - b[1]);
  for (let k = 0; left > 0; k = (k + 1) % order.length, left--) sizes[order[k][1]]++;
  if (n >= fractions.length) {
    for (let i = 0; i < sizes.length; i++) {
      if (sizes[i] > 0) continue;
      const biggest = sizes.indexOf(Math.max(...sizes));
      sizes[biggest]--;
      sizes[i]++;
    }
  }
  return sizes;
}

function groupsByClass(labels: ArrayLike<number>): Map<number, number[]> {
  const groups = new Map<number, number[]>();
  for (let i = 0; i < labels.length; i++) {
    const l = Number(labels[i]);
    if (!groups.has(l)) groups.set(l, []);
    groups.get(l)!.push(i);
  }
  return new Map([...groups.entries()].sort((a, b) => a[0] - b[0]));
}

/**
 * Splits sample indices into parts of the given fractions (e.g. [0.8, 0.1, 0.1]).
 * With stratify (the default) each class is split on its own. Returns one
 * sorted index array per part.
 */
export function split(labels: ArrayLike<number>, fractions: number[], options: SplitOptions = {}): number[][] {
  checkFractions(fractions);
  const seed = options.seed ?? 0;
  const parts: number[][] = fractions.map(() => []);
  const groups = options.stratify === false ? new Map([[0, Array.from({ length: labels.length }, (_, i) => i)]]) : groupsByClass(labels);
  let g = 0;
  for (const members of groups.values()) {
    const order = permutation(members.length, seed * 7919 + g++);
    const sizes = allocate(members.length, fractions);
    let at = 0;
    sizes.forEach((size, p) => {
      for (let k = 0; k < size; k++) parts[p].push(members[order[at++]]);
    });
  }
  return parts.map((p) => p.sort((a, b) => a - b));
}

/** Stratified k-fold: k (train, validation) index pairs; each sample is validated exactly once. */
export function kFold(labels: ArrayLike<number>, k: number, options: SplitOptions = {}): Array<{ train: number[]; val: number[] }> {
  if (!Number.isInteger(k) || k < 2) throw new TypeError(`kFold: k must be an integer >= 2, got ${k}`);
  const folds = split(
    labels,
    Array.from({ length: k }, () => 1 / k),
    options,
  );
  return folds.map((val, i) => ({
    train: folds
      .filter((_, j) => j !== i)
      .flat()
      .sort((a, b) => a - b),
    val,
  }));
}

/** Per-class counts of a label list, by class index. */
export function classCounts(labels: ArrayLike<number>): Record<number, number> {
  const out: Record<number, number> = {};
  for (let i = 0; i < labels.length; i++) out[Number(labels[i])] = (out[Number(labels[i])] ?? 0) + 1;
  return out;
}

export { rng };
