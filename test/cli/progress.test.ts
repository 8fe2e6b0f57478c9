// The reporter behind the CLI's display (lib/cli/progress.ts), driven with
// trainer events: a live bar on a terminal, epoch lines and tables as text,
// JSON Lines otherwise. Also `finetorch doctor` and the top-level usage.
import { describe, it, expect } from 'vitest';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { loadReport } from 'finetorch';
import { createReporter, renderTable, formatNumber } from '../../dist/cli/progress.js';
import type { TrainEvent } from 'finetorch';
import { cli, root } from './cli-helpers';

function sink(isTTY: boolean) {
  let text = '';
  return {
    stream: {
      isTTY,
      columns: 120,
      write: (s: string) => {
        text += s;
        return true;
      },
    },
    get text() {
      return text;
    },
  };
}

const val = {
  loss: 0.5,
  accuracy: 0.5,
  f1Macro: 0.4,
  rocAuc: 0.75,
  confusionMatrix: [
    [1, 1],
    [1, 1],
  ],
  samples: 4,
};
function epochEvents(epoch: number, lrs: number[]): TrainEvent[] {
  const steps: TrainEvent[] = [0, 1, 2, 3].map((b) => ({
    type: 'step',
    epoch,
    step: epoch * 4 + b,
    batch: b,
    batches: 4,
    loss: 1 - b * 0.1,
    lrs,
    samplesPerSecond: 100,
  }));
  return [...steps, { type: 'epoch', epoch, trainLoss: 0.85, val, seconds: 1.5, best: epoch === 0 }, { type: 'checkpoint', epoch, path: '/x/last' }];
}

