// torch.distributed's process group on c10d (native/distributed.cc): one
// group per process, set up by initProcessGroup from its options or from the
// environment torchrun (and `finetorch train --nproc-per-node`) sets. The
// collectives run on a worker thread and change their tensors in place, as
// torch.distributed.all_reduce and broadcast do.
import { native } from '../native/loader.js';
import type { DistributedAddon } from '../native/addon-types.js';
import { Tensor } from '../tensor/tensor.js';
import { torch } from '../tensor/index.js';

export type Backend = 'gloo' | 'nccl';
export type ReduceOp = 'sum' | 'avg' | 'max' | 'min';

export interface InitProcessGroupOptions {
  /** 'gloo' (CPU tensors; the default) or 'nccl' (CUDA tensors, CUDA builds). */
  backend?: Backend;
  /** This process's rank, 0 .. worldSize-1; default the environment's RANK. */
  rank?: number;
  /** How many processes take part; default the environment's WORLD_SIZE. */
  worldSize?: number;
  /** The address of rank 0's store; default MASTER_ADDR, else 127.0.0.1. */
  masterAddr?: string;
  /** The port of rank 0's store; default MASTER_PORT, else 29500 (torchrun's). */
  masterPort?: number;
  /** How long a collective or the rendezvous may wait for the others (ms); default FINETORCH_DIST_TIMEOUT_MS, else 30 minutes, as PyTorch. */
  timeoutMs?: number;
}

/** The addon's distributed entries (native/distributed.cc); a binary built before them has none. */
function addon(where: string): DistributedAddon {
  const n = native as Partial<DistributedAddon>;
  if (typeof n.distInit !== 'function' || typeof n.distAllReduceAsync !== 'function')
    throw new Error(`distributed.${where}: this build of the finetorch addon has no torch.distributed support (rebuild it from source)`);
  return n as DistributedAddon;
}

interface Group {
  backend: Backend;
  rank: number;
  worldSize: number;
  masterAddr: string;
  masterPort: number;
}
let group: Group | null = null;

const BACKENDS: readonly string[] = ['gloo', 'nccl'];
const OPS: readonly string[] = ['sum', 'avg', 'max', 'min'];

/** An integer from an option or an environment variable, with an error naming where it came from. */
function integer(value: unknown, envName: string, what: string, min: number): number | undefined {
  let v = value;
  let from = `options.${what}`;
  if (v === undefined) {
    const raw = process.env[envName];
    if (raw === undefined || raw === '') return undefined;
    from = `the environment variable ${envName}`;
    v = /^\s*-?\d+\s*$/.test(raw) ? Number(raw) : Number.NaN;
    if (Number.isNaN(v)) throw new TypeError(`distributed.initProcessGroup: ${from} must be an integer, got '${raw}'`);
  }
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min)
    throw new TypeError(`distributed.initProcessGroup: ${from} must be an integer >= ${min}, got ${JSON.stringify(v)}`);
  return v;
}

/**
 * Joins the process group (torch.distributed.init_process_group): rank 0
 * serves the store at masterAddr:masterPort, the others connect to it. Every
 * option left out comes from torchrun's environment variables (RANK,
 * WORLD_SIZE, MASTER_ADDR, MASTER_PORT); rank and worldSize must come from one or the other.
 */
export async function initProcessGroup(options: InitProcessGroupOptions = {}): Promise<void> {
  if (options === null || typeof options !== 'object') throw new TypeError('distributed.initProcessGroup: options must be an object');
  if (group)
    throw new Error(`distributed.initProcessGroup: this process already is rank ${group.rank} of ${group.worldSize}; call destroyProcessGroup() first`);
  const backend = options.backend ?? 'gloo';
  if (!BACKENDS.includes(backend)) throw new TypeError(`distributed.initProcessGroup: backend must be 'gloo' or 'nccl', got ${JSON.stringify(backend)}`);
  const worldSize = integer(options.worldSize, 'WORLD_SIZE', 'worldSize', 1);
  const rank = integer(options.rank, 'RANK', 'rank', 0);
  if (worldSize === undefined)
    throw new TypeError('distributed.initProcessGroup: no world size: pass worldSize or set WORLD_SIZE (as torchrun and finetorch train --nproc-per-node do)');
  if (rank === undefined)
    throw new TypeError('distributed.initProcessGroup: no rank: pass rank or set RANK (as torchrun and finetorch train --nproc-per-node do)');
  if (rank >= worldSize)
    throw new RangeError(`distributed.initProcessGroup: rank ${rank} is out of range for a world size of ${worldSize} (0 .. ${worldSize - 1})`);
  // LOCAL_RANK is checked when set, so a broken launcher environment is caught here
  integer(undefined, 'LOCAL_RANK', 'localRank', 0);
  let masterAddr = options.masterAddr ?? process.env.MASTER_ADDR ?? '127.0.0.1';
  if (typeof masterAddr !== 'string' || masterAddr.trim() === '')
    throw new TypeError(`distributed.initProcessGroup: masterAddr must be a host name or address, got ${JSON.stringify(masterAddr)}`);
  masterAddr = masterAddr.trim();
  const masterPort = integer(options.masterPort, 'MASTER_PORT', 'masterPort', 1) ?? 29500;
  if (masterPort > 65535) throw new RangeError(`distributed.initProcessGroup: masterPort must be 1 .. 65535, got ${masterPort}`);
  // FINETORCH_DIST_TIMEOUT_MS: for processes whose code does not pass timeoutMs (recipes under the launcher)
  const timeoutMs = options.timeoutMs ?? integer(undefined, 'FINETORCH_DIST_TIMEOUT_MS', 'timeoutMs', 1) ?? 30 * 60 * 1000;
  if (typeof timeoutMs !== 'number' || !Number.isFinite(timeoutMs) || timeoutMs <= 0)
    throw new TypeError(`distributed.initProcessGroup: timeoutMs must be a positive number, got ${JSON.stringify(timeoutMs)}`);
  const dist = addon('initProcessGroup');
  // the addon says which backends it was built with (Gloo; NCCL in CUDA builds)
  await dist.distInit({ backend, rank, worldSize, masterAddr, masterPort, timeoutMs: Math.round(timeoutMs) });
  group = { backend, rank, worldSize, masterAddr, masterPort };
}

