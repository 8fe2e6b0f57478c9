// The checkpoint format of fit (train/checkpoint.ts): what a kill leaves at
// each moment of a write is recovered (a missing best/ or last/ comes back
// from the complete copy beside it), dead runs' leftovers are removed and
// live ones kept, and every read error names the file at fault. The kill -9
// test of the whole CLI is test/cli/kill.test.ts.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { spawn, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { torch, nn, optim, fit, TensorLoader } from 'finetorch';
import { findCheckpoint, loadCheckpoint, readTrainerState, recoverCheckpoints, writeFileAtomic } from '../../dist/train/checkpoint.js';
import { resolveCheckpoint } from '../../dist/recipes/run-record.js';

/** A process id that is no longer alive (a child that has exited). */
const deadPid = () => spawnSync(process.execPath, ['-e', '']).pid!;

const model = () => new nn.Sequential(new nn.Linear(4, 6), new nn.ReLU(), new nn.Linear(6, 2));
torch.manualSeed(7);
const x = torch.randn([40, 4]);
const y = x.sum(1).gt(0).long();

let root = '';
let run = ''; // a finished 2-epoch run: best/ and last/
let epoch0 = ''; // a copy of its last/ after epoch 0

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'finetorch-ckpt-'));
  run = join(root, 'run');
  epoch0 = join(root, 'epoch0');
  const m = model();
  await fit({
    model: m,
    optimizer: new optim.SGD(m.parameters(), { lr: 0.1 }),
    train: new TensorLoader(x, y, { batchSize: 10 }),
    epochs: 2,
    monitor: 'loss',
    checkpointDir: run,
    onEvent: (e) => {
      if (e.type === 'checkpoint' && e.epoch === 0 && e.path.endsWith('last')) cpSync(e.path, epoch0, { recursive: true });
    },
  });
});
afterAll(() => {
  if (root) rmSync(root, { recursive: true, force: true });
});

/** A fresh copy of the finished run to damage. */
function copyRun(name: string): string {
  const dir = join(root, name);
  cpSync(run, dir, { recursive: true });
  return dir;
}

describe('recovery after a kill', () => {
  it('between rename(last, last.old-PID) and rename(last.tmp-PID, last): the new copy comes back, for the run folder and for <run>/last', () => {
    for (const arg of ['run', 'last'] as const) {
      const dir = copyRun(`between-${arg}`);
      const pid = deadPid();
      renameSync(join(dir, 'last'), join(dir, `last.tmp-${pid}`)); // the new one, complete
      cpSync(epoch0, join(dir, `last.old-${pid}`), { recursive: true }); // the previous one
      const found = findCheckpoint(arg === 'run' ? dir : join(dir, 'last'));
      expect(found).toBe(join(dir, 'last'));
      expect(readTrainerState(found).epoch).toBe(1);
      expect(readdirSync(dir).sort()).toEqual(['best', 'last']);
    }
  });

  it('while the new copy was still being written: the previous one comes back', () => {
    const dir = copyRun('writing');
    const pid = deadPid();
    renameSync(join(dir, 'best'), join(dir, `best.old-${pid}`));
    mkdirSync(join(dir, `best.tmp-${pid}`));
    writeFileSync(join(dir, `best.tmp-${pid}`, 'model.safetensors'), 'half a file'); // no trainer.json: incomplete
    expect(findCheckpoint(join(dir, 'best'))).toBe(join(dir, 'best'));
    expect(readTrainerState(join(dir, 'best')).best).toMatchObject({ epoch: readTrainerState(join(dir, 'best')).epoch });
    expect(readdirSync(dir).sort()).toEqual(['best', 'last']);
  });

  it('eval and predict (resolveCheckpoint) find best/ in the rename window, for the run folder and for <run>/best', () => {
    for (const arg of ['run', 'best'] as const) {
      const dir = copyRun(`eval-${arg}`);
      const pid = deadPid();
      renameSync(join(dir, 'best'), join(dir, `best.tmp-${pid}`));
      cpSync(epoch0, join(dir, `best.old-${pid}`), { recursive: true });
      expect(resolveCheckpoint(arg === 'run' ? dir : join(dir, 'best')).dir).toBe(join(dir, 'best'));
      expect(readdirSync(dir).sort()).toEqual(['best', 'last']);
    }
  });

  it('a resumed fit restores a missing last/ and continues from it', async () => {
    const dir = copyRun('resume');
    const pid = deadPid();
    renameSync(join(dir, 'last'), join(dir, `last.tmp-${pid}`));
    const m = model();
    const r = await fit({
      model: m,
      optimizer: new optim.SGD(m.parameters(), { lr: 0.1 }),
      train: new TensorLoader(x, y, { batchSize: 10 }),
      epochs: 3,
      monitor: 'loss',
      checkpointDir: dir,
      resumeFrom: join(dir, 'last'),
    });
    expect(r.history.map((h) => h.epoch)).toEqual([0, 1, 2]);
    expect(readTrainerState(join(dir, 'last')).epoch).toBe(2);
  });
});

