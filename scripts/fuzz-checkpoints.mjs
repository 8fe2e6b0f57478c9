#!/usr/bin/env node
// Fuzzing campaign for the checkpoint readers (io.load and models.load):
// mutated copies of real .pth and .safetensors files (truncations, byte
// flips, zip and safetensors length fields, shapes, dtypes, offsets, pickle
// integers and opcodes, compressed pickles) are loaded in worker processes
// under a memory watch. Every file must load or be refused with an Error
// that names it; a crash, a hang, a heap or RSS blow-up or a bare RangeError
// is a failure.
//
//   node scripts/fuzz-checkpoints.mjs --files 20000 [--seed 1] [--jobs 2] [--rss-limit-mb 1024] [--json]
//
// Also used by the tests: the hostile-file builders are exported, and
// `--load FILE [--models '{"arch":"resnet18"}']` loads one file and prints
// what happened as JSON (run it through `runWatched` for a memory watch).
import { spawn, execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { deflateRawSync, crc32 as zlibCrc32 } from 'node:zlib';

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, '..');

// ---------------------------------------------------------------- builders

let crcTable;
/** CRC-32 of a buffer (zlib's when the Node version has it). */
export function crc32(buf) {
  if (zlibCrc32) return zlibCrc32(buf);
  crcTable ??= Array.from({ length: 256 }, (_, n) => {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    return c >>> 0;
  });
  let c = 0xffffffff;
  for (const b of buf) c = crcTable[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/**
 * A zip archive of `entries` ({name, data, method: 0 stored | 8 deflate,
 * size?: the uncompressed size to declare, default the true one}).
 */
export function writeZip(entries) {
  const parts = [];
  const dir = [];
  let offset = 0;
  for (const e of entries) {
    const name = Buffer.from(e.name);
    const method = e.method ?? 0;
    const body = method === 8 ? (e.compressed ?? deflateRawSync(e.data)) : e.data;
    const size = e.size ?? e.data?.length ?? 0;
    const crc = e.data ? crc32(e.data) : 0;
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(20, 4);
    local.writeUInt16LE(method, 8);
    local.writeUInt32LE(crc, 14);
    local.writeUInt32LE(body.length, 18);
    local.writeUInt32LE(size, 22);
    local.writeUInt16LE(name.length, 26);
    const central = Buffer.alloc(46);
    central.writeUInt32LE(0x02014b50, 0);
    central.writeUInt16LE(20, 4);
    central.writeUInt16LE(20, 6);
    central.writeUInt16LE(method, 10);
    central.writeUInt32LE(crc, 16);
    central.writeUInt32LE(body.length, 20);
    central.writeUInt32LE(size, 24);
    central.writeUInt16LE(name.length, 28);
    central.writeUInt32LE(offset, 42);
    parts.push(local, name, body);
    dir.push(central, name);
    offset += 30 + name.length + body.length;
  }
  const dirBuf = Buffer.concat(dir);
  const eocd = Buffer.alloc(22);
  eocd.writeUInt32LE(0x06054b50, 0);
  eocd.writeUInt16LE(entries.length, 8);
  eocd.writeUInt16LE(entries.length, 10);
  eocd.writeUInt32LE(dirBuf.length, 12);
  eocd.writeUInt32LE(offset, 16);
  return Buffer.concat([...parts, dirBuf, eocd]);
}

/** The entries of a zip archive this script or torch.save wrote (no validation: the inputs are known good). */
export function readZip(buf) {
  let eocd = buf.length - 22;
  while (buf.readUInt32LE(eocd) !== 0x06054b50) eocd--;
  const count = buf.readUInt16LE(eocd + 10);
  let p = buf.readUInt32LE(eocd + 16);
  const out = [];
  for (let i = 0; i < count; i++) {
    const method = buf.readUInt16LE(p + 10),
      csize = buf.readUInt32LE(p + 20),
      nameLen = buf.readUInt16LE(p + 28);
    const extra = buf.readUInt16LE(p + 30),
      comment = buf.readUInt16LE(p + 32),
      off = buf.readUInt32LE(p + 42);
    const name = buf.toString('utf8', p + 46, p + 46 + nameLen);
    const start = off + 30 + buf.readUInt16LE(off + 26) + buf.readUInt16LE(off + 28);
    out.push({ name, method, data: buf.subarray(start, start + csize) });
    p += 46 + nameLen + extra + comment;
  }
  return out;
}

/** Pickle opcodes, for building hostile pickles. */
export const OP = {
  PROTO: 0x80,
  STOP: 0x2e,
  MARK: 0x28,
  EMPTY_DICT: 0x7d,
  EMPTY_LIST: 0x5d,
  EMPTY_TUPLE: 0x29,
  TUPLE: 0x74,
  LIST: 0x6c,
  DICT: 0x64,
  APPEND: 0x61,
  APPENDS: 0x65,
  SETITEM: 0x73,
  SETITEMS: 0x75,
  BININT: 0x4a,
  BININT1: 0x4b,
  BININT2: 0x4d,
  LONG1: 0x8a,
  BINPUT: 0x71,
  BINGET: 0x68,
  GLOBAL: 0x63,
  REDUCE: 0x52,
  BINPERSID: 0x51,
  NEWFALSE: 0x89,
  NONE: 0x4e,
  SHORT_BINUNICODE: 0x8c,
  BINUNICODE: 0x58,
};

/** A small pickle writer: call methods in pickle order, then `bytes()`. */
export class PickleWriter {
  constructor() {
    this.parts = [Buffer.from([OP.PROTO, 2])];
  }
  op(...codes) {
    this.parts.push(Buffer.from(codes));
    return this;
  }
  raw(buf) {
    this.parts.push(buf);
    return this;
  }
  int(v) {
    if (Number.isInteger(v) && v >= -(2 ** 31) && v < 2 ** 31) {
      const b = Buffer.alloc(5);
      b[0] = OP.BININT;
      b.writeInt32LE(v, 1);
      return this.raw(b);
    }
    let x = BigInt(v); // LONG1, little-endian two's complement
    const bytes = [];
    for (let i = 0; i < 9; i++) {
      bytes.push(Number(x & 0xffn));
      x >>= 8n;
    }
    return this.raw(Buffer.from([OP.LONG1, bytes.length, ...bytes]));
  }
  str(s) {
    const b = Buffer.from(s);
    const h = Buffer.alloc(5);
    h[0] = OP.BINUNICODE;
    h.writeUInt32LE(b.length, 1);
    return this.raw(Buffer.concat([h, b]));
  }
  global(module, name) {
    return this.raw(Buffer.from([OP.GLOBAL, ...Buffer.from(`${module}\n${name}\n`)]));
  }
  tuple(items, each) {
    this.op(OP.MARK);
    for (const v of items) each(v);
    return this.op(OP.TUPLE);
  }
  /** A storage reference, as torch.save writes it: BINPERSID of ('storage', torch.<Type>, key, 'cpu', numel). */
  storage(type, key, numel) {
    this.op(OP.MARK).str('storage').global('torch', type).str(key).str('cpu').int(numel).op(OP.TUPLE);
    return this.op(OP.BINPERSID);
  }
  /** _rebuild_tensor_v2(storage, offset, size, stride, False, OrderedDict()). */
  tensor({ type = 'FloatStorage', key, numel, offset = 0, size, stride }) {
    this.global('torch._utils', '_rebuild_tensor_v2').op(OP.MARK);
    this.storage(type, key, numel).int(offset);
    this.tuple(size, (d) => this.int(d)).tuple(stride, (d) => this.int(d));
    this.op(OP.NEWFALSE).global('collections', 'OrderedDict').op(OP.EMPTY_TUPLE, OP.REDUCE);
    return this.op(OP.TUPLE, OP.REDUCE);
  }
  bytes() {
    return Buffer.concat([...this.parts, Buffer.from([OP.STOP])]);
  }
}

/** Contiguous strides for a shape. */
export const contiguous = (shape) => shape.map((_, i) => shape.slice(i + 1).reduce((a, d) => a * d, 1));

/**
 * A torch.save zip: `pickle` as archive/data.pkl (deflated when `compressPickle`,
 * declaring `pickleSize` if given) and `storages` ({key: bytes}) as archive/data/<key>.
 */
export function torchZip(pickle, storages = {}, { compressPickle = false, pickleSize, compressed } = {}) {
  return writeZip([
    { name: 'archive/data.pkl', data: pickle, method: compressPickle ? 8 : 0, size: pickleSize, compressed },
    ...Object.entries(storages).map(([key, data]) => ({ name: `archive/data/${key}`, data })),
    { name: 'archive/version', data: Buffer.from('3\n') },
  ]);
}

/** A pickle of a state dict {name: tensor spec} (see PickleWriter.tensor). */
export function stateDictPickle(tensors) {
  const w = new PickleWriter().global('collections', 'OrderedDict').op(OP.EMPTY_TUPLE, OP.REDUCE);
  for (const [name, spec] of Object.entries(tensors)) {
    w.str(name);
    w.tensor(spec);
    w.op(OP.SETITEM);
  }
  return w.bytes();
}

/** A .safetensors file from a header object (written as given) and the data bytes. */
export function safetensorsFile(header, data = Buffer.alloc(0)) {
  const json = Buffer.from(JSON.stringify(header));
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));
  return Buffer.concat([len, json, data]);
}

