// @torch2: runs in CI's libtorch 2.x leg
// c10d process groups (native/distributed.cc) across real processes on
// loopback: every collective against the math on 2 and 3 ranks, and a peer
// that exits early, is killed or hangs ends the others' wait with an error
// naming it within the timeout (+ up to half of it to hear from the others) instead
// of a hang. Each rank is a node process (native-rank.mjs).
import { describe, it, expect, beforeAll } from 'vitest';
import { spawn } from 'node:child_process';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { native } from '../../dist/native/loader.js';

const available = native.distAvailable();

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

type Outcome = { code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string };

const children = new Set<ReturnType<typeof spawn>>();

/** Runs one rank; `signal` is sent to it 300 ms after it says it joined (modes hang, hang-first). */
function rank(mode: string, r: number, world: number, port: number, timeoutMs: number, killAfterMs = 25_000, signal?: NodeJS.Signals): Promise<Outcome> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [join(__dirname, 'native-rank.mjs'), mode, String(r), String(world), String(port), String(timeoutMs)]);
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => {
      stdout += d;
      const send = signal;
      if (send && stdout.includes('"joined":true')) {
        signal = undefined;
        setTimeout(() => child.kill(send), 300);
      }
    });
    child.stderr.on('data', (d) => (stderr += d));
    children.add(child);
    const timer = setTimeout(() => child.kill('SIGKILL'), killAfterMs);
    child.on('close', (code, signal) => {
      children.delete(child);
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

const lastJson = (o: Outcome) => {
  expect(o.code, `rank exited with ${o.code ?? o.signal}\n${o.stderr.slice(-2000)}`).toBe(0);
  return JSON.parse(o.stdout.trim().split('\n').pop()!);
};

type RankOut = {
  rank: number;
  worldSize: number;
  inputs: { x: number[]; ints: number[] };
  results: Record<string, number[]> & { pair: number[][]; allGather: { shape: number[]; values: number[] }[] };
  barrier: { ms: number; ticks: number };
  afterDestroy: number[];
};

const f32 = (v: number) => Math.fround(v);
function expectClose(actual: number[], expected: number[], tol = 1e-5) {
  expect(actual.length).toBe(expected.length);
  actual.forEach((a, i) => expect(Math.abs(a - expected[i])).toBeLessThanOrEqual(tol * Math.max(1, Math.abs(expected[i]))));
}

describe.skipIf(!available)('c10d process groups (Gloo) across processes', () => {
  for (const world of [2, 3]) {
    describe(`${world} ranks`, () => {
      let outs: RankOut[];
      beforeAll(async () => {
        const port = await freePort();
        const ranks = await Promise.all(Array.from({ length: world }, (_, r) => rank('collectives', r, world, port, 10_000)));
        outs = ranks.map(lastJson).sort((a, b) => a.rank - b.rank);
      }, 30_000);

      it('allReduce sum, avg, max and min equal the math (float32 and int32), in place', () => {
        const xs = outs.map((o) => o.inputs.x.map(f32));
        const ints = outs.map((o) => o.inputs.ints);
        const column = (rows: number[][], i: number) => rows.map((r) => r[i]);
        const sum = xs[0].map((_, i) => column(xs, i).reduce((a, b) => a + b, 0));
        const max = xs[0].map((_, i) => Math.max(...column(xs, i)));
        const min = xs[0].map((_, i) => Math.min(...column(xs, i)));
        for (const o of outs) {
          expect([o.rank, o.worldSize]).toEqual([outs.indexOf(o), world]);
          expectClose(o.results.sum, sum);
          expectClose(
            o.results.avg,
            sum.map((s) => s / world),
          );
          expect(o.results.max).toEqual(max);
          expect(o.results.min).toEqual(min);
          expect(o.results['int-sum']).toEqual(ints[0].map((_, i) => column(ints, i).reduce((a, b) => a + b, 0)));
          expect(o.results['int-max']).toEqual(ints[0].map((_, i) => Math.max(...column(ints, i))));
          expect(o.results['int-min']).toEqual(ints[0].map((_, i) => Math.min(...column(ints, i))));
          // two tensors in one call: each reduced across ranks, not with each other
          expectClose(o.results.pair[0], sum);
          expect(o.results.pair[1]).toEqual(ints[0].map((_, i) => column(ints, i).reduce((a, b) => a + b, 0)));
        }
        // ranks had different inputs, so this checks something
        expect(xs[0]).not.toEqual(xs[1]);
      });

      it("broadcast gives every rank the source rank's values; allGather one tensor per rank in rank order", () => {
        for (const o of outs) {
          expect(o.results.broadcast).toEqual(outs[world - 1].inputs.x.map(f32));
          expect(o.results.allGather.length).toBe(world);
          o.results.allGather.forEach((g, r) => {
            expect(g.shape).toEqual([3, 2]);
            expect(g.values).toEqual(outs[r].inputs.x.map(f32));
          });
        }
      });

      it('barrier waits for the late rank without blocking the event loop; destroy drops the group', () => {
        for (const o of outs.slice(0, world - 1)) {
          expect(o.barrier.ms).toBeGreaterThanOrEqual(300);
          expect(o.barrier.ticks).toBeGreaterThanOrEqual(5); // timers ran while waiting
        }
        for (const o of outs) expect(o.afterDestroy).toEqual([-1, -1]);
      });
    });
  }

  it('a peer that exits early or is killed during an allReduce is named within seconds; a killed rank 0 (the store) too', async () => {
    // three worlds at once: rank 1 exits after the rendezvous; rank 1 is killed; rank 0 is killed
    const timeoutMs = 3000;
    const started = Date.now();
    const worlds = await Promise.all(
      (['exit-early', 'hang', 'hang-first'] as const).map(async (mode) => {
        const port = await freePort();
        const gone = mode === 'hang-first' ? 0 : 1;
        const outcomes = [0, 1].map((r) => rank(mode, r, 2, port, timeoutMs, 15_000, r === gone && mode !== 'exit-early' ? 'SIGKILL' : undefined));
        return { mode, port, gone, outcome: await outcomes[1 - gone] };
      }),
    );
    for (const { mode, port, gone, outcome } of worlds) {
      const out = lastJson(outcome);
      expect(out.error, mode).toContain(`allReduce (rank ${1 - gone} of 2, master 127.0.0.1:${port}): `);
      expect(out.error, mode).toContain(
        gone === 1 ? 'rank 1 did not answer: it died or hangs' : 'rank 0 did not answer (it serves the TCPStore): it died or hangs',
      );
      // Gloo's own words stay in the message
      expect(out.error, mode).toMatch(/\(.*(closed|reset|peer).*\)/i);
      // at once, then up to half the timeout to hear from the others
      expect(out.ms, mode).toBeLessThan(timeoutMs / 2 + 2000);
    }
    expect(Date.now() - started).toBeLessThan(20_000);
  }, 25_000);

  it('a hung (stopped) peer: the others get a timeout error naming it, not a hang', async () => {
    const port = await freePort();
    const timeoutMs = 3000; // also the rendezvous' timeout: room for a slow start of the two processes
    const ranks = [rank('hang', 0, 2, port, timeoutMs), rank('hang', 1, 2, port, timeoutMs, 15_000, 'SIGSTOP')];
    const out = lastJson(await ranks[0]);
    expect(out.error).toContain(`allReduce (rank 0 of 2, master 127.0.0.1:${port}): rank 1 did not answer: it died or hangs`);
    expect(out.error).toMatch(/timed out|timeout/i);
    expect(out.ms).toBeGreaterThanOrEqual(timeoutMs - 200);
    // the timeout, then up to half of it for the others to answer
    expect(out.ms).toBeLessThan(timeoutMs * 1.5 + 2000);
    for (const child of children) child.kill('SIGKILL'); // the stopped rank
    await ranks[1];
  }, 25_000);

  it('an unreachable master, a busy port or a rank that never comes is a clear error naming the address or the rank', async () => {
    // three lone ranks at once
    const [port, lonelyPort, busyPort] = [await freePort(), await freePort(), await freePort()];
    const server: Server = createServer();
    await new Promise<void>((r) => server.listen(busyPort, '127.0.0.1', () => r()));
    try {
      const [unreachable, lonely, busy] = (
        await Promise.all([rank('alone', 1, 2, port, 1500), rank('alone', 0, 2, lonelyPort, 1500), rank('alone', 0, 2, busyPort, 1500)])
      ).map(lastJson);
      expect(unreachable.error).toContain(`could not reach the TCPStore on 127.0.0.1:${port} (rank 0 serves it)`);
      expect(unreachable.error).toContain('rank 1 of 2');
      expect(unreachable.ms).toBeLessThan(6000);
      // rank 0 alone: the rank that did not come is named
      expect(lonely.error).toContain('rank 1 did not join within the timeout (1500 ms');
      expect(busy.error).toContain(`could not serve the TCPStore on 127.0.0.1:${busyPort}`);
    } finally {
      server.close();
    }
  }, 25_000);

  it('one group per process: a second distInit is refused while one is under way or up; destroy allows another', async () => {
    const options = { backend: 'gloo' as const, rank: 0, worldSize: 1, masterAddr: '127.0.0.1', masterPort: await freePort(), timeoutMs: 5000 };
    const first = native.distInit(options);
    expect(() => native.distInit(options)).toThrow(/another distInit is under way/);
    await first;
    expect(() => native.distInit(options)).toThrow(/a process group is already up \(rank 0 of 1, master 127.0.0.1:\d+\)/);
    const t = native.fromData(new Float32Array([1.5, -2]), [2]);
    await native.distAllReduceAsync([t], 'avg'); // a world of one: unchanged
    expect(Array.from(native.toTypedArray(t))).toEqual([1.5, -2]);
    native.distDestroy();
    expect(native.distRank()).toBe(-1);
    await native.distInit({ ...options, masterPort: await freePort() });
    expect([native.distRank(), native.distWorldSize()]).toEqual([0, 1]);
    native.distDestroy();
  });

  it('bad arguments are clear errors, and collectives without a group say to call distInit', () => {
    expect(() => native.distInit({ backend: 'gloo', rank: 2, worldSize: 2, masterAddr: '127.0.0.1', masterPort: 1234 })).toThrow(
      /rank must be in \[0, worldSize\)/,
    );
    expect(() => native.distInit({ backend: 'nccl', rank: 0, worldSize: 1, masterAddr: '127.0.0.1', masterPort: 1234 })).toThrow(
      /backend 'nccl': this build has no NCCL \(only CUDA builds of finetorch have it\); use 'gloo'/,
    );
    expect(() => native.distAllReduceAsync([native.ones([2])], 'sum')).toThrow(/no process group \(call distInit first\)/);
    expect(native.distRank()).toBe(-1);
  });
});
