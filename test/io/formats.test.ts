// Checkpoint formats: torch.save zip files (read), .safetensors (read and
// write), against files and values made by PyTorch; hostile and broken files
// give clear errors without running anything or crashing.
import { describe, it, expect, beforeAll } from 'vitest';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { torch, io, type Tensor, type DType } from 'finetorch';
import { flat } from '../helpers';
import { reference } from '../reference';

let dir = '';
let expected: { keys: string[]; values: Record<string, { dtype: string; shape: number[]; data: Array<number | boolean> }> };
beforeAll(() => {
  dir = reference('make-io-fixtures.py', 'io', [], ['dtypes.pth', 'expected.json', 'malicious.pth', 'scripted.pt']);
  expected = JSON.parse(readFileSync(join(dir, 'expected.json'), 'utf8'));
});

function expectMatches(sd: Record<string, Tensor>) {
  expect(Object.keys(sd)).toEqual(expected.keys);
  for (const [k, want] of Object.entries(expected.values)) {
    expect(sd[k].dtype, k).toBe(want.dtype);
    expect(sd[k].shape, k).toEqual(want.shape);
    const got = sd[k].dtype === 'bool' ? (sd[k].toArray() as unknown[]).flat(9) : flat(sd[k].to('float64'));
    expect(got, k).toEqual(want.data);
  }
}

describe('torch.save files', () => {
  it('reads every dtype, views that share a storage and non-contiguous tensors', () => {
    const sd = io.load(join(dir, 'dtypes.pth'));
    expectMatches(sd);
    // the view shares the storage, as in PyTorch
    sd.base.indexPut_([2], 100);
    expect(sd.view.index(0, 0).item()).toBe(100);
  });

  it('unwraps {"state_dict": ...}', () => {
    expectMatches(io.load(join(dir, 'wrapped.pth')));
  });

  it('refuses a pickle that calls a function, names it, and runs nothing', () => {
    expect(() => io.load(join(dir, 'malicious.pth'))).toThrow(/refused to load 'posix\.system'/);
    expect(existsSync(join(dir, 'PWNED'))).toBe(false);
  });

  it('says what to do with the legacy format and with TorchScript archives', () => {
    expect(() => io.load(join(dir, 'legacy.pth'))).toThrow(/legacy torch\.save format/);
    expect(() => io.load(join(dir, 'scripted.pt'))).toThrow(/TorchScript archive.*jit\.load/);
  });

  it('a truncated file is a clear error', () => {
    expect(() => io.load(join(dir, 'truncated.pth'))).toThrow(/truncated|not a valid zip/);
  });
});

