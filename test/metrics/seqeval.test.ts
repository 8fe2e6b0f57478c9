// metrics.seqeval: entity-level precision/recall/F1 with seqeval 1.2.2's
// semantics. seqeval cannot be installed here, so: (a) cases worked by hand,
// and seqeval's own documented examples; (b) exact agreement with an
// independent Python re-implementation (test/metrics/seqeval_reference.py,
// run by Debian's /usr/bin/python3) on a few hundred random tag sequences,
// valid and invalid transitions, every mode, scheme, average and zeroDivision.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it, expect } from 'vitest';
import { metrics, data, DataError, ArgumentError } from 'finetorch';
import { formatFixed } from '../../dist/metrics/seqeval.js';

const { seqeval } = metrics;

describe('seqeval: cases worked by hand', () => {
  // The issue's example. True entities: A[0,2) B[3,4) C[5,6).
  const yTrue = [['B-A', 'I-A', 'O', 'B-B', 'O', 'B-C']];
  const yPred = [['I-A', 'I-A', 'O', 'B-B', 'I-B', 'B-C']];

  it("issue's example, default mode: micro-F1 2/3", () => {
    // conlleval: I-A after the sentence start (an O) starts an entity, so the
    // prediction has A[0,2) (right), B[3,5) (wrong end), C[5,6) (right):
    // 2 of 3 predicted are true, 2 of 3 true are found.
    expect(seqeval.precision(yTrue, yPred)).toBe(2 / 3);
    expect(seqeval.recall(yTrue, yPred)).toBe(2 / 3);
    expect(seqeval.f1(yTrue, yPred)).toBeCloseTo(2 / 3, 15);
    expect(seqeval.f1(yTrue, yPred).toFixed(3)).toBe('0.667');
  });

  it("issue's example, strict IOB2: micro-F1 0.4", () => {
    // Strict IOB2: an entity must start with B-, so the leading I-A I-A is no
    // entity. Predicted: B[3,5) (wrong), C[5,6) (right): P = 1/2, R = 1/3,
    // F1 = 2 * (1/2)(1/3) / (1/2 + 1/3) = (1/3) / (5/6) = 0.4.
    const o = { mode: 'strict', scheme: 'IOB2' } as const;
    expect(seqeval.precision(yTrue, yPred, o)).toBe(0.5);
    expect(seqeval.recall(yTrue, yPred, o)).toBe(1 / 3);
    expect(seqeval.f1(yTrue, yPred, o)).toBeCloseTo(0.4, 15);
    // BIO is the same scheme
    expect(seqeval.f1(yTrue, yPred, { mode: 'strict', scheme: 'BIO' })).toBe(seqeval.f1(yTrue, yPred, o));
    // per type (sorted A, B, C): A has one true and no prediction, B one each
    // but different ends, C found.
    const per = seqeval.precisionRecallFSupport(yTrue, yPred, { ...o, average: null, zeroDivision: 0 });
    expect(per).toEqual({ types: ['A', 'B', 'C'], precision: [0, 0, 1], recall: [0, 0, 1], f1: [0, 0, 1], support: [1, 1, 1] });
  });

  it("seqeval's documented examples (f1_score, accuracy_score, performance_measure, classification_report)", () => {
    // From seqeval 1.2.2's docstrings.
    const t1 = [
      ['O', 'O', 'B-MISC', 'I-MISC', 'B-MISC', 'O', 'O'],
      ['B-PER', 'I-PER', 'O'],
    ];
    const p1 = [
      ['O', 'O', 'B-MISC', 'I-MISC', 'B-MISC', 'I-MISC', 'O'],
      ['B-PER', 'I-PER', 'O'],
    ];
    expect(seqeval.f1(t1, p1, { average: 'micro' })).toBe(0.6666666666666666);
    expect(seqeval.f1(t1, p1, { average: 'macro' })).toBe(0.75);
    expect(seqeval.f1(t1, p1, { average: 'weighted' })).toBe(0.6666666666666666);
    expect(seqeval.f1(t1, p1, { average: null })).toEqual([0.5, 1]);
    expect(seqeval.precision(t1, p1, { average: null })).toEqual([0.5, 1]);
    expect(seqeval.recall(t1, p1, { average: 'macro' })).toBe(0.75);

    const t2 = [
      ['O', 'O', 'O', 'B-MISC', 'I-MISC', 'I-MISC', 'O'],
      ['B-PER', 'I-PER', 'O'],
    ];
    const p2 = [
      ['O', 'O', 'B-MISC', 'I-MISC', 'I-MISC', 'I-MISC', 'O'],
      ['B-PER', 'I-PER', 'O'],
    ];
    expect(seqeval.accuracy(t2, p2)).toBe(0.8);
    expect(seqeval.classificationReport(t2, p2).text).toBe(
      [
        '              precision    recall  f1-score   support',
        '',
        '        MISC       0.00      0.00      0.00         1',
        '         PER       1.00      1.00      1.00         1',
        '',
        '   micro avg       0.50      0.50      0.50         2',
        '   macro avg       0.50      0.50      0.50         2',
        'weighted avg       0.50      0.50      0.50         2',
        '',
      ].join('\n'),
    );
    const report = seqeval.classificationReport(t2, p2, { mode: 'strict', scheme: 'IOB2' });
    expect(report.types).toEqual({ MISC: { precision: 0, recall: 0, f1: 0, support: 1 }, PER: { precision: 1, recall: 1, f1: 1, support: 1 } });
    expect(report.microAvg).toEqual({ precision: 0.5, recall: 0.5, f1: 0.5, support: 2 });

    const t3 = [
      ['O', 'O', 'O', 'B-MISC', 'I-MISC', 'O', 'B-ORG'],
      ['B-PER', 'I-PER', 'O', 'B-PER'],
    ];
    const p3 = [
      ['O', 'O', 'B-MISC', 'I-MISC', 'I-MISC', 'O', 'O'],
      ['B-PER', 'I-PER', 'O', 'B-MISC'],
    ];
    expect(seqeval.performanceMeasure(t3, p3)).toEqual({ TP: 3, FP: 3, FN: 1, TN: 4 });
  });

  it('strict IOBES: B- I- without an E- is no entity; default mode still reads one', () => {
    const t = [['B-PER', 'E-PER', 'O', 'S-LOC']];
    const p = [['B-PER', 'I-PER', 'O', 'S-LOC']];
    // default (conlleval): B-PER I-PER is PER[0,2), the same as the truth -> all found.
    expect(seqeval.f1(t, p)).toBe(1);
    // strict IOBES: a multi-word entity must close with E-, so the prediction
    // has only LOC[3,4): P = 1/1, R = 1/2, F1 = 2 * 1 * 0.5 / 1.5 = 2/3.
    const o = { mode: 'strict', scheme: 'IOBES' } as const;
    expect(seqeval.precision(t, p, o)).toBe(1);
    expect(seqeval.recall(t, p, o)).toBe(0.5);
    expect(seqeval.f1(t, p, o)).toBe((2 * 1 * 0.5) / 1.5);
    // an I- where S- belongs: default mode takes it as an entity of one word,
    // strict IOBES does not (an entity starts with B- or S-).
    expect(seqeval.f1([['S-A']], [['I-A']])).toBe(1);
    expect(seqeval.f1([['S-A']], [['I-A']], { ...o, zeroDivision: 0 })).toBe(0);
  });

  it('zeroDivision: no predicted entities, no entities at all', () => {
    const t = [['B-A', 'O']];
    const none = [['O', 'O']];
    // precision = 0/0 -> zeroDivision; recall = 0/1 = 0; F1 from p and r:
    // (p=1, r=0) -> 0 as well.
    expect(seqeval.precision(t, none, { zeroDivision: 0 })).toBe(0);
    expect(seqeval.precision(t, none, { zeroDivision: 1 })).toBe(1);
    expect(seqeval.recall(t, none, { zeroDivision: 1 })).toBe(0);
    expect(seqeval.f1(t, none, { zeroDivision: 1 })).toBe(0);
    // no entities on either side: micro p = r = zeroDivision, and F1 = 2*1*1/2 = 1 with zeroDivision 1
    expect(seqeval.f1(none, none, { zeroDivision: 1 })).toBe(1);
    expect(seqeval.f1(none, none, { zeroDivision: 0 })).toBe(0);
    // weighted with no true entities but a prediction: seqeval gives
    // precision 0, recall zeroDivision, F1 0.
    expect(seqeval.precisionRecallFSupport(none, t, { average: 'weighted', zeroDivision: 1 })).toEqual({
      types: ['A'],
      precision: 0,
      recall: 1,
      f1: 0,
      support: 0,
    });
    // 'warn' acts as 0
    expect(seqeval.precision(t, none, { zeroDivision: 'warn' })).toBe(0);
  });

  it('macro averages over the union of types: a type only in the predictions scores 0', () => {
    const t = [['B-A', 'O', 'O']];
    const p = [['B-A', 'O', 'B-B']];
    // A: tp 1 of 1 predicted, 1 true -> P = R = F1 = 1.
    // B: predicted once, never true -> P = 0/1 = 0, R = 0/0 -> zeroDivision, F1 = 0.
    expect(seqeval.f1(t, p, { average: 'macro', zeroDivision: 0 })).toBe(0.5);
    expect(seqeval.precision(t, p, { average: 'macro', zeroDivision: 0 })).toBe(0.5);
    expect(seqeval.recall(t, p, { average: 'macro', zeroDivision: 0 })).toBe(0.5);
    expect(seqeval.recall(t, p, { average: 'macro', zeroDivision: 1 })).toBe(1);
    expect(seqeval.f1(t, p, { average: 'macro', zeroDivision: 1 })).toBe(0.5);
    // weighted by true support (A: 1, B: 0) -> A's scores alone
    expect(seqeval.f1(t, p, { average: 'weighted', zeroDivision: 0 })).toBe(1);
    // micro pools: tp 1, predicted 2, true 1 -> P 0.5, R 1, F1 2/3
    expect(seqeval.precisionRecallFSupport(t, p, { average: 'micro', zeroDivision: 0 })).toEqual({
      types: ['A', 'B'],
      precision: 0.5,
      recall: 1,
      f1: (2 * 0.5 * 1) / 1.5,
      support: 1,
    });
  });

  it('entities never cross sentences (default mode joins them with O)', () => {
    // B-A | I-A in two sentences is two entities; in one sentence it is one.
    expect(seqeval.precisionRecallFSupport([['B-A'], ['I-A']], [['B-A'], ['I-A']], { average: 'micro' }).support).toBe(2);
    expect(seqeval.precisionRecallFSupport([['B-A', 'I-A']], [['B-A', 'I-A']], { average: 'micro' }).support).toBe(1);
    // and an entity at the end of one sentence does not match one at the start of the next
    expect(seqeval.f1([['O', 'B-A'], ['O']], [['O', 'O'], ['B-A']], { zeroDivision: 0 })).toBe(0);
  });

  it('suffix tags (type first) give the same scores', () => {
    const yT = [['B-A', 'I-A', 'O', 'B-B', 'O', 'B-C']];
    const yP = [['I-A', 'I-A', 'O', 'B-B', 'I-B', 'B-C']];
    const flip = (y: string[][]) => y.map((s) => s.map((t) => (t === 'O' ? t : `${t.slice(2)}-${t[0]}`)));
    expect(seqeval.f1(flip(yT), flip(yP), { suffix: true })).toBe(seqeval.f1(yT, yP));
    expect(seqeval.f1(flip(yT), flip(yP), { suffix: true, mode: 'strict', scheme: 'IOB2' })).toBe(seqeval.f1(yT, yP, { mode: 'strict', scheme: 'IOB2' }));
  });

  it("numbers in the text report round as Python's format does (ties to even)", () => {
    expect(formatFixed(0.125, 2)).toBe('0.12'); // exact tie, 2 is even
    expect(formatFixed(0.375, 2)).toBe('0.38'); // exact tie, 8 is even
    expect(formatFixed(0.5, 0)).toBe('0');
    expect(formatFixed(1.5, 0)).toBe('2');
    expect(formatFixed(0.15, 1)).toBe('0.1'); // 0.15 is 0.1499999... in binary: no tie
    expect(formatFixed(2 / 3, 4)).toBe('0.6667');
    // 1 true positive out of 8 predictions: precision 0.125 shows as 0.12, as seqeval prints it
    const t = [['B-A', 'O', 'O', 'O', 'O', 'O', 'O', 'O']];
    const p = [['B-A', 'B-A', 'B-A', 'B-A', 'B-A', 'B-A', 'B-A', 'B-A']];
    expect(seqeval.classificationReport(t, p).text.split('\n')[2]).toBe('           A       0.12      1.00      0.22         1');
  });
});

