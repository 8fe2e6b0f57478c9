// A small pickle writer (protocol 2): the opcodes torch.save uses for a state
// dict, and nothing else. Values are written by the caller opcode by opcode
// (global, call, tuple, ...), in the order Python's pickler would emit them;
// globals are memoized so each is named once, as Python does.

const OP = {
  PROTO: 0x80,
  STOP: 0x2e, // .
  MARK: 0x28, // (
  GLOBAL: 0x63, // c
  REDUCE: 0x52, // R
  EMPTY_TUPLE: 0x29, // )
  TUPLE: 0x74, // t
  TUPLE1: 0x85,
  TUPLE2: 0x86,
  TUPLE3: 0x87,
  BINPUT: 0x71, // q
  LONG_BINPUT: 0x72, // r
  BINGET: 0x68, // h
  LONG_BINGET: 0x6a, // j
  BININT: 0x4a, // J
  BININT1: 0x4b, // K
  BININT2: 0x4d, // M
  LONG1: 0x8a,
  BINUNICODE: 0x58, // X
  NEWFALSE: 0x89,
  NEWTRUE: 0x88,
  BINPERSID: 0x51, // Q
  SETITEMS: 0x75, // u
} as const;

export class PickleWriter {
  private readonly chunks: Buffer[] = [];
  private readonly memo = new Map<string, number>();

  constructor() {
    this.bytes(OP.PROTO, 2);
  }

  private bytes(...b: number[]): void {
    this.chunks.push(Buffer.from(b));
  }

  /** A module-level name (collections.OrderedDict, torch.FloatStorage); memoized after its first use. */
  global(module: string, name: string): this {
    const key = `${module}\n${name}`;
    const at = this.memo.get(key);
    if (at !== undefined) {
      if (at < 256) this.bytes(OP.BINGET, at);
      else {
        const b = Buffer.alloc(5);
        b[0] = OP.LONG_BINGET;
        b.writeUInt32LE(at, 1);
        this.chunks.push(b);
      }
      return this;
    }
    if (/[\n\r]/.test(module + name)) throw new Error(`pickle: a global's name cannot hold a newline: ${module}.${name}`);
    this.chunks.push(Buffer.from(`c${module}\n${name}\n`, 'utf8'));
    const index = this.memo.size;
    this.memo.set(key, index);
    if (index < 256) this.bytes(OP.BINPUT, index);
    else {
      const b = Buffer.alloc(5);
      b[0] = OP.LONG_BINPUT;
      b.writeUInt32LE(index, 1);
      this.chunks.push(b);
    }
    return this;
  }

  mark(): this {
    this.bytes(OP.MARK);
    return this;
  }

  /** Calls the callable below the argument tuple on the stack. */
  reduce(): this {
    this.bytes(OP.REDUCE);
    return this;
  }

  emptyTuple(): this {
    this.bytes(OP.EMPTY_TUPLE);
    return this;
  }

  /** A tuple of the `n` items just written (after a mark when n > 3, as Python does). */
  tuple(n: number): this {
    if (n === 0) this.bytes(OP.EMPTY_TUPLE);
    else if (n === 1) this.bytes(OP.TUPLE1);
    else if (n === 2) this.bytes(OP.TUPLE2);
    else if (n === 3) this.bytes(OP.TUPLE3);
    else this.bytes(OP.TUPLE); // the caller wrote a mark before the items
    return this;
  }

  /** A tuple of small values: ints and strings. */
  tupleOf(items: Array<number | string>): this {
    if (items.length > 3) this.mark();
    for (const v of items) {
      if (typeof v === 'number') this.int(v);
      else this.string(v);
    }
    return this.tuple(items.length);
  }

  int(v: number): this {
    if (!Number.isSafeInteger(v)) throw new Error(`pickle: ${v} is not a safe integer`);
    if (v >= 0 && v < 256) this.bytes(OP.BININT1, v);
    else if (v >= 0 && v < 65536) this.bytes(OP.BININT2, v & 0xff, v >> 8);
    else if (v >= -(2 ** 31) && v < 2 ** 31) {
      const b = Buffer.alloc(5);
      b[0] = OP.BININT;
      b.writeInt32LE(v, 1);
      this.chunks.push(b);
    } else {
      // LONG1: the shortest two's-complement little-endian bytes
      const out: number[] = [];
      let x = BigInt(v);
      for (;;) {
        const byte = Number(x & 0xffn);
        out.push(byte);
        x >>= 8n;
        if ((x === 0n && !(byte & 0x80)) || (x === -1n && byte & 0x80)) break;
      }
      this.bytes(OP.LONG1, out.length, ...out);
    }
    return this;
  }

  bool(v: boolean): this {
    this.bytes(v ? OP.NEWTRUE : OP.NEWFALSE);
    return this;
  }

  string(s: string): this {
    const utf8 = Buffer.from(s, 'utf8');
    const head = Buffer.alloc(5);
    head[0] = OP.BINUNICODE;
    head.writeUInt32LE(utf8.length, 1);
    this.chunks.push(head, utf8);
    return this;
  }

  /** The persistent id on the stack becomes what persistent_load gives for it. */
  persistentId(): this {
    this.bytes(OP.BINPERSID);
    return this;
  }

  /** Sets the key/value pairs written since the mark into the dict below the mark. */
  setItems(): this {
    this.bytes(OP.SETITEMS);
    return this;
  }

  /** The finished pickle. */
  finish(): Buffer {
    this.bytes(OP.STOP);
    return Buffer.concat(this.chunks);
  }
}
