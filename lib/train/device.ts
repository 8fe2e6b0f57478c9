// Where training runs and in what precision: the `device`, `precision` and
// `memoryFormat` options of fit, evaluate and predict, checked once, and the
// move of each batch to the model's device (pinned host memory and a
// non-blocking copy from CPU to CUDA where libtorch has them, see
// native/transfer.cc).
import { native } from '../native/loader.js';
import type { Module } from '../nn/module.js';
import { Tensor } from '../tensor/tensor.js';
import { isDevice, type Device } from '../tensor/dtype.js';
import { autocastUnsupported, checkAutocastSupported, type AutocastDeviceType, type AutocastDtype } from '../amp/autocast.js';
import { mapInput, type Batch, type ModelInput } from '../data/batch.js';

/** 'fp32': no autocast. 'bf16' / 'fp16': forward and loss under torch.autocast to bfloat16 / float16 (fp16 with a GradScaler). */
export type Precision = 'fp32' | 'bf16' | 'fp16';
export const PRECISIONS: readonly Precision[] = ['fp32', 'bf16', 'fp16'];
/** 'channelsLast': the model's 4-D weights and each 4-D input batch in NHWC layout (PyTorch's torch.channels_last). */
export type MemoryFormat = 'contiguous' | 'channelsLast';
export const MEMORY_FORMATS: readonly MemoryFormat[] = ['contiguous', 'channelsLast'];

/** 'cuda' means 'cuda:0', as tensors report their device. */
export function normalizeDevice(device: Device): Device {
  return device === 'cuda' ? 'cuda:0' : device;
}

/** Checks a device option against this machine; returns it normalized. Errors name `where` and say what is wrong. */
export function checkDevice(device: unknown, where: string): Device {
  if (!isDevice(device)) throw new TypeError(`${where}: device must be 'cpu', 'cuda' or 'cuda:N', got ${JSON.stringify(device)}`);
  if (device === 'cpu') return device;
  if (!native.cudaIsAvailable())
    throw new Error(
      `${where}: device '${device}' asked for, but ${native.buildInfo().cuda ? 'no CUDA device is visible' : 'this libtorch is a CPU build (no CUDA)'}; use 'cpu' (finetorch doctor tells more)`,
    );
  const index = Number(device.split(':')[1] ?? 0);
  const count = native.cudaDeviceCount();
  if (index >= count) throw new Error(`${where}: device '${device}' asked for, but there ${count === 1 ? 'is 1 CUDA device' : `are ${count} CUDA devices`}`);
  return normalizeDevice(device);
}

/** The device of the model's first parameter (null for a model without parameters). */
export function modelDevice(model: Module): Device | null {
  const params = model.parameters();
  const device = params.length ? params[0].device : null;
  params.forEach((p) => p.dispose());
  return device;
}

/**
 * The device batches go to: `device` when given (the model must already be
 * there: moving it inside fit would leave an optimizer's state behind), else
 * the model's own device.
 */
export function resolveDevice(model: Module, device: unknown, where: string): Device | null {
  const at = modelDevice(model);
  if (device === undefined) return at;
  const wanted = checkDevice(device, where);
  if (at !== null && at !== wanted)
    throw new Error(
      `${where}: device is '${wanted}' but the model's parameters are on '${at}': move the model first (model.to('${wanted}')), before creating its optimizer`,
    );
  return wanted;
}

export function checkPrecision(precision: unknown, where: string): Precision {
  if (precision === undefined) return 'fp32';
  if (!PRECISIONS.includes(precision as Precision))
    throw new TypeError(`${where}: precision must be ${PRECISIONS.map((p) => `'${p}'`).join(', ')}, got ${JSON.stringify(precision)}`);
  return precision as Precision;
}

export function checkMemoryFormat(format: unknown, where: string): MemoryFormat {
  if (format === undefined) return 'contiguous';
  if (!MEMORY_FORMATS.includes(format as MemoryFormat))
    throw new TypeError(`${where}: memoryFormat must be ${MEMORY_FORMATS.map((p) => `'${p}'`).join(' or ')}, got ${JSON.stringify(format)}`);
  return format as MemoryFormat;
}

/** The autocast a precision runs under on a device (null for fp32); an error when this build cannot do it. */
export function autocastFor(precision: Precision, device: Device | null, where: string): { deviceType: AutocastDeviceType; dtype: AutocastDtype } | null {
  if (precision === 'fp32') return null;
  const deviceType: AutocastDeviceType = device?.startsWith('cuda') ? 'cuda' : 'cpu';
  const dtype: AutocastDtype = precision === 'bf16' ? 'bfloat16' : 'float16';
  checkAutocastSupported(
    deviceType,
    dtype,
    `${where}: precision '${precision}'`,
    deviceType === 'cpu' ? "use precision 'bf16' on the CPU" : "use device 'cpu'",
  );
  return { deviceType, dtype };
}

/** Why this build cannot train in `precision` on `device`, or null when it can (for config checks before a run). */
export function precisionUnsupported(precision: Precision, device: Device): string | null {
  if (precision === 'fp32') return null;
  const deviceType: AutocastDeviceType = device.startsWith('cuda') ? 'cuda' : 'cpu';
  const why = autocastUnsupported(deviceType, precision === 'bf16' ? 'bfloat16' : 'float16');
  return why && `${precision} on ${device}: ${why}${deviceType === 'cpu' ? "; use 'bf16' on the CPU" : ''}`;
}

/** One tensor on `device` (4-D ones channels-last when asked); the same tensor when nothing changes, else a new one and `t` is disposed. */
function moveTensor(t: Tensor, device: Device, channelsLast: boolean): Tensor {
  if (!channelsLast && t.device === device) return t;
  const moved = new Tensor(native.moveBatchTensor(t.handle, device, { channelsLast }));
  t.dispose();
  return moved;
}

/**
 * A batch on `device` (null: where it is), its 4-D inputs channels-last when
 * asked. The batch's tensors are disposed when they had to be copied.
 */
export function moveBatch(batch: Batch, device: Device | null, memoryFormat: MemoryFormat): Batch {
  const channelsLast = memoryFormat === 'channelsLast';
  if (device === null && !channelsLast) return batch;
  const to = (t: Tensor) => device ?? t.device;
  const input: ModelInput = mapInput(batch.input, (t) => moveTensor(t, to(t), channelsLast));
  const target = moveTensor(batch.target, to(batch.target), false);
  return { input, target };
}