describe('seqeval: bad input gets a clear error', () => {
  it('names the sentence whose lengths differ, or the counts of sentences', () => {
    expect(() => seqeval.f1([['O'], ['O', 'B-A']], [['O'], ['O']])).toThrow(/sentence 1 has 2 tags in yTrue but 1 in yPred/);
    expect(() => seqeval.f1([['O']], [['O'], ['O']])).toThrow(/yTrue has 1 sentences but yPred has 2/);
    expect(() => seqeval.accuracy([['O']], [['O', 'O']])).toThrow(DataError);
  });

  it('names a tag that is not a string, and the place of a prefix the strict scheme does not use', () => {
    expect(() => seqeval.f1([['O', 3 as unknown as string]], [['O', 'O']])).toThrow(/yTrue\[0\]\[1\] is 3, not a tag string/);
    expect(() => seqeval.f1(['O' as unknown as string[]], [['O']])).toThrow(/yTrue\[0\] is not an array of tags/);
    expect(() => seqeval.f1([['O'], ['B-A', 'E-A']], [['O'], ['B-A', 'I-A']], { mode: 'strict', scheme: 'IOB2' })).toThrow(
      /yTrue\[1\]\[1\]: tag 'E-A' has prefix 'E', which IOB2 does not use/,
    );
  });

  it('checks options', () => {
    const y = [['B-A']];
    expect(() => seqeval.f1(y, y, { mode: 'strict' })).toThrow(ArgumentError);
    expect(() => seqeval.f1(y, y, { mode: 'strict' })).toThrow(/needs a scheme/);
    expect(() => seqeval.f1(y, y, { mode: 'strict', scheme: 'IOB3' as 'IOB2' })).toThrow(/unknown tag scheme "IOB3"/);
    expect(() => seqeval.f1(y, y, { average: 'samples' as 'micro' })).toThrow(/average must be/);
    expect(() => seqeval.f1(y, y, { zeroDivision: 2 as 1 })).toThrow(/zeroDivision must be/);
    expect(() => seqeval.f1(y, y, { mode: 'lenient' as 'default' })).toThrow(/mode must be/);
    expect(() => seqeval.accuracy([[]], [[]])).toThrow(/no tags/);
  });
});