describe('.safetensors', () => {
  const tmp = mkdtempSync(join(tmpdir(), 'finetorch-st-'));

  it('round-trips every dtype, keeping order, shapes and bits', () => {
    const sd = io.load(join(dir, 'dtypes.pth'));
    const file = join(tmp, 'all.safetensors');
    io.save(sd, file, { metadata: { format: 'pt' } });
    expectMatches(io.load(file));
    expect(io.detectFormat(file)).toBe('safetensors');
  });

  it('what finetorch writes, Python reads back with the same values', () => {
    const file = join(tmp, 'py.safetensors');
    io.save(
      {
        w: torch.tensor(
          [
            [1.5, -2],
            [3, 4],
          ],
          { dtype: 'float32' },
        ),
        h: torch.tensor([0.1, 0.2], { dtype: 'bfloat16' }),
      },
      file,
    );
    const script = `
import json, struct, torch
raw = open(${JSON.stringify(file)}, 'rb').read()
n = struct.unpack('<Q', raw[:8])[0]
h = json.loads(raw[8:8 + n])
out = {}
for k, e in h.items():
    a, b = e['data_offsets']
    buf = bytearray(raw[8 + n + a: 8 + n + b])
    dt = {'F32': torch.float32, 'BF16': torch.bfloat16}[e['dtype']]
    out[k] = torch.frombuffer(buf, dtype=dt).reshape(e['shape']).double().reshape(-1).tolist()
print(json.dumps(out))`;
    const out = JSON.parse(execFileSync('/usr/bin/python3', ['-c', script], { encoding: 'utf8' }));
    expect(out.w).toEqual([1.5, -2, 3, 4]);
    expect(out.h).toEqual(flat(torch.tensor([0.1, 0.2], { dtype: 'bfloat16' }).to('float64')));
  });

  it('broken files give clear errors', () => {
    const bad = join(tmp, 'bad.safetensors');
    const good = join(tmp, 'good.safetensors');
    io.save({ a: torch.ones([100]) }, good);
    const bytes = readFileSync(good);
    writeFileSync(bad, bytes.subarray(0, bytes.length - 10));
    expect(() => io.load(bad)).toThrow(/truncated/);
    const header = Buffer.from(JSON.stringify({ a: { dtype: 'F32', shape: [4], data_offsets: [0, 8] } }));
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(BigInt(header.length));
    writeFileSync(bad, Buffer.concat([len, header, Buffer.alloc(16)]));
    expect(() => io.load(bad)).toThrow(/data_offsets .* do not fit/);
    writeFileSync(bad, 'hello, not a checkpoint');
    expect(() => io.load(bad)).toThrow(/not a checkpoint finetorch can read/);
    // .pth is written now (test/io/pth-write.test.ts); an unknown extension names the accepted ones
    expect(() => io.save({ a: torch.ones([1]) }, join(tmp, 'x.ckpt'))).toThrow(/\.safetensors, \.pth, \.pt, \.bin/);
  });

  it('an interrupted save leaves the previous file intact', () => {
    const file = join(tmp, 'keep.safetensors');
    io.save({ a: torch.ones([3]) }, file);
    expect(() => io.save({ a: torch.ones([3]), b: 'nope' as unknown as Tensor }, file)).toThrow(/not a Tensor/);
    expect(flat(io.load(file).a)).toEqual([1, 1, 1]);
  });

  it('dtype table covers every finetorch dtype', () => {
    for (const dtype of ['float32', 'float64', 'float16', 'bfloat16', 'int64', 'int32', 'int16', 'int8', 'uint8', 'bool'] as DType[]) {
      const file = join(tmp, `${dtype}.safetensors`);
      io.save({ t: torch.ones([2], { dtype }) }, file);
      expect(io.load(file).t.dtype).toBe(dtype);
    }
    rmSync(tmp, { recursive: true, force: true });
  });
});

describe('corrupted files', () => {
  // Deterministic pseudo-random corruption: each damaged copy must either load
  // or throw an Error; nothing may crash the process or hang.
  function corruptions(file: string, count: number, span: number): Array<Buffer> {
    const original = readFileSync(file);
    let seed = 12345;
    const rand = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    return Array.from({ length: count }, () => {
      const copy = Buffer.from(original);
      const flips = 1 + Math.floor(rand() * 4);
      for (let i = 0; i < flips; i++) {
        // bias towards the structural parts: the first and last `span` bytes
        const pos = rand() < 0.5 ? Math.floor(rand() * Math.min(span, copy.length)) : copy.length - 1 - Math.floor(rand() * Math.min(span, copy.length));
        copy[pos] = Math.floor(rand() * 256);
      }
      return copy;
    });
  }

  for (const [name, span] of [
    ['dtypes.pth', 4096],
    ['all.safetensors', 1024],
  ] as const) {
    it(`300 damaged copies of ${name}: each loads or gives an Error`, () => {
      const tmp = mkdtempSync(join(tmpdir(), 'finetorch-corrupt-'));
      let source = join(dir, name);
      if (name === 'all.safetensors') {
        source = join(tmp, name);
        io.save(io.load(join(dir, 'dtypes.pth')), source);
      }
      let errors = 0;
      corruptions(source, 300, span).forEach((bytes, i) => {
        const file = join(tmp, `c${i}${name.slice(name.indexOf('.'))}`);
        writeFileSync(file, bytes);
        try {
          io.load(file);
        } catch (err) {
          expect(err).toBeInstanceOf(Error);
          expect(err).not.toBeInstanceOf(RangeError);
          expect((err as Error).message).toContain(file);
          errors++;
        }
        rmSync(file);
      });
      expect(errors).toBeGreaterThan(0);
      rmSync(tmp, { recursive: true, force: true });
    });
  }
});
