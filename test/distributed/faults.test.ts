// Faults and stops of fit on two real ranks over Gloo (faults-worker.mjs):
// a rank killed mid-epoch ends the other within the timeout and leaves the
// checkpoint of the epoch before intact, and resuming it on two ranks reaches
// the parameters of an uninterrupted run; a non-finite loss, the signal and a
// callback's stop on one rank stop every rank at the same point; rank 0's
// BatchNorm buffers are broadcast before each step (checked against the
// running statistics computed here from the inputs). Then the launcher with
// real `finetorch train` ranks: a killed rank is named and the others are
// stopped; a killed launcher takes its ranks with it.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI } from '../cli/cli-helpers';

const worker = join(__dirname, 'faults-worker.mjs');
const dir = mkdtempSync(join(tmpdir(), 'finetorch-faults-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

interface RankRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** ms from the launch to this rank's exit */
  exitMs: number;
  log: string;
  // biome-ignore lint/suspicious/noExplicitAny: the worker's JSON
  result: any;
}

/** Runs faults-worker.mjs `task` on 2 ranks with torchrun's environment; each rank's exit and JSON (null when it wrote none). */
async function launch(task: string): Promise<RankRun[]> {
  const port = await freePort();
  const started = Date.now();
  return Promise.all(
    [0, 1].map((rank) => {
      const out = join(dir, `${task}-${rank}.json`);
      const env = {
        ...process.env,
        RANK: String(rank),
        LOCAL_RANK: String(rank),
        WORLD_SIZE: '2',
        MASTER_ADDR: '127.0.0.1',
        MASTER_PORT: String(port),
        OMP_NUM_THREADS: '1',
      };
      const child = spawn(process.execPath, [worker, task, out, dir], { env, stdio: ['ignore', 'pipe', 'pipe'] });
      let log = '';
      child.stdout.on('data', (d) => (log += d));
      child.stderr.on('data', (d) => (log += d));
      return new Promise<RankRun>((resolve) => {
        child.on('close', (code, signal) =>
          resolve({ code, signal, exitMs: Date.now() - started, log, result: existsSync(out) ? JSON.parse(readFileSync(out, 'utf8')) : null }),
        );
      });
    }),
  );
}

const maxDiff = (a: Record<string, number[]>, b: Record<string, number[]>) => {
  expect(Object.keys(a).sort()).toEqual(Object.keys(b).sort());
  return Math.max(...Object.keys(a).map((k) => Math.max(...a[k].map((v, i) => Math.abs(v - b[k][i])))));
};

describe('fit on two ranks: faults and agreed stops', () => {
  let kill: RankRun[];
  let stops: RankRun[];
  beforeAll(async () => {
    kill = await launch('kill');
    stops = await launch('stops');
  }, 60000);

  it('a rank killed mid-epoch 2 ends the other within the timeout (3 s) with an error naming it, not a hang', () => {
    const [r0, r1] = kill;
    expect(r1.signal, r1.log).toBe('SIGKILL');
    expect(r0.code, r0.log).toBe(0);
    expect(r0.result.error, r0.log).not.toBeNull();
    // the error names the collective, the rank that did not answer and Gloo's cause
    expect(r0.result.error.message).toMatch(/^(broadcast|allReduce|reducer)\b.*rank 1 did not answer: it died or hangs.*\(.+\)/);
    expect(r0.exitMs - r1.exitMs).toBeLessThan(3000 + 2000);
  });

  it("the checkpoint of epoch 1 is intact, and resuming it on two ranks reaches an uninterrupted run's parameters", () => {
    const last = join(dir, 'kill', 'last');
    expect(JSON.parse(readFileSync(join(last, 'trainer.json'), 'utf8'))).toMatchObject({ epoch: 0 });
    for (const r of stops) expect(r.code, r.log).toBe(0);
    const [s0] = stops.map((r) => r.result);
    expect(maxDiff(s0.resumed.state, s0.full.state)).toBeLessThanOrEqual(1e-6);
    expect(s0.resumed.history).toHaveLength(3);
    s0.resumed.history.forEach((loss: number, i: number) => expect(loss).toBeCloseTo(s0.full.history[i], 6));
  });

  it("rank 0's buffers reach rank 1 before each step: the running statistics equal those computed from the inputs", () => {
    const [s0, s1] = stops.map((r) => r.result);
    const momentum = 0.1;
    // BatchNorm1d's update from one input batch [B, 6]: the mean and the unbiased variance
    const update = (stats: { mean: number[]; variance: number[] }, batch: number[][]) => {
      const n = batch.length;
      return {
        mean: stats.mean.map((m, j) => (1 - momentum) * m + (momentum * batch.reduce((s, row) => s + row[j], 0)) / n),
        variance: stats.variance.map((v, j) => {
          const mu = batch.reduce((s, row) => s + row[j], 0) / n;
          return (1 - momentum) * v + (momentum * batch.reduce((s, row) => s + (row[j] - mu) ** 2, 0)) / (n - 1);
        }),
      };
    };
    const start = { mean: new Array(6).fill(0), variance: new Array(6).fill(1) };
    const inputs0 = s0.inputs as number[][][];
    const inputs1 = s1.inputs as number[][][];
    expect(inputs0).toHaveLength(12);
    expect(inputs1).toHaveLength(12);
    // rank 0 only ever sees its own statistics; rank 1 starts each step from rank 0's
    const rank0 = inputs0.reduce(update, start);
    const beforeLast = inputs0.slice(0, -1).reduce(update, start);
    const rank1 = update(beforeLast, inputs1[11]);
    const own1 = inputs1.reduce(update, start); // what rank 1 would hold without the broadcast
    const close = (got: number[], want: number[]) => got.forEach((g, i) => expect(g).toBeCloseTo(want[i], 5));
    close(s0.full.state['0.running_mean'], rank0.mean);
    close(s0.full.state['0.running_var'], rank0.variance);
    close(s1.full.state['0.running_mean'], rank1.mean);
    close(s1.full.state['0.running_var'], rank1.variance);
    expect(Math.max(...own1.mean.map((m, i) => Math.abs(m - rank1.mean[i])))).toBeGreaterThan(1e-3);
    expect(s1.full.state['0.num_batches_tracked']).toEqual([12]);
    // and the ranks trained the same parameters
    const params = (s: Record<string, number[]>) =>
      Object.fromEntries(Object.entries(s).filter(([k]) => !k.startsWith('0.running') && !k.includes('num_batches')));
    expect(maxDiff(params(s1.full.state), params(s0.full.state))).toBe(0);
  });

  it('a non-finite loss on rank 1 only: both ranks skip the step and fail with TrainingDivergedError at the same step', () => {
    const [s0, s1] = stops.map((r) => r.result);
    expect(s1.diverged).toMatchObject({ name: 'TrainingDivergedError', epoch: 1, step: 5 });
    expect(s1.diverged.message).toContain('the loss became NaN at epoch 1, step 5');
    expect(s0.diverged).toMatchObject({ name: 'TrainingDivergedError', epoch: 1, step: 5 });
    expect(s0.diverged.message).toContain('the loss became NaN on another rank at epoch 1, step 5');
    expect([s0.divergedSteps, s1.divergedSteps]).toEqual([5, 5]);
    expect(s0.divergedMs).toBeLessThan(3000);
  });

  it('the signal on rank 0 only: both ranks stop after the same step, rank 0 writes last/, and resuming it continues correctly', () => {
    const [s0, s1] = stops.map((r) => r.result);
    expect(s0.interrupted.interrupted).toBe(true);
    expect(s1.interrupted.interrupted).toBe(true);
    expect(s1.interrupted.events).toEqual(s0.interrupted.events);
    const steps = s0.interrupted.events.filter((e: { type: string }) => e.type === 'step');
    // aborted after step 6 (epoch 2's second), seen by every rank in step 7's reduction
    expect(steps).toHaveLength(7);
    expect(s0.interrupted.events.at(-1)).toEqual({ type: 'interrupted', epoch: 1, step: 7 });
    const position = JSON.parse(readFileSync(join(dir, 'signal', 'last', 'trainer.json'), 'utf8')).position;
    expect(position).toMatchObject({ epoch: 1, batch: 3, seen: 2 * 3 * 3 });
    expect(maxDiff(s0.afterSignal.state, s0.full.state)).toBeLessThanOrEqual(1e-6);
    expect(maxDiff(s1.afterSignal.state, s1.full.state)).toBeLessThanOrEqual(1e-6);
    // the interrupted epoch's loss counts both ranks' samples before and after the interruption
    s0.afterSignal.history.forEach((loss: number, i: number) => expect(loss).toBeCloseTo(s0.full.history[i], 6));
  });

  it("gradient accumulation over 2 micro-batches with a frozen block: the parameters of one process on both ranks' batches", () => {
    const [s0, s1] = stops.map((r) => r.result);
    expect(maxDiff(s0.accumulated, s0.reference)).toBeLessThan(1e-5);
    expect(maxDiff(s1.accumulated, s0.reference)).toBeLessThan(1e-5);
  });

  it("a callback's stop on rank 1 only: both ranks end after that epoch", () => {
    const [s0, s1] = stops.map((r) => r.result);
    expect(s1.stopped).toMatchObject({ epochs: 1, steps: 4, stopped: { epoch: 0, reason: 'rank 1 has seen enough' } });
    expect(s0.stopped).toMatchObject({ epochs: 1, steps: 4, stopped: { epoch: 0, reason: 'another rank stopped training' } });
  });
});

/** The children of a process, from /proc (Linux). */
function childrenOf(pid: number): number[] {
  const out: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      // pid (comm) state ppid ...: comm may hold spaces, so read after its closing parenthesis
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === pid) out.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

/** Whether the process still runs (a zombie nobody reaped has ended). */
function running(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

/** The step events of a JSON Lines log (its last line may be half written). */
const stepsOf = (log: string): Array<{ epoch: number }> =>
  log
    .split('\n')
    .filter((l) => l.includes('"step"'))
    .flatMap((l) => {
      try {
        const e = JSON.parse(l);
        return e.type === 'step' ? [e] : [];
      } catch {
        return [];
      }
    });

const RANK_OF = (pid: number) => /(?:^|\0)RANK=(\d+)/.exec(readFileSync(`/proc/${pid}/environ`, 'utf8'))?.[1];

describe('finetorch train --nproc-per-node 2: a dying rank, a dying launcher', () => {
  const recipe = join(dir, 'recipe.json');
  // whatever a failed test left running: the launchers and their ranks
  const started: number[] = [];
  afterAll(() => {
    for (const pid of started)
      if (running(pid))
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // gone meanwhile
        }
  });
  beforeAll(() => {
    writeFileSync(
      recipe,
      JSON.stringify({
        model: { arch: 'resnet18', width: 8, inChannels: 1, smallStem: true },
        optimizer: { type: 'SGD', lr: 0.05 },
        epochs: 50,
        batchSize: 8,
        seed: 1,
        data: { kind: 'fashionMnist', classes: [0, 1], perClass: 32, val: 0.25, testPerClass: 4 },
      }),
    );
  });

  /** Starts the launcher on the recipe; resolves once rank 1 has logged a step of `epoch`, with the launcher and its ranks' pids. */
  function startTraining(out: string, epoch: number) {
    const launcher = spawn(process.execPath, [CLI, 'train', '--nproc-per-node', '2', '--config', recipe, '--out', out, '--json'], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, FINETORCH_NUM_THREADS: '1', OMP_NUM_THREADS: '1' },
    });
    started.push(launcher.pid!);
    let stderr = '';
    launcher.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    launcher.stdout.resume();
    const closed = new Promise<{ code: number | null; ms: number }>((resolve) => {
      const t0 = Date.now();
      launcher.on('close', (code) => resolve({ code, ms: Date.now() - t0 }));
    });
    const training = new Promise<Record<string, number>>((resolve, reject) => {
      const poll = setInterval(() => {
        const log = join(out, 'rank1.log');
        if (launcher.exitCode !== null) {
          clearInterval(poll);
          reject(new Error(`the launcher ended before training:\n${stderr}`));
        } else if (existsSync(log) && stepsOf(readFileSync(log, 'utf8')).some((e) => e.epoch === epoch)) {
          clearInterval(poll);
          const ranks = Object.fromEntries(childrenOf(launcher.pid!).map((pid) => [RANK_OF(pid) ?? '?', pid]));
          started.push(...Object.values(ranks));
          resolve(ranks);
        }
      }, 50);
    });
    return { launcher: launcher as ChildProcess, closed, training, stderr: () => stderr };
  }

  it('a rank killed mid-epoch 2: the launcher names it and its signal, stops rank 0, exits 137', async () => {
    const run = startTraining(join(dir, 'run-kill'), 1);
    const ranks = await run.training;
    expect(Object.keys(ranks).sort()).toEqual(['0', '1']);
    const killedAt = Date.now();
    process.kill(ranks['1'], 'SIGKILL');
    const { code } = await run.closed;
    expect(code, run.stderr()).toBe(137);
    expect(run.stderr()).toContain('finetorch train: rank 1 was killed by SIGKILL; stopped the other ranks');
    expect(running(ranks['0'])).toBe(false);
    expect(Date.now() - killedAt).toBeLessThan(8000);
    // the epochs before stay resumable
    expect(existsSync(join(dir, 'run-kill', 'last', 'trainer.json'))).toBe(true);
  }, 60000);

  it('the launcher killed with SIGKILL: its ranks exit within a few seconds', async () => {
    const run = startTraining(join(dir, 'run-orphans'), 0);
    const ranks = await run.training;
    expect(Object.keys(ranks).sort()).toEqual(['0', '1']);
    run.launcher.kill('SIGKILL');
    await run.closed;
    const killedAt = Date.now();
    while ((running(ranks['0']) || running(ranks['1'])) && Date.now() - killedAt < 10000) await new Promise((r) => setTimeout(r, 100));
    expect(running(ranks['0'])).toBe(false);
    expect(running(ranks['1'])).toBe(false);
    expect(Date.now() - killedAt).toBeLessThan(6000);
  }, 60000);
});