describe("default mode agrees with conlleval.pl's own counts", () => {
  // test/metrics/conlleval-cases.json: what conlleval.pl printed for random
  // typed B-/I-/O sequences and for the CoNLL-2000 sample's tags (made by
  // test/metrics/make_conlleval_cases.py). IOB tags only: conlleval.pl has
  // no S- rules and seqeval's default mode adds E-/S- rules of its own.
  type Counted = {
    yTrue: string[];
    yPred: string[];
    conlleval: {
      tokens: number;
      phrases: number;
      found: number;
      correct: number;
      accuracy: string | null;
      perType: Record<string, { precision: string; recall: string; fb1: string; found: number }>;
    };
  };
  const fx = JSON.parse(readFileSync(join(__dirname, 'conlleval-cases.json'), 'utf8')) as { conll2000: Counted; random: Counted[] };
  const sentences = (y: string[]) => y.map((s) => (s === '' ? [] : s.split(' ')));
  const percent = (x: number, printed: string, what: string) => expect(Math.abs(100 * x - Number(printed)), what).toBeLessThanOrEqual(0.005 + 1e-9);

  function check(c: Counted, what: string) {
    const yTrue = sentences(c.yTrue);
    const yPred = sentences(c.yPred);
    const k = c.conlleval;
    const micro = seqeval.precisionRecallFSupport(yTrue, yPred, { average: 'micro', zeroDivision: 0 });
    // micro precision and recall are conlleval's integer counts divided
    expect(micro.support, `${what} phrases`).toBe(k.phrases);
    expect(micro.precision, `${what} precision`).toBe(k.found === 0 ? 0 : k.correct / k.found);
    expect(micro.recall, `${what} recall`).toBe(k.phrases === 0 ? 0 : k.correct / k.phrases);
    if (k.accuracy !== null) percent(seqeval.accuracy(yTrue, yPred), k.accuracy, `${what} accuracy`);
    const per = seqeval.precisionRecallFSupport(yTrue, yPred, { average: null, zeroDivision: 0 });
    expect(per.types, `${what} types`).toEqual(Object.keys(k.perType).sort());
    per.types.forEach((type, i) => {
      percent((per.precision as number[])[i], k.perType[type].precision, `${what} ${type} precision`);
      percent((per.recall as number[])[i], k.perType[type].recall, `${what} ${type} recall`);
      percent((per.f1 as number[])[i], k.perType[type].fb1, `${what} ${type} FB1`);
    });
  }

  it('the CoNLL-2000 sample (961 tokens, 459 phrases, 539 found, 371 correct, accuracy 84.08%)', () => {
    expect(fx.conll2000.conlleval).toMatchObject({ tokens: 961, phrases: 459, found: 539, correct: 371, accuracy: '84.08' });
    check(fx.conll2000, 'CoNLL-2000 sample');
  });

  it(`${fx.random.length} random cases with ill-formed transitions`, () => {
    fx.random.forEach((c, i) => check(c, `case ${i}`));
  });
});

