// The README's 20-line example (examples/fine-tune.mjs) runs as shipped and
// the fine-tuned model is well above chance (0.2) on its held-out tenth.
import { describe, it, expect } from 'vitest';
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
});
