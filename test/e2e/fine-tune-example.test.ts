// The README's 20-line example (examples/fine-tune.mjs) runs as shipped and
// the fine-tuned model is well above chance (0.2) on its held-out tenth.
import { describe, it, expect } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { root } from '../reference';

describe('examples/fine-tune.mjs', () => {
  it('runs the four steps and reports test metrics', () => {
    const r = spawnSync(process.execPath, [join(root, 'examples', 'fine-tune.mjs')], { encoding: 'utf8', timeout: 300000 });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const m = /test accuracy ([\d.]+)%, macro-F1 ([\d.]+), AUC-ROC ([\d.]+)/.exec(r.stdout);
    expect(m, r.stdout).not.toBeNull();
    console.log(r.stdout.trim());
    expect(Number(m![1])).toBeGreaterThan(70);
    expect(Number(m![3])).toBeGreaterThan(0.9);
  }, 300000);

  it('examples/fashion.yaml trains with the CLI from the shipped checkpoint', () => {
    const out = mkdtempSync(join(tmpdir(), 'finetorch-recipe-'));
    const r = spawnSync(
      process.execPath,
      [join(root, 'dist', 'cli', 'main.js'), 'train', '--config', join(root, 'examples', 'fashion.yaml'), '--out', out, '--force', '--json'],
      { encoding: 'utf8', timeout: 300000 },
    );
    expect(r.status, r.stderr).toBe(0);
    const end = JSON.parse(r.stdout.trim().split('\n').at(-1)!);
    expect([end.type, end.status]).toEqual(['end', 'ok']);
    console.log(`examples/fashion.yaml: test accuracy ${(end.test.accuracy * 100).toFixed(1)}%`);
    expect(end.test.accuracy).toBeGreaterThan(0.7);
    rmSync(out, { recursive: true, force: true });
  }, 300000);
});