/** The header and data of a .safetensors file. */
export function parseSafetensors(buf) {
  const n = Number(buf.readBigUInt64LE(0));
  return { header: JSON.parse(buf.toString('utf8', 8, 8 + n)), data: buf.subarray(8 + n) };
}

// ------------------------------------------------------- the memory watch

const rssOf = (pid) => {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : 0;
  } catch {
    return 0;
  }
};

/**
 * Runs `node [nodeArgs] script args` and watches it: killed when its RSS
 * passes rssLimitMb or it runs past timeoutMs. Resolves with its exit,
 * output, peak RSS (MB) and why it was killed, if it was.
 */
export function runWatched(args, { rssLimitMb = 1024, timeoutMs = 60000, heapMb = 1024, onLine, hung } = {}) {
  return new Promise((resolvePromise) => {
    const child = spawn(process.execPath, [`--max-old-space-size=${heapMb}`, fileURLToPath(import.meta.url), ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
      cwd: root,
    });
    let stdout = '',
      stderr = '',
      peakRssMb = 0,
      killedFor = null,
      pending = '';
    const started = Date.now();
    const kill = (why) => {
      if (!killedFor) {
        killedFor = why;
        child.kill('SIGKILL');
      }
    };
    const timer = setInterval(() => {
      const rss = rssOf(child.pid);
      peakRssMb = Math.max(peakRssMb, rss);
      if (rss > rssLimitMb) kill('memory');
      if (Date.now() - started > timeoutMs || hung?.()) kill('timeout');
    }, 20);
    child.stdout.on('data', (d) => {
      stdout += d;
      if (!onLine) return;
      pending += d;
      const lines = pending.split('\n');
      pending = lines.pop();
      for (const l of lines) onLine(l);
    });
    child.stderr.on('data', (d) => {
      stderr += d;
      if (stderr.length > 100000) stderr = stderr.slice(-50000);
    });
    child.on('close', (code, signal) => {
      clearInterval(timer);
      const reported = /"peakRssMb":([\d.]+)/.exec(stdout.slice(-500));
      if (reported) peakRssMb = Math.max(peakRssMb, Number(reported[1]));
      resolvePromise({ code, signal, stdout, stderr, peakRssMb, killedFor, ms: Date.now() - started });
    });
  });
}

