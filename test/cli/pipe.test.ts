// A closed stdout (`finetorch inspect x --json | head -1`) ends the command
// quietly, as Unix tools do: exit 141 (128 + SIGPIPE, what a shell reports
// for `yes | head -1`), no stack trace, no error message. Real pipes: the
// reader closes before the CLI writes, so every write hits EPIPE.
import { describe, it, expect, beforeAll } from 'vitest';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CLI } from './cli-helpers';

let file = '';
beforeAll(() => {
  // a small .safetensors written by hand: 8-byte header length, JSON header, data
  const header = Buffer.from(
    JSON.stringify({ 'fc.weight': { dtype: 'F32', shape: [2, 3], data_offsets: [0, 24] }, 'fc.bias': { dtype: 'F32', shape: [2], data_offsets: [24, 32] } }),
  );
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(header.length));
  file = join(mkdtempSync(join(tmpdir(), 'finetorch-pipe-')), 'model.safetensors');
  writeFileSync(file, Buffer.concat([len, header, Buffer.alloc(32)]));
});

/** Runs the CLI with stdout a pipe whose reader has already gone. */
function closedReader(args: string[]): Promise<{ code: number | null; signal: string | null; stderr: string }> {
  return new Promise((done) => {
    const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, FINETORCH_NUM_THREADS: '1' } });
    child.stdout.destroy(); // close the read end before the CLI has started
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      stderr += d;
    });
    child.on('close', (code, signal) => done({ code, signal, stderr }));
  });
}

describe('a closed stdout ends the command quietly', () => {
  for (const args of [['inspect', '<file>', '--json'], ['inspect', '<file>'], ['doctor', '--json'], ['--help']]) {
    it(`finetorch ${args.join(' ')}: exit 141, nothing on stderr`, async () => {
      const r = await closedReader(args.map((a) => (a === '<file>' ? file : a)));
      expect(r.stderr).toBe('');
      expect(r.code).toBe(141);
    }, 60000);
  }

  it('in a shell pipeline with head -1: one line out, nothing on stderr, exit 0 or 141', () => {
    const r = spawnSync('bash', ['-c', `set -o pipefail; "${process.execPath}" "${CLI}" doctor --json | head -1; echo "status \${PIPESTATUS[0]}" >&2`], {
      encoding: 'utf8',
      timeout: 60000,
    });
    expect(r.stdout.split('\n').filter(Boolean)).toHaveLength(1);
    const status = /status (\d+)/.exec(r.stderr)?.[1];
    // head may exit before or after the CLI's last write: 141 or 0, never 1
    expect(['0', '141']).toContain(status);
    expect(r.stderr.replace(/status \d+\n/, '')).toBe('');
  }, 60000);
});
