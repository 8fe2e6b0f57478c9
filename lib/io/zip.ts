// A minimal reader for the zip container torch.save writes (since 1.6): it
// lists entries from the central directory and finds where each stored
// entry's bytes start. Entries are read by the caller, so large storages go
// straight from the file into tensor memory.
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

  close(): void { closeSync(this.fd); }

  /** Where the entry's bytes start in the file (after its local header). */
  dataOffset(e: ZipEntry): number {
    const h = this.read(e.headerOffset, 30);
    if (h.readUInt32LE(0) !== 0x04034b50) throw this.corrupt(`bad local header for ${e.name}`);
    const start = e.headerOffset + 30 + h.readUInt16LE(26) + h.readUInt16LE(28);
    if (start + e.compressedSize > this.size) throw this.corrupt(`entry ${e.name} runs past the end of the file (truncated?)`);
    return start;
  }

  /** The whole entry as a Buffer (for small entries: data.pkl, version). */
  readEntry(name: string): Buffer {
    const e = this.entries.get(name);
    if (!e) throw new Error(`${this.path}: no entry '${name}' in the archive`);
    const raw = this.read(this.dataOffset(e), e.compressedSize);
    if (e.method === 0) return raw;
    if (e.method === 8) return inflateRawSync(raw);
    throw new Error(`${this.path}: entry ${name} uses unsupported compression method ${e.method}`);
  }

  read(offset: number, length: number): Buffer {
    if (offset < 0 || offset + length > this.size) throw this.corrupt(`read of ${length} bytes at ${offset} is past the end of the file (truncated?)`);
    const b = Buffer.alloc(length);
    let done = 0;
    while (done < length) {
      const n = readSync(this.fd, b, done, length - done, offset + done);
      if (n === 0) throw this.corrupt('unexpected end of file');
      done += n;
    }
    return b;
  }

  private corrupt(what: string): Error { return new Error(`${this.path}: not a valid zip archive: ${what}`); }

  private readDirectory(): void {
    // End of central directory: the last 22 bytes plus a comment of up to 64 KiB.
    const tail = Math.min(this.size, 22 + 65535);
    const buf = this.read(this.size - tail, tail);
    let eocd = -1;
    for (let i = buf.length - 22; i >= 0; i--) if (buf.readUInt32LE(i) === 0x06054b50) { eocd = i; break; }
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
    const dir = this.read(dirOffset, dirSize);
    let p = 0;
    for (let i = 0; i < count; i++) {
      if (p + 46 > dir.length || dir.readUInt32LE(p) !== 0x02014b50) throw this.corrupt('bad central directory entry');
      const method = dir.readUInt16LE(p + 10);
      let compressedSize = dir.readUInt32LE(p + 20);
      let size = dir.readUInt32LE(p + 24);
      const nameLen = dir.readUInt16LE(p + 28);
      const extraLen = dir.readUInt16LE(p + 30);
      const commentLen = dir.readUInt16LE(p + 32);
      let headerOffset = dir.readUInt32LE(p + 42);
      const name = dir.toString('utf8', p + 46, p + 46 + nameLen);
      // zip64 extra field: 64-bit values for the fields that were saturated, in order
      let x = p + 46 + nameLen;
      const end = x + extraLen;
      while (x + 4 <= end) {
        const id = dir.readUInt16LE(x);
        const len = dir.readUInt16LE(x + 2);
        if (id === 0x0001) {
          let q = x + 4;
          if (size === 0xffffffff) { size = Number(dir.readBigUInt64LE(q)); q += 8; }
          if (compressedSize === 0xffffffff) { compressedSize = Number(dir.readBigUInt64LE(q)); q += 8; }
          if (headerOffset === 0xffffffff) { headerOffset = Number(dir.readBigUInt64LE(q)); q += 8; }
        }
        x += 4 + len;
      }
      this.entries.set(name, { name, method, compressedSize, size, headerOffset });
      p = end + commentLen;
    }
  }
}
