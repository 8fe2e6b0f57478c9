// The safetensors format: an 8-byte little-endian header length, a JSON
// header {name: {dtype, shape, data_offsets}}, then the raw bytes. Reading
// goes from the file straight into tensor memory; writing goes to a
// temporary file that is renamed into place, so an interrupted save never
// replaces a good checkpoint with a broken one.
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { native } from '../native/loader.js';
import { writeAll, writeAtomic } from './atomic.js';
import { Tensor } from '../tensor/tensor.js';
import type { DType } from '../tensor/dtype.js';

const TO_DTYPE: Record<string, DType> = {
  F64: 'float64',
  F32: 'float32',
  F16: 'float16',
  BF16: 'bfloat16',
  I64: 'int64',
  I32: 'int32',
  I16: 'int16',
  I8: 'int8',
  U8: 'uint8',
  BOOL: 'bool',
};
const FROM_DTYPE = Object.fromEntries(Object.entries(TO_DTYPE).map(([k, v]) => [v, k])) as Record<DType, string>;
const ELEMENT_SIZE: Record<string, number> = { F64: 8, F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4, I16: 2, I8: 1, U8: 1, BOOL: 1 };

interface HeaderEntry {
  dtype: string;
  shape: number[];
  data_offsets: [number, number];
}

/** As safetensors itself: a larger header is refused before it is read. */
export const MAX_HEADER_BYTES = 100 * 2 ** 20;
/** More tensors than any real checkpoint has in one file; each costs native memory. */
export const MAX_TENSORS = 100_000;
/** JSON objects, arrays and commas in the header: about 10 a tensor in real files. */
const MAX_HEADER_TOKENS = 2_000_000;
const MAX_DIMS = 64;

/** True when the file starts like a safetensors file. */
export function looksLikeSafetensors(head: Buffer, fileSize: number): boolean {
  if (head.length < 9) return false;
  const n = Number(head.readBigUInt64LE(0));
  return n > 1 && 8 + n <= fileSize && head[8] === 0x7b; // '{'
}

/**
 * Counts the JSON containers and items outside strings, so a header of
 * millions of tiny arrays is refused before JSON.parse spends seconds and
 * gigabytes on it.
 */
