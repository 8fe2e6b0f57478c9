// nn.CRF against a brute-force oracle: test/nn/crf_oracle.py enumerates every
// tag path with PyTorch (float64, Debian's /usr/bin/python3) and gives the
// log-likelihood for each reduction, its gradients with respect to the
// emissions and the three parameters, and the Viterbi paths (the argmax
// path). Both layouts (batchFirst), float64 and float32, varied lengths,
// padding tags that are not tag ids, large constraint transitions; the
// module's names and composition; the errors.
import { describe, it, expect, beforeAll } from 'vitest';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { torch, nn, Module, type Tensor, type DType } from 'finetorch';

type Nested = number[] | Nested[];
interface Case {
  name: string;
  emissions: number[][][]; // [T][B][K], time-first
  start: number[];
  end: number[];
  transitions: number[][];
  tags: number[][]; // [T][B], -100 at padding
  mask: number[][]; // [T][B]
  noneWeights: number[];
  passMask: boolean;
}
interface Grads {
  value: number | number[];
  emissions: number[][][];
  start_transitions: number[];
  end_transitions: number[];
  transitions: number[][];
}
interface OracleResult {
  paths: number[][];
  reductions: Record<'none' | 'sum' | 'mean' | 'token_mean', Grads>;
}
const REDUCTIONS = ['none', 'sum', 'mean', 'token_mean'] as const;

// Mulberry32: the cases are fixed, whatever the machine.
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function makeCase(
  name: string,
  K: number,
  lengths: number[],
  seed: number,
  o: { scale?: number; constraints?: Array<[number, number]>; passMask?: boolean } = {},
): Case {
  const r = rng(seed);
  const u = (s: number) => (r() * 2 - 1) * s;
  const T = Math.max(...lengths);
  const B = lengths.length;
  const scale = o.scale ?? 2;
  const transitions = Array.from({ length: K }, () => Array.from({ length: K }, () => u(1)));
  for (const [i, j] of o.constraints ?? []) transitions[i][j] = -10000;
  return {
    name,
    emissions: Array.from({ length: T }, () => Array.from({ length: B }, () => Array.from({ length: K }, () => u(scale)))),
    start: Array.from({ length: K }, () => u(1)),
    end: Array.from({ length: K }, () => u(1)),
    transitions,
    tags: Array.from({ length: T }, (_, t) => lengths.map((L) => (t < L ? Math.floor(r() * K) : -100))),
    mask: Array.from({ length: T }, (_, t) => lengths.map((L) => (t < L ? 1 : 0))),
    noneWeights: lengths.map(() => u(2)),
    passMask: o.passMask ?? true,
  };
}

const cases: Case[] = [
  makeCase('K=3, T=1', 3, [1, 1], 1),
  makeCase('K=3, lengths 3,1,2', 3, [3, 1, 2], 2),
  makeCase('K=4, lengths 5,3,1,4', 4, [5, 3, 1, 4], 3),
  makeCase('K=3, lengths 5,5 (no mask)', 3, [5, 5], 4, { passMask: false }),
  makeCase('K=2, lengths 4,2', 2, [4, 2], 5),
  // -1e4 transitions (constraints) and emissions hundreds apart: the
  // rescaled products underflow, so the exact fallbacks run
  makeCase('K=4, constraints and large emissions', 4, [5, 2, 4], 6, {
    scale: 400,
    constraints: [
      [0, 2],
      [1, 3],
      [3, 3],
    ],
  }),
  // tag 0 then tag 1 favoured by 800 each, but 0 -> 1 costs 1e4: the most
  // likely tags of neighbouring steps are a forbidden pair, which the
  // rescaled expected-transition product cannot hold (its exact loop runs)
  (() => {
    const c = makeCase('K=3, favoured pair forbidden', 3, [3, 2], 7, { constraints: [[0, 1]] });
    c.emissions[0] = [
      [800, 0, 0],
      [800, 0, 0],
    ];
    c.emissions[1] = [
      [0, 800, 0],
      [0, 800, 0],
    ];
    return c;
  })(),
];

const oracle: OracleResult[] = [];
beforeAll(() => {
  const out = execFileSync('/usr/bin/python3', [join(__dirname, 'crf_oracle.py')], {
    input: JSON.stringify(cases),
    maxBuffer: 64 << 20,
    timeout: 300000,
  });
  oracle.push(...(JSON.parse(out.toString()) as OracleResult[]));
}, 300000);

