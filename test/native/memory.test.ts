// Memory stays flat over 5,000 create/use/dispose iterations, with explicit
// dispose, with tidy(), and with nothing but GC (finalizers plus external
// memory accounting). Measured in a child process with --expose-gc.
import { describe, it, expect } from 'vitest';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';

describe('memory', () => {
  it('RSS is flat over 5,000 iterations (dispose, tidy, finalizers)', () => {
    const r = spawnSync(process.execPath, ['--expose-gc', join(__dirname, 'memory-loop.mjs')], { encoding: 'utf8', timeout: 240000 });
    expect(r.status, r.stderr).toBe(0);
    const results = JSON.parse(r.stdout.trim().split('\n').pop()!) as Record<string, { warmMB: number; endMB: number; growthMB: number; withCacheMB: number; liveMB: number; tensorMB: number }>;
    for (const [mode, m] of Object.entries(results)) {
      console.log(`memory ${mode}: RSS ${m.warmMB.toFixed(1)} MB after warm-up -> ${m.endMB.toFixed(1)} MB after 5,000 iterations (${m.growthMB >= 0 ? '+' : ''}${m.growthMB.toFixed(1)} MB; each iteration allocates ${m.tensorMB.toFixed(2)} MB; ${m.withCacheMB.toFixed(1)} MB before emptying the CPU cache; ${m.liveMB.toFixed(1)} MB of large buffers still live)`);
      // a leak of one 256 KiB tensor per iteration would be 1,250 MB
      expect(m.growthMB, mode).toBeLessThan(25);
      // no large tensor buffer is left alive once its handles are gone
      expect(m.liveMB, mode).toBeLessThan(5);
    }
  }, 300000);
});
