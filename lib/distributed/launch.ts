// A process launcher as torchrun does it (behind `finetorch train
// --nproc-per-node N`, lib/cli/launch.ts): N children per node, each with torchrun's environment (RANK,
// LOCAL_RANK, WORLD_SIZE, LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT), their
// output prefixed with `[rank k] `, and when one child fails the others are
// stopped (SIGTERM, then SIGKILL after a grace period) and the failure names
// the rank. Ctrl-C (SIGINT) and SIGTERM are forwarded to every child.
//
// Ranks > 0 get FINETORCH_RANK_LOG=rank<k>.log: the file name, inside the run
// folder, that the child writes its log to instead of the run's own files
// (only rank 0 writes the run folder). Every child gets FINETORCH_LAUNCHER_PID:
// a launcher killed with SIGKILL cannot stop its children, so they watch it
// (watchLauncher) and exit when it is gone. Without FINETORCH_NUM_THREADS, each
// child gets cores / N threads (OMP_NUM_THREADS when that is set).
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { availableParallelism, constants } from 'node:os';
import { ArgumentError } from '../errors.js';

export interface LaunchOptions {
  /** Processes on this node. */
  nprocPerNode: number;
  /** Nodes (machines) in the job (default 1). */
  nnodes?: number;
  /** This node's index, 0..nnodes-1 (default 0); node 0 hosts the master (rank 0). */
  nodeRank?: number;
  /** Address of node 0 (default 127.0.0.1). */
  masterAddr?: string;
  /** Port of the rendezvous store on node 0; default: a free port (only when nnodes is 1). */
  masterPort?: number;
  /** The program each child runs and its arguments. */
  command: string;
  args: string[];
  /** Environment of the children (default process.env); the launcher's variables are added to it. */
  env?: NodeJS.ProcessEnv;
  /** Each line a child writes; default: written to this process's stdout/stderr by `writeOutput`. */
  onOutput?: (line: OutputLine) => void;
  /** How long a child has to exit after SIGTERM before SIGKILL (default 5000 ms). */
  graceMs?: number;
  /** Forward SIGINT/SIGTERM received by this process to the children (default true). */
  forwardSignals?: boolean;
}

export interface OutputLine {
  /** Global rank of the child. */
  rank: number;
  stream: 'stdout' | 'stderr';
  /** The line without its newline. */
  text: string;
}

