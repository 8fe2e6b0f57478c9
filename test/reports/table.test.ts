// The per-class table against scikit-learn 1.2.1's classification_report
// (Debian's /usr/bin/python3, one process for the whole file): the text
// layout character for character, and the numbers of output_dict.
import { execFileSync } from 'node:child_process';
import { beforeAll, describe, expect, it } from 'vitest';
import { reports } from 'finetorch';

/** A small deterministic generator (LCG), so the cases are the same on every machine. */
function lcg(seed: number) {
  let s = seed >>> 0;
  return () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32;
}

interface Case {
  yTrue: number[];
  yPred: number[];
  names: string[];
  digits: number;
}

function randomCase(seed: number, n: number, names: string[], digits: number, accuracy: number): Case {
  const r = lcg(seed);
  const C = names.length;
  const yTrue = Array.from({ length: n }, () => Math.floor(r() ** 1.5 * C)); // imbalanced
  const yPred = yTrue.map((t) => (r() < accuracy ? t : Math.floor(r() * C)));
  return { yTrue, yPred, names, digits };
}

const CASES: Case[] = [
  randomCase(1, 200, ['T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat'], 2, 0.7),
  randomCase(2, 57, ['negative', 'positive'], 4, 0.8),
  randomCase(3, 400, ['a', 'bb', 'a much longer class name', 'd', 'e', 'f', 'g'], 3, 0.5),
  // exact ties for the 2-decimal rounding: precision 5/8 = 0.625 and recall 3/8 = 0.375
  { yTrue: [0, 0, 0, 0, 0, 1, 1, 1, 0, 0, 0, 1, 1, 1, 1, 1], yPred: [0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1], names: ['x', 'y'], digits: 2 },
];
// class 2 never occurs (true or predicted): scikit-learn prints "micro avg" there instead of accuracy, so only numbers are compared
const ABSENT: Case = { yTrue: [0, 1, 1, 3, 3, 3, 0, 1], yPred: [0, 1, 3, 3, 0, 3, 1, 1], names: ['c0', 'c1', 'c2', 'c3'], digits: 2 };

const PY = `
import json, sys
from sklearn.metrics import classification_report
out = []
for c in json.load(sys.stdin):
    labels = list(range(len(c['names'])))
    kw = dict(labels=labels, target_names=c['names'], zero_division=0)
    out.append({'text': classification_report(c['yTrue'], c['yPred'], digits=c['digits'], **kw),
                'dict': classification_report(c['yTrue'], c['yPred'], output_dict=True, **kw)})
print(json.dumps(out))
`;

type Row = { precision: number; recall: number; 'f1-score': number; support: number };
let sk: Array<{ text: string; dict: Record<string, Row | number> }>;

beforeAll(() => {
  sk = JSON.parse(execFileSync('/usr/bin/python3', ['-c', PY], { input: JSON.stringify([...CASES, ABSENT]), encoding: 'utf8' }));
});

const near = (a: number, b: number, what: string) => expect(Math.abs(a - b), `${what}: ${a} vs ${b}`).toBeLessThanOrEqual(1e-12);

function compareNumbers(t: ReturnType<typeof reports.classificationTable>, d: Record<string, Row | number>, what: string) {
  for (const c of t.classes) {
    const want = d[c.name] as Row;
    near(c.precision, want.precision, `${what} ${c.name} precision`);
    near(c.recall, want.recall, `${what} ${c.name} recall`);
    near(c.f1, want['f1-score'], `${what} ${c.name} f1`);
    expect(c.support, `${what} ${c.name} support`).toBe(want.support);
  }
  for (const [mine, theirs] of [
    [t.macroAvg, d['macro avg']],
    [t.weightedAvg, d['weighted avg']],
  ] as Array<[typeof t.macroAvg, Row]>) {
    near(mine.precision, theirs.precision, `${what} avg precision`);
    near(mine.recall, theirs.recall, `${what} avg recall`);
    near(mine.f1, theirs['f1-score'], `${what} avg f1`);
    expect(mine.support).toBe(theirs.support);
  }
}

describe('classificationTable matches scikit-learn classification_report', () => {
  it('text layout, per-class and averaged numbers, from labels and from the confusion matrix', () => {
    CASES.forEach((c, i) => {
      const fromLabels = reports.classificationTable({ yTrue: c.yTrue, yPred: c.yPred }, c.names, { digits: c.digits });
      expect(fromLabels.text, `case ${i} text`).toBe(sk[i].text);
      compareNumbers(fromLabels, sk[i].dict, `case ${i}`);
      near(fromLabels.accuracy, sk[i].dict.accuracy as number, `case ${i} accuracy`);
      const cm = c.names.map(() => c.names.map(() => 0));
      c.yTrue.forEach((t, k) => cm[t][c.yPred[k]]++);
      const fromMatrix = reports.classificationTable(cm, c.names, { digits: c.digits });
      expect(fromMatrix.text, `case ${i} text from the confusion matrix`).toBe(sk[i].text);
    });
    // the tie case really is one: 0.625 prints as 0.62 in Python, 0.63 with toFixed
    expect(sk[3].text).toContain('0.62');
  });

  it('a class without samples gets a row with support 0 (zero_division 0), as labels=range(C) gives', () => {
    const t = reports.classificationTable({ yTrue: ABSENT.yTrue, yPred: ABSENT.yPred }, ABSENT.names);
    compareNumbers(t, sk[4].dict, 'absent class');
    near(t.accuracy, (sk[4].dict['micro avg'] as Row)['f1-score'], 'accuracy = micro F1');
    expect(t.classes[2]).toMatchObject({ name: 'c2', precision: 0, recall: 0, f1: 0, support: 0 });
  });

  it('markdown and CSV carry the same rows', () => {
    const c = CASES[0];
    const t = reports.classificationTable({ yTrue: c.yTrue, yPred: c.yPred }, c.names);
    const csv = t.csv.trim().split('\n');
    expect(csv[0]).toBe('class,precision,recall,f1,support');
    expect(csv).toHaveLength(1 + c.names.length + 3);
    const coat = csv
      .find((l) => l.startsWith('Coat,'))!
      .split(',')
      .map(Number);
    near(coat[1], (sk[0].dict.Coat as Row).precision, 'csv Coat precision');
    expect(coat[4]).toBe((sk[0].dict.Coat as Row).support);
    expect(csv[csv.length - 3].split(',')[3]).toBe(String(t.accuracy));
    const md = t.markdown.trim().split('\n');
    expect(md).toHaveLength(2 + c.names.length + 3);
    expect(md[2]).toContain('| T-shirt/top |');
  });

  it('bad input: a clear error, not a crash', () => {
    expect(() => reports.classificationTable([[1, 2], [3]], ['a', 'b'])).toThrow(/row 1 has 1 entries, expected 2/);
    expect(() => reports.classificationTable({ yTrue: [0, 1], yPred: [0] }, ['a', 'b'])).toThrow(/yTrue has 2 labels but yPred has 1/);
    expect(() => reports.classificationTable({ yTrue: [0, 5], yPred: [0, 1] }, ['a', 'b'])).toThrow(/label 5 is not a class index 0..1/);
    expect(() =>
      reports.classificationTable(
        [
          [1, 0],
          [0, 1],
        ],
        ['a'],
      ),
    ).toThrow(/1 class names for 2 classes/);
  });
});