// ---- random comparison with the Python reference ----

function mulberry32(seed: number) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

type Config = { mode: 'default' | 'strict'; scheme: 'IOB1' | 'IOB2' | 'IOE1' | 'IOE2' | 'IOBES' | 'BILOU' | null; suffix: boolean };
type Case = { yTrue: string[][]; yPred: string[][] };

// Each group: the prefixes its random tags use, and the configurations it is scored under.
const GROUPS: Array<{ prefixes: string; configs: Config[]; stray?: string }> = [
  {
    prefixes: 'BI',
    stray: 'ES', // a few out-of-scheme tags: strict modes must reject them at the same place
    configs: [
      { mode: 'default', scheme: null, suffix: false },
      { mode: 'strict', scheme: 'IOB1', suffix: false },
      { mode: 'strict', scheme: 'IOB2', suffix: false },
    ],
  },
  {
    prefixes: 'IE',
    stray: 'B',
    configs: [
      { mode: 'default', scheme: null, suffix: false },
      { mode: 'strict', scheme: 'IOE1', suffix: false },
      { mode: 'strict', scheme: 'IOE2', suffix: false },
    ],
  },
  {
    prefixes: 'BIES',
    stray: 'LU',
    configs: [
      { mode: 'default', scheme: null, suffix: false },
      { mode: 'strict', scheme: 'IOBES', suffix: false },
    ],
  },
  {
    prefixes: 'BILU',
    configs: [
      { mode: 'default', scheme: null, suffix: false }, // seqeval's default mode knows no L-/U-
      { mode: 'default', scheme: 'BILOU', suffix: false },
      { mode: 'strict', scheme: 'BILOU', suffix: false },
    ],
  },
];
const TYPES = ['A', 'B', 'PER', 'LOC-X'];

