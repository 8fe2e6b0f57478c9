// TensorBoard event files read back by TensorBoard 2.21 itself (.venv-torch2):
// EventAccumulator's tags, steps, values and wall times must be what was
// written, and TensorBoard's record reader must accept every record's CRCs.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseRecipe, reports, type TrainEvent } from 'finetorch';
import { transformersPython } from '../reference';

const py = transformersPython('tensorboard');
const dir = mkdtempSync(join(tmpdir(), 'finetorch-tb-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const READ = `
import json, sys
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.compat.tensorflow_stub import pywrap_tensorflow
from tensorboard.compat.proto import event_pb2
out = {}
for d in sys.argv[1:]:
    acc = EventAccumulator(d, size_guidance={'scalars': 0})
    acc.Reload()
    scalars = {t: [[e.step, e.value, e.wall_time] for e in acc.Scalars(t)] for t in acc.Tags()['scalars']}
    # every record through TensorBoard's own reader (it raises on a bad length or data CRC)
    import os
    files = sorted(f for f in os.listdir(d) if f.startswith('events.out.tfevents.'))
    records, first = 0, None
    for f in files:
        r = pywrap_tensorflow.PyRecordReader_New(os.path.join(d, f))
        while True:
            try:
                r.GetNext()
            except Exception as e:
                if type(e).__name__ != 'OutOfRangeError': raise
                break
            ev = event_pb2.Event.FromString(r.record())
            if first is None: first = ev.file_version
            records += 1
    out[d] = {'scalars': scalars, 'records': records, 'fileVersion': first}
print(json.dumps(out))
`;

describe.skipIf(!py)('TensorBoardWriter: TensorBoard reads what was written', () => {
  it('scalars (tags, steps, float32 values, wall times) and the file_version record, through EventAccumulator', () => {
    const a = join(dir, 'direct');
    const w = new reports.TensorBoardWriter(a);
    const written: Record<string, Array<[number, number, number]>> = {};
    const add = (tag: string, value: number, step: number, wallTime: number) => {
      w.addScalar(tag, value, step, wallTime);
      (written[tag] ??= []).push([step, value, wallTime]);
    };
    for (let s = 0; s < 50; s++) add('train/loss', 2.3 * Math.exp(-s / 20) + 0.01 * Math.sin(s), s, 1.7e9 + s * 0.25);
    for (let s = 0; s < 50; s++) add('train/lr/group0', 1e-3 * 0.5 * (1 + Math.cos((Math.PI * s) / 50)), s, 1.7e9 + s * 0.25);
    add('val/accuracy', 0.8125, 1, 1.7e9 + 20);
    add('val/accuracy', 0.90625, 2, 1.7e9 + 40);
    add('odd tag/ünïcode', -12345.678, 3_000_000_000, 1.7e9 + 41); // a step past 2^31: varint of 5 bytes
    w.close();
    expect(readdirSync(a)).toEqual([expect.stringMatching(/^events\.out\.tfevents\.\d+\..+\.\d+\.0$/)]);

    // the same scalars through the training events, as runRecipe's monitor writes them
    const b = join(dir, 'monitor');
    const monitor = new reports.TrainingMonitor(b, { tensorboard: join(b, 'tb'), curves: false });
    const events: TrainEvent[] = [];
    for (let step = 1; step <= 6; step++)
      events.push({
        type: 'step',
        epoch: step <= 3 ? 0 : 1,
        step,
        batch: (step - 1) % 3,
        batches: 3,
        loss: 1 / step,
        lrs: [0.01 * step, 0.001 * step],
        samplesPerSecond: 100,
      });
    const val = (acc: number) => ({
      loss: 1 - acc,
      accuracy: acc,
      f1Macro: acc - 0.05,
      rocAuc: null,
      confusionMatrix: [[1]],
      samples: 10,
      custom: { myScore: acc / 2 },
    });
    const epochs: TrainEvent[] = [
      // fit counts epochs from 0; TensorBoard's step for them is the epoch's number from 1
      { type: 'epoch', epoch: 0, trainLoss: 0.6, val: val(0.7), seconds: 1, best: true },
      { type: 'epoch', epoch: 1, trainLoss: 0.3, val: val(0.75), seconds: 2, best: true },
    ];
    for (const e of [...events.slice(0, 3), epochs[0], ...events.slice(3), epochs[1]]) monitor.onEvent(e);
    return monitor.close().then(() => {
      const got = JSON.parse(execFileSync(py!, ['-c', READ, a, join(b, 'tb')], { encoding: 'utf8' }));
      const direct = got[a];
      expect(direct.fileVersion).toBe('brain.Event:2');
      expect(direct.records).toBe(1 + 50 + 50 + 3);
      expect(Object.keys(direct.scalars).sort()).toEqual(Object.keys(written).sort());
      for (const [tag, rows] of Object.entries(written)) {
        const back = direct.scalars[tag] as Array<[number, number, number]>;
        expect(
          back.map((r) => r[0]),
          `${tag} steps`,
        ).toEqual(rows.map((r) => r[0]));
        // simple_value is a float32
        expect(
          back.map((r) => r[1]),
          `${tag} values`,
        ).toEqual(rows.map((r) => Math.fround(r[1])));
        expect(
          back.map((r) => r[2]),
          `${tag} wall times`,
        ).toEqual(rows.map((r) => r[2]));
      }

      const fromEvents = got[join(b, 'tb')].scalars as Record<string, Array<[number, number, number]>>;
      const pairs = (tag: string) => fromEvents[tag].map((r) => [r[0], r[1]]);
      expect(Object.keys(fromEvents).sort()).toEqual(
        ['train/loss', 'train/lr/group0', 'train/lr/group1', 'train/epoch_loss', 'val/loss', 'val/accuracy', 'val/f1Macro', 'val/myScore'].sort(),
      );
      expect(pairs('train/loss')).toEqual([1, 2, 3, 4, 5, 6].map((s) => [s, Math.fround(1 / s)]));
      expect(pairs('train/lr/group1')).toEqual([1, 2, 3, 4, 5, 6].map((s) => [s, Math.fround(0.001 * s)]));
      expect(pairs('val/accuracy')).toEqual([
        [1, Math.fround(0.7)],
        [2, Math.fround(0.75)],
      ]);
      expect(pairs('val/myScore')).toEqual([
        [1, Math.fround(0.35)],
        [2, Math.fround(0.375)],
      ]);
    });
  });

  it('bad arguments: clear errors', () => {
    const w = new reports.TensorBoardWriter(join(dir, 'bad'));
    expect(() => w.addScalar('', 1, 0)).toThrow(/tag must be a non-empty string/);
    expect(() => w.addScalar('x', 1, -1)).toThrow(/step must be an integer >= 0, got -1/);
    expect(() => w.addScalar('x', 1, 1.5)).toThrow(/step must be an integer >= 0/);
    expect(() => w.addScalar('x', '1' as never, 1)).toThrow(/value must be a number/);
    w.close();
    expect(() => w.addScalar('x', 1, 1)).toThrow(/is closed/);
    // a second writer in the same folder (same second, same process) does not overwrite the first one's file
    const again = new reports.TensorBoardWriter(join(dir, 'bad'));
    again.close();
    expect(again.file).not.toBe(w.file);
    expect(readdirSync(join(dir, 'bad'))).toHaveLength(2);
    // the recipe field
    const recipe = { model: { arch: 'resnet18' }, optimizer: { lr: 1e-3 }, epochs: 1, data: { kind: 'fashionMnist' } };
    expect(parseRecipe({ ...recipe, tensorboard: true }).tensorboard).toBe(true);
    expect(() => parseRecipe({ ...recipe, tensorboard: 5 })).toThrow(/recipe\.tensorboard: expected true, false or a folder path \(got 5\)/);
  });
});
