// Writes a state dict as `torch.save(state_dict, f)` does (the zip format of
// PyTorch >= 1.6), so Python's `torch.load(f, weights_only=True)` reads it on
// torch 1.13 and 2.x: a stored (uncompressed) zip archive holding
//   <prefix>/data.pkl     pickle protocol 2: an OrderedDict of name ->
//                         torch._utils._rebuild_tensor_v2(persistent_load(
//                         ('storage', torch.FloatStorage, key, 'cpu', numel)),
//                         offset, size, stride, False, OrderedDict())
//   <prefix>/.format_version, .storage_alignment, byteorder   as torch 2.x
//   <prefix>/data/<key>   each tensor's bytes, little-endian, row-major
//   <prefix>/version      "3\n"
// Every record's bytes start 64-byte aligned, as torch pads them (an extra
// field "FB" in the local header), so torch can map storages in place.
// Each tensor gets its own storage, written contiguous from offset 0 (views
// and non-contiguous tensors are copied). Zip64 records are written when an
// entry or the archive passes 4 GiB.
import { endianness } from 'node:os';
import { basename, extname } from 'node:path';
import { crc32 } from 'node:zlib';
import { native } from '../native/loader.js';
import { Tensor } from '../tensor/tensor.js';
import type { DType } from '../tensor/dtype.js';
import { writeAll, writeAtomic } from './atomic.js';
import { PickleWriter } from './pickle-write.js';

const STORAGE_TYPES: Record<DType, string> = {
  float32: 'FloatStorage',
  float64: 'DoubleStorage',
  float16: 'HalfStorage',
  bfloat16: 'BFloat16Storage',
  int64: 'LongStorage',
  int32: 'IntStorage',
  int16: 'ShortStorage',
  int8: 'CharStorage',
  uint8: 'ByteStorage',
  bool: 'BoolStorage',
};

/** torch aligns every record's data to 64 bytes. */
const ALIGNMENT = 64;
const U32_MAX = 0xffffffff;

interface Written {
  name: Buffer;
  crc: number;
  size: number;
  offset: number;
  /** Sizes and offset are in a zip64 extra field. */
  zip64: boolean;
}

/** A stored zip archive written to an open file descriptor, record by record. */
class ZipWriter {
  private offset = 0;
  private readonly written: Written[] = [];

  constructor(
    private readonly fd: number,
    /** Tests set this low to exercise the zip64 records on small files. */
    private readonly zip64Above = U32_MAX - 1,
  ) {}

  private put(bytes: Uint8Array): void {
    writeAll(this.fd, bytes);
    this.offset += bytes.length;
  }

  add(name: string, data: Uint8Array): void {
    const nameBytes = Buffer.from(name, 'utf8');
    const size = data.length;
    const crc = crc32(data);
    // an entry past 4 GiB saturates all three fields, even when small: torch 1.13's miniz checks
    // offset + size against the file whenever the size field is not saturated, with the saturated offset
    const zip64 = size > this.zip64Above || this.offset > this.zip64Above;
    // the local header: fixed part, name, zip64 sizes if needed, then the "FB" padding field up to the alignment
    const zip64Extra = zip64 ? 20 : 0;
    const before = this.offset + 30 + nameBytes.length + zip64Extra + 4;
    const pad = (ALIGNMENT - (before % ALIGNMENT)) % ALIGNMENT;
    const header = Buffer.alloc(30 + nameBytes.length + zip64Extra + 4 + pad, 0x5a); // torch pads with 'Z'
    header.writeUInt32LE(0x04034b50, 0);
    header.writeUInt16LE(zip64 ? 45 : 20, 4); // version needed
    header.writeUInt16LE(0, 6); // flags
    header.writeUInt16LE(0, 8); // stored
    header.writeUInt16LE(0, 10); // time
    header.writeUInt16LE(0x21, 12); // date: 1980-01-01
    header.writeUInt32LE(crc, 14);
    header.writeUInt32LE(zip64 ? U32_MAX : size, 18);
    header.writeUInt32LE(zip64 ? U32_MAX : size, 22);
    header.writeUInt16LE(nameBytes.length, 26);
    header.writeUInt16LE(zip64Extra + 4 + pad, 28);
    nameBytes.copy(header, 30);
    let x = 30 + nameBytes.length;
    if (zip64) {
      header.writeUInt16LE(0x0001, x);
      header.writeUInt16LE(16, x + 2);
      header.writeBigUInt64LE(BigInt(size), x + 4);
      header.writeBigUInt64LE(BigInt(size), x + 12);
      x += 20;
    }
    header.write('FB', x, 'latin1');
    header.writeUInt16LE(pad, x + 2);
    this.written.push({ name: nameBytes, crc, size, offset: this.offset, zip64 });
    this.put(header);
    this.put(data);
  }