function randomCases(rand: () => number, count: number, prefixes: string, stray = ''): Case[] {
  const pick = <T>(xs: ArrayLike<T>) => xs[Math.floor(rand() * xs.length)];
  const strayCase = () => rand() < 0.08;
  const tag = (useStray: boolean): string => {
    if (rand() < 0.35) return 'O';
    const prefix = useStray && rand() < 0.15 ? pick(stray) : pick(prefixes);
    return rand() < 0.04 ? prefix : `${prefix}-${pick(TYPES)}`; // now and then a tag without a type
  };
  const cases: Case[] = [];
  for (let c = 0; c < count; c++) {
    const s = stray !== '' && strayCase();
    const lengths = Array.from({ length: 1 + Math.floor(rand() * 4) }, () => Math.floor(rand() * 11));
    const yTrue = lengths.map((n) => Array.from({ length: n }, () => tag(s)));
    // half the predictions are the truth with some tags changed, half independent
    const yPred =
      rand() < 0.5 ? yTrue.map((sent) => sent.map((t) => (rand() < 0.25 ? tag(s) : t))) : lengths.map((n) => Array.from({ length: n }, () => tag(s)));
    cases.push({ yTrue, yPred });
  }
  return cases;
}

const toSuffix = (y: string[][]) => y.map((s) => s.map((t) => (t === 'O' || t.length === 1 ? t : `${t.slice(2)}-${t[0]}`)));

