// Reads PyTorch `torch.save` files (.pth/.pt/.bin; the zip format written
// since PyTorch 1.6): data.pkl is unpickled with a short list of allowed
// globals, and each storage (data/<key>) is read from the file straight into
// tensor memory. Views and shared storages are rebuilt as views.
import { native } from '../native/loader.js';
import { Tensor } from '../tensor/tensor.js';
import type { DType } from '../tensor/dtype.js';
import { ZipFile } from './zip.js';
import { unpickle, PickleError } from './pickle.js';

const STORAGE_DTYPES: Record<string, DType> = {
  FloatStorage: 'float32', DoubleStorage: 'float64', HalfStorage: 'float16', BFloat16Storage: 'bfloat16',
  LongStorage: 'int64', IntStorage: 'int32', ShortStorage: 'int16', CharStorage: 'int8', ByteStorage: 'uint8',
  BoolStorage: 'bool', UntypedStorage: 'uint8',
};
const ELEMENT_SIZE: Record<DType, number> = {
  float32: 4, float64: 8, float16: 2, bfloat16: 2, int64: 8, int32: 4, int16: 2, int8: 1, uint8: 1, bool: 1,
};

class StorageType { constructor(readonly dtype: DType) {} }

/** True for the zip archives of torch.jit.save (they hold code, not a state dict). */
export function isTorchScriptArchive(zip: ZipFile): boolean {
  return [...zip.entries.keys()].some((n) => /(^|\/)(constants\.pkl|code\/)/.test(n));
}

/**
 * Unpickles a torch.save zip archive into JS values: dicts are Maps, tensors
 * are Tensors. Throws on anything a state dict does not contain.
 */
export function readTorchZip(path: string): unknown {
  const zip = new ZipFile(path);
  const storages = new Map<string, Tensor>();
  try {
    const pkl = [...zip.entries.keys()].filter((n) => n.endsWith('data.pkl')).sort((a, b) => a.length - b.length)[0];
    if (!pkl) throw new Error(`${path}: a zip archive without data.pkl is not a torch.save file`);
    if (isTorchScriptArchive(zip)) throw new Error(`${path}: this is a TorchScript archive (torch.jit.save); load it with jit.load()`);
    const prefix = pkl.slice(0, -'data.pkl'.length);

    const findGlobal = (module: string, name: string): unknown => {
      const full = `${module}.${name}`;
      if (full === 'collections.OrderedDict') return () => new Map();
      if (full === 'torch._utils._rebuild_tensor_v2')
        return (storage: unknown, offset: number, size: number[], stride: number[]) => {
          if (!(storage instanceof Tensor)) throw new PickleError(`${path}: a tensor without a storage`);
          return new Tensor(native.asStrided(storage.handle, size, stride, offset));
        };
      if (full === 'torch._utils._rebuild_parameter') return (data: unknown) => data;
      if (module === 'torch' && name in STORAGE_DTYPES) return new StorageType(STORAGE_DTYPES[name]);
      throw new PickleError(`${path}: refused to load '${full}': only state dicts (tensors, dicts, lists, numbers, strings) are read, and nothing in the file is executed`);
    };

    const persistentLoad = (pid: unknown): Tensor => {
      if (!Array.isArray(pid) || pid[0] !== 'storage' || !(pid[1] instanceof StorageType))
        throw new PickleError(`${path}: unsupported persistent id ${JSON.stringify(pid)}`);
      const [, type, key, , numel] = pid as [string, StorageType, string, string, number];
      const cached = storages.get(key);
      if (cached) return cached;
      const entry = zip.entries.get(`${prefix}data/${key}`);
      if (!entry) throw new Error(`${path}: storage data/${key} is missing from the archive (truncated?)`);
      if (entry.method !== 0) throw new Error(`${path}: storage data/${key} is compressed; torch.save stores storages uncompressed`);
      const nbytes = numel * ELEMENT_SIZE[type.dtype];
      if (entry.size < nbytes) throw new Error(`${path}: storage data/${key} has ${entry.size} bytes, ${nbytes} expected (truncated?)`);
      const storage = new Tensor(native.fromFile(path, zip.dataOffset(entry), nbytes, type.dtype));
      storages.set(key, storage);
      return storage;
    };

    return unpickle(zip.readEntry(pkl), { findGlobal, persistentLoad }, `${path}: data.pkl`);
  } finally {
    zip.close();
    // the views keep what they use alive; these handles are no longer needed
    for (const s of storages.values()) s.dispose();
  }
}