const peakRss = () => {
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'));
  return m ? Number(m[1]) / 1024 : process.memoryUsage().rss / 2 ** 20;
};

// --------------------------------------------------------- one load, checked

let finetorch;
async function lib() {
  finetorch ??= await import(pathToFileURL(join(root, 'dist', 'index.js')).href);
  return finetorch;
}

/**
 * Loads `file` with io.load and (when modelsOptions is given) models.load.
 * Returns {io, models} each 'ok' or the error: {name, message, namesFile}.
 */
export async function tryLoad(file, modelsOptions) {
  const { io, models } = await lib();
  const outcome = (fn) => {
    try {
      fn();
      return 'ok';
    } catch (err) {
      const isError = err instanceof Error;
      return {
        name: isError ? err.constructor.name : typeof err,
        message: String(isError ? err.message : err).slice(0, 20000),
        namesFile: isError && err.message.includes(file),
        isError,
      };
    }
  };
  const result = {
    io: outcome(() => {
      for (const t of Object.values(io.load(file))) t.dispose();
    }),
  };
  if (modelsOptions) result.models = outcome(() => models.load(file, modelsOptions).dispose());
  return result;
}

/** A failure of the contract: not an Error, a RangeError, or a message that does not name the file. */
export function contractBroken(outcome) {
  if (outcome === 'ok') return null;
  if (!outcome.isError) return `threw a non-Error (${outcome.name})`;
  if (outcome.name === 'RangeError') return `bare RangeError: ${outcome.message}`;
  if (!outcome.namesFile) return `error does not name the file: ${outcome.message}`;
  return null;
}

// ------------------------------------------------------------- mutations

function rng(seed) {
  let s = seed >>> 0 || 1;
  const next = () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s / 2 ** 32;
  };
  return { next, int: (n) => Math.floor(next() * n), pick: (a) => a[Math.floor(next() * a.length)] };
}

