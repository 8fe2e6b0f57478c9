// Metrics against scikit-learn 1.2.1 (fixtures from scripts/make-metrics-fixtures.py):
// random cases with ties, missing classes and imbalance, to 1e-9.
import { describe, it, expect } from 'vitest';
import { torch, metrics } from 'finetorch';
import { fixture } from '../helpers';

interface Prf {
  average: 'micro' | 'macro' | 'weighted' | 'binary' | null;
  zeroDivision: 0 | 1;
  precision: number | number[];
  recall: number | number[];
  f: number | number[];
  support: number[] | null;
}
const fx = fixture<{
  classification: Array<{ yTrue: number[]; yPred: number[]; accuracy: number; confusion: number[][]; prf: Prf[] }>;
  auc: Array<{ yTrue: number[]; yScore: number[] | number[][]; average?: 'macro' | 'weighted'; auc: number }>;
}>('metrics.json');

const close = (got: number | number[], want: number | number[], what: string) => {
  if (Array.isArray(want)) {
    expect((got as number[]).length, what).toBe(want.length);
    want.forEach((w, i) => expect(Math.abs((got as number[])[i] - w), `${what}[${i}]`).toBeLessThanOrEqual(1e-9));
  } else expect(Math.abs((got as number) - want), what).toBeLessThanOrEqual(1e-9);
};

describe('metrics match scikit-learn', () => {
  it(`accuracy, precision/recall/F1 (every average, zeroDivision 0 and 1) and confusion matrices on ${fx.classification.length} cases`, () => {
    let checks = 0;
    fx.classification.forEach((c, i) => {
      close(metrics.accuracy(c.yTrue, c.yPred), c.accuracy, `case ${i} accuracy`);
      expect(metrics.confusionMatrix(c.yTrue, c.yPred), `case ${i} confusion`).toEqual(c.confusion);
      for (const r of c.prf) {
        const got = metrics.precisionRecallF(c.yTrue, c.yPred, { average: r.average, zeroDivision: r.zeroDivision });
        const what = `case ${i} ${r.average} zd=${r.zeroDivision}`;
        close(got.precision, r.precision, `${what} precision`);
        close(got.recall, r.recall, `${what} recall`);
        close(got.f, r.f, `${what} f1`);
        if (r.average === null) expect(got.support).toEqual(r.support);
        if (r.average !== null && r.average !== 'binary')
          close(metrics.f1(c.yTrue, c.yPred, { average: r.average, zeroDivision: r.zeroDivision }), r.f as number, `${what} f1()`);
        checks++;
      }
    });
    expect(checks).toBeGreaterThan(1000);
  });

  it(`ROC AUC, binary with ties and one-vs-rest macro/weighted, on ${fx.auc.length} cases`, () => {
    fx.auc.forEach((c, i) => close(metrics.rocAuc(c.yTrue, c.yScore, { average: c.average }), c.auc, `auc case ${i}`));
  });

  it('accepts tensors and TypedArrays', () => {
    const yTrue = torch.tensor([0, 1, 1, 0]);
    expect(metrics.accuracy(yTrue, new Int32Array([0, 1, 0, 0]))).toBe(0.75);
    expect(metrics.rocAuc(yTrue, torch.tensor([0.1, 0.9, 0.4, 0.4], { dtype: 'float32' }))).toBeCloseTo(0.875, 6);
  });

  it('clear errors where scikit-learn raises', () => {
    expect(() => metrics.rocAuc([1, 1, 1], [0.2, 0.3, 0.4])).toThrow(/Only one class present/);
    expect(() => metrics.f1([0, 1, 2], [0, 1, 2])).toThrow(/multiclass but average='binary'/);
    expect(() => metrics.accuracy([0, 1], [0])).toThrow(/2 samples but yPred has 1/);
    expect(() =>
      metrics.rocAuc(
        [0, 1, 2],
        [
          [0.5, 0.5, 0.5],
          [0.2, 0.3, 0.5],
          [0.1, 0.1, 0.8],
        ],
      ),
    ).toThrow(/summing to 1/);
    expect(() =>
      metrics.rocAuc(
        [0, 1, 1],
        [
          [0.3, 0.3, 0.4],
          [0.2, 0.3, 0.5],
          [0.1, 0.1, 0.8],
        ],
      ),
    ).toThrow(/3 columns but yTrue has 2 classes/);
  });

  it('classification report and streaming accumulation agree with the one-shot functions', () => {
    const report = metrics.classificationReport([0, 1, 2, 2, 1], [0, 2, 2, 2, 1]);
    expect(report.classes['2']).toEqual({ precision: 2 / 3, recall: 1, f1: 0.8, support: 2 });
    expect(report.accuracy).toBe(0.8);
    const acc = new metrics.MetricAccumulator();
    torch.manualSeed(3);
    const logits = torch.randn([30, 3]);
    const y = torch.tensor(Array.from({ length: 30 }, (_, i) => i % 3));
    for (let i = 0; i < 30; i += 7) acc.update(logits.index(`${i}:${i + 7}`), y.index(`${i}:${i + 7}`));
    const r = acc.compute();
    const pred = logits.argmax(1);
    expect(acc.count).toBe(30);
    expect(r.accuracy).toBe(metrics.accuracy(y, pred));
    expect(r.f1Macro).toBe(metrics.f1(y, pred, { average: 'macro' }));
    expect(r.rocAuc).toBeCloseTo(metrics.rocAuc(y, logits.softmax(1)), 12);
  });
});
