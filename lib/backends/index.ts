// torch.backends and the float32 matmul precision: process-wide switches of
// libtorch's global context, with PyTorch's names (camelCased) and defaults.
// They exist in CPU builds too, where the cuDNN and cuBLAS ones change nothing.
import { native } from '../native/loader.js';
import type { BackendFlag, Float32MatmulPrecision } from '../native/addon-types.js';

export type { Float32MatmulPrecision };

function flag(name: BackendFlag) {
  return {
    get: (): boolean => native.backendFlag(name),
    set: (value: boolean): void => {
      if (typeof value !== 'boolean') throw new TypeError(`torch.backends.${name} must be a boolean, got ${JSON.stringify(value)}`);
      native.setBackendFlag(name, value);
    },
    enumerable: true,
  };
}

const cudnn = Object.defineProperties(
  {
    /** Whether this libtorch has cuDNN. */
    isAvailable: (): boolean => native.cudnnVersion() !== null,
    /** cuDNN's version number (e.g. 90100), or null without cuDNN. */
    version: (): number | null => native.cudnnVersion(),
  },
  {
    enabled: flag('cudnn.enabled'),
    benchmark: flag('cudnn.benchmark'),
    deterministic: flag('cudnn.deterministic'),
    allowTF32: flag('cudnn.allowTF32'),
  },
) as {
  isAvailable(): boolean;
  version(): number | null;
  /** Use cuDNN at all (default true). */
  enabled: boolean;
  /** Let cuDNN time its algorithms for each new input shape and keep the fastest (default false). */
  benchmark: boolean;
  /** Only deterministic cuDNN algorithms (default false). */
  deterministic: boolean;
  /** TF32 tensor cores for cuDNN convolutions on Ampere and later (default true). */
  allowTF32: boolean;
};

const matmul = Object.defineProperties({}, { allowTF32: flag('cuda.matmul.allowTF32') }) as {
  /** TF32 tensor cores for float32 matmuls on Ampere and later (default false; the same switch as setFloat32MatmulPrecision('high')). */
  allowTF32: boolean;
};

/** PyTorch's torch.backends: torch.backends.cudnn.benchmark = true, torch.backends.cuda.matmul.allowTF32 = true. */
export const backends = { cudnn, cuda: { matmul } } as const;

const PRECISIONS: readonly string[] = ['highest', 'high', 'medium'];

/**
 * torch.set_float32_matmul_precision: 'highest' (float32 throughout, the
 * default), 'high' (TF32 or bf16x3 where available), 'medium' (bf16).
 */
export function setFloat32MatmulPrecision(precision: Float32MatmulPrecision): void {
  if (!PRECISIONS.includes(precision))
    throw new TypeError(`torch.setFloat32MatmulPrecision: expected 'highest', 'high' or 'medium', got ${JSON.stringify(precision)}`);
  native.setFloat32MatmulPrecision(precision);
}

export function getFloat32MatmulPrecision(): Float32MatmulPrecision {
  return native.float32MatmulPrecision();
}
