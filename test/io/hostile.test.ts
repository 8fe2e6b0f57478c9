// Hostile checkpoints (issue 13): small files that declare huge things. Each
// class is generated here; those that could exhaust memory are loaded in a
// child process under a memory watch (RSS and heap limits), which must end
// in an Error naming the file, quickly and with bounded memory.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createDeflateRaw } from 'node:zlib';
import { io, models } from 'finetorch';
import {
  OP,
  PickleWriter,
  torchZip,
  stateDictPickle,
  safetensorsFile,
  parseSafetensors,
  writeZip,
  runWatched,
  // @ts-expect-error: a plain .mjs script without type declarations
} from '../../scripts/fuzz-checkpoints.mjs';

let dir = '';
let resnet: Buffer; // a real models.save file: resnet18, width 4, 3 classes
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'finetorch-hostile-'));
  const model = models.architectures.resnet18({ width: 4, numClasses: 3 });
  models.save(model, join(dir, 'resnet.safetensors'));
  model.dispose();
  resnet = readFileSync(join(dir, 'resnet.safetensors'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const file = (name: string, bytes: Buffer) => {
  const f = join(dir, name);
  writeFileSync(f, bytes);
  return f;
};

interface Outcome {
  name: string;
  message: string;
  namesFile: boolean;
  isError: boolean;
}
/** Loads in a child under a memory watch; returns io.load's (and models.load's) outcomes and the peak RSS. */
async function loadWatched(path: string, modelsOptions?: object, limits = { rssLimitMb: 1024, heapMb: 1024, timeoutMs: 60000 }) {
  const res = await runWatched(['--load', path, ...(modelsOptions ? ['--models', JSON.stringify(modelsOptions)] : [])], limits);
  expect(res.killedFor, `${path}: killed (${res.killedFor}), peak RSS ${Math.round(res.peakRssMb)} MB`).toBeNull();
  expect(res.code, res.stderr.slice(-2000)).toBe(0);
  const out = JSON.parse(res.stdout.trim().split('\n').pop()!);
  console.log(`${path.split('/').pop()}: refused=${out.io !== 'ok'}, peak RSS ${Math.round(res.peakRssMb)} MB, ${res.ms} ms`);
  return { io: out.io as Outcome | 'ok', models: out.models as Outcome | 'ok' | undefined, peakRssMb: res.peakRssMb as number, ms: res.ms as number };
}

function expectRefused(outcome: Outcome | 'ok' | undefined, pattern: RegExp) {
  expect(outcome).not.toBe('ok');
  const o = outcome as Outcome;
  expect(o.isError).toBe(true);
  expect(o.name).not.toBe('RangeError');
  expect(o.namesFile, o.message).toBe(true);
  expect(o.message).toMatch(pattern);
}

/** A .safetensors file from tensors {name: {dtype, shape, bytes}} (data laid out in order) and metadata. */
function safetensorsOf(tensors: Record<string, { dtype: string; shape: number[]; bytes: Buffer }>, metadata?: Record<string, string>) {
  const header: Record<string, unknown> = metadata ? { __metadata__: metadata } : {};
  let offset = 0;
  for (const [name, t] of Object.entries(tensors)) {
    header[name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + t.bytes.length] };
    offset += t.bytes.length;
  }
  return safetensorsFile(header, Buffer.concat(Object.values(tensors).map((t) => t.bytes)));
}

/** The real ResNet file's tensors and metadata, to edit. */
function resnetTensors() {
  const { header, data } = parseSafetensors(resnet);
  const tensors: Record<string, { dtype: string; shape: number[]; bytes: Buffer }> = {};
  for (const [name, e] of Object.entries(header) as Array<[string, { dtype: string; shape: number[]; data_offsets: [number, number] }]>)
    if (name !== '__metadata__') tensors[name] = { dtype: e.dtype, shape: e.shape, bytes: data.subarray(...e.data_offsets) };
  return { tensors, metadata: header.__metadata__ as Record<string, string> };
}

describe('item 2: pickles that build millions of objects from a few compressed bytes', () => {
  const flood = (n: number, body: Buffer, prefix: number[] = [], suffix: number[] = []) => {
    const w = new PickleWriter().op(...prefix);
    const chunk = Buffer.concat(Array.from({ length: 1 << 16 }, () => body));
    for (let done = 0; done < n; done += 1 << 16) w.raw(done + (1 << 16) <= n ? chunk : Buffer.concat(Array.from({ length: n - done }, () => body)));
    return w.op(...suffix).bytes();
  };
  const cases: Array<[string, () => Buffer, RegExp]> = [
    ['5*10^7 EMPTY_DICT (the reported 48 KB file)', () => flood(5e7, Buffer.from([OP.EMPTY_DICT])), /builds more than \d+ MB of objects/],
    ['3*10^7 EMPTY_LIST', () => flood(3e7, Buffer.from([OP.EMPTY_LIST])), /builds more than \d+ MB of objects/],
    [
      '10^7 distinct keys into one dict',
      () => {
        const items = Buffer.alloc(6 * 1e7);
        for (let k = 0; k < 1e7; k++) {
          items[6 * k] = OP.BININT;
          items.writeInt32LE(k, 6 * k + 1);
          items[6 * k + 5] = OP.NONE;
        }
        return new PickleWriter().op(OP.EMPTY_DICT, OP.MARK).raw(items).op(OP.SETITEMS).bytes();
      },
      /builds more than \d+ MB of objects/,
    ],
    ['10^6 nested MARKs', () => flood(1e6, Buffer.from([OP.MARK])), /nesting deeper than/],
  ];
  for (const [name, make, pattern] of cases) {
    it(`${name}: a clear error naming the file, in bounded memory and time`, async () => {
      const pickle = make();
      const path = file('bomb.pth', torchZip(pickle, {}, { compressPickle: true }));
      const r = await loadWatched(path, { arch: 'resnet18' });
      expectRefused(r.io, pattern);
      expectRefused(r.models, pattern);
      expect(r.peakRssMb).toBeLessThan(900);
      expect(r.ms).toBeLessThan(30000);
    });
  }

  it('real state-dict pickles stay far inside the budget (10,000 tensors with long names)', () => {
    const tensors: Record<string, object> = {};
    for (let k = 0; k < 10000; k++) tensors[`encoder.layers.${k}.self_attention.in_projection.weight`] = { key: '0', numel: 4, size: [2, 2], stride: [2, 1] };
    const path = file('many.pth', torchZip(stateDictPickle(tensors), { 0: Buffer.alloc(16) }));
    const sd = io.load(path);
    expect(Object.keys(sd)).toHaveLength(10000);
    for (const t of Object.values(sd)) t.dispose();
  });
});

describe('item 7: declared shapes checked against the bytes and the architecture before building', () => {
  it('.safetensors: a head declared [N, 0] (no data) is refused before an N-class model is built', async () => {
    const { tensors, metadata } = resnetTensors();
    for (const n of [1e7, 2 ** 31 - 1]) {
      delete tensors['fc.bias'];
      tensors['fc.weight'] = { dtype: 'F32', shape: [n, 0], bytes: Buffer.alloc(0) };
      const path = file('head.safetensors', safetensorsOf(tensors, metadata));
      const r = await loadWatched(path, {});
      expect(r.io).toBe('ok'); // a valid file: only the architecture says the head cannot be [N, 0]
      expectRefused(r.models, /does not fit[\s\S]*size mismatch for fc\.weight: checkpoint \[\d+,0\], model \[\d+,32\][\s\S]*missing fc\.bias/);
      expect(r.peakRssMb).toBeLessThan(600);
    }
  });

  it('.pth: a 600-byte file with only a [N, 0] head', async () => {
    const path = file('head.pth', torchZip(stateDictPickle({ 'fc.weight': { key: '0', numel: 0, size: [1e8, 0], stride: [0, 1] } }), { 0: Buffer.alloc(0) }));
    expect(readFileSync(path).length).toBeLessThan(700);
    const r = await loadWatched(path, { arch: 'resnet50' });
    expectRefused(
      r.models,
      /does not fit[\s\S]*missing conv1\.weight[\s\S]*size mismatch for fc\.weight: checkpoint \[100000000,0\], model \[100000000,2048\]/,
    );
    expect(r.peakRssMb).toBeLessThan(600);
  });

  it('a head of 0 classes ([0, C]) is named as such, not left to the builder', () => {
    const { tensors, metadata } = resnetTensors();
    tensors['fc.weight'] = { dtype: 'F32', shape: [0, 32], bytes: Buffer.alloc(0) };
    tensors['fc.bias'] = { dtype: 'F32', shape: [0], bytes: Buffer.alloc(0) };
    const path = file('zero-head.safetensors', safetensorsOf(tensors, metadata));
    expect(() => models.load(path)).toThrow(/zero-head\.safetensors.*does not fit:\n {2}the head fc\.weight declares 0 classes/);
    models.load(path, { numClasses: 5 }).dispose(); // a new head: the rest of the file loads
  });

  it('finetorch inspect does not build the N-class head either', async () => {
    const { tensors } = resnetTensors();
    tensors['fc.weight'] = { dtype: 'F32', shape: [1e8, 0], bytes: Buffer.alloc(0) };
    delete tensors['fc.bias'];
    const path = file('inspect.safetensors', safetensorsOf(tensors));
    const res = await runWatched(['--inspect', path], { rssLimitMb: 1024, timeoutMs: 60000 });
    expect(res.killedFor).toBeNull();
    const out = JSON.parse(res.stdout.trim().split('\n').pop()!);
    expect(out).toMatchObject({ ok: true, architecture: 'resnet18', blocks: null });
    expect(res.peakRssMb).toBeLessThan(600);
  });

  it('a view needs its elements in its storage: no stride-0 giants, no int64 overflow in the bounds', () => {
    const views: Array<[string, object]> = [
      ['stride 0', { key: '0', numel: 1, size: [2 ** 20, 2 ** 20], stride: [0, 0] }],
      ['overflowing (size-1)*stride', { key: '0', numel: 1, size: [2 ** 32 + 1], stride: [2 ** 31] }],
      ['offset past the end', { key: '0', numel: 1, offset: 5, size: [1], stride: [1] }],
      ['negative size', { key: '0', numel: 1, size: [-1], stride: [1] }],
      ['2^53 size', { key: '0', numel: 1, size: [2 ** 53 + 2], stride: [1] }],
      ['dims whose product overflows, next to a 0', { key: '0', numel: 1, size: [2 ** 53 - 1, 2 ** 53 - 1, 0], stride: [1, 1, 1] }],
    ];
    for (const [what, spec] of views) {
      const path = file('view.pth', torchZip(stateDictPickle({ w: spec }), { 0: Buffer.alloc(4) }));
      expect(() => io.load(path), what).toThrow(
        new RegExp(
          `${path.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}.*(needs more than the 1 elements its storage holds|invalid shape, stride or offset|whose size overflows)`,
        ),
      );
    }
    // a storage must hold the elements it declares
    const path = file('storages.pth', torchZip(stateDictPickle({ a: { key: '0', numel: 1e6, size: [1e6], stride: [1] } }), { 0: Buffer.alloc(16) }));
    expect(() => io.load(path)).toThrow(/storage data\/0 has 16 bytes, 4000000 expected/);
  });
});

describe('item 8: saved options are checked, and compared with the file before building', () => {
  it('finetorch.options {"width": 1024} with width-4 weights is refused before a 1024-wide ResNet is built', async () => {
    const { tensors, metadata } = resnetTensors();
    for (const width of [1024, 4096]) {
      const path = file('wide.safetensors', safetensorsOf(tensors, { ...metadata, 'finetorch.options': JSON.stringify({ width, numClasses: 3 }) }));
      const r = await loadWatched(path, {});
      expectRefused(r.models, new RegExp(`does not fit[\\s\\S]*size mismatch for conv1\\.weight: checkpoint \\[4,3,7,7\\], model \\[${width},3,7,7\\]`));
      expect(r.peakRssMb).toBeLessThan(600);
    }
  });

  it('out-of-range, unknown or mistyped options name the field', () => {
    const { tensors, metadata } = resnetTensors();
    const cases: Array<[Record<string, string>, RegExp]> = [
      [{ 'finetorch.options': '{"width": 100000}' }, /finetorch\.options\.width must be an integer in 1\.\.4096, got 100000/],
      [{ 'finetorch.options': '{"numClasses": -1}' }, /finetorch\.options\.numClasses must be a positive integer/],
      [{ 'finetorch.options': '{"dropout": 2}' }, /finetorch\.options\.dropout must be a number in \[0, 1\]/],
      [{ 'finetorch.options': '{"__proto__": {"width": 1}}' }, /unknown option "__proto__"/],
      [{ 'finetorch.options': '[1]' }, /finetorch\.options is not a JSON object/],
      [{ 'finetorch.arch': 'constructor' }, /finetorch\.arch names "constructor", not one of/],
    ];
    for (const [change, pattern] of cases) {
      const path = file('opts.safetensors', safetensorsOf(tensors, { ...metadata, ...change }));
      expect(() => models.load(path), JSON.stringify(change)).toThrow(pattern);
      expect(() => models.load(path)).toThrow(path);
    }
  });
});

describe('item 9: compressed entries inflate no further than they declare', () => {
  /** 512 MiB of zeros, deflated (about 500 KB), without holding the 512 MiB. */
  async function zerosDeflated(bytes: number): Promise<Buffer> {
    const z = createDeflateRaw({ level: 9 });
    const out: Buffer[] = [];
    z.on('data', (d: Buffer) => out.push(d));
    const done = new Promise((r) => z.on('end', r));
    const chunk = Buffer.alloc(1 << 20);
    for (let i = 0; i < bytes / chunk.length; i++) if (!z.write(chunk)) await new Promise((r) => z.once('drain', r));
    z.end();
    await done;
    return Buffer.concat(out);
  }

  it('a zip bomb data.pkl (512 MiB of zeros in 500 KB) is refused without inflating it', async () => {
    const size = 512 * 2 ** 20;
    const compressed = await zerosDeflated(size);
    expect(compressed.length).toBeLessThan(2 ** 20);
    const cases: Array<[number, RegExp]> = [
      [size, /entry archive\/data\.pkl declares 536870912 bytes, more than the \d+ this reader allows/], // declared honestly: over the cap
      [1000, /entry archive\/data\.pkl inflates to more than the 1000 bytes it declares/], // declared small: inflating stops there
    ];
    for (const [declared, pattern] of cases) {
      const path = file(
        'zipbomb.pth',
        writeZip([
          { name: 'archive/data.pkl', method: 8, compressed, size: declared },
          { name: 'archive/version', data: Buffer.from('3\n') },
        ]),
      );
      const r = await loadWatched(path, { arch: 'resnet18' });
      expectRefused(r.io, pattern);
      expect(r.peakRssMb).toBeLessThan(400);
    }
  });
});

describe('item 10: safetensors headers: bounded parsing, offsets in range, no overlaps, no gaps', () => {
  it('an 89 MB header declaring 1.5 M tensors is refused quickly and in bounded memory', async () => {
    const parts: string[] = [];
    for (let i = 0; i < 1_500_000; i++) parts.push(`"t${i}":{"dtype":"U8","shape":[1],"data_offsets":[${i},${i + 1}]}`);
    const json = Buffer.from(`{${parts.join(',')}}`);
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(BigInt(json.length));
    expect(json.length).toBeGreaterThan(80 * 2 ** 20);
    expect(json.length).toBeLessThan(100 * 2 ** 20);
    const path = file('huge-header.safetensors', Buffer.concat([len, json, Buffer.alloc(1_500_000)]));
    const r = await loadWatched(path, {});
    expectRefused(r.io, /holds \d+ JSON items, more than 2000000/);
    expect(r.ms).toBeLessThan(10000);
    expect(r.peakRssMb).toBeLessThan(700);
  });

  it('more tensors than any checkpoint has (150,000) is refused before any is made', () => {
    const header: Record<string, unknown> = {};
    for (let i = 0; i < 150_000; i++) header[`t${i}`] = { dtype: 'U8', shape: [1], data_offsets: [i, i + 1] };
    const path = file('many.safetensors', safetensorsFile(header, Buffer.alloc(150_000)));
    expect(() => io.load(path)).toThrow(/declares 150000 tensors, more than 100000/);
  });

  it('10,000 tensors over the same megabyte (10 GB declared) are refused as overlapping', async () => {
    const header: Record<string, unknown> = {};
    for (let i = 0; i < 10_000; i++) header[`t${i}`] = { dtype: 'F32', shape: [262144], data_offsets: [0, 2 ** 20] };
    const path = file('overlap.safetensors', safetensorsFile(header, Buffer.alloc(2 ** 20)));
    const r = await loadWatched(path);
    expectRefused(r.io, /tensor 't\d+' \(bytes 0\.\.1048576\) overlaps tensor 't\d+'/);
    expect(r.peakRssMb).toBeLessThan(600);
  });

  it('gaps and out-of-range offsets', () => {
    const gap = file(
      'gap.safetensors',
      safetensorsFile({ a: { dtype: 'F32', shape: [1], data_offsets: [0, 4] }, b: { dtype: 'F32', shape: [1], data_offsets: [8, 12] } }, Buffer.alloc(12)),
    );
    expect(() => io.load(gap)).toThrow(/data bytes 4\.\.8 belong to no tensor \(before 'b'/);
    const tail = file('tail.safetensors', safetensorsFile({ a: { dtype: 'F32', shape: [1], data_offsets: [0, 4] } }, Buffer.alloc(8)));
    expect(() => io.load(tail)).toThrow(/data bytes 4\.\.8 belong to no tensor/);
    const past = file('past.safetensors', safetensorsFile({ a: { dtype: 'F32', shape: [3], data_offsets: [0, 12] } }, Buffer.alloc(8)));
    expect(() => io.load(past)).toThrow(/data_offsets \[0,12\] that do not fit/);
    const overflow = file('overflow.safetensors', safetensorsFile({ a: { dtype: 'F32', shape: [2 ** 53 - 1, 2 ** 53 - 1, 0], data_offsets: [0, 0] } }));
    expect(() => io.load(overflow)).toThrow(/tensor 'a' has an invalid shape \[9007199254740991,9007199254740991,0\]/);
    const proto = file('proto.safetensors', safetensorsFile({ a: { dtype: 'constructor', shape: [1], data_offsets: [0, 4] } }, Buffer.alloc(4)));
    expect(() => io.load(proto)).toThrow(/unsupported dtype "constructor"/);
  });
});

describe('item 12: a storage stored directly as a dict value', () => {
  it('is a clear error naming the key, never a disposed tensor (file written by this test)', () => {
    const w = new PickleWriter().op(OP.EMPTY_DICT);
    w.str('weight')
      .tensor({ key: '0', numel: 2, size: [2], stride: [1] })
      .op(OP.SETITEM);
    w.str('raw').storage('FloatStorage', '1', 3).op(OP.SETITEM);
    const path = file('storage.pth', torchZip(w.bytes(), { 0: Buffer.alloc(8), 1: Buffer.alloc(12) }));
    expect(() => io.load(path)).toThrow(/'raw' holds a bare storage \(torch\.\*Storage\), not a tensor/);
  });

  it('the same from PyTorch (torch.save of a TypedStorage in the dict)', () => {
    const path = join(dir, 'torch-storage.pth');
    execFileSync('/usr/bin/python3', ['-c', `import torch; torch.save({'w': torch.ones(2), 's': torch.arange(3.).storage()}, ${JSON.stringify(path)})`]);
    expect(() => io.load(path)).toThrow(/'s' holds a bare storage/);
  });
});

describe('item 14: no bare RangeError; every reader error names the file', () => {
  const nested = (depth: number) => {
    const w = new PickleWriter();
    for (let i = 0; i < depth; i++) w.op(OP.EMPTY_LIST);
    for (let i = 1; i < depth; i++) w.op(OP.APPEND); // each list appended into the one below: nesting `depth` deep
    return w;
  };
  const pickles: Array<[string, () => Buffer]> = [
    [
      'APPENDS of 1,000,000 items (was push(...items))',
      () => {
        const w = new PickleWriter().op(OP.EMPTY_LIST, OP.MARK);
        w.raw(Buffer.alloc(1_000_000, OP.NONE));
        return w.op(OP.APPENDS).bytes();
      },
    ],
    [
      'a call with 1,000,000 arguments',
      () => {
        const w = new PickleWriter().global('collections', 'OrderedDict').op(OP.MARK);
        w.raw(Buffer.alloc(1_000_000, OP.NONE));
        return w.op(OP.TUPLE, OP.REDUCE).bytes();
      },
    ],
    ['STACK_GLOBAL of a list nested 200,000 deep (was String(list))', () => nested(200_000).str('x').op(0x93).bytes()],
    ['a persistent id nested 200,000 deep (was JSON.stringify)', () => nested(200_000).op(OP.BINPERSID).bytes()],
    [
      'a wrapper dict nested 20,000 deep',
      () => {
        // {"x": tensor, "model": {"x": tensor, "model": ...}}: unwrapping was recursive
        const w = new PickleWriter();
        for (let i = 0; i < 20_000; i++)
          w.op(OP.EMPTY_DICT)
            .str('x')
            .tensor({ key: '0', numel: 1, size: [1], stride: [1] })
            .op(OP.SETITEM)
            .str('model');
        w.op(OP.EMPTY_DICT);
        for (let i = 0; i < 20_000; i++) w.op(OP.SETITEM);
        return w.bytes();
      },
    ],
  ];
  for (const [what, make] of pickles) {
    it(`pickle: ${what}`, () => {
      const path = file('deep.pth', torchZip(make(), { 0: Buffer.alloc(4) }));
      let err: unknown;
      try {
        io.load(path);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(Error);
      expect(err).not.toBeInstanceOf(RangeError);
      expect((err as Error).message).toContain(path);
    });
  }

  it('zip directory fields that point past the directory or the file', () => {
    const good = torchZip(stateDictPickle({ w: { key: '0', numel: 1, size: [1], stride: [1] } }), { 0: Buffer.alloc(4) });
    let eocd = good.length - 22;
    while (good.readUInt32LE(eocd) !== 0x06054b50) eocd--;
    const dirAt = good.readUInt32LE(eocd + 16);
    const edits: Array<[string, (b: Buffer) => void]> = [
      ['extra length past the directory', (b) => b.writeUInt16LE(0xffff, dirAt + 30)],
      ['name length past the directory', (b) => b.writeUInt16LE(0xffff, dirAt + 28)],
      ['entry count beyond the directory', (b) => b.writeUInt16LE(0xfffe, eocd + 10)],
      ['directory offset past the file', (b) => b.writeUInt32LE(0x7fffffff, eocd + 16)],
      ['local header offset past the file', (b) => b.writeUInt32LE(0x7fffffff, dirAt + 42)],
    ];
    for (const [what, edit] of edits) {
      const bytes = Buffer.from(good);
      edit(bytes);
      const path = file('zipfields.pth', bytes);
      let err: unknown;
      try {
        io.load(path);
      } catch (e) {
        err = e;
      }
      expect(err, what).toBeInstanceOf(Error);
      expect(err, what).not.toBeInstanceOf(RangeError);
      expect((err as Error).message, what).toContain(path);
    }
  });
});
