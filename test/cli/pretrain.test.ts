// `finetorch pretrain` run as a user would: a YAML config adapting the demo's
// Fashion-MNIST ResNet on unlabelled footwear by reconstruction. JSON Lines
// events and the run folder; the text output; Ctrl-C leaves a resumable
// last/ from which `--resume` ends bitwise equal to an uninterrupted run; bad
// configs and bad resumes give exit code 2 naming what is wrong.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { spawn } from 'node:child_process';
import { CLI, cli, cliLive, only, parseEvents } from './cli-helpers';

const root = resolve(__dirname, '..', '..');
const CHECKPOINT = join(root, 'assets', 'fashion-resnet18w16-c0-4.safetensors');
let dir: string;

const CONFIG = `kind: reconstruction
model:
  checkpoint: ${CHECKPOINT}
data:
  kind: fashionMnist
  classes: [Sandal, Sneaker, Bag, Ankle boot]
  perClass: 10
  normalize: { mean: [0.286], std: [0.353] }
  val: 0.25
decoder: { hidden: 32 }
corruption: { patchSize: 7, maskRatio: 0.5 }
epochs: 2
batchSize: 6
lr: 0.001
seed: 2
`;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'ft-cli-pretrain-'));
  writeFileSync(join(dir, 'shoes.yaml'), CONFIG);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('finetorch pretrain', () => {
  it('runs a config end to end: JSON Lines events, the run folder, the backbone', () => {
    const r = cli(['pretrain', '--config', 'shoes.yaml'], { cwd: dir });
    expect(r.status, r.stderr).toBe(0);
    const out = join(dir, 'runs', 'shoes');
    const start = only(r.events, 'start')[0];
    expect(start).toMatchObject({
      command: 'pretrain',
      kind: 'reconstruction',
      out,
      samples: { train: 30, val: 10 },
      batchesPerEpoch: 5,
      epochs: 2,
      totalSteps: 10,
    });
    expect(only(r.events, 'step')).toHaveLength(10);
    expect(only(r.events, 'epoch')).toHaveLength(2);
    const val = only(r.events, 'eval')[0];
    expect(val).toMatchObject({ split: 'val', samples: 10 });
    expect(val.mse).toBeGreaterThan(0);
    expect(only(r.events, 'saved')[0]).toMatchObject({ path: join(out, 'backbone.safetensors') });
    expect(r.events.at(-1)).toMatchObject({ type: 'end', status: 'ok', exitCode: 0, output: join(out, 'backbone.safetensors'), val: { mse: val.mse } });
    expect(readdirSync(out).sort()).toEqual(['backbone.safetensors', 'best', 'events.jsonl', 'last', 'metrics.json', 'pretrain.json']);
    // events.jsonl holds what stdout showed
    const logged = readFileSync(join(out, 'events.jsonl'), 'utf8').trim().split('\n');
    expect(logged.map((l) => JSON.parse(l).type)).toEqual(r.events.map((e) => e.type));
    // the same run again is refused; text mode shows the table
    const again = cli(['pretrain', '--config', 'shoes.yaml', '--pretty'], { cwd: dir });
    expect(again.status).toBe(2);
    expect(again.stderr).toMatch(/already holds a run; continue it with --resume .*last, or start over with --force/);
    const text = cli(['pretrain', '--config', 'shoes.yaml', '--pretty', '--force', '--steps', '2', '--out', 'runs/text'], { cwd: dir });
    expect(text.status, text.stderr).toBe(0);
    expect(text.stdout).toMatch(/reconstruction: model resnet18 from .*fashion-resnet18w16-c0-4\.safetensors/);
    expect(text.stdout).toMatch(/held-out metrics \(final weights\)\nsplit +samples +mse +maskedMse/);
  });

  it('Ctrl-C stops after the step with a resumable last/ (exit 130); --resume ends bitwise equal to an uninterrupted run', async () => {
    const first = await cliLive(['pretrain', '--config', join(dir, 'shoes.yaml'), '--out', join(dir, 'stopped')], (e, child) => {
      if (e.type === 'step' && e.step === 6) child.kill('SIGINT');
    });
    expect(first.status, first.stderr).toBe(130);
    const stopped = only(first.events, 'interrupted')[0];
    expect(stopped).toMatchObject({ path: join(dir, 'stopped', 'last') });
    expect(first.events.at(-1)).toMatchObject({ status: 'interrupted', exitCode: 130, resume: `finetorch pretrain --resume ${join(dir, 'stopped', 'last')}` });
    const resumed = cli(['pretrain', '--resume', join(dir, 'stopped', 'last')]);
    expect(resumed.status, resumed.stderr).toBe(0);
    expect(only(resumed.events, 'resumed')[0]).toMatchObject({ epoch: stopped.epoch, batch: stopped.batch, step: stopped.step });
    expect(only(first.events, 'step').length + only(resumed.events, 'step').length).toBe(10);
    const straight = readFileSync(join(dir, 'runs', 'shoes', 'backbone.safetensors'));
    expect(readFileSync(join(dir, 'stopped', 'backbone.safetensors')).equals(straight)).toBe(true);
    expect(only(resumed.events, 'eval')[0].mse).toBe(JSON.parse(readFileSync(join(dir, 'runs', 'shoes', 'metrics.json'), 'utf8')).val.mse);
  });

  it('checkpointEvery: killed (SIGKILL) mid-epoch after a step checkpoint, --resume continues from it and ends bitwise equal', async () => {
    const out = join(dir, 'killed');
    // the test hook of lib/train/checkpoint.ts holds the run when its first last/ is complete (step 3 of epoch 0's 0-4), to be killed there
    const child = spawn(process.execPath, [CLI, 'pretrain', '--config', join(dir, 'shoes.yaml'), '--out', out, '--set', 'checkpointEvery=3'], {
      env: { ...process.env, FINETORCH_NUM_THREADS: '1', FINETORCH_TEST_CHECKPOINT_PAUSE: 'last:done' },
    });
    let stdout = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      stdout += d;
    });
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      if (d.includes('finetorch-test-pause last:done#1')) child.kill('SIGKILL');
    });
    const signal = await new Promise((done) => child.on('close', (_code, sig) => done(sig)));
    expect(signal).toBe('SIGKILL');
    expect(only(parseEvents(stdout), 'step')).toHaveLength(3);
    const resumed = cli(['pretrain', '--resume', out]);
    expect(resumed.status, resumed.stderr).toBe(0);
    expect(only(resumed.events, 'resumed')[0]).toMatchObject({ epoch: 0, batch: 3, step: 3 });
    expect(only(resumed.events, 'step')).toHaveLength(7);
    const straight = readFileSync(join(dir, 'runs', 'shoes', 'backbone.safetensors'));
    expect(readFileSync(join(out, 'backbone.safetensors')).equals(straight)).toBe(true);
  });

  it('masked-language modelling: a tiny BERT on licence text, its held-out metrics and the Hugging Face folder', () => {
    const lines = readFileSync('/usr/share/common-licenses/Apache-2.0', 'utf8')
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l.length > 30)
      .slice(0, 60);
    writeFileSync(join(dir, 'apache.txt'), lines.join('\n') + '\n');
    writeFileSync(
      join(dir, 'mlm.yaml'),
      `kind: mlm
model:
  arch: bert
  config: { hidden_size: 16, num_hidden_layers: 1, num_attention_heads: 2, intermediate_size: 32, max_position_embeddings: 32 }
tokenizer: { train: { vocabSize: 150 } }
data: { path: apache.txt, val: 0.2 }
maxLength: 24
epochs: 2
batchSize: 12
lr: 0.003
`,
    );
    const r = cli(['pretrain', '--config', 'mlm.yaml'], { cwd: dir });
    expect(r.status, r.stderr).toBe(0);
    const out = join(dir, 'runs', 'mlm');
    expect(only(r.events, 'start')[0]).toMatchObject({ command: 'pretrain', kind: 'mlm', samples: { train: 48, val: 12 }, batchesPerEpoch: 4, totalSteps: 8 });
    const val = only(r.events, 'eval')[0];
    expect(val).toMatchObject({ split: 'val', samples: 12 });
    expect(val.perplexity as number).toBeCloseTo(Math.exp(val.loss as number), 6);
    expect(val.tokens).toBeGreaterThan(0);
    expect(r.events.at(-1)).toMatchObject({ type: 'end', status: 'ok', output: join(out, 'model') });
    expect(readdirSync(out).sort()).toEqual(['best', 'events.jsonl', 'last', 'metrics.json', 'model', 'pretrain.json', 'vocab.txt']);
    expect(readdirSync(join(out, 'model')).sort()).toEqual(['config.json', 'model.safetensors', 'tokenizer_config.json', 'vocab.txt']);
    expect(JSON.parse(readFileSync(join(out, 'model', 'config.json'), 'utf8')).architectures).toEqual(['BertForMaskedLM']);
    const text = cli(['pretrain', '--config', 'mlm.yaml', '--pretty', '--steps', '1', '--out', 'runs/mlm-text'], { cwd: dir });
    expect(text.status, text.stderr).toBe(0);
    expect(text.stdout).toMatch(/masked-language modelling: model bert, [\d,]+ parameters/);
    expect(text.stdout).toMatch(/split +samples +maskedTokens +loss +perplexity +accuracy/);
  });

  it('bad configs and resumes: exit 2, naming the field or the path', () => {
    writeFileSync(join(dir, 'bad.yaml'), CONFIG.replace('maskRatio: 0.5', 'maskRatio: 1.5').replace('lr: 0.001', 'lr: -1'));
    const bad = cli(['pretrain', '--config', join(dir, 'bad.yaml')]);
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/pretrain\.corruption\.maskRatio: .*\(got 1\.5\)/);
    expect(bad.stderr).toMatch(/pretrain\.lr: .*\(got -1\)/);
    const flag = cli(['pretrain', '--config', join(dir, 'shoes.yaml'), '--set', 'decoder.hidden=0']);
    expect(flag.status).toBe(2);
    expect(flag.stderr).toMatch(/pretrain\.decoder\.hidden: .*\[set by --set decoder\.hidden=0\]/);
    const both = cli(['pretrain', '--config', join(dir, 'shoes.yaml'), '--epochs', '1', '--steps', '3']);
    expect(both.status).toBe(2);
    expect(both.stderr).toMatch(/give --epochs or --steps, not both/);
    const notRun = cli(['pretrain', '--resume', dir]);
    expect(notRun.status).toBe(2);
    expect(only(notRun.events, 'error')[0]).toMatchObject({ kind: 'usage' });
    const none = cli(['pretrain']);
    expect(none.status).toBe(2);
    expect(none.stderr).toMatch(/give --config <pretrain\.yaml>/);
  });
});