const EDGE_INTS = [0, 1, -1, 2, 255, 256, 65535, 2 ** 31 - 1, -(2 ** 31), 2 ** 32 - 1, 2 ** 32, 2 ** 53, 1e15, 7, 1000, 100000, 10 ** 9];

function flipBytes(r, buf, regions) {
  const copy = Buffer.from(buf);
  const flips = 1 + r.int(4);
  for (let i = 0; i < flips; i++) {
    const [a, b] = r.pick(regions);
    if (b > a) copy[a + r.int(b - a)] = r.int(256);
  }
  return copy;
}

function mutateSafetensors(r, buf) {
  const n = Number(buf.readBigUInt64LE(0));
  const kind = r.pick(['truncate', 'flip', 'length', 'shape', 'dtype', 'offsets', 'entries', 'metadata', 'metadata']);
  if (kind === 'truncate') return { kind, bytes: buf.subarray(0, r.next() < 0.5 ? r.int(8 + n + 64) : r.int(buf.length)) };
  if (kind === 'flip')
    return {
      kind,
      bytes: flipBytes(r, buf, [
        [0, 8],
        [8, 8 + n],
        [8, 8 + n],
        [8 + n, buf.length],
      ]),
    };
  if (kind === 'length') {
    const copy = Buffer.from(buf);
    copy.writeBigUInt64LE(BigInt(Math.max(0, r.pick([n - 1, n + 1, n - 8, n + 8, 0, 1, 2 ** 27, buf.length, r.int(2 ** 30), 2 ** 52]))), 0);
    return { kind, bytes: copy };
  }
  const { header, data } = parseSafetensors(buf);
  const names = Object.keys(header).filter((k) => k !== '__metadata__');
  const name = r.pick(names);
  const e = header[name];
  if (kind === 'shape') {
    const v = r.pick([0, -1, 1.5, 2 ** 53, 2 ** 31, 10 ** 7, '3', null, 1e300]);
    if (r.next() < 0.3) e.shape = [r.pick([10 ** 7, 2 ** 40, 100000]), 0];
    else if (r.next() < 0.2) e.shape = Array.from({ length: r.pick([65, 200]) }, () => 1);
    else if (e.shape.length) e.shape[r.int(e.shape.length)] = v;
    else e.shape = [v];
  } else if (kind === 'dtype') {
    e.dtype = r.pick(['F32', 'F64', 'F16', 'BF16', 'I64', 'I8', 'U8', 'BOOL', 'X', 'constructor', '__proto__', 7, null]);
  } else if (kind === 'offsets') {
    const [a, b] = e.data_offsets;
    const other = header[r.pick(names)].data_offsets;
    e.data_offsets = r.pick([[a + 4, b + 4], [a - 4, b - 4], [0, b - a], other, [a, a], [b, a], [a, 2 ** 53], [-4, b], [a, b, 0], 'x', [a + 0.5, b]]);
  } else if (kind === 'entries') {
    const choice = r.int(4);
    if (choice === 0) delete header[name];
    else if (choice === 1) header[`${name}.copy`] = { ...e };
    else if (choice === 2) header[name] = r.pick([null, 1, [], 'x', {}]);
    else header.__proto__x = { dtype: 'F32', shape: [1], data_offsets: [0, 4] };
  } else {
    const md = (header.__metadata__ ??= {});
    const choice = r.int(6);
    if (choice === 0) md['finetorch.options'] = JSON.stringify({ width: r.pick([1024, 4096, 100000, 0, -1, 3.5]) });
    else if (choice === 1)
      md['finetorch.options'] = r.pick(['{', '[]', 'null', '"x"', '{"numClasses": -1}', '{"depth": "x"}', '{"foo": 1}', '{"inChannels": 4096}']);
    else if (choice === 2) md['finetorch.arch'] = r.pick(['resnet50', 'vgg16', 'bert', 'constructor', '__proto__', 'x']);
    else if (choice === 3) header.__metadata__ = r.pick([null, 1, 'x', [], { a: 1 }]);
    else if (choice === 4) md['finetorch.options'] = JSON.stringify({ smallStem: true });
    else md['finetorch.options'] = JSON.stringify({ inChannels: r.pick([1, 2, 64]) });
  }
  return { kind, bytes: safetensorsFile(header, data) };
}

