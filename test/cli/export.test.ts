// finetorch export: a run written by runRecipe, exported as .pth and
// .safetensors from the command line (JSON Lines and text output), and the
// errors a user can make, each with its exit code and a message that names
// the problem.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { io, runRecipe } from 'finetorch';
import { cli, only } from './cli-helpers';

let dir = '';
let run = '';

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'finetorch-cli-export-'));
  run = join(dir, 'run');
  await runRecipe(
    {
      model: { arch: 'resnet18', width: 8, inChannels: 1, smallStem: true },
      data: { kind: 'fashionMnist', classes: [0, 1], perClass: 8, testPerClass: 2, val: 0.25 },
      epochs: 1,
      batchSize: 8,
      optimizer: { lr: 1e-3 },
      seed: 1,
    },
    { out: run },
  );
}, 60000);

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('finetorch export', () => {
  it("--to pth writes <run>/export/model.pth with the checkpoint's tensors, and says so (JSON Lines)", () => {
    const r = cli(['export', '--checkpoint', run, '--to', 'pth', '--json']);
    expect(r.status, r.stderr).toBe(0);
    const file = join(run, 'export', 'model.pth');
    expect(only(r.events, 'export')).toEqual([expect.objectContaining({ format: 'pth', files: [file] })]);
    expect(only(r.events, 'end')).toEqual([expect.objectContaining({ status: 'ok', exitCode: 0 })]);
    const ck = io.load(join(run, 'best', 'model.safetensors'));
    const back = io.load(file);
    expect(Object.keys(back).sort()).toEqual(Object.keys(ck).sort());
    expect(Array.from(back['fc.weight'].dataSync() as Float32Array)).toEqual(Array.from(ck['fc.weight'].dataSync() as Float32Array));
  });

  it('--to safetensors --out file --pretty prints what it wrote', () => {
    const out = join(dir, 'exported', 'weights.safetensors');
    const r = cli(['export', '--checkpoint', join(run, 'last'), '--to', 'safetensors', '--out', out, '--pretty']);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toContain(`wrote ${out}`);
    expect(existsSync(out)).toBe(true);
  });

  it('errors: hf for a vision model, an unknown format, no --checkpoint, a missing path; exit 2 with the reason', () => {
    const hf = cli(['export', '--checkpoint', run, '--to', 'hf', '--pretty']);
    expect(hf.status).toBe(2);
    expect(hf.stderr).toMatch(/'hf' writes a Hugging Face folder .*for the text models .*resnet18 is not one/);
    const bad = cli(['export', '--checkpoint', run, '--to', 'keras', '--json']);
    expect(bad.status).toBe(2);
    expect(only(bad.events, 'error')[0].message).toMatch(/--to: expected one of pth, safetensors, hf, torchscript, onnx, got "keras"/);
    const none = cli(['export', '--to', 'pth', '--pretty']);
    expect(none.status).toBe(2);
    expect(none.stderr).toMatch(/give --checkpoint/);
    const missing = cli(['export', '--checkpoint', join(dir, 'nowhere'), '--to', 'pth', '--pretty']);
    expect(missing.status).toBe(2);
    expect(missing.stderr).toMatch(/--checkpoint .*nowhere: does not exist/);
  });
});
