// A restricted unpickler: the pickle opcodes that torch.save state dicts use
// (protocols 2-4), and nothing that runs code. Every global the file names
// goes through `findGlobal`, which allows a short list and refuses the rest
// with the name in the error. Dicts become Maps (insertion order kept),
// tuples and lists become arrays.
//
// Its work is bounded by the data: each opcode does a constant amount of work
// (plus the items it moves), and what it builds is charged against a memory
// budget that grows with the pickle's size. A hostile pickle (millions of
// empty dicts from a few compressed bytes, nesting, huge argument lists)
// ends in a PickleError that names the file, not in an out-of-memory abort.

export class PickleError extends Error {}

export interface UnpickleHooks {
  /** Resolves a global (module, name): a function for REDUCE, or any marker value. */
  findGlobal(module: string, name: string): unknown;
  /** Resolves a persistent id (torch: ('storage', type, key, location, numel)). */
  persistentLoad(pid: unknown): unknown;
}

export interface UnpickleLimits {
  /** Estimated bytes of JS objects the pickle may build. */
  maxBuiltBytes: number;
  /** Open MARKs at once (the pickle's nesting of lists, tuples and dicts). */
  maxDepth: number;
  /** Arguments of one call (the allowed torch functions take at most 6). */
  maxCallArgs: number;
}

/**
 * The default limits for `bytes` of pickle: far above what a state dict
 * needs (about 1 KB of objects per tensor, from about 150 bytes of pickle:
 * 256 MB is 250,000 tensors), far below what exhausts the JS heap.
 */
export function defaultLimits(bytes: number): UnpickleLimits {
  return { maxBuiltBytes: Math.min(32 * 2 ** 20 + 16 * bytes, 256 * 2 ** 20), maxDepth: 1000, maxCallArgs: 16 };
}

// Rough sizes of what the unpickler builds, in bytes of JS heap (an item: a
// pointer, plus the slack of a growing array and the copy a MARK pop makes).
const COST = { dict: 256, list: 48, item: 16, dictItem: 48, string: 32, bytes: 96, memo: 48 } as const;

/** A short description of a pickled value for an error message (never recursive). */
export function describe(v: unknown): string {
  if (Array.isArray(v)) return `a tuple/list of ${v.length}`;
  if (v instanceof Map) return `a dict of ${v.size}`;
  if (typeof v === 'string') return JSON.stringify(v.length > 60 ? `${v.slice(0, 60)}...` : v);
  if (v === null || typeof v === 'number' || typeof v === 'boolean') return String(v);
  return typeof v === 'object' ? (v.constructor?.name ?? 'an object') : typeof v;
}