export interface RankExit {
  rank: number;
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface LaunchResult {
  /** 0 when every child exited 0; else the failing child's exit code (128 + signal number when a signal killed it), 130 when interrupted. */
  exitCode: number;
  /** The first child that failed (exited non-zero or died by a signal) before the job was interrupted; null when none did. */
  failed: RankExit | null;
  /** Every child's exit, in rank order. */
  exits: RankExit[];
  /** The job was stopped by a signal sent to the launcher. */
  interrupted: boolean;
  masterAddr: string;
  masterPort: number;
}

export const DEFAULT_MASTER_ADDR = '127.0.0.1';

/** The environment variable that tells a launched child the launcher's pid (see watchLauncher). */
export const LAUNCHER_PID_ENV = 'FINETORCH_LAUNCHER_PID';

let watching: NodeJS.Timeout | null = null;

/**
 * In a child of launch() (runRecipe and fit({ distributed }) call it): exits
 * this process when the launcher is gone, seen as a new parent pid, checked
 * every intervalMs. A launcher killed with SIGKILL cannot stop its children,
 * and a rank left behind would train on alone or wait in a collective until
 * the timeout. Does nothing in a process that the launcher did not start
 * directly, or when already watching. Returns a function that stops watching.
 */
export function watchLauncher(intervalMs = 1000): () => void {
  const raw = process.env[LAUNCHER_PID_ENV];
  const pid = raw && /^\d+$/.test(raw) ? Number(raw) : 0;
  if (pid <= 0 || process.ppid !== pid || watching) return () => {};
  const timer = setInterval(() => {
    if (process.ppid === pid) return;
    clearInterval(timer);
    const rank = process.env.RANK === undefined ? '' : ` (rank ${process.env.RANK})`;
    try {
      process.stderr.write(`finetorch: the launcher (pid ${pid}) is gone; this process${rank} stops\n`);
    } catch {
      // its stderr may have gone with it
    }
    process.exit(1);
  }, intervalMs);
  timer.unref();
  watching = timer;
  return () => {
    clearInterval(timer);
    if (watching === timer) watching = null;
  };
}

/** What a failure looks like in a message: "rank 1 exited with code 3" / "rank 1 was killed by SIGKILL". */
export function describeExit(e: RankExit): string {
  return e.signal ? `rank ${e.rank} was killed by ${e.signal}` : `rank ${e.rank} exited with code ${e.code}`;
}

/** How errors name the options: the option names here, the flag names on the command line. */
export type LaunchOptionNames = Record<'nprocPerNode' | 'nnodes' | 'nodeRank' | 'masterAddr' | 'masterPort', string>;
const OPTION_NAMES: LaunchOptionNames = {
  nprocPerNode: 'nprocPerNode',
  nnodes: 'nnodes',
  nodeRank: 'nodeRank',
  masterAddr: 'masterAddr',
  masterPort: 'masterPort',
};

/** Checks the options; an ArgumentError names the option that is wrong. */
export function checkLaunchOptions(o: LaunchOptions, names: LaunchOptionNames = OPTION_NAMES): void {
  const nnodes = o.nnodes ?? 1;
  const nodeRank = o.nodeRank ?? 0;
  const bad = (detail: string) => new ArgumentError('launch', detail);
  const int = (name: string, v: number, min: number) => {
    if (!Number.isInteger(v) || v < min) throw bad(`${name}: expected an integer >= ${min}, got ${v}`);
  };
  int(names.nprocPerNode, o.nprocPerNode, 1);
  int(names.nnodes, nnodes, 1);
  int(names.nodeRank, nodeRank, 0);
  if (nodeRank >= nnodes) throw bad(`${names.nodeRank} ${nodeRank} is not below ${names.nnodes} ${nnodes} (node ranks are 0..${nnodes - 1})`);
  if (o.masterPort !== undefined && (!Number.isInteger(o.masterPort) || o.masterPort < 1 || o.masterPort > 65535))
    throw bad(`${names.masterPort}: expected a port 1..65535, got ${o.masterPort}`);
  if (nnodes > 1 && o.masterPort === undefined) throw bad(`${names.masterPort} is required with ${names.nnodes} > 1 (every node must use the same one)`);
  if (o.masterAddr !== undefined && o.masterAddr.trim() === '') throw bad(`${names.masterAddr}: expected an address, got ""`);
  if (typeof o.command !== 'string' || o.command === '') throw bad('command: expected the program to run');
}

/** A port nobody listens on, found by binding port 0. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.on('error', reject);
    server.listen(0, () => {
      const port = (server.address() as { port: number }).port;
      server.close(() => resolve(port));
    });
  });
}

/** Rejects with a clear error when something already listens on the port (the master's store could not start there). */
export function checkPortFree(port: number, name = 'masterPort'): Promise<void> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'EADDRINUSE')
        reject(new ArgumentError('launch', `${name} ${port} is already in use on this machine; pick another port, or leave ${name} out for a free one`));
      else if (err.code === 'EACCES') reject(new ArgumentError('launch', `${name} ${port}: not allowed to listen there (ports below 1024 need privileges)`));
      else reject(err);
    });
    server.listen(port, () => server.close(() => resolve()));
  });
}

/** The default output: each line prefixed with `[rank k] `; rank 0's stdout unprefixed when `rank0Stdout` is 'plain' (its JSON Lines events stay one stream) and the other ranks' stdout then goes to stderr. */
export function writeOutput(rank0Stdout: 'plain' | 'prefixed'): (line: OutputLine) => void {
  return ({ rank, stream, text }) => {
    if (rank0Stdout === 'plain') {
      if (rank === 0 && stream === 'stdout') process.stdout.write(`${text}\n`);
      else process.stderr.write(`[rank ${rank}] ${text}\n`);
    } else (stream === 'stdout' ? process.stdout : process.stderr).write(`[rank ${rank}] ${text}\n`);
  };
}

/** Calls onLine for each complete line of a stream, and for the unterminated rest at its end. */
function forEachLine(stream: NodeJS.ReadableStream, onLine: (text: string) => void): void {
  let pending = '';
  stream.setEncoding('utf8');
  stream.on('data', (chunk: string) => {
    pending += chunk;
    let nl = pending.indexOf('\n');
    while (nl >= 0) {
      onLine(pending.slice(0, nl).replace(/\r$/, ''));
      pending = pending.slice(nl + 1);
      nl = pending.indexOf('\n');
    }
  });
  stream.on('end', () => {
    if (pending) onLine(pending);
    pending = '';
  });
}

