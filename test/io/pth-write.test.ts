// io.save(sd, 'x.pth') writes what torch.save writes: PyTorch's own
// torch.load(f, weights_only=True) reads every dtype back with the values we
// put in, on Debian's torch 1.13 and on torch 2.x (.venv-torch2); Python's
// zipfile finds the archive sound (CRCs, 64-byte aligned records); and our
// reader reads our files back.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { torch, io, type Tensor, type DType } from 'finetorch';
import { writeTorchZip } from '../../dist/io/pth-write.js';
import { root } from '../reference';

// Each value is exactly representable in its dtype, so equality is exact.
interface Case {
  dtype: DType;
  shape: number[];
  data: Array<number | boolean>;
}
const CASES: Record<string, Case> = {
  f32: { dtype: 'float32', shape: [2, 3], data: [0.5, -1.25, 3, 1e-3, -7e10, 2 ** -20].map(Math.fround) },
  f64: { dtype: 'float64', shape: [3], data: [1 / 3, -Math.PI, 1e-300] },
  f16: { dtype: 'float16', shape: [4], data: [0.5, -2, 1024, 2 ** -14] },
  bf16: { dtype: 'bfloat16', shape: [2, 2], data: [1.5, -3, 256, 2 ** -30] },
  i64: { dtype: 'int64', shape: [3], data: [-Number.MAX_SAFE_INTEGER, 0, 2 ** 40 + 7] },
  i32: { dtype: 'int32', shape: [2], data: [-(2 ** 31), 2 ** 31 - 1] },
  i16: { dtype: 'int16', shape: [2], data: [-32768, 32767] },
  i8: { dtype: 'int8', shape: [2], data: [-128, 127] },
  u8: { dtype: 'uint8', shape: [3], data: [0, 128, 255] },
  bool: { dtype: 'bool', shape: [3], data: [true, false, true] },
  scalar: { dtype: 'int64', shape: [], data: [42] },
  empty: { dtype: 'float32', shape: [0, 3], data: [] },
  // a name that is not plain ASCII
  'layer.ünïcode.weight': { dtype: 'float32', shape: [1], data: [2] },
};

function build(c: Case): Tensor {
  if (c.dtype === 'bool') return torch.tensor(Uint8Array.from(c.data as boolean[], Number), { dtype: 'bool', shape: c.shape });
  return torch.tensor(Float64Array.from(c.data as number[]), { dtype: c.dtype, shape: c.shape });
}

/** What Python's torch reads: dtype, shape, stride, contiguity and values of every tensor, plus zipfile's view of the archive. */
const READ_PY = `
import inspect, json, sys, struct, zipfile, torch
# torch 2.x can map the storages in place (mmap=True), which needs them aligned as torch aligns them
mmap = {'mmap': True} if 'mmap' in inspect.signature(torch.load).parameters else {}
out = {}
for path in sys.argv[1:]:
    sd = torch.load(path, weights_only=True, **mmap)
    z = zipfile.ZipFile(path)
    raw = open(path, 'rb').read()
    offsets = {}
    for i in z.infolist():
        n, m = struct.unpack('<HH', raw[i.header_offset + 26:i.header_offset + 30])
        offsets[i.filename] = i.header_offset + 30 + n + m
    out[path] = {
        'type': type(sd).__name__,
        'keys': list(sd.keys()),
        'tensors': {k: {'dtype': str(t.dtype), 'shape': list(t.shape), 'stride': list(t.stride()), 'contiguous': t.is_contiguous(),
                        'requires_grad': t.requires_grad,
                        'data': t.flatten().tolist() if t.dtype == torch.bool else t.double().flatten().tolist()} for k, t in sd.items()},
        'bad_crc': z.testzip(),
        'names': z.namelist(),
        'data_offsets': offsets,
    }
print(json.dumps(out))
`;

const PYTHONS: Array<[string, string]> = [
  ['Debian torch 1.13', '/usr/bin/python3'],
  ['torch 2.x', join(root, '.venv-torch2', 'bin', 'python')],
];

const TORCH_DTYPE: Record<DType, string> = {
  float32: 'torch.float32',
  float64: 'torch.float64',
  float16: 'torch.float16',
  bfloat16: 'torch.bfloat16',
  int64: 'torch.int64',
  int32: 'torch.int32',
  int16: 'torch.int16',
  int8: 'torch.int8',
  uint8: 'torch.uint8',
  bool: 'torch.bool',
};

let tmp = '';
const files: Record<string, string> = {};
// a 3x4 matrix, transposed (non-contiguous) and a narrowed row view (storage offset 4)
const MATRIX = Array.from({ length: 12 }, (_, i) => i * 0.25);
const TRANSPOSED = [0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11].map((i) => MATRIX[i]);

