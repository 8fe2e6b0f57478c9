// dtype and device names as PyTorch spells them (torch.float32 -> 'float32').

export type DType = 'float32' | 'float64' | 'float16' | 'bfloat16' | 'int64' | 'int32' | 'int16' | 'int8' | 'uint8' | 'bool';
export const DTYPES: readonly DType[] = ['float32', 'float64', 'float16', 'bfloat16', 'int64', 'int32', 'int16', 'int8', 'uint8', 'bool'];
/** 'cpu', 'cuda' or 'cuda:N'. */
export type Device = string;

export function isDType(x: unknown): x is DType {
  return typeof x === 'string' && (DTYPES as readonly string[]).includes(x);
}

export function isDevice(x: unknown): x is Device {
  return typeof x === 'string' && /^(cpu|cuda(:\d+)?)$/.test(x);
}

export function isFloatingDType(d: DType): boolean {
  return d === 'float32' || d === 'float64' || d === 'float16' || d === 'bfloat16';
}
