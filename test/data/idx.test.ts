// IDX files from Debian's dataset-fashion-mnist, gzip-compressed and raw.
import { describe, it, expect } from 'vitest';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { data } from 'finetorch';
import { flat } from '../helpers';

describe('IDX', () => {
  it('reads the gzip files and a raw copy identically, with the known class balance', () => {
    const gz = '/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz';
    const raw = join(mkdtempSync(join(tmpdir(), 'finetorch-idx-')), 'labels.idx');
    writeFileSync(raw, gunzipSync(readFileSync(gz)));
    const a = data.readIdx(gz);
    const b = data.readIdx(raw);
    expect(a.shape).toEqual([10000]);
    expect(flat(b)).toEqual(flat(a));
    expect(data.classCounts(flat(a))).toEqual(Object.fromEntries(Array.from({ length: 10 }, (_, i) => [i, 1000])));
    const { images, labels } = data.fashionMnist('test');
    expect(images.shape).toEqual([10000, 28, 28]);
    expect(labels.dtype).toBe('int64');
    writeFileSync(raw, Buffer.from([1, 2, 3, 4]));
    expect(() => data.readIdx(raw)).toThrow(/not an IDX file/);
    writeFileSync(raw, Buffer.from([0, 0, 8, 1, 0, 0, 0, 5, 1, 2]));
    expect(() => data.readIdx(raw)).toThrow(/says 5 values but the file has 2/);
  });
});