/** The offsets of BININT* opcode arguments in a pickle, found by walking its opcodes (protocol-2 subset). */
function pickleInts(pkl) {
  const out = [];
  for (let p = 2; p < pkl.length; ) {
    const op = pkl[p++];
    if (op === OP.BININT1) {
      out.push([p, 1]);
      p += 1;
    } else if (op === OP.BININT2) {
      out.push([p, 2]);
      p += 2;
    } else if (op === OP.BININT) {
      out.push([p, 4]);
      p += 4;
    } else if (op === OP.LONG1) {
      out.push([p + 1, pkl[p]]);
      p += 1 + pkl[p];
    } else if (op === 0x58) p += 4 + pkl.readUInt32LE(p);
    else if (op === 0x8c) p += 1 + pkl[p];
    else if (op === 0x63) {
      p = pkl.indexOf(0x0a, pkl.indexOf(0x0a, p) + 1) + 1;
      if (p === 0) break;
    } else if (op === OP.BINPUT || op === OP.BINGET) p += 1;
    else if (op === 0x72 || op === 0x6a) p += 4;
    else if (op === 0x80) p += 1;
    else if (op === 0x95) p += 8;
  }
  return out;
}

function mutatePth(r, buf) {
  const entries = readZip(buf);
  const pklEntry = entries.find((e) => e.name.endsWith('data.pkl'));
  const kind = r.pick(['truncate', 'flip', 'flip', 'directory', 'ints', 'ints', 'opcodes', 'storage', 'compressed']);
  if (kind === 'truncate') return { kind, bytes: buf.subarray(0, r.int(buf.length)) };
  if (kind === 'flip') {
    const pklStart = pklEntry.data.byteOffset - buf.byteOffset;
    return {
      kind,
      bytes: flipBytes(r, buf, [
        [0, 64],
        [pklStart, pklStart + pklEntry.data.length],
        [buf.length - 1024, buf.length],
      ]),
    };
  }
  if (kind === 'directory') {
    const copy = Buffer.from(buf);
    let eocd = copy.length - 22;
    while (copy.readUInt32LE(eocd) !== 0x06054b50) eocd--;
    const v = r.pick(EDGE_INTS.filter((x) => x >= 0 && x < 2 ** 32));
    if (r.next() < 0.3) {
      const field = r.pick([
        [8, 2],
        [10, 2],
        [12, 4],
        [16, 4],
      ]);
      field[1] === 2 ? copy.writeUInt16LE(v & 0xffff, eocd + field[0]) : copy.writeUInt32LE(v >>> 0, eocd + field[0]);
    } else {
      // a field of one central directory record: method, sizes, name/extra/comment lengths, header offset
      const count = copy.readUInt16LE(eocd + 10);
      let p = copy.readUInt32LE(eocd + 16);
      for (let i = r.int(count); i > 0; i--) p += 46 + copy.readUInt16LE(p + 28) + copy.readUInt16LE(p + 30) + copy.readUInt16LE(p + 32);
      const field = r.pick([
        [10, 2],
        [20, 4],
        [24, 4],
        [28, 2],
        [30, 2],
        [32, 2],
        [42, 4],
      ]);
      field[1] === 2 ? copy.writeUInt16LE(v & 0xffff, p + field[0]) : copy.writeUInt32LE(v >>> 0, p + field[0]);
    }
    return { kind, bytes: copy };
  }
  let pkl = Buffer.from(pklEntry.data);
  let compressPickle = false,
    pickleSize;
  const storages = Object.fromEntries(entries.filter((e) => e.name.includes('/data/')).map((e) => [e.name.slice(e.name.lastIndexOf('/') + 1), e.data]));
  if (kind === 'ints') {
    const ints = pickleInts(pkl);
    for (let k = 1 + r.int(3); k > 0 && ints.length; k--) {
      const [at, len] = r.pick(ints);
      const v = r.pick(EDGE_INTS);
      if (len === 1) pkl[at] = v & 0xff;
      else if (len === 2) pkl.writeUInt16LE(v & 0xffff, at);
      else if (len === 4) pkl.writeInt32LE(v | 0, at);
      else for (let i = 0; i < len; i++) pkl[at + i] = r.int(256);
    }
  } else if (kind === 'opcodes') {
    const at = 2 + r.int(pkl.length - 2);
    const op = r.pick(Object.values(OP));
    const choice = r.int(3);
    if (choice === 0) pkl = Buffer.concat([pkl.subarray(0, at), Buffer.alloc(1 + r.pick([1, 10, 1000, 100000]), op), pkl.subarray(at)]);
    else if (choice === 1) pkl = Buffer.concat([pkl.subarray(0, at), pkl.subarray(at + 1 + r.int(8))]);
    else pkl[at] = op;
  } else if (kind === 'storage') {
    const key = r.pick(Object.keys(storages));
    const choice = r.int(3);
    if (choice === 0) storages[key] = storages[key].subarray(0, r.int(storages[key].length));
    else if (choice === 1) delete storages[key];
    else storages[`${key}x`] = storages[key];
  } else {
    compressPickle = true;
    pickleSize = r.pick([undefined, undefined, pkl.length - 1, pkl.length + 1, 0, 2 ** 32 - 1, r.int(2 ** 26)]);
  }
  return { kind, bytes: torchZip(pkl, storages, { compressPickle, pickleSize }) };
}

