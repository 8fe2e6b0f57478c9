// Helpers for the CLI tests: run the built CLI as a user would (a child
// process), read its JSON Lines, and make small real datasets from Debian's
// Fashion-MNIST (PNG folders, CSV/JSONL texts) in temporary folders.
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { gunzipSync } from 'node:zlib';
import sharp from 'sharp';

export const root = resolve(__dirname, '..', '..');
export const CLI = join(root, 'dist', 'cli', 'main.js');
const FASHION = '/usr/share/datasets/fashion-mnist';

export interface Event {
  type: string;
  time: string;
  [k: string]: unknown;
}
export interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
  events: Event[];
}

/** Parses JSON Lines; every line must be an object with a type and a time. */
export function parseEvents(stdout: string): Event[] {
  return stdout
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => {
      const e = JSON.parse(l) as Event;
      if (typeof e.type !== 'string' || typeof e.time !== 'string' || Number.isNaN(Date.parse(e.time))) throw new Error(`not an event: ${l}`);
      return e;
    });
}

/** Runs the CLI to completion (stdout is a pipe, so output is JSON Lines unless --pretty). */
export function cli(args: string[], options: { cwd?: string } = {}): Run {
  const r = spawnSync(process.execPath, [CLI, ...args], {
    encoding: 'utf8',
    cwd: options.cwd,
    timeout: 300000,
    env: { ...process.env, FINETORCH_NUM_THREADS: '1' },
  });
  let events: Event[] = [];
  try {
    events = parseEvents(r.stdout);
  } catch {
    // text output
  }
  return { status: r.status, stdout: r.stdout, stderr: r.stderr, events };
}

/** Runs the CLI and calls onEvent for each event as it arrives (with the child, to signal it). */
export function cliLive(args: string[], onEvent: (e: Event, child: ReturnType<typeof spawn>) => void, options: { cwd?: string } = {}): Promise<Run> {
  return new Promise((done, fail) => {
    const child = spawn(process.execPath, [CLI, ...args], { cwd: options.cwd, env: { ...process.env, FINETORCH_NUM_THREADS: '1' } });
    let stdout = '';
    let stderr = '';
    let pending = '';
    const events: Event[] = [];
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      stdout += d;
      pending += d;
      const lines = pending.split('\n');
      pending = lines.pop()!;
      for (const l of lines)
        if (l.trim()) {
          const e = JSON.parse(l) as Event;
          events.push(e);
          onEvent(e, child);
        }
    });
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      stderr += d;
    });
    child.on('error', fail);
    child.on('close', (status) => done({ status, stdout, stderr, events }));
  });
}

export function only<T extends string>(events: Event[], type: T): Event[] {
  return events.filter((e) => e.type === type);
}

/** Fashion-MNIST images [N*784] and labels [N] of one split, read straight from Debian's IDX files. */
export function fashion(split: 'train' | 't10k'): { images: Buffer; labels: Buffer } {
  return {
    images: gunzipSync(readFileSync(join(FASHION, `${split}-images-idx3-ubyte.gz`))).subarray(16),
    labels: gunzipSync(readFileSync(join(FASHION, `${split}-labels-idx1-ubyte.gz`))).subarray(8),
  };
}

/**
 * Writes dir/<name>/<index>.png for the given classes ({label: folder name}),
 * `perClass` images each, skipping the first `skip` of each class.
 */
export async function pngFolder(
  dir: string,
  classes: Record<number, string>,
  perClass: number,
  options: { split?: 'train' | 't10k'; skip?: number } = {},
): Promise<string[]> {
  const { images, labels } = fashion(options.split ?? 't10k');
  const seen: Record<number, number> = {};
  const files: string[] = [];
  for (let i = 0; i < labels.length; i++) {
    const l = labels[i];
    if (!(l in classes)) continue;
    const k = (seen[l] = (seen[l] ?? 0) + 1);
    if (k <= (options.skip ?? 0) || k > (options.skip ?? 0) + perClass) continue;
    mkdirSync(join(dir, classes[l]), { recursive: true });
    const file = join(dir, classes[l], `${i}.png`);
    await sharp(images.subarray(i * 784, (i + 1) * 784), { raw: { width: 28, height: 28, channels: 1 } })
      .png()
      .toFile(file);
    files.push(file);
  }
  return files;
}
