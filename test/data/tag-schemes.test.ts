// Tag schemes: entity extraction (default and strict, worked by hand; the
// random comparison with the Python reference is in
// test/metrics/seqeval.test.ts), conversion between schemes with round trips,
// validation with errors that say where.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it, expect } from 'vitest';
import { data, DataError, ArgumentError, type TagScheme, type Entity } from 'finetorch';
import { strictTransition } from '../../dist/data/tag-schemes.js';

const { getEntities, convertTags, validateTags, entitiesToTags } = data;
const SCHEMES: TagScheme[] = ['IOB1', 'IOB2', 'IOE1', 'IOE2', 'IOBES', 'BILOU'];
const E = (type: string, start: number, end: number): Entity => ({ type, start, end });

describe("strict mode against seqeval 1.2.2's own scheme tests", () => {
  // Expected values copied out of seqeval's tests/test_scheme.py by
  // test/data/make_seqeval_scheme_cases.py.
  const cases = JSON.parse(readFileSync(join(__dirname, 'seqeval-scheme-cases.json'), 'utf8')) as {
    startInsideEnd: Record<string, Array<[string, string, [boolean, boolean, boolean]]>>;
    entities: Record<string, Array<[string[], Array<[string, number, number]>]>>;
  };

  it('start / inside / end of a tag after another, every scheme', () => {
    let n = 0;
    for (const [scheme, rows] of Object.entries(cases.startInsideEnd))
      for (const [prev, cur, want] of rows) {
        expect(strictTransition(prev, cur, scheme as TagScheme), `${scheme} ${prev} -> ${cur}`).toEqual(want);
        n++;
      }
    expect(n).toBe(108);
  });

  it('entities of short sequences, with and without types, every scheme', () => {
    let n = 0;
    for (const [scheme, rows] of Object.entries(cases.entities))
      for (const [tags, want] of rows) {
        const got = getEntities(tags, { mode: 'strict', scheme: scheme as TagScheme }).map((e) => [e.type, e.start, e.end]);
        expect(got, `${scheme} ${JSON.stringify(tags)}`).toEqual(want);
        n++;
      }
    expect(n).toBe(242);
  });
});