export function unpickle(data: Buffer, hooks: UnpickleHooks, where = 'pickle', limits: UnpickleLimits = defaultLimits(data.length)): unknown {
  const stack: unknown[] = [];
  const marks: number[] = []; // stack positions of the open MARKs
  const memo = new Map<number, unknown>();
  let built = 0;
  let p = 0;
  const fail = (msg: string): never => {
    throw new PickleError(`${where}: ${msg} (at byte ${p})`);
  };
  const charge = (bytes: number) => {
    built += bytes;
    if (built > limits.maxBuiltBytes)
      fail(
        `the pickle builds more than ${Math.round(limits.maxBuiltBytes / 2 ** 20)} MB of objects from ${data.length} bytes; a state dict needs far less (damaged or hostile file?)`,
      );
  };
  const need = (n: number) => {
    if (p + n > data.length) fail('unexpected end of data (truncated?)');
  };
  const u8 = () => {
    need(1);
    return data[p++];
  };
  const u16 = () => {
    need(2);
    const v = data.readUInt16LE(p);
    p += 2;
    return v;
  };
  const u32 = () => {
    need(4);
    const v = data.readUInt32LE(p);
    p += 4;
    return v;
  };
  const i32 = () => {
    need(4);
    const v = data.readInt32LE(p);
    p += 4;
    return v;
  };
  const str = (n: number) => {
    need(n);
    charge(COST.string + n);
    const s = data.toString('utf8', p, p + n);
    p += n;
    return s;
  };
  const line = () => {
    const e = data.indexOf(0x0a, p);
    if (e < 0) fail('unterminated line');
    charge(COST.string + e - p);
    const s = data.toString('latin1', p, e);
    p = e + 1;
    return s;
  };
  const push = (v: unknown) => {
    charge(COST.item);
    stack.push(v);
  };
  const pop = () => {
    if (stack.length <= (marks.length ? marks[marks.length - 1] : 0)) fail('stack underflow');
    return stack.pop();
  };
  const popMark = (): unknown[] => {
    const i = marks.pop();
    if (i === undefined) fail('missing MARK');
    return stack.splice(i!);
  };
  const top = () => {
    if (stack.length <= (marks.length ? marks[marks.length - 1] : 0)) fail('stack underflow');
    return stack[stack.length - 1];
  };
  const newList = (items: unknown[] = []) => {
    charge(COST.list + COST.item * items.length);
    return items;
  };
  const setItems = (d: unknown, kv: unknown[]) => {
    if (!(d instanceof Map)) fail('SETITEM on something that is not a dict');
    if (kv.length % 2) fail('SETITEMS with an odd number of items');
    charge(COST.dictItem * (kv.length / 2));
    for (let i = 0; i + 1 < kv.length; i += 2) (d as Map<unknown, unknown>).set(kv[i], kv[i + 1]);
  };
  const memoGet = (k: number) => {
    if (!memo.has(k)) fail(`unknown memo ${k}`);
    push(memo.get(k));
  };
  const memoPut = (k: number) => {
    if (!memo.has(k)) charge(COST.memo);
    memo.set(k, top());
  };
  const append = (l: unknown, items: unknown[]) => {
    if (!Array.isArray(l)) fail('APPEND to a non-list');
    charge(COST.item * items.length);
    for (const v of items) (l as unknown[]).push(v); // a loop, not push(...items): no call-stack limit
  };

  for (;;) {
    const op = u8();
    switch (op) {
      case 0x80:
        u8();
        break; // PROTO
      case 0x95:
        need(8);
        p += 8;
        break; // FRAME
      case 0x2e: {
        // STOP
        if (marks.length) fail('STOP inside an open MARK');
        return pop();
      }
      case 0x28: // MARK
        if (marks.length >= limits.maxDepth) fail(`nesting deeper than ${limits.maxDepth}`);
        marks.push(stack.length);
        break;
      case 0x7d:
        charge(COST.dict);
        push(new Map());
        break; // EMPTY_DICT
      case 0x5d:
        push(newList());
        break; // EMPTY_LIST
      case 0x29:
        push(newList());
        break; // EMPTY_TUPLE
      case 0x64: {
        const kv = popMark();
        charge(COST.dict);
        const d = new Map();
        setItems(d, kv);
        push(d);
        break;
      } // DICT
      case 0x6c:
      case 0x74:
        push(newList(popMark()));
        break; // LIST, TUPLE
      case 0x85:
        push(newList([pop()]));
        break; // TUPLE1
      case 0x86: {
        const b = pop();
        const a = pop();
        push(newList([a, b]));
        break;
      } // TUPLE2
      case 0x87: {
        const c = pop();
        const b = pop();
        const a = pop();
        push(newList([a, b, c]));
        break;
      } // TUPLE3
      case 0x4e:
        push(null);
        break; // NONE
      case 0x88:
        push(true);
        break; // NEWTRUE
      case 0x89:
        push(false);
        break; // NEWFALSE
      case 0x4a:
        push(i32());
        break; // BININT
      case 0x4b:
        push(u8());
        break; // BININT1
      case 0x4d:
        push(u16());
        break; // BININT2
      case 0x8a: {
        // LONG1: little-endian two's complement
        const n = u8();
        need(n);
        let v = 0n;
        for (let i = n - 1; i >= 0; i--) v = (v << 8n) | BigInt(data[p + i]);
        if (n > 0 && data[p + n - 1] & 0x80) v -= 1n << BigInt(8 * n);
        p += n;
        push(Number(v));
        break;
      }
      case 0x49: {
        const s = line();
        push(s === '01' ? true : s === '00' ? false : Number(s));
        break;
      } // INT
      case 0x47:
        need(8);
        push(data.readDoubleBE(p));
        p += 8;
        break; // BINFLOAT
      case 0x58:
        push(str(u32()));
        break; // BINUNICODE
      case 0x8c:
        push(str(u8()));
        break; // SHORT_BINUNICODE
      case 0x8d: {
        need(8);
        const n = Number(data.readBigUInt64LE(p));
        p += 8;
        push(str(n));
        break;
      } // BINUNICODE8
      case 0x42: {
        const n = u32();
        need(n);
        charge(COST.bytes);
        push(data.subarray(p, p + n));
        p += n;
        break;
      } // BINBYTES
      case 0x43: {
        const n = u8();
        need(n);
        charge(COST.bytes);
        push(data.subarray(p, p + n));
        p += n;
        break;
      } // SHORT_BINBYTES
      case 0x71:
        memoPut(u8());
        break; // BINPUT
      case 0x72:
        memoPut(u32());
        break; // LONG_BINPUT
      case 0x94:
        memoPut(memo.size);
        break; // MEMOIZE
      case 0x68:
        memoGet(u8());
        break; // BINGET
      case 0x6a:
        memoGet(u32());
        break; // LONG_BINGET
      case 0x61: {
        const v = pop();
        append(top(), [v]);
        break;
      } // APPEND
      case 0x65: {
        const items = popMark();
        append(top(), items);
        break;
      } // APPENDS
      case 0x73: {
        const v = pop();
        const k = pop();
        setItems(top(), [k, v]);
        break;
      } // SETITEM
      case 0x75: {
        const kv = popMark();
        setItems(top(), kv);
        break;
      } // SETITEMS
      case 0x63: {
        const module = line();
        const name = line();
        push(hooks.findGlobal(module, name));
        break;
      } // GLOBAL
      case 0x93: {
        // STACK_GLOBAL
        const name = pop();
        const module = pop();
        if (typeof module !== 'string' || typeof name !== 'string') fail(`STACK_GLOBAL of ${describe(module)}.${describe(name)}, not two strings`);
        push(hooks.findGlobal(module as string, name as string));
        break;
      }
      case 0x51:
        push(hooks.persistentLoad(pop()));
        break; // BINPERSID
      case 0x52:
      case 0x81: {
        // REDUCE, NEWOBJ
        const args = pop();
        const fn = pop();
        if (typeof fn !== 'function') fail('call of something that is not an allowed callable');
        if (!Array.isArray(args)) fail('call arguments are not a tuple');
        if ((args as unknown[]).length > limits.maxCallArgs) fail(`a call with ${(args as unknown[]).length} arguments`);
        push((fn as (...a: unknown[]) => unknown)(...(args as unknown[])));
        break;
      }
      case 0x62: {
        // BUILD: only the state of an OrderedDict (its _metadata) is expected; it is dropped
        pop();
        if (!(top() instanceof Map)) fail('BUILD on an object that is not a dict');
        break;
      }
      default:
        fail(`unsupported pickle opcode 0x${op.toString(16)} (not part of a state dict)`);
    }
  }
}
