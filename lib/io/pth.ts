// Reads PyTorch `torch.save` files (.pth/.pt/.bin; the zip format written
// since PyTorch 1.6): data.pkl is unpickled with a short list of allowed
// globals, and each storage (data/<key>) is read from the file straight into
// tensor memory. Views and shared storages are rebuilt as views.
//
// Nothing the pickle declares is trusted: a storage must hold the bytes its
// numel needs, the storages together cannot be larger than the file, and a
// tensor's shape, strides and offset must fit inside its storage (checked
// here in exact arithmetic before the native view is made).
import { native } from '../native/loader.js';
import { Tensor } from '../tensor/tensor.js';
import type { DType } from '../tensor/dtype.js';
import { ZipFile } from './zip.js';
import { unpickle, describe, PickleError } from './pickle.js';

const STORAGE_DTYPES: Record<string, DType> = {
  FloatStorage: 'float32',
  DoubleStorage: 'float64',
  HalfStorage: 'float16',
  BFloat16Storage: 'bfloat16',
  LongStorage: 'int64',
  IntStorage: 'int32',
  ShortStorage: 'int16',
  CharStorage: 'int8',
  ByteStorage: 'uint8',
  BoolStorage: 'bool',
  UntypedStorage: 'uint8',
};
const ELEMENT_SIZE: Record<DType, number> = {
  float32: 4,
  float64: 8,
  float16: 2,
  bfloat16: 2,
  int64: 8,
  int32: 4,
  int16: 2,
  int8: 1,
  uint8: 1,
  bool: 1,
};

/** More tensors than any real state dict has in one file; each costs native memory. */
export const MAX_TENSORS = 100_000;
/** Most dimensions a tensor may declare (libtorch's own limit is 64). */
const MAX_DIMS = 64;

class StorageType {
  constructor(readonly dtype: DType) {}
}

/**
 * A storage as the pickle refers to it. Only tensors (views on a storage)
 * are handed out; a bare storage left in the result is reported by io.load.
 */
export class TorchStorage {
  constructor(
    readonly key: string,
    readonly tensor: Tensor,
  ) {}
}

/** True for the zip archives of torch.jit.save (they hold code, not a state dict). */
export function isTorchScriptArchive(zip: ZipFile): boolean {
  return [...zip.entries.keys()].some((n) => /(^|\/)(constants\.pkl|code\/)/.test(n));
}

/** What data.pkl may declare: a state dict's pickle takes ~150 bytes a tensor; this leaves room for other contents. */
function maxPickleBytes(zip: ZipFile): number {
  return 64 * 2 ** 20 + 4096 * zip.entries.size;
}

const isCount = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;

/**
 * Unpickles a torch.save zip archive into JS values: dicts are Maps, tensors
 * are Tensors. Throws on anything a state dict does not contain.
 */