describe('getEntities, worked by hand', () => {
  it("default mode is conlleval's chunking", () => {
    // seqeval's docstring example (it writes inclusive ends: PER 0..1, LOC 3..3)
    expect(getEntities(['B-PER', 'I-PER', 'O', 'B-LOC'])).toEqual([E('PER', 0, 2), E('LOC', 3, 4)]);
    // an I- after O starts an entity; a change of type ends one and starts the next
    expect(getEntities(['O', 'I-A', 'I-A', 'I-B'])).toEqual([E('A', 1, 3), E('B', 3, 4)]);
    // B- always starts a new one, E-/S- always end one
    expect(getEntities(['B-A', 'B-A', 'I-A', 'E-A', 'I-A', 'S-A'])).toEqual([E('A', 0, 1), E('A', 1, 4), E('A', 4, 5), E('A', 5, 6)]);
    // a tag without a type has type '_'
    expect(getEntities(['B', 'I', 'O'])).toEqual([E('_', 0, 2)]);
    // conlleval knows no L-/U-: U-A U-A is one entity (no type change, no boundary rule) ...
    expect(getEntities(['U-A', 'U-A'])).toEqual([E('A', 0, 2)]);
    // ... unless the scheme says BILOU, which reads them as S-/E-
    expect(getEntities(['U-A', 'U-A', 'B-B', 'L-B'], { scheme: 'BILOU' })).toEqual([E('A', 0, 1), E('A', 1, 2), E('B', 2, 4)]);
    // suffix tags
    expect(getEntities(['PER-B', 'PER-I', 'O'], { suffix: true })).toEqual([E('PER', 0, 2)]);
  });

  it('strict IOB2: an entity starts with B- and continues with I- of its type', () => {
    const o = { mode: 'strict', scheme: 'IOB2' } as const;
    expect(getEntities(['I-A', 'I-A', 'O', 'B-B', 'I-B', 'I-C'], o)).toEqual([E('B', 3, 5)]); // the I-A's and the I-C are no entity
    expect(getEntities(['B-A', 'B-A', 'I-A'], o)).toEqual([E('A', 0, 1), E('A', 1, 3)]);
    expect(getEntities(['B-A', 'I-A', 'O', 'B-B'], { mode: 'strict', scheme: 'BIO' })).toEqual([E('A', 0, 2), E('B', 3, 4)]);
  });

  it('strict IOBES and BILOU: one word is S-/U-, more is B- ... E-/L-', () => {
    const o = { mode: 'strict', scheme: 'IOBES' } as const;
    expect(getEntities(['S-A', 'B-B', 'I-B', 'E-B', 'O'], o)).toEqual([E('A', 0, 1), E('B', 1, 4)]);
    // B- I- with no E- is dropped; so is an E- with no B-
    expect(getEntities(['B-A', 'I-A', 'O', 'E-A', 'B-B', 'E-C'], o)).toEqual([]);
    expect(getEntities(['U-A', 'B-B', 'I-B', 'L-B'], { mode: 'strict', scheme: 'BILOU' })).toEqual([E('A', 0, 1), E('B', 1, 4)]);
  });

  it('strict IOE2 and IOB1/IOE1 (seqeval 1.2.2 behaviour, quirks included)', () => {
    // IOE2: every entity ends with E-
    expect(getEntities(['I-A', 'E-A', 'E-A', 'I-B', 'O'], { mode: 'strict', scheme: 'IOE2' })).toEqual([E('A', 0, 2), E('A', 2, 3)]);
    // IOB1: B- separates touching entities of one type
    expect(getEntities(['I-A', 'I-A', 'B-A', 'I-A', 'I-B'], { mode: 'strict', scheme: 'IOB1' })).toEqual([E('A', 0, 2), E('A', 2, 4), E('B', 4, 5)]);
    // seqeval's IOB1 does not start an entity at a B- after O: only the I- after it counts
    expect(getEntities(['O', 'B-A', 'I-A'], { mode: 'strict', scheme: 'IOB1' })).toEqual([E('A', 2, 3)]);
    // IOE1: E- ends an entity that another of its type follows
    expect(getEntities(['I-A', 'E-A', 'I-A'], { mode: 'strict', scheme: 'IOE1' })).toEqual([E('A', 0, 2), E('A', 2, 3)]);
    // seqeval's IOE1 (its own "Todo") does not end an entity at E- before O
    expect(getEntities(['I-A', 'E-A', 'O'], { mode: 'strict', scheme: 'IOE1' })).toEqual([]);
    // nor start one at E- after O, so a well-formed O E-A I-A loses its first entity
    expect(getEntities(['O', 'E-A', 'I-A'], { mode: 'strict', scheme: 'IOE1' })).toEqual([E('A', 2, 3)]);
  });

  it('errors name the tag and what is wrong', () => {
    expect(() => getEntities(['O', 'E-A'], { mode: 'strict', scheme: 'IOB2' })).toThrow(
      /tag 1: tag 'E-A' has prefix 'E', which IOB2 does not use \(its prefixes: I, O, B\)/,
    );
    expect(() => getEntities(['O', 'X-A'], { mode: 'strict', scheme: 'IOBES' })).toThrow(DataError);
    expect(() => getEntities(['O', ''])).toThrow(/tag 1: expected a non-empty tag string/);
    expect(() => getEntities(['O'], { mode: 'strict' })).toThrow(ArgumentError);
    expect(() => getEntities(['O'], { scheme: 'IOB9' as TagScheme })).toThrow(/unknown tag scheme "IOB9"/);
  });
});

