// torch.autocast: runs fn with autocast on for one device type, as Python's
// `with torch.autocast(device_type, dtype=..., enabled=..., cache_enabled=...)`.
// The casting is libtorch's own (its Autocast dispatch keys and op lists:
// matmul, linear, conv in low precision; losses, norms and reductions kept in
// float32); this file only sets the thread-local state that turns it on.
//
// The region covers what fn does synchronously and, when fn returns a
// Promise, everything until that Promise settles (so `await` inside an async
// fn stays in the region, as code inside a Python `with` block does). Async
// work started in the region (forwardAsync, trainStepAsync...) takes the
// state with it to the torch thread where it runs. Regions nest; the cast
// cache (low-precision copies of weights, reused within a region) is cleared
// when the outermost region ends. Because JavaScript has one thread, other
// code that runs on the event loop while an async region is open runs under
// it too: keep such regions to the work they are meant for.
import { native } from '../native/loader.js';
import type { NativeAutocastState } from '../native/addon-types.js';

export type AutocastDeviceType = 'cpu' | 'cuda';
export type AutocastDtype = 'bfloat16' | 'float16';
export interface AutocastOptions {
  /** Default: 'bfloat16' on 'cpu', 'float16' on 'cuda' (PyTorch's defaults). */
  dtype?: AutocastDtype;
  /** false runs fn with autocast off for this device type (also inside an enclosing region). Default true. */
  enabled?: boolean;
  /** Reuse the low-precision copies of weights within the region. Default true. */
  cacheEnabled?: boolean;
}

interface Region {
  state: NativeAutocastState;
}
const open: Region[] = [];
let outside: NativeAutocastState | null = null; // the state before the first open region

function enter(state: NativeAutocastState): Region {
  if (!open.length) outside = native.autocastState();
  native.setAutocastState(state);
  native.autocastEnter();
  const region = { state };
  open.push(region);
  return region;
}

// Async regions may end in any order: the state returns to the innermost
// region still open (or to the state before the first one).
function exit(region: Region): void {
  const i = open.indexOf(region);
  if (i < 0) return;
  open.splice(i, 1);
  native.autocastExit();
  native.setAutocastState(open.length ? open[open.length - 1].state : outside!);
}

const DEFAULT_DTYPE: Record<AutocastDeviceType, AutocastDtype> = { cpu: 'bfloat16', cuda: 'float16' };

/** The state a region with these arguments runs under; a bad argument is a TypeError naming it. */
function regionState(deviceType: unknown, options: AutocastOptions, where: string): NativeAutocastState {
  if (deviceType !== 'cpu' && deviceType !== 'cuda') throw new TypeError(`${where}: deviceType must be 'cpu' or 'cuda', got ${JSON.stringify(deviceType)}`);
  if (options === null || typeof options !== 'object') throw new TypeError(`${where}: options must be an object {dtype, enabled, cacheEnabled}`);
  const { dtype = DEFAULT_DTYPE[deviceType], enabled = true, cacheEnabled } = options;
  if (dtype !== 'bfloat16' && dtype !== 'float16') throw new TypeError(`${where}: dtype must be 'bfloat16' or 'float16', got ${JSON.stringify(dtype)}`);
  if (typeof enabled !== 'boolean') throw new TypeError(`${where}: enabled must be a boolean, got ${JSON.stringify(enabled)}`);
  if (cacheEnabled !== undefined && typeof cacheEnabled !== 'boolean')
    throw new TypeError(`${where}: cacheEnabled must be a boolean, got ${JSON.stringify(cacheEnabled)}`);
  if (enabled) checkAutocastSupported(deviceType, dtype, where);
  const state = { ...native.autocastState() };
  if (deviceType === 'cpu') Object.assign(state, { cpuEnabled: enabled, cpuDtype: dtype });
  else Object.assign(state, { cudaEnabled: enabled, cudaDtype: dtype });
  if (cacheEnabled !== undefined) state.cacheEnabled = cacheEnabled;
  return state;
}

/** Why this build cannot autocast `deviceType` to `dtype`, or null when it can. */
export function autocastUnsupported(deviceType: AutocastDeviceType, dtype: AutocastDtype): string | null {
  if (deviceType === 'cuda' && !native.cudaIsAvailable())
    return `'cuda' autocast asked for, but ${native.buildInfo().cuda ? 'no CUDA device is visible' : 'this libtorch is a CPU build'}`;
  if (deviceType === 'cpu' && dtype === 'float16' && !native.autocastSupport().cpuFloat16)
    return `float16 autocast on the CPU needs libtorch 2.3 or later (this is ${native.buildInfo().libtorchVersion}, whose CPU autocast casts to bfloat16 only)`;
  return null;
}

/** Throws an Error saying why when this build cannot autocast `deviceType` to `dtype`. */
export function checkAutocastSupported(
  deviceType: AutocastDeviceType,
  dtype: AutocastDtype,
  where = 'torch.autocast',
  instead = deviceType === 'cuda' ? "use 'cpu'" : "use 'bfloat16'",
): void {
  const why = autocastUnsupported(deviceType, dtype);
  if (why) throw new Error(`${where}: ${why}: ${instead}`);
}

/**
 * Runs fn under autocast for `deviceType` (torch.autocast). Returns what fn
 * returns; when that is a Promise, the region stays open until it settles.
 */
export function autocast<T>(deviceType: AutocastDeviceType, options: AutocastOptions, fn: () => T): T;
export function autocast<T>(deviceType: AutocastDeviceType, fn: () => T): T;
export function autocast<T>(deviceType: AutocastDeviceType, optionsOrFn: AutocastOptions | (() => T), maybeFn?: () => T): T {
  const fn = typeof optionsOrFn === 'function' ? optionsOrFn : maybeFn;
  const options = typeof optionsOrFn === 'function' ? {} : optionsOrFn;
  if (typeof fn !== 'function') throw new TypeError('torch.autocast: expected a function to run: autocast(deviceType, options, fn)');
  const region = enter(regionState(deviceType, options ?? {}, 'torch.autocast'));
  let result: T;
  try {
    result = fn();
  } catch (err) {
    exit(region);
    throw err;
  }
  if (result && typeof (result as { then?: unknown }).then === 'function') {
    return Promise.resolve(result).finally(() => exit(region)) as T;
  }
  exit(region);
  return result;
}

/** torch.is_autocast_enabled(device_type): whether autocast is on for `deviceType` on this thread now. */
export function isAutocastEnabled(deviceType: AutocastDeviceType = 'cuda'): boolean {
  const s = native.autocastState();
  return deviceType === 'cpu' ? s.cpuEnabled : s.cudaEnabled;
}

/** torch.get_autocast_dtype(device_type): the dtype autocast casts to on `deviceType`. */
export function getAutocastDtype(deviceType: AutocastDeviceType): AutocastDtype {
  const s = native.autocastState();
  return (deviceType === 'cpu' ? s.cpuDtype : s.cudaDtype) as AutocastDtype;
}
