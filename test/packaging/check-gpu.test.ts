// scripts/check-gpu.mjs (npm run check:gpu) on a machine without CUDA: it must say so
// and exit 2, never crash; bad options are exit 3 naming them; its CPU smoke mode runs
// real comparisons against PyTorch (Debian's /usr/bin/python3) and passes.
import { describe, it, expect } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cuda } from 'finetorch';
import { root } from '../reference';

const script = join(root, 'scripts', 'check-gpu.mjs');
const run = (args: string[]) => spawnSync(process.execPath, [script, ...args], { cwd: root, encoding: 'utf8', timeout: 300000 });

describe.skipIf(cuda.isAvailable())('check:gpu without a GPU', () => {
  it('--device cuda (the default) says there is no CUDA device, names the binary and the smoke test, exits 2', () => {
    const out = mkdtempSync(join(tmpdir(), 'finetorch-check-gpu-'));
    const r = run(['--out', out]);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/check:gpu: no CUDA device: /);
    expect(r.stderr).toMatch(/--device cpu --quick/);
    expect(r.stderr).not.toMatch(/at .*\.m?js:\d+/); // no stack trace
    const report = JSON.parse(readFileSync(join(out, 'check-gpu.json'), 'utf8'));
    expect(report.finetorch.cudaAvailable).toBe(false);
    rmSync(out, { recursive: true, force: true });
  });

  it('bad options are exit 3 naming the option', () => {
    const r = run(['--device', 'tpu']);
    expect(r.status).toBe(3);
    expect(r.stderr).toMatch(/--device must be cuda or cpu, not 'tpu'/);
    const s = run(['--device', 'cpu', '--only', 'ops,warp']);
    expect(s.status).toBe(3);
    expect(s.stderr).toMatch(/--only: unknown part 'warp'/);
  });
});

describe('check:gpu smoke mode on the CPU', () => {
  it('--device cpu --quick: ops, AdamW (two groups) and a ResNet-18 train step agree with PyTorch', () => {
    const out = mkdtempSync(join(tmpdir(), 'finetorch-check-gpu-'));
    const r = run(['--device', 'cpu', '--quick', '--only', 'ops,optim,train', '--python', '/usr/bin/python3', '--out', out]);
    expect(r.status, `${r.stdout}\n${r.stderr}`).toBe(0);
    const report = JSON.parse(readFileSync(join(out, 'check-gpu.json'), 'utf8'));
    for (const part of ['ops', 'optim', 'train']) {
      const checks = report.parts[part].checks as Array<{ ok: boolean; skipped?: string; maxAbs?: number }>;
      expect(checks.filter((c) => !c.skipped).length, part).toBeGreaterThan(0);
      expect(
        checks.every((c) => c.ok),
        part,
      ).toBe(true);
    }
    // the optimizer comparison really ran against PyTorch's AdamW
    expect(r.stdout).toMatch(/ok {3}optim: finetorch AdamW default on cpu vs PyTorch AdamW forloop \(3 steps, two groups\): max abs diff/);
    rmSync(out, { recursive: true, force: true });
  }, 300000);
});