function flatten(x: unknown): number[] {
  return Array.isArray(x) ? x.flatMap(flatten) : [Number(x)];
}
function maxDiff(t: Tensor, want: unknown): number {
  const got = Array.from(t.dataSync() as ArrayLike<number>, Number);
  const w = flatten(want);
  expect(got.length).toBe(w.length);
  let m = 0;
  for (let i = 0; i < w.length; i++) m = Math.max(m, Math.abs(got[i] - w[i]) / Math.max(1, Math.abs(w[i])));
  return m;
}
// [T][B][...] -> [B][T][...]
function swap01<T>(x: T[][]): T[][] {
  return x[0].map((_, b) => x.map((row) => row[b]));
}

function crfFor(c: Case, batchFirst: boolean, dtype: DType): InstanceType<typeof nn.CRF> {
  const crf = new nn.CRF(c.start.length, { batchFirst }).to(dtype);
  crf.loadStateDict({
    start_transitions: torch.tensor(c.start, { dtype }),
    end_transitions: torch.tensor(c.end, { dtype }),
    transitions: torch.tensor(c.transitions as Nested as number[][], { dtype }),
  });
  return crf;
}

// largest relative difference (to max(1, |value|)) per quantity, over every case and layout
const worst: Record<string, Record<string, number>> = {};
function note(dtype: string, what: string, d: number) {
  worst[dtype] ??= {};
  worst[dtype][what] = Math.max(worst[dtype][what] ?? 0, d);
}

describe('nn.CRF against every path enumerated (PyTorch float64)', () => {
  for (const dtype of ['float64', 'float32'] as const) {
    const tol = dtype === 'float64' ? 1e-9 : 2e-5;
    for (const batchFirst of [false, true]) {
      it(`log-likelihood, 4 reductions, gradients and Viterbi: ${dtype}, batchFirst ${batchFirst}`, () => {
        cases.forEach((c, ci) => {
          const want = oracle[ci];
          const crf = crfFor(c, batchFirst, dtype);
          const lay = <T>(x: T[][]): T[][] => (batchFirst ? swap01(x) : x);
          const emissions = torch.tensor(lay(c.emissions) as Nested as number[][][], { dtype, requiresGrad: true });
          const tags = torch.tensor(lay(c.tags), { dtype: 'int64' });
          // bool and uint8 masks both
          const mask = c.passMask ? torch.tensor(lay(c.mask), { dtype: ci % 2 ? 'uint8' : 'bool' }) : undefined;
          for (const reduction of REDUCTIONS) {
            const r = want.reductions[reduction];
            emissions.grad = null;
            crf.zeroGrad();
            const llh = crf.forward(emissions, tags, mask, { reduction });
            expect(llh.shape).toEqual(reduction === 'none' ? [c.noneWeights.length] : []);
            expect(llh.dtype).toBe(dtype);
            const loss = reduction === 'none' ? llh.mul(torch.tensor(c.noneWeights, { dtype })).sum() : llh;
            loss.backward();
            const where = `${c.name} ${reduction}`;
            const checks: Array<[string, Tensor, unknown]> = [
              ['value', llh, r.value],
              ['d emissions', batchFirst ? emissions.grad!.transpose(0, 1).contiguous() : emissions.grad!, r.emissions],
              ['d start_transitions', crf.stateDict().start_transitions.grad!, r.start_transitions],
              ['d end_transitions', crf.stateDict().end_transitions.grad!, r.end_transitions],
              ['d transitions', crf.stateDict().transitions.grad!, r.transitions],
            ];
            for (const [what, t, w] of checks) {
              expect(t, `${where}: ${what} missing`).toBeTruthy();
              expect(t.dtype).toBe(dtype);
              const d = maxDiff(t, w);
              note(dtype, what, d);
              expect(d, `${where}: ${what} differs by ${d}`).toBeLessThanOrEqual(tol);
            }
          }
          expect(crf.decode(emissions, mask), `${c.name}: Viterbi paths`).toEqual(want.paths);
        });
      });
    }
  }

  it('reports the largest differences', () => {
    console.log(`nn.CRF vs brute force, largest relative difference: ${JSON.stringify(worst)}`);
    expect(Object.keys(worst).length).toBe(2);
  });
});

