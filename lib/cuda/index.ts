// The `cuda` namespace: device discovery and memory figures.
import { native } from '../native/loader.js';

export interface CudaMemoryStats {
  allocated: number;
  maxAllocated: number;
  reserved: number;
  maxReserved: number;
}

export const cuda = {
  /** True when this build has CUDA and a GPU is visible. */
  isAvailable: (): boolean => native.cudaIsAvailable(),
  deviceCount: (): number => native.cudaDeviceCount(),
  /** Waits for all queued work on a device (all devices when omitted). */
  synchronize: (device?: number): void => native.cudaSynchronize(device ?? null),
  /** Bytes held by the caching allocator on one device. */
  memoryStats: (device = 0): CudaMemoryStats => native.cudaMemory(device),
  /** True when the addon was built against a CUDA libtorch (a GPU may still be absent). */
  builtWithCuda: (): boolean => native.buildInfo().cuda,
} as const;