export function readTorchZip(path: string): unknown {
  const zip = new ZipFile(path);
  const storages = new Map<string, TorchStorage>();
  let storageBytes = 0;
  let tensors = 0;
  try {
    const pkl = [...zip.entries.keys()].filter((n) => n.endsWith('data.pkl')).sort((a, b) => a.length - b.length)[0];
    if (!pkl) throw new Error(`${path}: a zip archive without data.pkl is not a torch.save file`);
    if (isTorchScriptArchive(zip)) throw new Error(`${path}: this is a TorchScript archive (torch.jit.save); load it with jit.load()`);
    const prefix = pkl.slice(0, -'data.pkl'.length);

    const rebuildTensor = (storage: unknown, offset: unknown, size: unknown, stride: unknown): Tensor => {
      if (!(storage instanceof TorchStorage)) throw new PickleError(`${path}: a tensor without a storage (got ${describe(storage)})`);
      const what = `${path}: a tensor on storage data/${storage.key}`;
      if (
        !Array.isArray(size) ||
        !Array.isArray(stride) ||
        size.length !== stride.length ||
        size.length > MAX_DIMS ||
        !size.every(isCount) ||
        !stride.every(isCount) ||
        !isCount(offset)
      )
        throw new PickleError(`${what} has an invalid shape, stride or offset (${describe(size)}, ${describe(stride)}, ${describe(offset)})`);
      if (++tensors > MAX_TENSORS) throw new PickleError(`${path}: more than ${MAX_TENSORS} tensors (damaged or hostile file?)`);
      // exact bounds check: elements needed, and the furthest element, in BigInt (no int64 overflow in the native check)
      const available = BigInt(storage.tensor.numel());
      let numel = 1n;
      let dims = 1n; // libtorch multiplies all dims even when one is 0: their product must stay exact
      let last = BigInt(offset);
      for (let i = 0; i < size.length; i++) {
        numel *= BigInt(size[i]);
        if (size[i] > 0) {
          dims *= BigInt(size[i]);
          last += BigInt(size[i] - 1) * BigInt(stride[i]);
        }
      }
      if (dims > BigInt(Number.MAX_SAFE_INTEGER)) throw new PickleError(`${what} declares shape [${size}], whose size overflows`);
      // a view with more elements than its storage (strides of 0) would let a few bytes declare any size
      if (numel > 0n && (last >= available || numel > available))
        throw new PickleError(
          `${what} declares shape [${size}] with stride [${stride}] at offset ${offset}, which needs more than the ${available} elements its storage holds`,
        );
      return new Tensor(native.asStrided(storage.tensor.handle, size, stride, numel > 0n ? offset : 0));
    };

    const findGlobal = (module: string, name: string): unknown => {
      const full = `${module}.${name}`;
      if (full === 'collections.OrderedDict') return () => new Map();
      if (full === 'torch._utils._rebuild_tensor_v2') return rebuildTensor;
      if (full === 'torch._utils._rebuild_parameter')
        return (data: unknown) => {
          if (!(data instanceof Tensor)) throw new PickleError(`${path}: a parameter whose data is ${describe(data)}, not a tensor`);
          return data;
        };
      if (module === 'torch' && Object.hasOwn(STORAGE_DTYPES, name)) return new StorageType(STORAGE_DTYPES[name]);
      throw new PickleError(
        `${path}: refused to load '${full}': only state dicts (tensors, dicts, lists, numbers, strings) are read, and nothing in the file is executed`,
      );
    };

    const persistentLoad = (pid: unknown): TorchStorage => {
      if (!Array.isArray(pid) || pid.length !== 5 || pid[0] !== 'storage' || !(pid[1] instanceof StorageType) || typeof pid[2] !== 'string' || !isCount(pid[4]))
        throw new PickleError(`${path}: unsupported persistent id (${describe(pid)}; expected ('storage', type, key, location, numel))`);
      const [, type, key, , numel] = pid as [string, StorageType, string, string, number];
      const cached = storages.get(key);
      if (cached) {
        if (cached.tensor.dtype !== type.dtype || cached.tensor.numel() !== numel)
          throw new PickleError(`${path}: storage data/${key} is declared twice with different types or sizes`);
        return cached;
      }
      const entry = zip.entries.get(`${prefix}data/${key}`);
      if (!entry) throw new Error(`${path}: storage data/${key} is missing from the archive (truncated?)`);
      if (entry.method !== 0) throw new Error(`${path}: storage data/${key} is compressed; torch.save stores storages uncompressed`);
      const nbytes = numel * ELEMENT_SIZE[type.dtype];
      if (entry.size < nbytes) throw new Error(`${path}: storage data/${key} has ${entry.size} bytes, ${nbytes} expected (truncated?)`);
      // distinct entries cannot overlap in a valid archive: together they fit in the file
      storageBytes += nbytes;
      if (storageBytes > zip.size)
        throw new Error(`${path}: the storages declare ${storageBytes} bytes, more than the file's ${zip.size} (damaged or hostile file?)`);
      const storage = new TorchStorage(key, new Tensor(native.fromFile(path, zip.dataOffset(entry), nbytes, type.dtype)));
      storages.set(key, storage);
      return storage;
    };

    return unpickle(zip.readEntry(pkl, maxPickleBytes(zip)), { findGlobal, persistentLoad }, `${path}: data.pkl`);
  } finally {
    zip.close();
    // the views keep what they use alive; these handles are no longer needed
    for (const s of storages.values()) s.tensor.dispose();
  }
}