/** The i-th mutated file of a campaign: deterministic in (seed, i). */
export function mutation(bases, seed, i) {
  const r = rng((seed * 1_000_003 + i * 7919) ^ 0x9e3779b9);
  const base = bases[i % bases.length];
  const { kind, bytes } = base.type === 'safetensors' ? mutateSafetensors(r, base.bytes) : mutatePth(r, base.bytes);
  return {
    base: base.name,
    kind: `${base.type}:${kind}`,
    bytes,
    ext: base.type === 'safetensors' ? '.safetensors' : '.pth',
    modelsOptions: base.modelsOptions,
  };
}

// ------------------------------------------------------------- base files

/**
 * The real files the campaign mutates, made in `dir`: a narrow ResNet-18
 * saved by models.save (.safetensors with its architecture in the metadata),
 * and, when Debian's PyTorch is there, the same weights and a dict of every
 * dtype with views written by torch.save.
 */
export async function makeBaseFiles(dir) {
  const { models } = await lib();
  mkdirSync(dir, { recursive: true });
  const st = join(dir, 'resnet18-w4.safetensors');
  const model = models.architectures.resnet18({ width: 4, numClasses: 3 });
  models.save(model, st);
  model.dispose();
  const bases = [{ name: 'resnet18-w4.safetensors', type: 'safetensors', bytes: readFileSync(st), modelsOptions: {} }];
  const python = '/usr/bin/python3';
  const script = `
import json, struct, sys, torch
src, out = sys.argv[1], sys.argv[2]
raw = open(src, 'rb').read()
n = struct.unpack('<Q', raw[:8])[0]
h = json.loads(raw[8:8 + n])
dt = {'F32': torch.float32, 'I64': torch.int64}
sd = {}
for k, e in h.items():
    if k == '__metadata__': continue
    a, b = e['data_offsets']
    sd[k] = torch.frombuffer(bytearray(raw[8 + n + a: 8 + n + b]), dtype=dt[e['dtype']]).reshape(e['shape'])
torch.save(sd, out + '/resnet18-w4.pth')
base = torch.arange(12, dtype=torch.float32)
torch.save({'f': torch.randn(2, 3), 'd': torch.randn(4, dtype=torch.float64), 'h': torch.randn(5).half(), 'b': torch.randn(3).bfloat16(),
            'i': torch.tensor([1, -2, 3 ** 30]), 'u': torch.tensor([0, 255], dtype=torch.uint8), 't': torch.tensor([True, False]),
            's': torch.tensor(2.5), 'base': base, 'view': base[2:8].view(2, 3), 'tr': torch.randn(3, 4).t()}, out + '/dtypes.pth')
`;
  let pythonOk = false;
  if (existsSync(python)) {
    try {
      execFileSync(python, ['-c', script, st, dir], { stdio: ['ignore', 'ignore', 'pipe'], timeout: 120000 });
      pythonOk = true;
    } catch {
      /* no torch: fall back to files written here */
    }
  }
  if (!pythonOk) {
    // the same weights in a torch.save-shaped zip written by this script
    const { header, data } = parseSafetensors(readFileSync(st));
    const tensors = {},
      storages = {};
    Object.entries(header)
      .filter(([name]) => name !== '__metadata__')
      .forEach(([name, e], k) => {
        const [a, b] = e.data_offsets;
        const type = e.dtype === 'I64' ? 'LongStorage' : 'FloatStorage';
        tensors[name] = { type, key: String(k), numel: (b - a) / (e.dtype === 'I64' ? 8 : 4), size: e.shape, stride: contiguous(e.shape) };
        storages[String(k)] = data.subarray(a, b);
      });
    writeFileSync(join(dir, 'resnet18-w4.pth'), torchZip(stateDictPickle(tensors), storages));
  }
  bases.push({ name: 'resnet18-w4.pth', type: 'pth', bytes: readFileSync(join(dir, 'resnet18-w4.pth')), modelsOptions: { arch: 'resnet18', width: 4 } });
  if (pythonOk) bases.push({ name: 'dtypes.pth', type: 'pth', bytes: readFileSync(join(dir, 'dtypes.pth')) });
  return { bases, fromPyTorch: pythonOk };
}

