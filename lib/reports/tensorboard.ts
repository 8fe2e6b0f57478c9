// TensorBoard's event files, written without TensorFlow: a file of TFRecord
// records (uint64 length, masked CRC-32C of the length, the bytes, masked
// CRC-32C of the bytes), each an `Event` protocol buffer encoded by hand.
// The first record carries file_version "brain.Event:2"; each scalar is an
// Event { wall_time, step, summary { value { tag, simple_value } } }.
import { appendFileSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { ArgumentError } from '../errors.js';

// CRC-32C (Castagnoli, reflected polynomial 0x82f63b78), table-driven.
const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0x82f63b78 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

export function crc32c(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (let i = 0; i < bytes.length; i++) c = CRC_TABLE[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/** TFRecord's masked CRC: rotate right by 15 bits and add a constant (so CRCs of CRCs do not collide). */
export function maskedCrc32c(bytes: Uint8Array): number {
  const c = crc32c(bytes);
  return ((((c >>> 15) | (c << 17)) >>> 0) + 0xa282ead8) >>> 0;
}

// ---- protocol buffers, the few wire types an Event needs

function varint(value: number | bigint): number[] {
  let v = BigInt.asUintN(64, BigInt(value));
  const out: number[] = [];
  while (v >= 0x80n) {
    out.push(Number(v & 0x7fn) | 0x80);
    v >>= 7n;
  }
  out.push(Number(v));
  return out;
}

const key = (field: number, wireType: number) => varint((field << 3) | wireType);

function bytesField(field: number, bytes: Uint8Array): number[] {
  return [...key(field, 2), ...varint(bytes.length), ...bytes];
}

function doubleField(field: number, v: number): number[] {
  const b = Buffer.alloc(8);
  b.writeDoubleLE(v);
  return [...key(field, 1), ...b];
}

function floatField(field: number, v: number): number[] {
  const b = Buffer.alloc(4);
  b.writeFloatLE(v);
  return [...key(field, 5), ...b];
}

/** Event (tensorflow/core/util/event.proto): wall_time = 1 (double), step = 2 (int64), file_version = 3, summary = 5. */
export function encodeEvent(e: { wallTime: number; step?: number; fileVersion?: string; scalars?: Array<{ tag: string; value: number }> }): Uint8Array {
  const out = [...doubleField(1, e.wallTime)];
  if (e.step !== undefined && e.step !== 0) out.push(...key(2, 0), ...varint(e.step));
  if (e.fileVersion !== undefined) out.push(...bytesField(3, Buffer.from(e.fileVersion, 'utf8')));
  if (e.scalars) {
    // Summary { repeated Value value = 1 }, Value { string tag = 1; float simple_value = 2 }
    const values = e.scalars.flatMap((s) => bytesField(1, Uint8Array.from([...bytesField(1, Buffer.from(s.tag, 'utf8')), ...floatField(2, s.value)])));
    out.push(...bytesField(5, Uint8Array.from(values)));
  }
  return Uint8Array.from(out);
}

/** One TFRecord: length (uint64 LE), masked CRC of the length, data, masked CRC of the data. */
export function tfRecord(data: Uint8Array): Buffer {
  const header = Buffer.alloc(12);
  header.writeBigUInt64LE(BigInt(data.length), 0);
  header.writeUInt32LE(maskedCrc32c(header.subarray(0, 8)), 8);
  const footer = Buffer.alloc(4);
  footer.writeUInt32LE(maskedCrc32c(data), 0);
  return Buffer.concat([header, data, footer]);
}

/**
 * Writes scalars into `<logDir>/events.out.tfevents.<secs>.<host>.<pid>.0`, which
 * `tensorboard --logdir <logDir or a folder above it>` shows. Records are buffered and
 * appended by flush() (also done by addScalar at most every `flushSeconds`, and by close()).
 */
export class TensorBoardWriter {
  readonly file: string;
  private pending: Buffer[] = [];
  private lastFlush = Date.now();
  private closed = false;
  private readonly flushMs: number;

  constructor(
    readonly logDir: string,
    options: { flushSeconds?: number; filenameSuffix?: string } = {},
  ) {
    if (typeof logDir !== 'string' || !logDir) throw new ArgumentError('TensorBoardWriter', 'logDir must be a folder path');
    mkdirSync(logDir, { recursive: true });
    const secs = Math.floor(Date.now() / 1000);
    // a second writer in the same folder, second and process gets the next number instead of overwriting
    let n = 0;
    const name = (k: number) => join(logDir, `events.out.tfevents.${secs}.${hostname()}.${process.pid}.${k}${options.filenameSuffix ?? ''}`);
    while (existsSync(name(n))) n++;
    this.file = name(n);
    this.flushMs = (options.flushSeconds ?? 2) * 1000;
    writeFileSync(this.file, tfRecord(encodeEvent({ wallTime: Date.now() / 1000, fileVersion: 'brain.Event:2' })));
  }

  /** One scalar value of `tag` at `step` (an integer >= 0); wallTime in seconds since 1970 (default now). */
  addScalar(tag: string, value: number, step: number, wallTime?: number): void {
    if (this.closed) throw new ArgumentError('TensorBoardWriter.addScalar', `${this.file} is closed`);
    if (typeof tag !== 'string' || !tag) throw new ArgumentError('TensorBoardWriter.addScalar', 'tag must be a non-empty string');
    if (typeof value !== 'number') throw new ArgumentError('TensorBoardWriter.addScalar', `${tag}: value must be a number, got ${typeof value}`);
    if (!Number.isInteger(step) || step < 0) throw new ArgumentError('TensorBoardWriter.addScalar', `${tag}: step must be an integer >= 0, got ${step}`);
    this.pending.push(tfRecord(encodeEvent({ wallTime: wallTime ?? Date.now() / 1000, step, scalars: [{ tag, value }] })));
    if (Date.now() - this.lastFlush >= this.flushMs) this.flush();
  }

  flush(): void {
    if (this.pending.length) appendFileSync(this.file, Buffer.concat(this.pending));
    this.pending = [];
    this.lastFlush = Date.now();
  }

  close(): void {
    if (this.closed) return;
    this.flush();
    this.closed = true;
  }
}