/** Whether this process has joined a process group (torch.distributed.is_initialized). */
export function isInitialized(): boolean {
  return group !== null;
}

function current(where: string): Group {
  if (!group) throw new Error(`distributed.${where}: no process group; call distributed.initProcessGroup() first`);
  return group;
}

/** This process's rank in the group. */
export function getRank(): number {
  return current('getRank').rank;
}

/** How many processes the group has. */
export function getWorldSize(): number {
  return current('getWorldSize').worldSize;
}

/** The group's backend. */
export function getBackend(): Backend {
  return current('getBackend').backend;
}

function checkTensor(tensor: unknown, where: string): Tensor {
  if (!(tensor instanceof Tensor)) throw new TypeError(`distributed.${where}: expected a Tensor, got ${tensor === null ? 'null' : typeof tensor}`);
  if (tensor.isDisposed) throw new TypeError(`distributed.${where}: the tensor was disposed`);
  const g = current(where);
  if (g.backend === 'gloo' && tensor.device !== 'cpu')
    throw new TypeError(`distributed.${where}: the gloo backend takes CPU tensors, got one on ${tensor.device}`);
  if (g.backend === 'nccl' && !tensor.device.startsWith('cuda'))
    throw new TypeError(`distributed.${where}: the nccl backend takes CUDA tensors, got one on ${tensor.device}`);
  return tensor;
}

/** Waits until every rank has called barrier(). */
export async function barrier(): Promise<void> {
  current('barrier');
  await addon('barrier').distBarrierAsync();
}

/** Reduces the tensor across all ranks, in place on every rank (torch.distributed.all_reduce); returns it. */
export async function allReduce(tensor: Tensor, options: { op?: ReduceOp } = {}): Promise<Tensor> {
  const t = checkTensor(tensor, 'allReduce');
  const op = options?.op ?? 'sum';
  if (!OPS.includes(op)) throw new TypeError(`distributed.allReduce: op must be one of ${OPS.join(', ')}, got ${JSON.stringify(op)}`);
  // resolves to new handles on the same tensor
  for (const h of await addon('allReduce').distAllReduceAsync([t.handle], op)) h.dispose();
  return t;
}

/** Copies rank src's tensor into the tensor of every other rank, in place (torch.distributed.broadcast); returns it. */
export async function broadcast(tensor: Tensor, options: { src?: number } = {}): Promise<Tensor> {
  const t = checkTensor(tensor, 'broadcast');
  const src = options?.src ?? 0;
  const { worldSize } = current('broadcast');
  if (!Number.isInteger(src) || src < 0 || src >= worldSize)
    throw new RangeError(`distributed.broadcast: src must be a rank 0 .. ${worldSize - 1}, got ${JSON.stringify(src)}`);
  for (const h of await addon('broadcast').distBroadcastAsync([t.handle], src)) h.dispose();
  return t;
}

/** Every rank's tensor, in rank order (torch.distributed.all_gather); each rank's must have the same shape and dtype. */
export async function allGather(tensor: Tensor): Promise<Tensor[]> {
  const t = checkTensor(tensor, 'allGather');
  const out = await addon('allGather').distAllGatherAsync(t.handle);
  return out.map((h) => new Tensor(h));
}

/** Leaves the process group (torch.distributed.destroy_process_group); a no-op when there is none. */
export function destroyProcessGroup(): void {
  if (!group) return;
  group = null;
  addon('destroyProcessGroup').distDestroy();
}

/** sum / count over every rank's sums and counts (fit's epoch loss). */
export async function meanOverRanks(sum: number, count: number): Promise<number> {
  const t = torch.tensor([sum, count], { dtype: 'float64' });
  try {
    await allReduce(t, { op: 'sum' });
    const [s, n] = t.dataSync();
    return Number(s) / Math.max(1, Number(n));
  } finally {
    t.dispose();
  }
}
