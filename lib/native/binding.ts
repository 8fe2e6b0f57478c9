// The shape of the native addon as TypeScript sees it. Handles are opaque;
// the facades in lib/tensor, lib/nn and lib/optim are what users touch.

export interface TensorHandle { dispose(): void; readonly disposed: boolean; readonly __brand?: 'TensorHandle' }
export interface ModuleHandle { dispose(): void; readonly __brand?: 'ModuleHandle' }
export interface OptimizerHandle { dispose(): void; readonly __brand?: 'OptimizerHandle' }

export interface BuildInfo { libtorchVersion: string; cuda: boolean; parallelInfo: string; config: string }

/** Native functions; arguments are validated again natively, so a wrong call throws rather than crashes. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type NativeBinding = Record<string, (...args: any[]) => any> & {
  buildInfo(): BuildInfo;
  setNumThreads(n: number): void;
  getNumThreads(): number;
};