beforeAll(() => {
  tmp = mkdtempSync(join(tmpdir(), 'finetorch-pth-write-'));
  const sd: Record<string, Tensor> = Object.fromEntries(Object.entries(CASES).map(([k, c]) => [k, build(c)]));
  const m = torch.tensor(Float64Array.from(MATRIX), { dtype: 'float32', shape: [3, 4] });
  sd.transposed = m.t();
  sd.row = m.narrow(0, 1, 1).squeeze(0);
  expect(sd.transposed.isContiguous()).toBe(false);
  files.pth = join(tmp, 'every-dtype.pth');
  io.save(sd, files.pth);
  // the same with zip64 records everywhere (they appear past 4 GiB; forced here)
  files.zip64 = join(tmp, 'zip64.pt');
  writeTorchZip(files.zip64, new Map(Object.entries(sd)), { zip64Above: 0 });
  // .bin, and a file name with characters torch would not put in the archive's folder name
  files.bin = join(tmp, 'pytorch model (1).bin');
  io.save({ w: sd.f32 }, files.bin);
});

afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function expectTorchRead(got: {
  keys: string[];
  tensors: Record<string, { dtype: string; shape: number[]; stride: number[]; contiguous: boolean; requires_grad: boolean; data: unknown[] }>;
}) {
  expect(got.keys).toEqual([...Object.keys(CASES), 'transposed', 'row']);
  for (const [k, c] of Object.entries(CASES)) {
    const t = got.tensors[k];
    expect(t.dtype, k).toBe(TORCH_DTYPE[c.dtype]);
    expect(t.shape, k).toEqual(c.shape);
    expect(t.contiguous, k).toBe(true);
    expect(t.requires_grad, k).toBe(false);
    expect(t.data, k).toEqual(c.data);
  }
  expect(got.tensors.transposed).toMatchObject({ dtype: 'torch.float32', shape: [4, 3], stride: [3, 1], contiguous: true, data: TRANSPOSED });
  expect(got.tensors.row).toMatchObject({ shape: [4], stride: [1], data: MATRIX.slice(4, 8) });
}

describe('io.save to .pth/.pt/.bin: torch.load(weights_only=True) reads it', () => {
  for (const [label, python] of PYTHONS) {
    it.skipIf(!existsSync(python))(`${label}: every dtype, values exact; sound zip with 64-byte aligned records`, () => {
      const out = JSON.parse(execFileSync(python, ['-c', READ_PY, files.pth, files.zip64, files.bin], { encoding: 'utf8', timeout: 120000 }));
      for (const f of [files.pth, files.zip64]) {
        expect(out[f].type).toBe('OrderedDict');
        expect(out[f].bad_crc).toBeNull();
        expectTorchRead(out[f]);
        for (const [name, offset] of Object.entries(out[f].data_offsets as Record<string, number>)) expect(offset % 64, name).toBe(0);
      }
      expect(out[files.pth].names).toEqual(
        expect.arrayContaining(['every-dtype/data.pkl', 'every-dtype/version', 'every-dtype/byteorder', 'every-dtype/data/0']),
      );
      expect(out[files.bin].names[0]).toBe('archive/data.pkl');
      expect(out[files.bin].tensors.w.data).toEqual(CASES.f32.data);
    });
  }

  it('our reader reads our files back', () => {
    for (const f of [files.pth, files.zip64]) {
      const sd = io.load(f);
      expect(Object.keys(sd)).toEqual([...Object.keys(CASES), 'transposed', 'row']);
      for (const [k, c] of Object.entries(CASES)) {
        expect(sd[k].dtype, k).toBe(c.dtype);
        expect(sd[k].shape, k).toEqual(c.shape);
        const values = c.dtype === 'bool' ? (sd[k].toArray() as unknown[]).flat(9) : Array.from(sd[k].to('float64').dataSync() as Float64Array);
        expect(values, k).toEqual(c.data);
      }
      expect(Array.from(sd.transposed.dataSync() as Float32Array)).toEqual(TRANSPOSED);
    }
  });

  it('an extension that names no format is a TypeError naming the accepted ones; the folder is left clean', () => {
    expect(() => io.save({ a: torch.ones([1]) }, join(tmp, 'x.ckpt'))).toThrow(/\.safetensors, \.pth, \.pt, \.bin/);
    expect(() => io.save({ a: torch.ones([1]) }, join(tmp, 'x.pth'), { metadata: { a: 'b' } })).toThrow(/metadata .*\.safetensors/);
    expect(() => io.save({ a: 'nope' as unknown as Tensor }, join(tmp, 'y.pth'))).toThrow(/'a' is not a Tensor/);
    expect(readdirSync(tmp).filter((f) => f.includes('.tmp-'))).toEqual([]);
  });
});