// --------------------------------------------------------------- campaign

/** Worker: loads the mutations `indices` and reports each as a JSON line (start, then the outcome). */
async function worker({ seed, indices, dir }) {
  const { bases } = JSON.parse(readFileSync(join(dir, 'bases.json'), 'utf8'));
  for (const b of bases) b.bytes = readFileSync(join(dir, b.name));
  for (const i of indices) {
    const m = mutation(bases, seed, i);
    const file = join(dir, `m${i}${m.ext}`);
    writeFileSync(file, m.bytes);
    process.stdout.write(`${JSON.stringify({ start: i })}\n`);
    const result = await tryLoad(file, m.modelsOptions);
    rmSync(file, { force: true });
    // let the event loop turn: native finalizers of released tensors run there, not in a synchronous loop
    await new Promise((r) => setImmediate(r));
    const broken = [contractBroken(result.io), result.models && contractBroken(result.models)].filter(Boolean);
    const status = (o) => (o === undefined ? undefined : o === 'ok' ? 'ok' : 'error');
    process.stdout.write(
      `${JSON.stringify({ done: i, kind: m.kind, io: status(result.io), models: status(result.models), broken, rssMb: Math.round(process.memoryUsage().rss / 2 ** 20), heapMb: Math.round(process.memoryUsage().heapUsed / 2 ** 20) })}\n`,
    );
  }
  process.stdout.write(`${JSON.stringify({ finished: true, peakRssMb: peakRss() })}\n`);
}

async function campaign({ files, seed, jobs, rssLimitMb, heapMb, timeoutMs, json, keep }) {
  const dir = mkdtempSync(join(tmpdir(), 'finetorch-fuzz-'));
  const started = Date.now();
  const { bases, fromPyTorch } = await makeBaseFiles(dir);
  writeFileSync(join(dir, 'bases.json'), JSON.stringify({ bases: bases.map(({ bytes, ...b }) => b) }));
  const summary = {
    files,
    tried: 0,
    ioLoaded: 0,
    ioRefused: 0,
    modelsLoaded: 0,
    modelsRefused: 0,
    crashes: [],
    hangs: [],
    memory: [],
    broken: [],
    peakRssMb: 0,
    seconds: 0,
    bases: bases.map((b) => b.name),
    basesFromPyTorch: fromPyTorch,
    kinds: {},
  };
  const failuresDir = join(root, 'test', '.cache', 'fuzz-failures');
  const saveFailure = (i) => {
    const m = mutation(bases, seed, i);
    mkdirSync(failuresDir, { recursive: true });
    const file = join(failuresDir, `seed${seed}-${i}${m.ext}`);
    writeFileSync(file, m.bytes);
    return { i, kind: m.kind, file };
  };
  // each job takes a stride of the indices; a worker that dies is restarted after the file it died on
  const runJob = async (job) => {
    const mine = [];
    for (let i = job; i < files; i += jobs) mine.push(i);
    let next = 0;
    while (next < mine.length) {
      // a worker processes a contiguous run of its indices; with jobs > 1 they interleave as i = job + k*jobs
      let current = null;
      let lastProgress = Date.now();
      const res = await runWatched(
        ['--worker', '--seed', String(seed), '--dir', dir, '--first', String(mine[next]), '--step', String(jobs), '--to', String(files)],
        {
          rssLimitMb,
          heapMb,
          timeoutMs: 10 ** 9,
          onLine: (line) => {
            if (!line.startsWith('{')) return;
            const msg = JSON.parse(line);
            if (msg.start !== undefined) {
              current = msg.start;
              lastProgress = Date.now();
            }
            if (msg.done !== undefined) {
              current = null;
              next++;
              summary.tried++;
              summary.kinds[msg.kind] = (summary.kinds[msg.kind] ?? 0) + 1;
              if (msg.io === 'ok') summary.ioLoaded++;
              else summary.ioRefused++;
              if (msg.models === 'ok') summary.modelsLoaded++;
              else if (msg.models === 'error') summary.modelsRefused++;
              if (msg.broken.length) summary.broken.push({ ...saveFailure(msg.done), why: msg.broken });
            }
          },
          // a hang: no result for one file within timeoutMs
          hung: () => current !== null && Date.now() - lastProgress > timeoutMs,
        },
      );
      summary.peakRssMb = Math.max(summary.peakRssMb, res.peakRssMb);
      if (current !== null) {
        summary.tried++;
        next++;
        const failure = { ...saveFailure(current), exit: res.killedFor ?? res.signal ?? `code ${res.code}`, stderr: res.stderr.slice(-600) };
        if (res.killedFor === 'memory') summary.memory.push(failure);
        else if (res.killedFor === 'timeout') summary.hangs.push(failure);
        else summary.crashes.push(failure);
      } else if (res.code !== 0 && next < mine.length) {
        summary.crashes.push({ i: mine[next], exit: res.signal ?? `code ${res.code}`, stderr: res.stderr.slice(-600) });
        next++;
      }
    }
  };
  await Promise.all(Array.from({ length: jobs }, (_, j) => runJob(j)));
  summary.seconds = Math.round((Date.now() - started) / 100) / 10;
  summary.peakRssMb = Math.round(summary.peakRssMb);
  if (!keep) rmSync(dir, { recursive: true, force: true });
  const failed = summary.crashes.length + summary.hangs.length + summary.memory.length + summary.broken.length;
  if (json) process.stdout.write(`${JSON.stringify(summary)}\n`);
  else {
    console.log(`files tried   ${summary.tried} (seed ${seed}; bases ${summary.bases.join(', ')}${fromPyTorch ? ', .pth written by PyTorch' : ''})`);
    console.log(`io.load       ${summary.ioLoaded} loaded, ${summary.ioRefused} refused with an Error naming the file`);
    console.log(`models.load   ${summary.modelsLoaded} loaded, ${summary.modelsRefused} refused with an Error naming the file`);
    console.log(`crashes       ${summary.crashes.length}`);
    console.log(`hangs         ${summary.hangs.length} (no result within ${timeoutMs / 1000} s)`);
    console.log(`memory        ${summary.memory.length} (RSS over ${rssLimitMb} MB or heap over ${heapMb} MB)`);
    console.log(`bad errors    ${summary.broken.length} (not an Error, a bare RangeError, or no file name)`);
    console.log(`peak RSS      ${summary.peakRssMb} MB`);
    console.log(`time          ${summary.seconds} s`);
    for (const f of [...summary.crashes, ...summary.hangs, ...summary.memory, ...summary.broken]) console.log(`  failure: ${JSON.stringify(f)}`);
  }
  return failed ? 1 : 0;
}

