// A restricted unpickler: the pickle opcodes that torch.save state dicts use
// (protocols 2-4), and nothing that runs code. Every global the file names
// goes through `findGlobal`, which allows a short list and refuses the rest
// with the name in the error. Dicts become Maps (insertion order kept),
// tuples and lists become arrays.

export class PickleError extends Error {}

export interface UnpickleHooks {
  /** Resolves a global (module, name): a function for REDUCE, or any marker value. */
  findGlobal(module: string, name: string): unknown;
  /** Resolves a persistent id (torch: ('storage', type, key, location, numel)). */
  persistentLoad(pid: unknown): unknown;
}

const MARK = Symbol('mark');

export function unpickle(data: Buffer, hooks: UnpickleHooks, where = 'pickle'): unknown {
  const stack: unknown[] = [];
  const memo = new Map<number, unknown>();
  let p = 0;
  const fail = (msg: string): never => { throw new PickleError(`${where}: ${msg} (at byte ${p})`); };
  const need = (n: number) => { if (p + n > data.length) fail('unexpected end of data (truncated?)'); };
  const u8 = () => { need(1); return data[p++]; };
  const u16 = () => { need(2); const v = data.readUInt16LE(p); p += 2; return v; };
  const u32 = () => { need(4); const v = data.readUInt32LE(p); p += 4; return v; };
  const i32 = () => { need(4); const v = data.readInt32LE(p); p += 4; return v; };
  const str = (n: number) => { need(n); const s = data.toString('utf8', p, p + n); p += n; return s; };
  const line = () => { const e = data.indexOf(0x0a, p); if (e < 0) fail('unterminated line'); const s = data.toString('latin1', p, e); p = e + 1; return s; };
  const pop = () => { if (!stack.length) fail('stack underflow'); return stack.pop(); };
  const popMark = (): unknown[] => {
    const i = stack.lastIndexOf(MARK);
    if (i < 0) fail('missing MARK');
    const items = stack.splice(i + 1);
    stack.pop();
    return items;
  };
  const top = () => { if (!stack.length) fail('stack underflow'); return stack[stack.length - 1]; };
  const setItems = (d: unknown, kv: unknown[]) => {
    if (!(d instanceof Map)) fail('SETITEM on something that is not a dict');
    for (let i = 0; i + 1 < kv.length; i += 2) (d as Map<unknown, unknown>).set(kv[i], kv[i + 1]);
  };

  for (;;) {
    const op = u8();
    switch (op) {
      case 0x80: u8(); break; // PROTO
      case 0x95: need(8); p += 8; break; // FRAME
      case 0x2e: return pop(); // STOP
      case 0x28: stack.push(MARK); break; // MARK
      case 0x7d: stack.push(new Map()); break; // EMPTY_DICT
      case 0x5d: stack.push([]); break; // EMPTY_LIST
      case 0x29: stack.push([]); break; // EMPTY_TUPLE
      case 0x64: { const kv = popMark(); const d = new Map(); setItems(d, kv); stack.push(d); break; } // DICT
      case 0x6c: stack.push(popMark()); break; // LIST
      case 0x74: stack.push(popMark()); break; // TUPLE
      case 0x85: stack.push([pop()]); break; // TUPLE1
      case 0x86: { const b = pop(); const a = pop(); stack.push([a, b]); break; } // TUPLE2
      case 0x87: { const c = pop(); const b = pop(); const a = pop(); stack.push([a, b, c]); break; } // TUPLE3
      case 0x4e: stack.push(null); break; // NONE
      case 0x88: stack.push(true); break; // NEWTRUE
      case 0x89: stack.push(false); break; // NEWFALSE
      case 0x4a: stack.push(i32()); break; // BININT
      case 0x4b: stack.push(u8()); break; // BININT1
      case 0x4d: stack.push(u16()); break; // BININT2
      case 0x8a: { // LONG1: little-endian two's complement
        const n = u8(); need(n);
        let v = 0n;
        for (let i = n - 1; i >= 0; i--) v = (v << 8n) | BigInt(data[p + i]);
        if (n > 0 && data[p + n - 1] & 0x80) v -= 1n << BigInt(8 * n);
        p += n;
        stack.push(Number(v));
        break;
      }
      case 0x49: { const s = line(); stack.push(s === '01' ? true : s === '00' ? false : Number(s)); break; } // INT
      case 0x47: need(8); stack.push(data.readDoubleBE(p)); p += 8; break; // BINFLOAT
      case 0x58: stack.push(str(u32())); break; // BINUNICODE
      case 0x8c: stack.push(str(u8())); break; // SHORT_BINUNICODE
      case 0x8d: { need(8); const n = Number(data.readBigUInt64LE(p)); p += 8; stack.push(str(n)); break; } // BINUNICODE8
      case 0x42: { const n = u32(); need(n); stack.push(data.subarray(p, p + n)); p += n; break; } // BINBYTES
      case 0x43: { const n = u8(); need(n); stack.push(data.subarray(p, p + n)); p += n; break; } // SHORT_BINBYTES
      case 0x71: memo.set(u8(), top()); break; // BINPUT
      case 0x72: memo.set(u32(), top()); break; // LONG_BINPUT
      case 0x94: memo.set(memo.size, top()); break; // MEMOIZE
      case 0x68: { const k = u8(); if (!memo.has(k)) fail(`unknown memo ${k}`); stack.push(memo.get(k)); break; } // BINGET
      case 0x6a: { const k = u32(); if (!memo.has(k)) fail(`unknown memo ${k}`); stack.push(memo.get(k)); break; } // LONG_BINGET
      case 0x61: { const v = pop(); const l = top(); if (!Array.isArray(l)) fail('APPEND to a non-list'); (l as unknown[]).push(v); break; } // APPEND
      case 0x65: { const items = popMark(); const l = top(); if (!Array.isArray(l)) fail('APPENDS to a non-list'); (l as unknown[]).push(...items); break; } // APPENDS
      case 0x73: { const v = pop(); const k = pop(); setItems(top(), [k, v]); break; } // SETITEM
      case 0x75: { const kv = popMark(); setItems(top(), kv); break; } // SETITEMS
      case 0x63: { const module = line(); const name = line(); stack.push(hooks.findGlobal(module, name)); break; } // GLOBAL
      case 0x93: { const name = pop(); const module = pop(); stack.push(hooks.findGlobal(String(module), String(name))); break; } // STACK_GLOBAL
      case 0x51: stack.push(hooks.persistentLoad(pop())); break; // BINPERSID
      case 0x52: case 0x81: { // REDUCE, NEWOBJ
        const args = pop();
        const fn = pop();
        if (typeof fn !== 'function') fail('call of something that is not an allowed callable');
        if (!Array.isArray(args)) fail('call arguments are not a tuple');
        stack.push((fn as (...a: unknown[]) => unknown)(...(args as unknown[])));
        break;
      }
      case 0x62: { // BUILD: only the state of an OrderedDict (its _metadata) is expected; it is dropped
        pop();
        if (!(top() instanceof Map)) fail('BUILD on an object that is not a dict');
        break;
      }
      default:
        fail(`unsupported pickle opcode 0x${op.toString(16)} (not part of a state dict)`);
    }
  }
}