describe('nn.CRF as a module', () => {
  it("has pytorch-crf's parameters, names, shapes and initialisation", () => {
    torch.manualSeed(0);
    const crf = new nn.CRF(5);
    expect(crf.numTags).toBe(5);
    expect(crf.batchFirst).toBe(false);
    expect(new nn.CRF(2, { batchFirst: true }).batchFirst).toBe(true);
    expect(crf.namedParameters().map(([n, p]) => [n, p.shape])).toEqual([
      ['start_transitions', [5]],
      ['end_transitions', [5]],
      ['transitions', [5, 5]],
    ]);
    expect(Object.keys(crf.stateDict())).toEqual(['start_transitions', 'end_transitions', 'transitions']);
    for (const p of crf.parameters()) {
      expect(p.requiresGrad).toBe(true);
      const v = Array.from(p.dataSync() as Float32Array);
      expect(Math.max(...v.map(Math.abs))).toBeLessThanOrEqual(0.1);
      expect(new Set(v).size).toBe(v.length); // random, not constant
    }
    expect(crf.kind).toBe('CRF');
  });

  it('composes inside another module and comes back as an nn.CRF', () => {
    class Tagger extends Module {
      readonly proj = this.registerModule('proj', new nn.Linear(3, 4));
      readonly crf = this.registerModule('crf', new nn.CRF(4, { batchFirst: true }));
    }
    const m = new Tagger();
    expect(Object.keys(m.stateDict())).toEqual(['proj.weight', 'proj.bias', 'crf.start_transitions', 'crf.end_transitions', 'crf.transitions']);
    // a fresh wrapper of the same native tree finds the child by its kind
    const again = Module.fromHandle(m.handle).getSubmodule('crf');
    expect(again).toBeInstanceOf(nn.CRF);
    expect((again as InstanceType<typeof nn.CRF>).batchFirst).toBe(true);
    expect((again as InstanceType<typeof nn.CRF>).numTags).toBe(4);
    // gradients reach the parameters below it through the emissions
    const x = torch.randn([2, 3, 3]);
    const emissions = m.proj.forward(x);
    const tags = torch.tensor(
      [
        [0, 1, 2],
        [3, 3, 0],
      ],
      { dtype: 'int64' },
    );
    m.crf.forward(emissions, tags).neg().backward();
    for (const [n, p] of m.namedParameters()) expect(p.grad, n).not.toBeNull();
    // moves with the parent
    m.to('float64');
    expect(m.crf.stateDict().transitions.dtype).toBe('float64');
    expect(m.crf.forward(torch.randn([2, 3, 4], { dtype: 'float64' }), tags).dtype).toBe('float64');
    expect(m.crf.decode(torch.randn([2, 3, 4], { dtype: 'float64' })).map((p) => p.length)).toEqual([3, 3]);
  });

  it('ignores tags where the mask is off, and handles an empty batch', () => {
    const crf = new nn.CRF(3);
    const e = torch.randn([4, 2, 3]);
    const mask = torch.tensor(
      [
        [1, 1],
        [1, 1],
        [1, 0],
        [0, 0],
      ],
      { dtype: 'bool' },
    );
    const a = crf.forward(
      e,
      torch.tensor(
        [
          [0, 1],
          [2, 0],
          [1, -100],
          [-100, -100],
        ],
        { dtype: 'int64' },
      ),
      mask,
      { reduction: 'none' },
    );
    const b = crf.forward(
      e,
      torch.tensor(
        [
          [0, 1],
          [2, 0],
          [1, 7],
          [5, 0],
        ],
        { dtype: 'int64' },
      ),
      mask,
      { reduction: 'none' },
    );
    expect(Array.from(a.dataSync() as Float32Array)).toEqual(Array.from(b.dataSync() as Float32Array));
    expect(crf.decode(e, mask).map((p) => p.length)).toEqual([3, 2]);
    const empty = crf.forward(torch.zeros([3, 0, 3]), torch.zeros([3, 0], { dtype: 'int64' }), undefined, { reduction: 'none' });
    expect(empty.shape).toEqual([0]);
    expect(crf.decode(torch.zeros([3, 0, 3]))).toEqual([]);
  });
});

