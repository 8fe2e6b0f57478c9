// A minimal reader for the zip container torch.save writes (since 1.6): it
// lists entries from the central directory and finds where each stored
// entry's bytes start. Entries are read by the caller, so large storages go
// straight from the file into tensor memory. Every field is checked against
// the file before it is used: a damaged or hostile archive gives an error
// that names the file and the entry, never a bare RangeError, and a
// compressed entry is inflated no further than the size it declares.
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { inflateRawSync } from 'node:zlib';

export interface ZipEntry {
  name: string;
  /** 0 = stored (torch.save's choice), 8 = deflate. */
  method: number;
  compressedSize: number;
  size: number;
  /** Offset of the local file header. */
  headerOffset: number;
}

/** More entries than any torch.save archive has (one per storage, plus a few). */
export const MAX_ZIP_ENTRIES = 1_000_000;

export class ZipFile {
  readonly entries = new Map<string, ZipEntry>();
  private readonly fd: number;
  readonly size: number;

  constructor(readonly path: string) {
    this.fd = openSync(path, 'r');
    try {
      this.size = fstatSync(this.fd).size;
      this.readDirectory();
    } catch (err) {
      closeSync(this.fd);
      throw err;
    }
  }

  close(): void {
    closeSync(this.fd);
  }

  /** Where the entry's bytes start in the file (after its local header). */
  dataOffset(e: ZipEntry): number {
    if (e.headerOffset + 30 > this.size) throw this.corrupt(`the local header of ${e.name} is past the end of the file (truncated?)`);
    const h = this.read(e.headerOffset, 30);
    if (h.readUInt32LE(0) !== 0x04034b50) throw this.corrupt(`bad local header for ${e.name}`);
    const start = e.headerOffset + 30 + h.readUInt16LE(26) + h.readUInt16LE(28);
    if (start + e.compressedSize > this.size) throw this.corrupt(`entry ${e.name} runs past the end of the file (truncated?)`);
    return start;
  }

  /**
   * The whole entry as a Buffer (for small entries: data.pkl, version).
   * `maxSize` bounds what it may declare, and inflating stops at the declared
   * size, so a small compressed entry cannot expand into gigabytes.
   */
  readEntry(name: string, maxSize: number): Buffer {
    const e = this.entries.get(name);
    if (!e) throw new Error(`${this.path}: no entry '${name}' in the archive`);
    if (e.size > maxSize)
      throw new Error(`${this.path}: entry ${name} declares ${e.size} bytes, more than the ${maxSize} this reader allows for it (damaged or hostile file?)`);
    const raw = this.read(this.dataOffset(e), e.compressedSize);
    if (e.method === 0) return raw;
    if (e.method !== 8) throw new Error(`${this.path}: entry ${name} uses unsupported compression method ${e.method}`);
    let out: Buffer;
    try {
      // one byte more than declared, to tell "exactly the size" from "more than it"
      out = inflateRawSync(raw, { maxOutputLength: e.size + 1 });
    } catch (err) {
      const tooBig = (err as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE';
      throw this.corrupt(
        tooBig ? `entry ${name} inflates to more than the ${e.size} bytes it declares` : `entry ${name} does not inflate: ${(err as Error).message}`,
      );
    }
    if (out.length !== e.size) throw this.corrupt(`entry ${name} inflates to ${out.length} bytes, not the ${e.size} it declares`);
    return out;
  }

  read(offset: number, length: number): Buffer {
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0 || offset + length > this.size)
      throw this.corrupt(`read of ${length} bytes at ${offset} is past the end of the file (truncated?)`);
    const b = Buffer.alloc(length);
    let done = 0;
    while (done < length) {
      const n = readSync(this.fd, b, done, length - done, offset + done);
      if (n === 0) throw this.corrupt('unexpected end of file');
      done += n;
    }
    return b;
  }

  private corrupt(what: string): Error {
    return new Error(`${this.path}: not a valid zip archive: ${what}`);
  }