describe('progress reporter', () => {
  it('on a terminal: a live bar per epoch (loss, LR, throughput, ETA), then one line per epoch', () => {
    const out = sink(true);
    const r = createReporter({ stream: out.stream });
    expect(r.json).toBe(false);
    r.stage('head-only', { epochs: 2 });
    for (const e of epochEvents(0, [1e-5, 1e-4, 1e-3])) r.train(e);
    r.close();
    const text = out.text;
    expect(text).toMatch(/── head-only ──\n/);
    // the last redraw of the bar: full, 4/4, the running mean loss, the LR range, samples/s
    expect(text).toMatch(/\r\x1b\[K\[head-only\] epoch 1\/2 █+ 4\/4 {2}loss 0\.85 {2}lr 1e-5\.\.1e-3 {2}100 samples\/s {2}eta 0\.0s/);
    expect(text).toMatch(
      /\r\x1b\[K\[head-only\] epoch 1\/2 {2}train loss 0\.85 {2}val loss 0\.5 {2}acc 50\.00% {2}F1 0\.4000 {2}AUC 0\.7500 {2}1\.5s {2}\*best\n/,
    );
  });

  it('as text without a terminal: no redraws; tables aligned; messages and warnings', () => {
    const out = sink(false);
    const r = createReporter({ stream: out.stream, json: false });
    for (const e of [...epochEvents(0, [1e-3]), ...epochEvents(1, [1e-3])]) r.train(e);
    r.table('results', [
      { strategy: 'head-only', accuracy: 0.91234, epochs: 3, auc: null },
      { strategy: 'full', accuracy: 0.5, epochs: 12, auc: 0.7 },
    ]);
    r.message('done');
    r.message('small data', 'warn');
    expect(out.text).not.toMatch(/\r/);
    expect(out.text.split('\n').filter((l) => l.startsWith('epoch'))).toHaveLength(2);
    expect(out.text).toContain(
      [
        'results',
        'strategy   accuracy  epochs  auc',
        '---------  --------  ------  ---',
        'head-only    0.9123       3    -',
        'full            0.5      12  0.7',
      ].join('\n'),
    );
    expect(out.text).toMatch(/\ndone\nwarning: small data\n$/);
  });

  it('JSON Lines: every event with type and time, stage labels, tables, errors on both streams', () => {
    const out = sink(false);
    const err = sink(false);
    const r = createReporter({ stream: out.stream, errorStream: err.stream, command: 'demo' });
    expect(r.json).toBe(true);
    r.stage('full', { epochs: 1 });
    for (const e of epochEvents(0, [1e-3])) r.train(e);
    r.train({ type: 'step', epoch: 1, step: 4, batch: 0, batches: 4, loss: NaN, lrs: [1e-3], samplesPerSecond: 1 });
    r.table('t', [{ a: 1 }]);
    r.message('hello');
    r.error('boom', 'runtime', 1);
    const events = out.text
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(events.map((e) => e.type)).toEqual(['stage', 'step', 'step', 'step', 'step', 'epoch', 'checkpoint', 'step', 'table', 'message', 'error']);
    for (const e of events) expect(Date.parse(e.time)).not.toBeNaN();
    expect(events[1]).toMatchObject({ stage: 'full', epoch: 0, batch: 0, batches: 4, lrs: [1e-3] });
    expect(events[5].val).toEqual(val);
    expect(events[7].loss).toBe('NaN'); // not null: a wrapper can tell
    expect(events[8]).toMatchObject({ title: 't', columns: ['a'], rows: [{ a: 1 }] });
    expect(events[10]).toMatchObject({ kind: 'runtime', code: 1, message: 'boom' });
    expect(err.text).toBe('finetorch demo: boom\n');
  });

  it('formats numbers and tables for people', () => {
    expect([0.123456, 12.5, 3, 1e-5, 1234567.5, 0].map(formatNumber)).toEqual(['0.1235', '12.5', '3', '1.00e-5', '1.23e+6', '0']);
    expect(
      renderTable('x', [
        { name: 'a', v: 1 },
        { name: 'bbb', v: 10.25 },
      ]),
    ).toBe('\nx\nname      v\n----  -----\na         1\nbbb   10.25\n');
  });
});

describe('finetorch doctor and usage', () => {
  it('doctor --json: libtorch found where, version and flavor, CUDA, threads, BLAS in use, prebuilt or source build, node', () => {
    const r = cli(['doctor', '--json']);
    expect(r.status, r.stderr).toBe(0);
    const d = JSON.parse(r.stdout);
    expect(d.ok).toBe(true);
    expect(d.node.version).toBe(process.version);
    expect(d.finetorch.addon).toBe(loadReport.path);
    expect(['prebuilt', 'source build', 'FINETORCH_BINARY']).toContain(d.finetorch.origin);
    expect(d.libtorch.version).toBe(loadReport.libtorch.version);
    expect(['cpu', 'cuda']).toContain(d.libtorch.flavor);
    expect(existsSync(d.libtorch.path)).toBe(true);
    expect(d.libtorch.libraries.some((l: string) => /libtorch_cpu\.so/.test(l))).toBe(true);
    expect(d.cuda).toMatchObject({ built: expect.any(Boolean), available: expect.any(Boolean), devices: expect.any(Number) });
    if (!d.cuda.built) expect(d.cuda.devices).toBe(0);
    expect(d.threads).toMatchObject({ intraOp: 1, env: { FINETORCH_NUM_THREADS: '1' } }); // the helper runs the CLI with one thread
    expect(d.threads.interOp).toBeGreaterThanOrEqual(1);
    expect(d.blas.library).toMatch(/OpenBLAS|MKL|BLIS|ATLAS|reference BLAS|Arm|cuBLAS/);
    for (const p of d.blas.paths) expect(existsSync(p)).toBe(true);
  });

  it('doctor as text; an explicit FINETORCH_BINARY that fails is reported, not replaced by another binary', () => {
    const text = cli(['doctor']);
    expect(text.status).toBe(0);
    for (const k of ['node', 'finetorch', 'native addon', 'libtorch', 'libtorch path', 'threads', 'BLAS', 'CUDA'])
      expect(text.stdout).toMatch(new RegExp(`^${k} +\\S`, 'm'));
    const env = { ...process.env, FINETORCH_BINARY: join(root, 'no-such.node') };
    const r = spawnSync(process.execPath, [join(root, 'dist', 'cli', 'main.js'), 'doctor', '--json'], { encoding: 'utf8', env });
    expect(r.status).toBe(1);
    const d = JSON.parse(r.stdout);
    expect(d.ok).toBe(false);
    expect(d.finetorch.addon).toBeNull();
    expect(d.finetorch.error).toMatch(/FINETORCH_BINARY=.*no-such\.node does not exist/);
  });

  it('usage: help, unknown commands and options', () => {
    expect(cli(['--help']).status).toBe(0);
    expect(cli(['--help']).stdout).toMatch(/train --config <recipe\.json\|yaml>/);
    expect(cli([]).status).toBe(2);
    expect(cli(['frobnicate']).stderr).toMatch(/unknown command 'frobnicate'/);
    const help = cli(['train', '--help']);
    expect(help.status).toBe(0);
    expect(help.stdout).toMatch(/--set <field=value>/);
    expect(cli(['doctor', '--verbose']).status).toBe(2);
    expect(cli(['eval']).stderr).toMatch(/give --checkpoint/);
  });
});