/** Starts the children of this node and waits for all of them; see LaunchResult. `names`: how errors name the options. */
export async function launch(o: LaunchOptions, names: LaunchOptionNames = OPTION_NAMES): Promise<LaunchResult> {
  checkLaunchOptions(o, names);
  const nnodes = o.nnodes ?? 1;
  const nodeRank = o.nodeRank ?? 0;
  const n = o.nprocPerNode;
  const worldSize = nnodes * n;
  const masterAddr = o.masterAddr ?? DEFAULT_MASTER_ADDR;
  // node 0 hosts the store: its port must be free here; other nodes cannot check a remote port
  let masterPort: number;
  if (o.masterPort === undefined) masterPort = await freePort();
  else {
    masterPort = o.masterPort;
    if (nodeRank === 0) await checkPortFree(masterPort, names.masterPort);
  }
  const onOutput = o.onOutput ?? writeOutput('prefixed');
  const graceMs = o.graceMs ?? 5000;

  const children: ChildProcess[] = [];
  const exits: Array<RankExit | undefined> = new Array(n).fill(undefined);
  let failed: RankExit | null = null;
  let interrupted = false;
  let stopping = false;
  let killTimer: NodeJS.Timeout | undefined;

  const alive = () => children.filter((c, i) => exits[i] === undefined && c.exitCode === null && c.signalCode === null);
  // SIGTERM everyone still running, SIGKILL whoever is left after the grace period
  const stopAll = () => {
    if (stopping) return;
    stopping = true;
    for (const c of alive()) c.kill('SIGTERM');
    killTimer = setTimeout(() => {
      for (const c of alive()) c.kill('SIGKILL');
    }, graceMs);
    killTimer.unref();
  };

  // forwarded signals: the children (their own process group, so a terminal's Ctrl-C reaches them once) finish their step and exit
  const forwarded: Array<[NodeJS.Signals, () => void]> = [];
  if (o.forwardSignals ?? true) {
    for (const sig of ['SIGINT', 'SIGTERM'] as const) {
      const handler = () => {
        interrupted = true;
        for (const c of alive()) c.kill(sig);
      };
      process.on(sig, handler);
      forwarded.push([sig, handler]);
    }
  }
  // if this process ends anyway, the detached children must not live on
  const killOnExit = () => {
    for (const c of alive()) c.kill('SIGKILL');
  };
  process.on('exit', killOnExit);

  try {
    const done = Array.from({ length: n }, (_, localRank) => {
      const rank = nodeRank * n + localRank;
      const env: NodeJS.ProcessEnv = {
        ...(o.env ?? process.env),
        RANK: String(rank),
        LOCAL_RANK: String(localRank),
        WORLD_SIZE: String(worldSize),
        LOCAL_WORLD_SIZE: String(n),
        GROUP_RANK: String(nodeRank),
        MASTER_ADDR: masterAddr,
        MASTER_PORT: String(masterPort),
        [LAUNCHER_PID_ENV]: String(process.pid),
      };
      // N processes of every core each would fight over the cores (torchrun sets OMP_NUM_THREADS=1): cores / N each,
      // unless the user chose (FINETORCH_NUM_THREADS, or OMP_NUM_THREADS, which finetorch does not read itself)
      if (env.FINETORCH_NUM_THREADS === undefined)
        env.FINETORCH_NUM_THREADS = env.OMP_NUM_THREADS ?? String(Math.max(1, Math.floor(availableParallelism() / n)));
      if (rank > 0) env.FINETORCH_RANK_LOG = `rank${rank}.log`;
      else delete env.FINETORCH_RANK_LOG;
      const child = spawn(o.command, o.args, { env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
      children.push(child);
      forEachLine(child.stdout!, (text) => onOutput({ rank, stream: 'stdout', text }));
      forEachLine(child.stderr!, (text) => onOutput({ rank, stream: 'stderr', text }));
      return new Promise<void>((resolve) => {
        let spawnError: Error | null = null;
        child.on('error', (err) => {
          spawnError = err;
          onOutput({ rank, stream: 'stderr', text: `could not start ${o.command}: ${err.message}` });
        });
        // 'close': the process has exited and its output is read to the end
        child.on('close', (code, signal) => {
          const e: RankExit = { rank, code: spawnError && code === null && !signal ? 1 : code, signal };
          exits[localRank] = e;
          if ((e.code !== 0 || e.signal) && !failed && !interrupted && !stopping) {
            failed = e;
            stopAll();
          }
          resolve();
        });
      });
    });
    await Promise.all(done);
  } finally {
    if (killTimer) clearTimeout(killTimer);
    for (const [sig, h] of forwarded) process.off(sig, h);
    process.off('exit', killOnExit);
  }

  const all = exits as RankExit[];
  const f = failed as RankExit | null;
  let exitCode = 0;
  if (f) exitCode = f.signal ? 128 + (constants.signals[f.signal] ?? 0) : (f.code ?? 1);
  else if (interrupted) exitCode = all.some((e) => e.code !== 0 || e.signal) ? 130 : 0;
  return { exitCode, failed: f, exits: all, interrupted, masterAddr, masterPort };
}