describe('nn.CRF input errors', () => {
  const crf = new nn.CRF(3);
  const bf = new nn.CRF(3, { batchFirst: true });
  const e = torch.randn([4, 2, 3]);
  const tags = torch.zeros([4, 2], { dtype: 'int64' });
  const mask = (rows: number[][]) => torch.tensor(rows, { dtype: 'bool' });

  it('names the argument and the shape', () => {
    expect(() => new nn.CRF(0)).toThrow(/numTags must be a positive integer/);
    expect(() => crf.forward(torch.randn([4, 3]), tags)).toThrow(/emissions must be a 3-D float tensor \[T, B, K\], got float32 \[4, 3\]/);
    expect(() => crf.forward(torch.zeros([4, 2, 3], { dtype: 'int64' }), tags)).toThrow(/emissions must be a 3-D float tensor/);
    expect(() => crf.forward(torch.randn([4, 2, 5]), tags)).toThrow(/emissions have 5 tags in their last dimension \[4, 2, 5\], the CRF has 3/);
    expect(() => crf.forward(torch.randn([0, 2, 3]), torch.zeros([0, 2], { dtype: 'int64' }))).toThrow(/no timesteps/);
    expect(() => crf.forward(e, tags.int())).toThrow(/tags must be int64 \[T, B\] = \[4, 2\] like the emissions' first two dimensions, got int32 \[4, 2\]/);
    expect(() => crf.forward(e, torch.zeros([2, 4], { dtype: 'int64' }))).toThrow(/tags must be int64 \[T, B\] = \[4, 2\].*got int64 \[2, 4\]/);
    expect(() => bf.forward(e, torch.zeros([2, 4], { dtype: 'int64' }))).toThrow(/tags must be int64 \[B, T\] = \[4, 2\]/);
    expect(() => crf.forward(e, tags, torch.ones([4, 2]))).toThrow(/mask must be bool or uint8 \[T, B\] = \[4, 2\], got float32 \[4, 2\]/);
    expect(() => crf.forward(e, tags, torch.ones([2, 4], { dtype: 'bool' }))).toThrow(/mask must be bool or uint8.*got bool \[2, 4\]/);
    expect(() => crf.forward(e, undefined as unknown as Tensor)).toThrow(/tags is required/);
    expect(() => crf.forward(e, tags, undefined, { reduction: 'avg' as 'sum' })).toThrow(
      /reduction must be one of 'none', 'sum', 'mean', 'token_mean', got "avg"/,
    );
    expect(() => crf.decode(torch.randn([4, 2]))).toThrow(/CRF.decode: emissions must be a 3-D float tensor/);
  });

  it('tags outside 0..K-1 under the mask', () => {
    const bad = torch.tensor(
      [
        [0, 1],
        [2, 3],
        [0, 0],
        [0, 0],
      ],
      { dtype: 'int64' },
    );
    expect(() => crf.forward(e, bad)).toThrow(/tags\[1, 1\] = 3 is outside 0..2 where the mask is on/);
    expect(() => crf.forward(e, bad.neg())).toThrow(/tags\[1, 0\] = -2 is outside 0..2/);
    // batch-first positions are [b, t]
    expect(() => bf.forward(torch.randn([2, 4, 3]), bad.t().contiguous())).toThrow(/tags\[1, 1\] = 3/);
  });

  it('the first timestep must be on, and the mask must be a left-aligned prefix', () => {
    const firstOff = mask([
      [1, 0],
      [1, 1],
      [1, 1],
      [0, 0],
    ]);
    expect(() => crf.forward(e, tags, firstOff)).toThrow(/mask\[0, 1\] is off; the first timestep of every sequence must be on \(sequence 1\)/);
    expect(() => crf.decode(e, firstOff)).toThrow(/CRF.decode: mask\[0, 1\] is off/);
    const hole = mask([
      [1, 1],
      [1, 0],
      [1, 1],
      [0, 0],
    ]);
    expect(() => crf.forward(e, tags, hole)).toThrow(/mask of sequence 1 is not a left-aligned prefix: mask\[1, 1\] is off but mask\[2, 1\] is on/);
    expect(() => crf.decode(e, hole)).toThrow(/not a left-aligned prefix/);
    // batch first: positions [b, t]
    expect(() =>
      bf.decode(
        torch.randn([2, 4, 3]),
        mask([
          [1, 1, 1, 0],
          [1, 0, 1, 0],
        ]),
      ),
    ).toThrow(/mask\[1, 1\] is off but mask\[1, 2\] is on/);
  });
});
