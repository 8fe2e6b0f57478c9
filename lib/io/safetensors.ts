// The safetensors format: an 8-byte little-endian header length, a JSON
// header {name: {dtype, shape, data_offsets}}, then the raw bytes. Reading
// goes from the file straight into tensor memory; writing goes to a
// temporary file that is renamed into place, so an interrupted save never
// replaces a good checkpoint with a broken one.
import { closeSync, fstatSync, fsyncSync, openSync, readSync, renameSync, rmSync, writeSync } from 'node:fs';
import { native } from '../native/loader.js';
import { Tensor } from '../tensor/tensor.js';
import type { DType } from '../tensor/dtype.js';

const TO_DTYPE: Record<string, DType> = {
  F64: 'float64', F32: 'float32', F16: 'float16', BF16: 'bfloat16', I64: 'int64', I32: 'int32', I16: 'int16', I8: 'int8', U8: 'uint8', BOOL: 'bool',
};
const FROM_DTYPE = Object.fromEntries(Object.entries(TO_DTYPE).map(([k, v]) => [v, k])) as Record<DType, string>;
const ELEMENT_SIZE: Record<string, number> = { F64: 8, F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4, I16: 2, I8: 1, U8: 1, BOOL: 1 };

interface HeaderEntry { dtype: string; shape: number[]; data_offsets: [number, number] }

/** True when the file starts like a safetensors file. */
export function looksLikeSafetensors(head: Buffer, fileSize: number): boolean {
  if (head.length < 9) return false;
  const n = Number(head.readBigUInt64LE(0));
  return n > 1 && 8 + n <= fileSize && head[8] === 0x7b; // '{'
}

/** The JSON header of an open safetensors file, and where its data starts. */
function readHeader(fd: number, path: string): { header: Record<string, unknown>; dataStart: number; size: number } {
  const size = fstatSync(fd).size;
  const lenBuf = Buffer.alloc(8);
  if (readSync(fd, lenBuf, 0, 8, 0) !== 8) throw new Error(`${path}: too short for a safetensors file`);
  const n = Number(lenBuf.readBigUInt64LE(0));
  if (n <= 0 || n > 100 * 2 ** 20 || 8 + n > size) throw new Error(`${path}: invalid safetensors header length ${n} (file is ${size} bytes; truncated or not safetensors?)`);
  const json = Buffer.alloc(n);
  readSync(fd, json, 0, n, 8);
  try {
    return { header: JSON.parse(json.toString('utf8')), dataStart: 8 + n, size };
  } catch (err) {
    throw new Error(`${path}: the safetensors header is not valid JSON: ${(err as Error).message}`);
  }
}

/** Only the header's __metadata__ (no tensor data is read). */
export function readSafetensorsMetadata(path: string): Record<string, string> {
  const fd = openSync(path, 'r');
  try {
    return (readHeader(fd, path).header.__metadata__ as Record<string, string>) ?? {};
  } finally {
    closeSync(fd);
  }
}

export function readSafetensors(path: string): { tensors: Map<string, Tensor>; metadata: Record<string, string> } {
  const fd = openSync(path, 'r');
  let header: Record<string, unknown>;
  let dataStart: number;
  try {
    let size: number;
    ({ header, dataStart, size } = readHeader(fd, path));
    const dataSize = size - dataStart;
    for (const [name, e] of Object.entries(header)) {
      if (name === '__metadata__') continue;
      const entry = e as HeaderEntry;
      const elem = ELEMENT_SIZE[entry?.dtype];
      if (!elem) throw new Error(`${path}: tensor '${name}' has unsupported dtype ${JSON.stringify(entry?.dtype)}`);
      if (!Array.isArray(entry.shape) || !entry.shape.every((d) => Number.isInteger(d) && d >= 0)) throw new Error(`${path}: tensor '${name}' has an invalid shape`);
      const [b, end] = entry.data_offsets ?? [];
      const numel = entry.shape.reduce((a, d) => a * d, 1);
      if (!Number.isInteger(b) || !Number.isInteger(end) || end - b !== numel * elem || b < 0 || end > dataSize)
        throw new Error(`${path}: tensor '${name}' has data_offsets ${JSON.stringify(entry.data_offsets)} that do not fit its shape ${JSON.stringify(entry.shape)} and ${entry.dtype} within the ${dataSize} data bytes (truncated?)`);
    }
  } finally {
    closeSync(fd);
  }
  const tensors = new Map<string, Tensor>();
  for (const [name, e] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    const entry = e as HeaderEntry;
    const [b, end] = entry.data_offsets;
    const flat = new Tensor(native.fromFile(path, dataStart + b, end - b, TO_DTYPE[entry.dtype]));
    tensors.set(name, flat.reshape(entry.shape));
    flat.dispose();
  }
  return { tensors, metadata: (header.__metadata__ as Record<string, string>) ?? {} };
}

export function writeSafetensors(path: string, tensors: Map<string, Tensor>, metadata: Record<string, string> = {}): void {
  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length) header.__metadata__ = metadata;
  let offset = 0;
  for (const [name, t] of tensors) {
    if (!(t instanceof Tensor)) throw new TypeError(`save: '${name}' is not a Tensor`);
    const dtype = FROM_DTYPE[t.dtype];
    const nbytes = t.numel() * ELEMENT_SIZE[dtype];
    header[name] = { dtype, shape: t.shape, data_offsets: [offset, offset + nbytes] };
    offset += nbytes;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - ((json.length + 8) % 8)) % 8); // data starts 8-byte aligned
  const jsonBuf = Buffer.from(json, 'utf8');
  const lenBuf = Buffer.alloc(8);
  lenBuf.writeBigUInt64LE(BigInt(jsonBuf.length));
  const tmp = `${path}.tmp-${process.pid}`;
  const fd = openSync(tmp, 'w');
  try {
    writeSync(fd, lenBuf);
    writeSync(fd, jsonBuf);
    for (const t of tensors.values()) {
      const bytes = native.rawBytes(t.handle) as Buffer;
      let done = 0;
      while (done < bytes.length) done += writeSync(fd, bytes, done, bytes.length - done);
    }
    fsyncSync(fd);
    closeSync(fd);
    renameSync(tmp, path);
  } catch (err) {
    try { closeSync(fd); } catch { /* already closed */ }
    rmSync(tmp, { force: true });
    throw err;
  }
}
