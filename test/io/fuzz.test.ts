// The checkpoint readers under fuzzing (issue 13): 3,000 mutated copies of
// real files (a ResNet saved by models.save, the same weights and a dict of
// every dtype written by PyTorch's torch.save), loaded with io.load and
// models.load in worker processes watched for RSS (1 GB) and heap (1 GB).
// No crash, no hang, no memory blow-up; every refusal an Error naming the
// file. The longer campaign is `node scripts/fuzz-checkpoints.mjs --files 20000`.
import { describe, it, expect } from 'vitest';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { root } from '../reference';

describe('fuzzing the checkpoint readers', () => {
  it('3,000 mutations: no crash, hang or memory blow-up, every failure an Error naming the file', async () => {
    const { stdout } = await promisify(execFile)(
      process.execPath,
      [
        join(root, 'scripts', 'fuzz-checkpoints.mjs'),
        '--files',
        '3000',
        '--seed',
        '13',
        '--json',
        '--rss-limit-mb',
        '1024',
        '--heap-mb',
        '1024',
        '--timeout-s',
        '20',
      ],
      { timeout: 280_000, maxBuffer: 64 * 2 ** 20 },
    ).catch((err) => {
      // a failing campaign exits 1 with its summary on stdout; anything else shows its stderr
      if (!String(err.stdout ?? '').includes('"tried"')) throw new Error(`fuzz-checkpoints.mjs failed: ${String(err.stderr ?? err.message).slice(-3000)}`);
      return { stdout: String(err.stdout) };
    });
    const summary = JSON.parse(stdout.trim().split('\n').pop()!);
    console.log(
      `fuzz: ${summary.tried} files, io.load ${summary.ioLoaded} loaded / ${summary.ioRefused} refused, models.load ${summary.modelsLoaded} / ${summary.modelsRefused}, ` +
        `${summary.crashes.length} crashes, ${summary.hangs.length} hangs, ${summary.memory.length} memory, ${summary.broken.length} bad errors, peak RSS ${summary.peakRssMb} MB, ${summary.seconds} s`,
    );
    expect(summary.tried).toBe(3000);
    expect(summary.basesFromPyTorch).toBe(true);
    expect(summary.crashes).toEqual([]);
    expect(summary.hangs).toEqual([]);
    expect(summary.memory).toEqual([]);
    expect(summary.broken).toEqual([]);
    expect(summary.peakRssMb).toBeLessThan(1024);
    // the mutations reach both outcomes and every kind of damage
    expect(summary.ioLoaded).toBeGreaterThan(100);
    expect(summary.ioRefused).toBeGreaterThan(1000);
    expect(summary.modelsLoaded).toBeGreaterThan(50);
    for (const kind of ['truncate', 'flip', 'length', 'shape', 'dtype', 'offsets', 'entries', 'metadata'])
      expect(summary.kinds[`safetensors:${kind}`], kind).toBeGreaterThan(50);
    for (const kind of ['truncate', 'flip', 'directory', 'ints', 'opcodes', 'storage', 'compressed'])
      expect(summary.kinds[`pth:${kind}`], kind).toBeGreaterThan(50);
  }, 300_000);
});
