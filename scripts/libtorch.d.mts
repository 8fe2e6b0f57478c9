// Types of libtorch.mjs, for lib/native/loader.ts.
export declare const platformTag: string;
export declare const packageRoot: string;
export declare const LIBTORCH_ENV: string[];
export declare const TORCH_CONFIG: string;
export declare function explicitLibtorch(env?: NodeJS.ProcessEnv): { name: string; dir: string } | null;
export declare function cmakePrefixFor(dir: string): string | null;
export declare function libtorchAt(cmakePrefix: string): { include: string; libdir: string; version: string | null; cuda: boolean; abi: string };
export declare function majorMinor(version: string | null | undefined): string | undefined;
export declare function cxxStandardFor(version: string | null | undefined): 'c++17' | 'c++20';
export declare function libtorchLibs(cuda: boolean): string[];
export declare function preloadLibtorch(libdir: string, cuda: boolean): void;
export declare function runtimeMismatch(info: { libtorchVersion?: string; config?: string }): string | null;
export declare function cudaVersionOf(info: { config?: string }): string | null;
export declare function flavorOf(info: { libtorchVersion?: string; cuda?: boolean; config?: string }): string;
export declare function parseFlavor(flavor: string): { version: string; variant: string; cuda: boolean } | null;
export declare function flavorFix(flavor: string): string;
export interface Prebuild {
  flavor: string;
  file: string;
  /** libtorch version the binary needs (prebuild.json, else the flavor name). */
  version: string | null;
  cuda: boolean;
  meta: Record<string, unknown>;
}
export declare function listPrebuilds(root: string): Prebuild[];
