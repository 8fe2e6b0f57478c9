// Concurrent use of one module, optimizer or graph is never undefined
// behaviour: while an async task owns them, synchronous calls are refused with
// a clear Error; two fit() calls on one model end with one refused instead of
// a corrupted heap; disposing handles while a task runs frees nothing under
// it. Each case runs in a child process, so a crash fails the test.
import { describe, it, expect } from 'vitest';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';

function child(script: string, args: string[], flags: string[] = []) {
  const r = spawnSync(process.execPath, [...flags, join(__dirname, script), ...args], { encoding: 'utf8', timeout: 240000 });
  const died = r.signal ? `killed by ${r.signal}` : `exit code ${r.status}`;
  expect(r.status, `${script} ${died}\n${r.stderr.slice(-2000)}`).toBe(0);
  return JSON.parse(r.stdout.trim().split('\n').pop()!);
}

const busy = /is busy with an async task \((forwardAsync|backwardAsync|stepAsync|trainStepAsync)\) that has not settled; await it first/;

describe('concurrent use of one model', () => {
  it('two fit() calls on one model started together: one is refused, never a crash (40 rounds)', () => {
    // before the fix, 40 rounds of this died with SIGSEGV (4 runs of 4)
    const r = child('concurrent-fit.mjs', ['40']) as { fulfilled: number; rejected: number; messages: Record<string, number>; finite: boolean };
    console.log(`two fits x 40 rounds: ${r.fulfilled} finished, ${r.rejected} refused`);
    expect(r.fulfilled + r.rejected).toBe(80);
    expect(r.fulfilled).toBeGreaterThanOrEqual(40); // at least one fit of each pair trains
    for (const message of Object.keys(r.messages)) expect(message).toMatch(busy);
    expect(r.finite).toBe(true);
  }, 300000);

  it('synchronous calls on what a pending task owns throw a busy Error, and work once it settles', () => {
    const r = child('async-ownership.mjs', ['0']) as { sync: Record<string, { error: string | null; afterwards: true | string }> };
    const allowed = new Set(['forwardAsync / metadata', 'stepAsync / lr read', 'forwardAsync / another module']);
    expect(Object.keys(r.sync).length).toBe(22);
    for (const [name, { error, afterwards }] of Object.entries(r.sync)) {
      if (allowed.has(name)) expect(error, name).toBeNull();
      else expect(error, name).toMatch(busy);
      expect(afterwards, name).toBe(true);
    }
    // the message names the task that owns the object
    expect(r.sync['stepAsync / zeroGrad'].error).toMatch(/\(stepAsync\)/);
    expect(r.sync['backwardAsync / second backward'].error).toMatch(/^backward: a tensor whose gradient this backward writes is busy/);
  }, 120000);

  it('disposing the module, optimizer and tensors of a running task gives the same results (50 rounds, with GC)', () => {
    const r = child('async-ownership.mjs', ['50'], ['--expose-gc']) as { dispose: Record<string, number> };
    for (const [name, diff] of Object.entries(r.dispose)) expect(diff, name).toBeLessThan(1e-6);
  }, 240000);
});
