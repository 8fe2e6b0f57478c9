// torch.distributed on real processes over loopback (Gloo): collectives against
// the math, DistributedDataParallel against one process on the concatenated
// batches, and the DistributedSampler-like sharding.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { distributed, nn, optim, permutation, torch, TensorLoader, type Batch, type Optimizer, type Tensor } from 'finetorch';

const worker = join(__dirname, 'worker.mjs');
const dir = mkdtempSync(join(tmpdir(), 'finetorch-dist-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const distAvailable = (() => {
  try {
    // biome-ignore lint/suspicious/noExplicitAny: probing the addon for an entry older builds lack
    const addon = require(process.env.FINETORCH_BINARY ?? '../../build/Release/finetorch.node') as any;
    return typeof addon.distAvailable === 'function' && addon.distAvailable() === true;
  } catch {
    return false;
  }
})();

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

type Result = Record<string, unknown> & { rank: number; worldSize: number };

/** Runs worker.mjs `task` as worldSize processes with torchrun's environment; resolves to each rank's JSON. */
async function launch(task: string, worldSize: number): Promise<Result[]> {
  const port = await freePort();
  const runs = Array.from({ length: worldSize }, (_, rank) => {
    const out = join(dir, `${task}-${worldSize}-${rank}.json`);
    const env = {
      ...process.env,
      RANK: String(rank),
      LOCAL_RANK: String(rank),
      WORLD_SIZE: String(worldSize),
      MASTER_ADDR: '127.0.0.1',
      MASTER_PORT: String(port),
      OMP_NUM_THREADS: '1',
    };
    const child = spawn(process.execPath, [worker, task, out], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let log = '';
    child.stdout.on('data', (d) => (log += d));
    child.stderr.on('data', (d) => (log += d));
    return new Promise<Result>((resolve, reject) => {
      child.on('exit', (code) => {
        if (code === 0) resolve(JSON.parse(readFileSync(out, 'utf8')) as Result);
        else reject(new Error(`rank ${rank} of ${task} exited with ${code}:\n${log}`));
      });
    });
  });
  return Promise.all(runs);
}

const launches = new Map<string, Promise<Result[]>>();
/** launch(), once per task list and world size: tests that share a launch read its results. */
function launchOnce(task: string, worldSize: number): Promise<Result[]> {
  const key = `${task}/${worldSize}`;
  if (!launches.has(key)) launches.set(key, launch(task, worldSize));
  return launches.get(key) as Promise<Result[]>;
}

const flat = (a: unknown): number[] => (Array.isArray(a) ? a.flatMap(flat) : [a as number]);

describe.skipIf(!distAvailable)('collectives on real processes', () => {
  for (const worldSize of [2, 3]) {
    it(`allReduce, broadcast and allGather on ${worldSize} ranks equal the math`, async () => {
      // 2 ranks: with the DDP test of unused parameters, in one launch
      const results = await launchOnce(worldSize === 2 ? 'collectives+unused+reducer' : 'collectives', worldSize);
      const inputs = results.map((r) => flat(r.input));
      const n = inputs[0].length;
      const column = (i: number) => inputs.map((x) => x[i]);
      const expected = {
        sum: Array.from({ length: n }, (_, i) => column(i).reduce((a, b) => a + b, 0)),
        avg: Array.from({ length: n }, (_, i) => column(i).reduce((a, b) => a + b, 0) / worldSize),
        max: Array.from({ length: n }, (_, i) => Math.max(...column(i))),
        min: Array.from({ length: n }, (_, i) => Math.min(...column(i))),
      };
      for (const r of results) {
        for (const op of ['sum', 'avg', 'max', 'min'] as const) flat(r[op]).forEach((v, i) => expect(v).toBeCloseTo(expected[op][i], 5));
        expect(flat(r.broadcast)).toEqual(inputs[worldSize - 1]);
        expect((r.allGather as unknown[]).map(flat)).toEqual(inputs);
      }
    });
  }
});

describe.skipIf(!distAvailable)('faults', () => {
  it('a rank that died makes the next collective of the others fail within the timeout, not hang', async () => {
    const [survivor] = await launch('dead-peer', 2);
    expect(survivor.error).toEqual(expect.any(String));
    expect(survivor.error).toMatch(/allReduce \(rank 0 of 2.*\): rank 1 did not answer: it died or hangs/);
    expect(survivor.ms).toBeLessThan(15000);
  });

  it('a port already in use and an unreachable master are clear errors naming the address', async () => {
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as { port: number };
    try {
      await expect(distributed.initProcessGroup({ rank: 0, worldSize: 2, masterPort: port, timeoutMs: 2000 })).rejects.toThrow(
        new RegExp(`could not serve the TCPStore on 127\\.0\\.0\\.1:${port}.*address already in use`, 'i'),
      );
    } finally {
      server.close();
    }
    await expect(distributed.initProcessGroup({ rank: 1, worldSize: 2, masterPort: port, timeoutMs: 1000 })).rejects.toThrow(
      new RegExp(`rank 1 of 2.*could not reach the TCPStore on 127\\.0\\.0\\.1:${port}`),
    );
    expect(distributed.isInitialized()).toBe(false);
  });

  it('FINETORCH_DIST_TIMEOUT_MS bounds the wait when the code passes no timeoutMs (recipes under the launcher)', async () => {
    const port = await freePort();
    try {
      process.env.FINETORCH_DIST_TIMEOUT_MS = 'soon';
      await expect(distributed.initProcessGroup({ rank: 0, worldSize: 2, masterPort: port })).rejects.toThrow(
        /FINETORCH_DIST_TIMEOUT_MS must be an integer, got 'soon'/,
      );
      process.env.FINETORCH_DIST_TIMEOUT_MS = '1000';
      const started = Date.now();
      // rank 1 never comes: without the variable this would wait 30 minutes
      await expect(distributed.initProcessGroup({ rank: 0, worldSize: 2, masterPort: port })).rejects.toThrow(/rank 1 did not join/);
      expect(Date.now() - started).toBeLessThan(10000);
    } finally {
      delete process.env.FINETORCH_DIST_TIMEOUT_MS;
    }
    expect(distributed.isInitialized()).toBe(false);
  });
});

/** One process, the same model and data, each step on the union of what the ranks' step k saw (DistributedSampler's split). */
function reference(task: 'sgd' | 'adamw' | 'plain-sgd', worldSize: number): { params: Record<string, number[]>; epochLosses: number[] } {
  torch.manualSeed(100);
  const model = new nn.Sequential(new nn.Linear(6, 8), new nn.ReLU(), new nn.Linear(8, 8), new nn.ReLU(), new nn.Linear(8, 3));
  const blocks = model.children();
  let opt: Optimizer;
  // plain-sgd: every parameter in one group (fit-resume); sgd, adamw: a frozen first block and two param groups
  if (task !== 'plain-sgd') for (const p of blocks[0].parameters()) p.requiresGrad = false;
  if (task === 'plain-sgd') opt = new optim.SGD(model.parameters(), { lr: 0.1, momentum: 0.9 });
  else if (task === 'sgd')
    opt = new optim.SGD([{ params: blocks[2].parameters() }, { params: blocks[4].parameters(), lr: 0.05, weightDecay: 0.01 }], { lr: 0.1, momentum: 0.9 });
  else {
    opt = new optim.AdamW(
      [
        { params: blocks[2].parameters(), lr: 0.01, weightDecay: 0.1 },
        { params: blocks[4].parameters(), lr: 0.005 },
      ],
      {},
    );
  }
  torch.manualSeed(0);
  const x = torch.randn([20, 6]);
  const y = torch.randint(0, 3, [20], { dtype: 'int64' });
  const epochLosses: number[] = [];
  for (let epoch = 0; epoch < 2; epoch++) {
    let lossSum = 0;
    const order = permutation(20, 7 * 100003 + epoch);
    const perRank = Array.from({ length: worldSize }, (_, r) => order.filter((_, i) => i % worldSize === r));
    for (let k = 0; k * 3 < perRank[0].length; k++) {
      const idx = torch.tensor(
        perRank.flatMap((list) => list.slice(3 * k, 3 * k + 3)),
        { dtype: 'int64' },
      );
      opt.zeroGrad();
      const loss = nn.functional.crossEntropy(model.forward(x.indexSelect(0, idx)), y.indexSelect(0, idx));
      lossSum += (loss.item() as number) * idx.shape[0];
      loss.backward();
      opt.step();
    }
    epochLosses.push(lossSum / 20);
  }
  return { params: Object.fromEntries(model.namedParameters().map(([k, p]) => [k, Array.from(p.dataSync())])), epochLosses };
}

describe.skipIf(!distAvailable)('DistributedDataParallel', () => {
  for (const task of ['sgd', 'adamw', 'fit', 'fit-ddp'] as const) {
    it(`2 processes train to the parameters of 1 process on the concatenated batches (${task})`, async () => {
      const results = await launch(task, 2);
      const { params: expected, epochLosses } = reference(task === 'fit' || task === 'fit-ddp' ? 'plain-sgd' : task, 2);
      expect(results.map((r) => r.batches)).toEqual([4, 4]);
      // fit's epoch loss is over every rank's samples: the same on each rank, the one process's
      if (task.startsWith('fit')) for (const r of results) (r.trainLosses as number[]).forEach((l, i) => expect(l).toBeCloseTo(epochLosses[i], 5));
      for (const r of results) {
        const params = r.params as Record<string, number[]>;
        expect(Object.keys(params)).toEqual(Object.keys(expected));
        for (const [k, v] of Object.entries(expected)) {
          const got = params[k];
          const worst = Math.max(...v.map((e, i) => Math.abs(e - got[i])));
          expect(worst, `${k} on rank ${r.rank}`).toBeLessThan(1e-5);
        }
      }
    });
  }
});

describe.skipIf(!distAvailable)('fit({ distributed }) checkpoints', () => {
  it('rank 0 writes them, and both ranks resume from last/ to the parameters of an uninterrupted run', async () => {
    const results = await launch('fit-resume', 2);
    expect(results.map((r) => r.wrote)).toEqual([true, true]);
    const expected = reference('plain-sgd', 2).params;
    for (const r of results) {
      const params = r.params as Record<string, number[]>;
      for (const [k, v] of Object.entries(expected)) {
        const worst = Math.max(...v.map((e, i) => Math.abs(e - params[k][i])));
        expect(worst, `${k} on rank ${r.rank}`).toBeLessThan(1e-5);
      }
    }
  });
});

describe.skipIf(!distAvailable)('DistributedDataParallel without some gradients', () => {
  it('averages a gradient only one rank has (as zeros elsewhere) and leaves one no rank has as none', async () => {
    // bucketCapMb tiny: one bucket per parameter, so every rank must take the same buckets
    const [r0, r1] = (await launchOnce('collectives+unused+reducer', 2)) as Array<Result & Record<'before' | 'after', Record<string, number[] | null>>>;
    expect(r0.before.b).toBeNull();
    expect(r1.before.b).not.toBeNull();
    const mean = (u: number[], v: number[]) => u.map((x, i) => (x + v[i]) / 2);
    for (const r of [r0, r1]) {
      (r.after.a as number[]).forEach((x, i) => expect(x).toBeCloseTo(mean(r0.before.a as number[], r1.before.a as number[])[i], 5));
      (r.after.b as number[]).forEach((x, i) => expect(x).toBeCloseTo((r1.before.b as number[])[i] / 2, 5));
      expect(r.after.c).toBeNull();
      expect(r.flags).toEqual([1, 2, 1]);
    }
  });
});

describe.skipIf(!distAvailable)('GradientReducer', () => {
  type Grads = Record<string, number[] | null>;
  type Step = { before: Grads; after: Grads; flags: number[]; stats: { buckets: number; launchedDuringBackward: number } | null };
  it('averages what the ranks accumulated, overlapping the backward, and again after unfreezing a block', async () => {
    const [r0, r1] = (await launchOnce('collectives+unused+reducer', 2)) as Array<
      Result & { reducer: Record<'accumulated' | 'unfrozen', Step> & { errors: string[] } }
    >;
    for (const step of ['accumulated', 'unfrozen'] as const) {
      const [a, b] = [r0.reducer[step], r1.reducer[step]];
      const frozen = step === 'accumulated';
      for (const r of [a, b]) {
        for (const [k, before] of Object.entries(a.before)) {
          const after = r.after[k];
          if (frozen && k.startsWith('0.')) {
            // frozen: no gradient anywhere, none after
            expect(before, k).toBeNull();
            expect(after, k).toBeNull();
            continue;
          }
          const other = b.before[k] as number[];
          const worst = Math.max(...(before as number[]).map((x, i) => Math.abs((x + other[i]) / 2 - (after as number[])[i])));
          expect(worst, `${step} ${k}`).toBeLessThanOrEqual(1e-6);
        }
        // buckets of 1.1 KiB: the last layers' buckets went out during the backward, the last one waits for the flags
        expect(r.stats?.buckets, step).toBeGreaterThanOrEqual(3);
        expect(r.stats?.launchedDuringBackward, step).toBeGreaterThanOrEqual(1);
        expect(r.stats?.launchedDuringBackward, step).toBeLessThan(r.stats?.buckets as number);
      }
      expect(a.flags).toEqual(frozen ? [3, 20] : []);
      expect(b.flags).toEqual(a.flags);
    }
    for (const r of [r0, r1])
      expect(r.reducer.errors).toEqual([
        expect.stringMatching(/flags must be an array of finite numbers, got \["one"\]/),
        expect.stringMatching(/accumulated again after its bucket was sent .*call prepare\(\) before the last one only/),
        expect.stringMatching(/GradientReducer.finish: the reducer was disposed/),
      ]);
  });
});

describe('sharding (DistributedSampler)', () => {
  it("splits indices as torch's DistributedSampler: padded by repeating from the start", () => {
    // torch.utils.data.DistributedSampler(range(10), num_replicas=3, shuffle=False)
    expect([0, 1, 2].map((rank) => distributed.distributedIndices(10, { rank, worldSize: 3 }))).toEqual([
      [0, 3, 6, 9],
      [1, 4, 7, 0],
      [2, 5, 8, 1],
    ]);
  });

  it('a TensorLoader: disjoint shards covering the data, the same number of batches, reshuffled per epoch', () => {
    const x = torch.arange(0, 12).reshape(12, 1);
    const loader = new TensorLoader(x, torch.arange(0, 12), { batchSize: 4, shuffle: true, seed: 3 });
    const seen = (epoch: number) =>
      [0, 1].map((rank) => {
        const shard = distributed.shard(loader, { rank, worldSize: 2 });
        const batches = [...(shard.batches(epoch) as Iterable<Batch>)];
        expect(batches.length).toBe(shard.length);
        return batches.flatMap((b) => Array.from((b.target as Tensor).dataSync(), Number));
      });
    const [a, b] = seen(0);
    expect(a.length).toBe(6);
    expect([...a, ...b].sort((p, q) => p - q)).toEqual(Array.from({ length: 12 }, (_, i) => i));
    expect(seen(1)[0]).not.toEqual(a);
    expect(seen(0)[0]).toEqual(a);
  });

  it('any other source: by batch, the short rank repeats the first batches', async () => {
    const source = {
      *batches() {
        for (let i = 0; i < 5; i++) yield { input: torch.tensor([i]), target: torch.tensor([i]) };
      },
    };
    const ids = async (rank: number) => {
      const out: number[] = [];
      for await (const b of distributed.shard(source, { rank, worldSize: 2 }).batches(0)) out.push(b.target.item() as number);
      return out;
    };
    expect(await ids(0)).toEqual([0, 2, 4]);
    expect(await ids(1)).toEqual([1, 3, 0]);
  });

  it('clear errors without a process group or with a bad rank', async () => {
    expect(() => distributed.shard(new TensorLoader(torch.zeros([2, 1]), torch.zeros([2]), { batchSize: 1 }))).toThrow(/initProcessGroup/);
    expect(() => distributed.distributedIndices(4, { rank: 2, worldSize: 2 })).toThrow(/rank must be an integer 0 \.\. 1, got 2/);
    const saved = { ...process.env };
    try {
      delete process.env.WORLD_SIZE;
      delete process.env.RANK;
      await expect(distributed.initProcessGroup()).rejects.toThrow(/no world size: pass worldSize or set WORLD_SIZE/);
      process.env.WORLD_SIZE = 'two';
      await expect(distributed.initProcessGroup({ rank: 0 })).rejects.toThrow(/WORLD_SIZE must be an integer, got 'two'/);
      await expect(distributed.initProcessGroup({ rank: 2, worldSize: 2 })).rejects.toThrow(/rank 2 is out of range/);
      await expect(distributed.initProcessGroup({ rank: 0, worldSize: 1, masterPort: 70000 })).rejects.toThrow(/masterPort must be 1 \.\. 65535/);
    } finally {
      process.env = saved;
    }
    expect(distributed.isInitialized()).toBe(false);
    expect(() => distributed.getRank()).toThrow(/initProcessGroup\(\) first/);
  });
});