  /** Writes the central directory and the end records. */
  finish(): void {
    const dirStart = this.offset;
    for (const e of this.written) {
      const extra = e.zip64 ? 24 : 0;
      const rec = Buffer.alloc(46 + e.name.length + (extra ? 4 + extra : 0));
      rec.writeUInt32LE(0x02014b50, 0);
      rec.writeUInt16LE(extra ? 45 : 20, 4); // made by
      rec.writeUInt16LE(extra ? 45 : 20, 6); // needed
      rec.writeUInt16LE(0x21, 14); // date
      rec.writeUInt32LE(e.crc, 16);
      rec.writeUInt32LE(e.zip64 ? U32_MAX : e.size, 20);
      rec.writeUInt32LE(e.zip64 ? U32_MAX : e.size, 24);
      rec.writeUInt16LE(e.name.length, 28);
      rec.writeUInt16LE(extra ? 4 + extra : 0, 30);
      rec.writeUInt32LE(e.zip64 ? U32_MAX : e.offset, 42);
      e.name.copy(rec, 46);
      if (extra) {
        // the zip64 values, in the order the spec fixes: size, compressed size, header offset
        const x = 46 + e.name.length;
        rec.writeUInt16LE(0x0001, x);
        rec.writeUInt16LE(extra, x + 2);
        rec.writeBigUInt64LE(BigInt(e.size), x + 4);
        rec.writeBigUInt64LE(BigInt(e.size), x + 12);
        rec.writeBigUInt64LE(BigInt(e.offset), x + 20);
      }
      this.put(rec);
    }
    const dirSize = this.offset - dirStart;
    const count = this.written.length;
    const zip64 = count >= 0xffff || dirStart > this.zip64Above || dirSize > this.zip64Above;
    if (zip64) {
      const recordAt = this.offset;
      const z = Buffer.alloc(56);
      z.writeUInt32LE(0x06064b50, 0);
      z.writeBigUInt64LE(44n, 4); // size of the rest of this record
      z.writeUInt16LE(45, 12);
      z.writeUInt16LE(45, 14);
      z.writeBigUInt64LE(BigInt(count), 24);
      z.writeBigUInt64LE(BigInt(count), 32);
      z.writeBigUInt64LE(BigInt(dirSize), 40);
      z.writeBigUInt64LE(BigInt(dirStart), 48);
      this.put(z);
      const locator = Buffer.alloc(20);
      locator.writeUInt32LE(0x07064b50, 0);
      locator.writeBigUInt64LE(BigInt(recordAt), 8);
      locator.writeUInt32LE(1, 16); // disks
      this.put(locator);
    }
    const end = Buffer.alloc(22);
    end.writeUInt32LE(0x06054b50, 0);
    end.writeUInt16LE(zip64 ? 0xffff : count, 8);
    end.writeUInt16LE(zip64 ? 0xffff : count, 10);
    end.writeUInt32LE(zip64 ? U32_MAX : dirSize, 12);
    end.writeUInt32LE(zip64 ? U32_MAX : dirStart, 16);
    this.put(end);
  }
}

/** The folder name inside the archive: torch uses the file's name without its extension. */
function archivePrefix(path: string): string {
  const stem = basename(path, extname(path));
  return /^[A-Za-z0-9_.-]{1,100}$/.test(stem) && stem !== '.' && stem !== '..' ? stem : 'archive';
}

/** Row-major strides of a contiguous tensor of `shape`. */
function contiguousStrides(shape: number[]): number[] {
  const strides = new Array<number>(shape.length);
  let s = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    strides[i] = s;
    s *= Math.max(shape[i], 1);
  }
  return strides;
}

/** The data.pkl of a state dict whose i-th tensor is stored as data/<i>. */
function statePickle(entries: Array<[string, Tensor]>): Buffer {
  const p = new PickleWriter();
  p.global('collections', 'OrderedDict').emptyTuple().reduce();
  // SETITEMS in batches of 1000, as Python's pickler does
  for (let start = 0; start < entries.length; start += 1000) {
    p.mark();
    entries.slice(start, start + 1000).forEach(([name, t], j) => {
      const key = String(start + j);
      p.string(name);
      p.global('torch._utils', '_rebuild_tensor_v2');
      p.mark(); // the arguments of _rebuild_tensor_v2
      p.mark().string('storage').global('torch', STORAGE_TYPES[t.dtype]).string(key).string('cpu').int(t.numel()).tuple(5).persistentId();
      p.int(0); // storage offset
      p.tupleOf(t.shape);
      p.tupleOf(contiguousStrides(t.shape));
      p.bool(false); // requires_grad
      p.global('collections', 'OrderedDict').emptyTuple().reduce(); // backward hooks
      p.tuple(6).reduce();
    });
    p.setItems();
  }
  return p.finish();
}

/**
 * Writes `tensors` (name -> Tensor) as a torch.save zip file at `path`,
 * atomically (a temporary file renamed into place).
 */
export function writeTorchZip(path: string, tensors: Map<string, Tensor>, options: { zip64Above?: number } = {}): void {
  const entries = [...tensors];
  for (const [name, t] of entries) {
    if (typeof name !== 'string') throw new TypeError(`save: the state dict's keys must be strings, got ${typeof name}`);
    if (!(t instanceof Tensor)) throw new TypeError(`save: '${name}' is not a Tensor`);
    if (!Object.hasOwn(STORAGE_TYPES, t.dtype)) throw new TypeError(`save: '${name}' has dtype ${t.dtype}, which torch.save files cannot hold here`);
  }
  // torch.load reads the storages as little-endian (the byteorder record says so)
  if (endianness() !== 'LE') throw new Error('save: writing torch.save files is supported on little-endian machines only');
  const prefix = archivePrefix(path);
  const pickle = statePickle(entries);
  writeAtomic(path, (fd) => {
    const zip = new ZipWriter(fd, options.zip64Above);
    zip.add(`${prefix}/data.pkl`, pickle);
    zip.add(`${prefix}/.format_version`, Buffer.from('1'));
    zip.add(`${prefix}/.storage_alignment`, Buffer.from(String(ALIGNMENT)));
    zip.add(`${prefix}/byteorder`, Buffer.from('little'));
    // one tensor's bytes in memory at a time (rawBytes: CPU, contiguous, native byte order; Node runs little-endian here)
    entries.forEach(([, t], i) => zip.add(`${prefix}/data/${i}`, native.rawBytes(t.handle) as Buffer));
    zip.add(`${prefix}/version`, Buffer.from('3\n'));
    zip.finish();
  });
}
