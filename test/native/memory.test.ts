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
    const results = JSON.parse(r.stdout.trim().split('\n').pop()!) as Record<
      string,
      { warmMB: number; endMB: number; growthMB: number; withCacheMB: number; liveMB: number; tensorMB: number }
    >;
    for (const [mode, m] of Object.entries(results)) {
      console.log(
        `memory ${mode}: RSS ${m.warmMB.toFixed(1)} MB after warm-up -> ${m.endMB.toFixed(1)} MB after 5,000 iterations (${m.growthMB >= 0 ? '+' : ''}${m.growthMB.toFixed(1)} MB; each iteration allocates ${m.tensorMB.toFixed(2)} MB; ${m.withCacheMB.toFixed(1)} MB before emptying the CPU cache; ${m.liveMB.toFixed(1)} MB of large buffers still live)`,
      );
      // a leak of one 256 KiB tensor per iteration would be 1,250 MB
      expect(m.growthMB, mode).toBeLessThan(25);
      // no large tensor buffer is left alive once its handles are gone
      expect(m.liveMB, mode).toBeLessThan(5);
    }
  }, 300000);
});

describe('deterministic release', () => {
  it('models.load, loadStateDict and in-place ops free their internal handles without waiting for GC', async () => {
    const { torch, models } = await import('finetorch');
    const live = () => torch.cpuCacheStats().liveBytes ?? 0;
    const before = live();
    const m = models.vgg11({ numClasses: 10 }); // ~530 MB of large buffers
    const sd = m.stateDict();
    m.loadStateDict(sd); // a strict self-load exercises every internal handle
    Object.values(sd).forEach((t) => t.dispose());
    const params = m.parameters();
    torch.noGrad(() => params[0].mul_(1).add_(0).zero_());
    params.forEach((t) => t.dispose());
    m.getSubmodule('features.0').dispose(); // a child wrapper made by the parent is released with it too
    m.dispose();
    // no GC has run: only explicit releases brought the memory back
    expect((live() - before) / 2 ** 20).toBeLessThan(5);
  });
});