interface PyResult {
  error?: ['yTrue' | 'yPred', number, number];
  entitiesTrue: Array<Array<[string, number, number]>>;
  entitiesPred: Array<Array<[string, number, number]>>;
  types: string[];
  scores: Record<string, [number | number[], number | number[], number | number[], number | number[]]>;
  accuracy?: number;
  performance: { TP: number; FP: number; FN: number; TN: number };
  [report: `report${string}`]: string;
}

function runReference(cases: Case[], configs: Config[]): PyResult[] {
  const r = spawnSync('/usr/bin/python3', [join(__dirname, 'seqeval_reference.py')], {
    input: JSON.stringify({ cases, configs }),
    encoding: 'utf8',
    maxBuffer: 1 << 28,
    timeout: 120000,
  });
  if (r.status !== 0) throw new Error(`seqeval_reference.py failed: ${r.stderr || r.error}`);
  return JSON.parse(r.stdout) as PyResult[];
}

describe('seqeval agrees exactly with an independent Python re-implementation', () => {
  it("the Python reference's strict rules pass seqeval 1.2.2's own scheme tests", () => {
    const r = spawnSync(
      '/usr/bin/python3',
      [join(__dirname, 'seqeval_reference.py'), '--selftest', join(__dirname, '..', 'data', 'seqeval-scheme-cases.json')],
      {
        encoding: 'utf8',
        timeout: 120000,
      },
    );
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({ checked: 350 });
  });

  const rand = mulberry32(16);
  const jobs = GROUPS.map((g) => ({ cases: randomCases(rand, 100, g.prefixes, g.stray), configs: g.configs }));
  // Suffix tags: the first 40 cases of the B/I and B/I/E/S groups, written type first.
  for (const g of [0, 2]) {
    jobs.push({
      cases: jobs[g].cases.slice(0, 40).map((c) => ({ yTrue: toSuffix(c.yTrue), yPred: toSuffix(c.yPred) })),
      configs: GROUPS[g].configs.map((c) => ({ ...c, suffix: true })),
    });
  }

  it(`on ${jobs.reduce((n, j) => n + j.cases.length, 0)} random cases: entities, P/R/F1/support for every average and zeroDivision, reports, accuracy`, () => {
    const tally = { comparisons: 0, errors: 0, entities: 0, perConfig: new Map<string, number>() };
    for (const job of jobs) {
      const results = runReference(job.cases, job.configs);
      expect(results.length).toBe(job.cases.length * job.configs.length);
      let k = 0;
      for (const [ci, c] of job.cases.entries()) {
        for (const cfg of job.configs) {
          const want = results[k++];
          const what = `case ${ci} ${JSON.stringify(cfg)} ${JSON.stringify(c)}`;
          const options = { mode: cfg.mode, scheme: cfg.scheme ?? undefined, suffix: cfg.suffix };
          const label = `${cfg.mode}/${cfg.scheme ?? '-'}${cfg.suffix ? '/suffix' : ''}`;
          tally.perConfig.set(label, (tally.perConfig.get(label) ?? 0) + 1);
          if (want.error) {
            const [which, s, p] = want.error;
            let message = '';
            try {
              seqeval.precisionRecallFSupport(c.yTrue, c.yPred, options);
            } catch (err) {
              expect(err, what).toBeInstanceOf(DataError);
              message = (err as Error).message;
            }
            expect(message, what).toContain(`${which}[${s}][${p}]: tag '${(which === 'yTrue' ? c.yTrue : c.yPred)[s][p]}' has prefix`);
            tally.errors++;
            continue;
          }
          const ents = (y: string[][]) => y.map((sent) => data.getEntities(sent, options).map((e) => [e.type, e.start, e.end]));
          expect(ents(c.yTrue), `${what} true entities`).toEqual(want.entitiesTrue);
          expect(ents(c.yPred), `${what} predicted entities`).toEqual(want.entitiesPred);
          tally.entities += want.entitiesTrue.flat().length + want.entitiesPred.flat().length;
          for (const zd of [0, 1] as const) {
            for (const average of ['micro', 'macro', 'weighted', null] as const) {
              const got = seqeval.precisionRecallFSupport(c.yTrue, c.yPred, { ...options, average, zeroDivision: zd });
              const [p, r, f, s] = want.scores[`${average === null ? 'None' : average}/${zd}`];
              expect(got.types, what).toEqual(want.types);
              // exact: the same float operations in the same order
              expect([got.precision, got.recall, got.f1, got.support], `${what} ${average} zd=${zd}`).toEqual([p, r, f, s]);
              tally.comparisons++;
            }
            expect(seqeval.classificationReport(c.yTrue, c.yPred, { ...options, zeroDivision: zd }).text, `${what} report zd=${zd}`).toBe(
              want[`report2/${zd}`],
            );
          }
          expect(seqeval.classificationReport(c.yTrue, c.yPred, { ...options, zeroDivision: 0, digits: 4 }).text, `${what} report digits 4`).toBe(
            want['report4/0'],
          );
          expect(seqeval.f1(c.yTrue, c.yPred, { ...options, zeroDivision: 0 })).toBe(want.scores['micro/0'][2]);
          if (want.accuracy === undefined) expect(() => seqeval.accuracy(c.yTrue, c.yPred)).toThrow(/no tags/);
          else expect(seqeval.accuracy(c.yTrue, c.yPred), what).toBe(want.accuracy);
          expect(seqeval.performanceMeasure(c.yTrue, c.yPred), what).toEqual(want.performance);
        }
      }
    }
    console.log(
      `seqeval vs Python: ${tally.comparisons} P/R/F1/support comparisons, ${tally.entities} entities, ${tally.errors} strict-scheme prefix errors at the same place; per config: ${[...tally.perConfig].map(([k, v]) => `${k} ${v}`).join(', ')}`,
    );
    // every configuration saw scores, and the stray prefixes did produce errors
    expect(tally.errors).toBeGreaterThan(10);
    expect(tally.comparisons).toBeGreaterThan(5000);
  });
});