// ------------------------------------------------------------------- main

function arg(argv, name, fallback) {
  const i = argv.indexOf(name);
  return i >= 0 ? argv[i + 1] : fallback;
}

async function main(argv) {
  if (argv.includes('--load')) {
    const file = arg(argv, '--load');
    const modelsOptions = argv.includes('--models') ? JSON.parse(arg(argv, '--models')) : undefined;
    const result = await tryLoad(file, modelsOptions);
    process.stdout.write(`${JSON.stringify({ ...result, peakRssMb: peakRss() })}\n`);
    return 0;
  }
  if (argv.includes('--inspect')) {
    // what `finetorch inspect` does with the file (its report, or its error)
    const file = arg(argv, '--inspect');
    const { inspect } = await import(pathToFileURL(join(root, 'dist', 'cli', 'inspect.js')).href);
    let result;
    try {
      const report = inspect(file);
      result = { ok: true, architecture: report.architecture, blocks: report.blocks?.length ?? null };
    } catch (err) {
      result = { ok: false, name: err?.constructor?.name, message: String(err?.message ?? err), namesFile: String(err?.message).includes(file) };
    }
    process.stdout.write(`${JSON.stringify({ ...result, peakRssMb: peakRss() })}\n`);
    return 0;
  }
  if (argv.includes('--worker')) {
    const indices = [];
    for (let i = Number(arg(argv, '--first')); i < Number(arg(argv, '--to')); i += Number(arg(argv, '--step'))) indices.push(i);
    await worker({ seed: Number(arg(argv, '--seed')), indices, dir: arg(argv, '--dir') });
    return 0;
  }
  return campaign({
    files: Number(arg(argv, '--files', '2000')),
    seed: Number(arg(argv, '--seed', '1')),
    jobs: Number(arg(argv, '--jobs', '1')),
    rssLimitMb: Number(arg(argv, '--rss-limit-mb', '1024')),
    heapMb: Number(arg(argv, '--heap-mb', '1024')),
    timeoutMs: Number(arg(argv, '--timeout-s', '20')) * 1000,
    json: argv.includes('--json'),
    keep: argv.includes('--keep'),
  });
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (err) => {
      console.error(err);
      process.exitCode = 2;
    },
  );
}
