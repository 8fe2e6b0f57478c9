// Checkpoint I/O: io.load(path) gives a state dict (name -> Tensor) from a
// .safetensors file or a torch.save file (.pth/.pt/.bin); io.save writes
// either, chosen by the extension: .safetensors, or .pth/.pt/.bin as
// torch.save's zip format (what torch.load(f, weights_only=True) reads).
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { Tensor } from '../tensor/tensor.js';
import type { StateDict } from '../nn/module.js';
import { readSafetensors, writeSafetensors, looksLikeSafetensors } from './safetensors.js';
import { readTorchZip, TorchStorage } from './pth.js';
import { writeTorchZip } from './pth-write.js';

export type CheckpointFormat = 'safetensors' | 'torch-zip' | 'torch-legacy' | 'unknown';

/** Tells the format from the first bytes of the file. */
export function detectFormat(path: string): CheckpointFormat {
  const fd = openSync(path, 'r');
  try {
    const size = fstatSync(fd).size;
    const head = Buffer.alloc(Math.min(16, size));
    readSync(fd, head, 0, head.length, 0);
    if (head.length >= 4 && head.readUInt32LE(0) === 0x04034b50) return 'torch-zip';
    if (looksLikeSafetensors(head, size)) return 'safetensors';
    if (head[0] === 0x80) return 'torch-legacy'; // a bare pickle stream: torch.save before 1.6
    return 'unknown';
  } finally {
    closeSync(fd);
  }
}

// torch.save files often wrap the state dict: {"state_dict": ...}, {"model": ...}.
const WRAPPER_KEYS = ['state_dict', 'model_state_dict', 'model', 'module', 'net'];
/** Wrappers inside wrappers, at most (real files have one or two). */
const MAX_WRAPPING = 8;

function toStateDict(path: string, value: unknown): StateDict {
  // a loop, not recursion: the nesting comes from the file
  for (let depth = 0; value instanceof Map && depth <= MAX_WRAPPING; depth++) {
    const dict: Map<unknown, unknown> = value;
    const inner = WRAPPER_KEYS.map((key) => dict.get(key)).find((v) => v instanceof Map && [...v.values()].some((t) => t instanceof Tensor));
    if (inner) {
      value = inner;
      continue;
    }
    const out: StateDict = {};
    for (const [k, v] of dict) {
      if (v instanceof TorchStorage)
        throw new Error(`${path}: '${String(k)}' holds a bare storage (torch.*Storage), not a tensor; a state dict maps names to tensors`);
      if (v instanceof Tensor) Object.defineProperty(out, String(k), { value: v, enumerable: true, writable: true, configurable: true });
    }
    if (Object.keys(out).length) return out;
    break;
  }
  throw new Error(`${path}: holds no state dict (expected a dict of tensors, or one under ${WRAPPER_KEYS.map((k) => `"${k}"`).join(', ')})`);
}

/** Loads a state dict from .safetensors or a torch.save file, whatever the extension. */
export function load(path: string): StateDict {
  if (typeof path !== 'string') throw new TypeError('io.load(path): path must be a string');
  try {
    const format = detectFormat(path);
    if (format === 'safetensors') return Object.fromEntries(readSafetensors(path).tensors);
    if (format === 'torch-zip') return toStateDict(path, readTorchZip(path));
    if (format === 'torch-legacy')
      throw new Error(
        `${path}: the legacy torch.save format (PyTorch < 1.6) is not supported; re-save it with a current PyTorch (torch.save(torch.load(f), f2))`,
      );
    throw new Error(`${path}: not a checkpoint finetorch can read (expected .safetensors or a torch.save zip file)`);
  } catch (err) {
    throw namingFile(path, err);
  }
}

/**
 * Every reader error names the file; this is the net for anything that does
 * not (a RangeError from a check that was missed): it becomes a plain Error
 * that says which file could not be read.
 */
export function namingFile(path: string, err: unknown): Error {
  if (err instanceof Error && !(err instanceof RangeError) && err.message.includes(path)) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new Error(`${path}: cannot read the checkpoint (damaged file?): ${message}`, { cause: err });
}

/** The extensions io.save writes: safetensors, or torch.save's zip format. */
export const SAVE_EXTENSIONS = ['.safetensors', '.pth', '.pt', '.bin'] as const;

/**
 * Writes a state dict, atomically (a temporary file renamed into place), in
 * the format the extension names: `.safetensors` (with `metadata` in its
 * header), or `.pth`/`.pt`/`.bin` as torch.save writes it (an OrderedDict of
 * tensors that torch.load(f, weights_only=True) reads; no metadata).
 */
export function save(stateDict: StateDict | Map<string, Tensor>, path: string, options: { metadata?: Record<string, string> } = {}): void {
  if (typeof path !== 'string') throw new TypeError(`io.save: path must be a string, got ${typeof path}`);
  const ext = SAVE_EXTENSIONS.find((e) => path.toLowerCase().endsWith(e));
  if (!ext || path.length === ext.length)
    throw new TypeError(`io.save: the extension of ${JSON.stringify(path)} names no format io.save writes (${SAVE_EXTENSIONS.join(', ')})`);
  if (stateDict === null || typeof stateDict !== 'object') throw new TypeError('io.save: stateDict must be an object or Map of name -> Tensor');
  const entries = stateDict instanceof Map ? stateDict : new Map(Object.entries(stateDict));
  if (ext === '.safetensors') writeSafetensors(path, entries, options.metadata);
  else {
    if (options.metadata && Object.keys(options.metadata).length)
      throw new TypeError(`io.save: metadata is written only into .safetensors files (${path} is a torch.save file)`);
    writeTorchZip(path, entries);
  }
}

export const io = { load, save, detectFormat } as const;