describe('convertTags and entitiesToTags', () => {
  it('writes one set of entities in every scheme', () => {
    // A[0,2) and A[2,3) touch and share a type; B[4,5) stands alone.
    const iob2 = ['B-A', 'I-A', 'B-A', 'O', 'B-B'];
    const want: Record<string, string[]> = {
      IOB1: ['I-A', 'I-A', 'B-A', 'O', 'I-B'],
      IOB2: iob2,
      IOE1: ['I-A', 'E-A', 'I-A', 'O', 'I-B'],
      IOE2: ['I-A', 'E-A', 'E-A', 'O', 'E-B'],
      IOBES: ['B-A', 'E-A', 'S-A', 'O', 'S-B'],
      BILOU: ['B-A', 'L-A', 'U-A', 'O', 'U-B'],
    };
    for (const s of SCHEMES) {
      expect(convertTags(iob2, 'IOB2', s), s).toEqual(want[s]);
      expect(entitiesToTags([E('A', 0, 2), E('A', 2, 3), E('B', 4, 5)], 5, s), s).toEqual(want[s]);
      for (const t of SCHEMES) expect(convertTags(want[s], s, t), `${s} -> ${t}`).toEqual(want[t]);
    }
    expect(convertTags(['PER-B', 'PER-I', 'O'], 'BIO', 'IOBES', { suffix: true })).toEqual(['PER-B', 'PER-E', 'O']);
    expect(convertTags(['B', 'I', 'O', 'B'], 'IOB2', 'IOBES')).toEqual(['B', 'E', 'O', 'S']); // no type stays no type
  });

  it('reads ill-formed input leniently and always writes well-formed tags', () => {
    expect(convertTags(['O', 'I-A', 'I-A', 'I-B'], 'IOB2', 'IOB2')).toEqual(['O', 'B-A', 'I-A', 'B-B']);
    expect(convertTags(['B-A', 'I-A', 'O', 'I-B'], 'IOBES', 'IOBES')).toEqual(['B-A', 'E-A', 'O', 'S-B']);
    expect(() => convertTags(['B-A', 'S-A'], 'IOB2', 'IOBES')).toThrow(/tag 1: tag 'S-A' has prefix 'S', which IOB2 does not use/);
  });

  it('rejects entities that overlap or leave the sequence', () => {
    expect(() => entitiesToTags([E('A', 0, 2), E('B', 1, 3)], 4, 'IOB2')).toThrow(/overlaps/);
    expect(() => entitiesToTags([E('A', 3, 5)], 4, 'IOB2')).toThrow(/outside the 4 words/);
    expect(() => entitiesToTags([E('A', 2, 2)], 4, 'IOB2')).toThrow(/empty/);
  });

  // Random entity sets with many touching entities of one type, written in
  // each scheme: every conversion and every reading must give them back.
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
  function randomEntities(rand: () => number): { entities: Entity[]; length: number } {
    const entities: Entity[] = [];
    let pos = 0;
    const n = Math.floor(rand() * 14);
    for (let k = 0; k < n; k++) {
      if (rand() < 0.4) pos += 1 + Math.floor(rand() * 2); // a gap of O; otherwise the next entity touches this one
      const len = 1 + Math.floor(rand() * 3);
      entities.push(E(rand() < 0.5 ? 'A' : rand() < 0.5 ? 'B' : 'LOC-X', pos, pos + len));
      pos += len;
    }
    return { entities, length: pos + Math.floor(rand() * 2) };
  }

  it('round trips: 500 random entity sets through every pair of schemes, prefix and suffix tags', () => {
    const rand = mulberry32(4);
    let conversions = 0;
    for (let c = 0; c < 500; c++) {
      const { entities, length } = randomEntities(rand);
      const suffix = c % 5 === 4;
      for (const s of SCHEMES) {
        const tags = entitiesToTags(entities, length, s, { suffix });
        validateTags(tags, s, { suffix }); // the scheme's own writing is well formed
        expect(getEntities(tags, { scheme: s, suffix }), `${s} ${tags}`).toEqual(entities);
        // strict reading agrees on well-formed tags, except seqeval's IOE1,
        // which misses a one-word entity written E- after O or another type
        // (O E-A I-A: seqeval's IOE1 has no O -> E start pattern)
        if (s !== 'IOE1') expect(getEntities(tags, { mode: 'strict', scheme: s, suffix }), `strict ${s} ${tags}`).toEqual(entities);
        for (const t of SCHEMES) {
          const there = convertTags(tags, s, t, { suffix });
          expect(there, `${s} -> ${t}`).toEqual(entitiesToTags(entities, length, t, { suffix }));
          expect(convertTags(there, t, s, { suffix }), `${s} -> ${t} -> ${s}`).toEqual(tags);
          conversions += 2;
        }
      }
    }
    console.log(`tag schemes: ${conversions} conversions over 500 random entity sets round-tripped`);
  });

  it('validateTags agrees with the transition rules of IOB2 and IOBES, written out independently, on random tag sequences', () => {
    // IOB2: I-X only after B-X or I-X.
    const validIob2 = (tags: string[]) => tags.every((t, i) => t[0] !== 'I' || (i > 0 && tags[i - 1] !== 'O' && tags[i - 1].slice(2) === t.slice(2)));
    // IOBES: B-X/I-X must be followed by I-X or E-X; I-X/E-X must follow B-X or I-X.
    const validIobes = (tags: string[]) =>
      tags.every((t, i) => {
        const prev = tags[i - 1];
        const next = tags[i + 1];
        const continues = (a: string | undefined, prefixes: string) => a !== undefined && prefixes.includes(a[0]) && a.slice(2) === t.slice(2);
        if ((t[0] === 'B' || t[0] === 'I') && !continues(next, 'IE')) return false;
        if ((t[0] === 'I' || t[0] === 'E') && !continues(prev, 'BI')) return false;
        return true;
      });
    const rand = mulberry32(9);
    const counts = { IOB2: [0, 0], IOBES: [0, 0] };
    for (const [scheme, prefixes, rule] of [
      ['IOB2', 'BIO', validIob2],
      ['IOBES', 'BIOES', validIobes],
    ] as const) {
      for (let c = 0; c < 3000; c++) {
        const tags = Array.from({ length: Math.floor(rand() * 6) }, () => {
          const p = prefixes[Math.floor(rand() * prefixes.length)];
          return p === 'O' ? 'O' : `${p}-${rand() < 0.7 ? 'A' : 'B'}`;
        });
        let ok = true;
        try {
          validateTags(tags, scheme);
        } catch (err) {
          expect(err).toBeInstanceOf(DataError);
          ok = false;
        }
        expect(ok, `${scheme} ${JSON.stringify(tags)}`).toBe(rule(tags));
        counts[scheme][ok ? 0 : 1]++;
      }
    }
    console.log(`validateTags: IOB2 ${counts.IOB2[0]} valid / ${counts.IOB2[1]} invalid, IOBES ${counts.IOBES[0]} valid / ${counts.IOBES[1]} invalid`);
    expect(Math.min(...counts.IOB2, ...counts.IOBES)).toBeGreaterThan(300);
  });

  it('validateTags names the position, the tag, its neighbours and the expected tag', () => {
    expect(() => validateTags(['O', 'I-PER', 'I-PER'], 'IOB2')).toThrow(
      "validateTags: tag 1 'I-PER' (after 'O', before 'I-PER') is not valid IOB2: every entity starts with B- and continues with I- of the same type; the well-formed tag there is 'B-PER'",
    );
    expect(() => validateTags(['B-A', 'I-A'], 'IOBES')).toThrow(
      /tag 1 'I-A' \(after 'B-A', before the end\) is not valid IOBES: .* the well-formed tag there is 'E-A'/,
    );
    expect(() => validateTags(['B-A'], 'IOB1')).toThrow(/tag 0 'B-A' \(after the start, before the end\) is not valid IOB1: .* 'I-A'/);
    expect(() => validateTags(['O', 'S-A'], 'BIO')).toThrow(/tag 1: tag 'S-A' has prefix 'S', which IOB2 does not use/);
    expect(() => validateTags(['O', null as unknown as string], 'IOB2')).toThrow(/tag 1: expected a non-empty tag string, got null/);
    expect(() => validateTags(['O'], 'XYZ' as TagScheme)).toThrow(ArgumentError);
    expect(() => validateTags(['B-A', 'I-A', 'O', 'S-B'], 'IOBES')).toThrow(/tag 1 'I-A'/);
    validateTags(['B-A', 'E-A', 'O', 'S-B'], 'IOBES');
    validateTags([], 'IOB2');
  });
});