describe('leftovers', () => {
  it("dead runs' tmp and old copies are removed (also when the id now belongs to another program); those of live processes and of this one are kept; a fresh run takes none up", () => {
    const dir = copyRun('leftovers');
    const dead = deadPid();
    const live = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60000)']);
    const otherProgram = spawn('sleep', ['60']); // alive, but not a Node.js process: the id was reused (after a reboot)
    try {
      rmSync(join(dir, 'last'), { recursive: true });
      const names = [
        `last.old-${dead}`,
        `best.tmp-${dead}`,
        `best.old-${dead}`,
        `best.old-${otherProgram.pid}`,
        `last.tmp-${live.pid}`,
        `last.tmp-${process.pid}`,
      ];
      for (const n of names) cpSync(join(dir, 'best'), join(dir, n), { recursive: true });
      writeFileSync(join(dir, `run.json.tmp-${dead}`), '{"half');
      writeFileSync(join(dir, 'notes.tmp-1'), 'not ours'); // a name we never write: left alone
      recoverCheckpoints(dir, { restore: false });
      expect(readdirSync(dir).sort()).toEqual(['best', `last.tmp-${live.pid}`, `last.tmp-${process.pid}`, 'notes.tmp-1'].sort());
    } finally {
      live.kill();
      otherProgram.kill();
    }
  });
});

describe('read errors name the file', () => {
  const damaged = (name: string, damage: (dir: string) => void) => {
    const dir = copyRun(name);
    damage(join(dir, 'last'));
    return join(dir, 'last');
  };
  const loadInto = (dir: string) => {
    const m = model();
    return () => loadCheckpoint(dir, m, new optim.SGD(m.parameters(), { lr: 0.1 }));
  };

  it('trainer.json: truncated, not an object, a bad field', () => {
    const truncated = damaged('truncated', (d) => writeFileSync(join(d, 'trainer.json'), readFileSync(join(d, 'trainer.json'), 'utf8').slice(0, 50)));
    expect(loadInto(truncated)).toThrow(new RegExp(`^${join(truncated, 'trainer.json')}: not valid JSON`));
    expect(() => findCheckpoint(truncated)).toThrow(/trainer\.json: not valid JSON/);
    const empty = damaged('empty', (d) => writeFileSync(join(d, 'trainer.json'), ''));
    expect(loadInto(empty)).toThrow(/trainer\.json: not valid JSON/);
    const array = damaged('array', (d) => writeFileSync(join(d, 'trainer.json'), '[1, 2]'));
    expect(loadInto(array)).toThrow(/last\/trainer\.json: \(top level\): /);
    const field = damaged('field', (d) => {
      const s = JSON.parse(readFileSync(join(d, 'trainer.json'), 'utf8'));
      s.history[0].epoch = 'one';
      writeFileSync(join(d, 'trainer.json'), JSON.stringify(s));
    });
    expect(loadInto(field)).toThrow(/last\/trainer\.json: history\.0\.epoch: /);
  });

  it('the tensor files: missing, truncated, not fitting the model or the optimizer', () => {
    const missing = damaged('missing', (d) => rmSync(join(d, 'optimizer.safetensors')));
    expect(loadInto(missing)).toThrow(new RegExp(`^${join(missing, 'optimizer.safetensors')}: missing`));
    const cut = damaged('cut', (d) => writeFileSync(join(d, 'model.safetensors'), readFileSync(join(d, 'model.safetensors')).subarray(0, 100)));
    expect(loadInto(cut)).toThrow(new RegExp(`^${join(cut, 'model.safetensors')}: `));
    const other = model();
    const wider = new nn.Sequential(new nn.Linear(4, 7), new nn.ReLU(), new nn.Linear(7, 2));
    expect(() => loadCheckpoint(join(root, 'run', 'last'), wider, new optim.SGD(wider.parameters(), { lr: 0.1 }))).toThrow(
      /model\.safetensors: does not fit the model \(.*size mismatch/s,
    );
    const sgdGroups = () =>
      loadCheckpoint(
        join(root, 'run', 'last'),
        other,
        new optim.SGD([{ params: other.parameters().slice(0, 2) }, { params: other.parameters().slice(2) }], { lr: 0.1 }),
      );
    expect(sgdGroups).toThrow(/optimizer\.safetensors: does not fit the optimizer/);
  });
});

describe('writeFileAtomic', () => {
  it('replaces the file whole and leaves no temporary file', () => {
    const file = join(root, 'atomic.json');
    writeFileAtomic(file, '{"a":1}');
    writeFileAtomic(file, '{"a":2}');
    expect(JSON.parse(readFileSync(file, 'utf8'))).toEqual({ a: 2 });
    expect(readdirSync(root).filter((n) => n.startsWith('atomic.json'))).toEqual(['atomic.json']);
    expect(existsSync(`${file}.tmp-${process.pid}`)).toBe(false);
  });
});