function countJsonTokens(json: Buffer): number {
  let tokens = 0;
  let inString = false;
  for (let i = 0; i < json.length; i++) {
    const c = json[i];
    if (inString) {
      if (c === 0x5c)
        i++; // backslash: skip the escaped byte
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x7b || c === 0x5b || c === 0x2c) tokens++; // { [ ,
  }
  return tokens;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** The JSON header of an open safetensors file, and where its data starts. */
function readHeader(fd: number, path: string): { header: Record<string, unknown>; metadata: Record<string, string>; dataStart: number; size: number } {
  const size = fstatSync(fd).size;
  const lenBuf = Buffer.alloc(8);
  if (size < 8 || readSync(fd, lenBuf, 0, 8, 0) !== 8) throw new Error(`${path}: too short for a safetensors file`);
  const n = Number(lenBuf.readBigUInt64LE(0));
  if (n < 2 || n > MAX_HEADER_BYTES || 8 + n > size)
    throw new Error(
      `${path}: invalid safetensors header length ${n} (file is ${size} bytes, headers are at most ${MAX_HEADER_BYTES}; truncated or not safetensors?)`,
    );
  const json = Buffer.alloc(n);
  if (readSync(fd, json, 0, n, 8) !== n) throw new Error(`${path}: the safetensors header could not be read (truncated?)`);
  const tokens = countJsonTokens(json);
  if (tokens > MAX_HEADER_TOKENS)
    throw new Error(`${path}: the safetensors header holds ${tokens} JSON items, more than ${MAX_HEADER_TOKENS} (damaged or hostile file?)`);
  let header: unknown;
  try {
    header = JSON.parse(json.toString('utf8'));
  } catch (err) {
    throw new Error(`${path}: the safetensors header is not valid JSON: ${(err as Error).message}`);
  }
  if (!isObject(header)) throw new Error(`${path}: the safetensors header is not a JSON object`);
  const metadata = header.__metadata__ ?? {};
  if (!isObject(metadata) || !Object.values(metadata).every((v) => typeof v === 'string'))
    throw new Error(`${path}: the safetensors __metadata__ must be an object of strings`);
  return { header, metadata: metadata as Record<string, string>, dataStart: 8 + n, size };
}

/** Only the header's __metadata__ (no tensor data is read). */
export function readSafetensorsMetadata(path: string): Record<string, string> {
  const fd = openSync(path, 'r');
  try {
    return readHeader(fd, path).metadata;
  } finally {
    closeSync(fd);
  }
}

/**
 * The header's tensors, checked against the file: known dtypes, shapes of
 * non-negative integers, and data_offsets that match the shapes and tile the
 * data section exactly (in range, no overlaps, no gaps), as safetensors
 * requires. So the tensors together never need more bytes than the file has.
 */
function checkedEntries(path: string, header: Record<string, unknown>, dataSize: number): Array<[string, HeaderEntry]> {
  const entries = Object.entries(header).filter(([name]) => name !== '__metadata__') as Array<[string, HeaderEntry]>;
  if (entries.length > MAX_TENSORS)
    throw new Error(`${path}: the header declares ${entries.length} tensors, more than ${MAX_TENSORS} (damaged or hostile file?)`);
  for (const [name, entry] of entries) {
    const where = `${path}: tensor '${name}'`;
    if (!isObject(entry)) throw new Error(`${where} is not described by an object`);
    if (typeof entry.dtype !== 'string' || !Object.hasOwn(ELEMENT_SIZE, entry.dtype))
      throw new Error(`${where} has unsupported dtype ${JSON.stringify(entry.dtype)}`);
    // libtorch multiplies all dims even when one is 0: their product must stay an exact integer
    if (
      !Array.isArray(entry.shape) ||
      entry.shape.length > MAX_DIMS ||
      !entry.shape.every((d) => Number.isSafeInteger(d) && d >= 0) ||
      entry.shape.reduce((a, d) => a * Math.max(d, 1), 1) > Number.MAX_SAFE_INTEGER
    )
      throw new Error(`${where} has an invalid shape ${JSON.stringify(entry.shape)}`);
    const offsets = entry.data_offsets;
    if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every((o) => Number.isSafeInteger(o) && o >= 0))
      throw new Error(`${where} has invalid data_offsets ${JSON.stringify(offsets)}`);
    let numel = 1;
    for (const d of entry.shape) numel = Math.min(numel * d, dataSize + 1); // saturate: no float overflow
    const [b, end] = offsets;
    if (end - b !== numel * ELEMENT_SIZE[entry.dtype] || end > dataSize)
      throw new Error(
        `${where} has data_offsets ${JSON.stringify(offsets)} that do not fit its shape ${JSON.stringify(entry.shape)} and ${entry.dtype} within the ${dataSize} data bytes (truncated?)`,
      );
  }
  // the byte ranges, in order, must follow each other from 0 to the end of the file
  const order = entries.map(([name, e]) => [name, e.data_offsets[0], e.data_offsets[1]] as const).sort((x, y) => x[1] - y[1] || x[2] - y[2]);
  let covered = 0;
  let previous = '';
  for (const [name, b, end] of order) {
    if (b < covered) throw new Error(`${path}: tensor '${name}' (bytes ${b}..${end}) overlaps tensor '${previous}'`);
    if (b > covered) throw new Error(`${path}: data bytes ${covered}..${b} belong to no tensor (before '${name}'; damaged file?)`);
    covered = end;
    previous = name;
  }
  if (covered !== dataSize) throw new Error(`${path}: data bytes ${covered}..${dataSize} belong to no tensor (damaged file?)`);
  return entries;
}

export function readSafetensors(path: string): { tensors: Map<string, Tensor>; metadata: Record<string, string> } {
  const fd = openSync(path, 'r');
  let entries: Array<[string, HeaderEntry]>;
  let metadata: Record<string, string>;
  let dataStart: number;
  try {
    let header: Record<string, unknown>;
    let size: number;
    ({ header, metadata, dataStart, size } = readHeader(fd, path));
    entries = checkedEntries(path, header, size - dataStart);
  } finally {
    closeSync(fd);
  }
  const tensors = new Map<string, Tensor>();
  for (const [name, entry] of entries) {
    const [b, end] = entry.data_offsets;
    const flat = new Tensor(native.fromFile(path, dataStart + b, end - b, TO_DTYPE[entry.dtype]));
    tensors.set(name, flat.reshape(entry.shape));
    flat.dispose();
  }
  return { tensors, metadata };
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
  writeAtomic(path, (fd) => {
    writeAll(fd, lenBuf);
    writeAll(fd, jsonBuf);
    for (const t of tensors.values()) writeAll(fd, native.rawBytes(t.handle) as Buffer);
  });
}
