// Text datasets from real files: CSV (quotes, embedded newlines), JSONL, CoNLL.
import { describe, it, expect } from 'vitest';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { data } from 'finetorch';

const dir = mkdtempSync(join(tmpdir(), 'finetorch-text-'));
const file = (name: string, body: string) => {
  const p = join(dir, name);
  writeFileSync(p, body);
  return p;
};

describe('CSV and JSONL', () => {
  it('reads a CSV with quoting, doubled quotes and newlines inside fields', () => {
    const p = file('a.csv', 'id,text,label\r\n1,"Hello, world",pos\n2,"She said ""no""\nthen left",neg\n3,plain,pos\n');
    const d = data.readCsvDataset(p);
    expect(d.texts).toEqual(['Hello, world', 'She said "no"\nthen left', 'plain']);
    expect(d.classes).toEqual(['neg', 'pos']);
    expect(d.labels).toEqual([1, 0, 1]);
    expect(d.counts).toEqual({ pos: 2, neg: 1 });
  });

  it('reads JSONL with named or numeric labels and fixed classes', () => {
    const p = file('a.jsonl', '{"sentence":"good","y":1}\n\n{"sentence":"bad","y":0}\n');
    const d = data.readJsonlDataset(p, { textColumn: 'sentence', labelColumn: 'y', classes: ['negative', 'positive'] });
    expect(d.labels).toEqual([1, 0]);
    expect(d.classes).toEqual(['negative', 'positive']);
  });

  it('a file without data rows names the file (a header-only CSV was "the data has 0 class" later)', () => {
    expect(() => data.readCsvDataset(file('header.csv', 'text,label\n'))).toThrow(/header\.csv: no data rows \(only a header\)/);
    expect(() => data.readCsvDataset(file('header2.csv', 'text,label'))).toThrow(/header2\.csv: no data rows \(only a header\)/);
    expect(() => data.readJsonlDataset(file('blank.jsonl', '\n  \n'))).toThrow(/blank\.jsonl: no data rows/);
    expect(() => data.readCsvDataset(file('empty.csv', ''))).toThrow(/empty\.csv: empty file/);
    expect(() => data.readCsvDataset(file('skipped.csv', 'text,label\n,a\nx,\n'), { skipInvalid: true })).toThrow(
      /skipped\.csv: no usable rows \(all 2 have an empty or missing text or label\)/,
    );
  });

  it('bad input names the file and the row', () => {
    expect(() => data.readCsvDataset(file('b.csv', 'txt,label\nx,1\n'))).toThrow(/b\.csv: no column "text" in the header \(columns: txt, label\)/);
    expect(() => data.readCsvDataset(file('c.csv', 'text,label\nx,1\ny\n'))).toThrow(/c\.csv:3: 1 fields, the header has 2/);
    expect(() => data.readCsvDataset(file('d.csv', 'text,label\n"open,1\n'))).toThrow(/d\.csv:2: unterminated quoted field/);
    expect(() => data.readJsonlDataset(file('e.jsonl', '{"text":"a","label":"x"}\n{oops}\n'))).toThrow(/e\.jsonl:2: not valid JSON/);
    expect(() => data.readJsonlDataset(file('f.jsonl', '{"text":"a","label":"z"}\n'), { classes: ['x', 'y'] })).toThrow(/unknown label "z"/);
    expect(() => data.readCsvDataset(file('g.csv', 'text,label\n,1\nok,2\n'))).toThrow(/g\.csv:2: empty or missing text/);
    const skipped = data.readCsvDataset(file('h.csv', 'text,label\n,1\nok,2\n'), { skipInvalid: true });
    expect(skipped.skipped).toBe(1);
    expect(skipped.texts).toEqual(['ok']);
  });
});

describe('CoNLL', () => {
  it('reads sentences of tokens and BIO tags', () => {
    const p = file('a.conll', '-DOCSTART- O\n\nThe O\nparty B-ORG\nshall O\n\nPay O\nnow O\n');
    const d = data.readConll(p);
    expect(d.sentences).toEqual([
      { tokens: ['The', 'party', 'shall'], tags: ['O', 'B-ORG', 'O'] },
      { tokens: ['Pay', 'now'], tags: ['O', 'O'] },
    ]);
    expect(d.tags).toEqual(['B-ORG', 'O']);
    expect(() => data.readConll(file('b.conll', 'word X-TAG\n'))).toThrow(/b\.conll:1: tag "X-TAG" is not a BIO tag/);
    rmSync(dir, { recursive: true, force: true });
  });
});