  private readDirectory(): void {
    // End of central directory: the last 22 bytes plus a comment of up to 64 KiB.
    const tail = Math.min(this.size, 22 + 65535);
    if (tail < 22) throw this.corrupt('too short for a zip archive (truncated?)');
    const buf = this.read(this.size - tail, tail);
    let eocd = -1;
    for (let i = buf.length - 22; i >= 0; i--)
      if (buf.readUInt32LE(i) === 0x06054b50) {
        eocd = i;
        break;
      }
    if (eocd < 0) throw this.corrupt('no end-of-central-directory record (truncated or not a zip file)');
    let count = buf.readUInt16LE(eocd + 10);
    let dirSize = buf.readUInt32LE(eocd + 12);
    let dirOffset = buf.readUInt32LE(eocd + 16);
    if (count === 0xffff || dirSize === 0xffffffff || dirOffset === 0xffffffff) {
      // zip64: the locator sits just before the EOCD record
      const loc = eocd - 20;
      if (loc < 0 || buf.readUInt32LE(loc) !== 0x07064b50) throw this.corrupt('zip64 locator missing');
      const z = this.read(Number(buf.readBigUInt64LE(loc + 8)), 56);
      if (z.readUInt32LE(0) !== 0x06064b50) throw this.corrupt('bad zip64 end-of-central-directory record');
      count = Number(z.readBigUInt64LE(32));
      dirSize = Number(z.readBigUInt64LE(40));
      dirOffset = Number(z.readBigUInt64LE(48));
    }
    // each directory record takes at least 46 bytes: a count beyond that is a lie
    if (count > MAX_ZIP_ENTRIES || count * 46 > dirSize) throw this.corrupt(`the central directory declares ${count} entries in ${dirSize} bytes`);
    const dir = this.read(dirOffset, dirSize);
    let p = 0;
    for (let i = 0; i < count; i++) {
      if (p + 46 > dir.length || dir.readUInt32LE(p) !== 0x02014b50) throw this.corrupt(`bad central directory entry #${i}`);
      const method = dir.readUInt16LE(p + 10);
      let compressedSize = dir.readUInt32LE(p + 20);
      let size = dir.readUInt32LE(p + 24);
      const nameLen = dir.readUInt16LE(p + 28);
      const extraLen = dir.readUInt16LE(p + 30);
      const commentLen = dir.readUInt16LE(p + 32);
      let headerOffset = dir.readUInt32LE(p + 42);
      const end = p + 46 + nameLen + extraLen;
      if (end + commentLen > dir.length) throw this.corrupt(`central directory entry #${i} runs past the directory`);
      const name = dir.toString('utf8', p + 46, p + 46 + nameLen);
      // zip64 extra field: 64-bit values for the fields that were saturated, in order
      let x = p + 46 + nameLen;
      while (x + 4 <= end) {
        const id = dir.readUInt16LE(x);
        const len = dir.readUInt16LE(x + 2);
        if (x + 4 + len > end) throw this.corrupt(`the extra field of ${name} runs past its record`);
        if (id === 0x0001) {
          let q = x + 4;
          const next = (): number => {
            if (q + 8 > x + 4 + len) throw this.corrupt(`the zip64 field of ${name} is too short`);
            const v = Number(dir.readBigUInt64LE(q));
            q += 8;
            return v;
          };
          if (size === 0xffffffff) size = next();
          if (compressedSize === 0xffffffff) compressedSize = next();
          if (headerOffset === 0xffffffff) headerOffset = next();
        }
        x += 4 + len;
      }
      if (this.entries.has(name)) throw this.corrupt(`entry ${name} appears twice`);
      if (headerOffset >= this.size || compressedSize > this.size) throw this.corrupt(`entry ${name} lies outside the file (truncated?)`);
      if (method === 0 && size !== compressedSize) throw this.corrupt(`stored entry ${name} declares ${size} bytes but occupies ${compressedSize}`);
      this.entries.set(name, { name, method, compressedSize, size, headerOffset });
      p = end + commentLen;
    }
  }
}
