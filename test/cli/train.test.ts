// `finetorch train / eval / predict` run as a user would, on real data: PNG
// folders made from Debian's Fashion-MNIST. A model "pretrained" by the CLI
// on three classes is fine-tuned on three others; the JSON Lines must follow
// docs/cli.md's schema; eval and predict must agree with what train reported;
// bad recipes, missing data and divergence give their exit codes; Ctrl-C
// leaves a checkpoint from which a resumed run ends bit-identical to an
// uninterrupted one.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { z } from 'zod';
import { cli, cliLive, only, pngFolder, type Event } from './cli-helpers';

// ---- the event schema of docs/cli.md
const num = z.union([z.number(), z.enum(['NaN', 'Infinity', '-Infinity'])]);
const evalResult = {
  loss: num,
  accuracy: z.number(),
  f1Macro: z.number(),
  rocAuc: z.number().nullable(),
  confusionMatrix: z.array(z.array(z.number().int())),
  samples: z.number().int(),
};
const base = { time: z.string(), stage: z.string().optional() };
const trainStart = z
  .object({
    ...base,
    type: z.literal('start'),
    command: z.literal('train'),
    finetorch: z.string(),
    out: z.string(),
    resumeFrom: z.string().nullable(),
    recipe: z.record(z.string(), z.unknown()),
    classes: z.array(z.string()),
    samples: z.object({ train: z.number(), val: z.number(), test: z.number() }),
    trainCounts: z.record(z.string(), z.number()),
    batchesPerEpoch: z.number().int(),
    model: z.object({ arch: z.string(), checkpoint: z.string().nullable(), parameters: z.number().int(), trainable: z.number().int() }),
    groups: z.array(z.object({ block: z.string(), lr: z.number(), params: z.number().int() })),
    device: z.string(),
    threads: z.number().int(),
    notes: z.array(z.string()),
  })
  .strict();
const EVENTS: Record<string, z.ZodType> = {
  start: z.union([
    trainStart,
    z
      .object({
        ...base,
        type: z.literal('start'),
        command: z.literal('eval'),
        checkpoint: z.string(),
        split: z.enum(['train', 'val', 'test']),
        classes: z.array(z.string()),
        samples: z.number().int(),
      })
      .strict(),
    z
      .object({
        ...base,
        type: z.literal('start'),
        command: z.literal('predict'),
        checkpoint: z.string(),
        classes: z.array(z.string()),
        inputs: z.number().int(),
      })
      .strict(),
  ]),
  stage: z.object({ ...base, type: z.literal('stage'), epochs: z.number().int().nullable() }).strict(),
  resumed: z
    .object({ ...base, type: z.literal('resumed'), epoch: z.number().int(), batch: z.number().int(), step: z.number().int(), path: z.string() })
    .strict(),
  step: z
    .object({
      ...base,
      type: z.literal('step'),
      epoch: z.number().int(),
      step: z.number().int(),
      batch: z.number().int(),
      batches: z.number().int().nullable(),
      loss: num,
      lrs: z.array(z.number()),
      samplesPerSecond: z.number(),
    })
    .strict(),
  epoch: z
    .object({
      ...base,
      type: z.literal('epoch'),
      epoch: z.number().int(),
      trainLoss: num,
      val: z.object(evalResult).strict().nullable(),
      seconds: z.number(),
      best: z.boolean(),
    })
    .strict(),
  checkpoint: z.object({ ...base, type: z.literal('checkpoint'), epoch: z.number().int(), path: z.string() }).strict(),
  'early-stop': z.object({ ...base, type: z.literal('early-stop'), epoch: z.number().int(), metric: z.string(), best: z.number() }).strict(),
  interrupted: z
    .object({ ...base, type: z.literal('interrupted'), epoch: z.number().int(), batch: z.number().int(), step: z.number().int(), path: z.string().nullable() })
    .strict(),
  eval: z.object({ ...base, type: z.literal('eval'), split: z.string(), checkpoint: z.string(), ...evalResult }).strict(),
  prediction: z
    .object({
      ...base,
      type: z.literal('prediction'),
      index: z.number().int(),
      input: z.string(),
      prediction: z.number().int(),
      class: z.string(),
      probability: z.number(),
      probabilities: z.array(z.number()),
      label: z.string().nullable(),
      top: z.array(z.object({ class: z.string(), probability: z.number() })).optional(),
    })
    .strict(),
  table: z
    .object({ ...base, type: z.literal('table'), title: z.string(), columns: z.array(z.string()), rows: z.array(z.record(z.string(), z.unknown())) })
    .strict(),
  message: z.object({ ...base, type: z.literal('message'), level: z.enum(['info', 'warn']), text: z.string() }).strict(),
  error: z
    .object({
      ...base,
      type: z.literal('error'),
      kind: z.enum(['usage', 'config', 'data', 'diverged', 'runtime']),
      code: z.number().int(),
      message: z.string(),
    })
    .strict(),
  end: z
    .object({ ...base, type: z.literal('end'), status: z.enum(['ok', 'error', 'diverged', 'interrupted']), exitCode: z.number().int(), seconds: z.number() })
    .passthrough(),
};

function checkSchema(events: Event[]): void {
  for (const e of events) {
    const schema = EVENTS[e.type];
    expect(schema, `undocumented event type ${e.type}`).toBeDefined();
    const r = schema.safeParse(e);
    expect(r.success, `${JSON.stringify(e).slice(0, 300)}\n${r.success ? '' : r.error.message}`).toBe(true);
  }
  expect(events[events.length - 1].type).toBe('end');
}

let dir = '';
let pretrained = '';
const write = (name: string, recipe: unknown) => {
  const file = join(dir, name);
  writeFileSync(file, name.endsWith('.json') ? JSON.stringify(recipe, null, 2) : String(recipe));
  return file;
};

// a narrow ResNet-18 for 28x28 greyscale: fast on two cores, no dropout
const MODEL = { arch: 'resnet18', width: 4, inChannels: 1, smallStem: true };

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'finetorch-cli-'));
  // the task: Sandal / Sneaker / Ankle boot, 16 training images each, and a separate test folder of 8 each
  await pngFolder(join(dir, 'shoes'), { 5: 'sandal', 7: 'sneaker', 9: 'ankle-boot' }, 16);
  await pngFolder(join(dir, 'shoes-test'), { 5: 'sandal', 7: 'sneaker', 9: 'ankle-boot' }, 8, { skip: 16 });
  // "pretraining" on three other classes with the CLI itself (Fashion-MNIST from the IDX files)
  const pre = cli([
    'train',
    '--config',
    write('pretrain.json', {
      model: MODEL,
      optimizer: { lr: 3e-3 },
      epochs: 1,
      batchSize: 32,
      seed: 2,
      out: 'runs/pretrain',
      data: { kind: 'fashionMnist', classes: ['T-shirt/top', 'Trouser', 'Bag'], perClass: 100, val: 0.1, testPerClass: 20 },
    }),
  ]);
  expect(pre.status, pre.stderr).toBe(0);
  pretrained = join(dir, 'runs', 'pretrain', 'best', 'model.safetensors');
  expect(existsSync(pretrained)).toBe(true);
  write('shoes.yaml', fineTuneYaml('runs/shoes'));
}, 300000);

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** The fine-tuning recipe (YAML): pretrained weights, new head, two frozen blocks, differential LRs with warmup, augmentation. */
function fineTuneYaml(out: string, extra = ''): string {
  return `# fine-tune the pretrained narrow ResNet on three shoe classes
model: { arch: resnet18, checkpoint: runs/pretrain/best/model.safetensors, width: 4, inChannels: 1, smallStem: true }
freeze: { blocks: 2 }
optimizer: { bottomLr: 1.0e-4, topLr: 3.0e-3 }
schedule: { kind: linear, warmupSteps: 2 }
data:
  kind: imageFolder
  root: shoes
  testRoot: shoes-test
  channels: 1
  imageSize: 28
  split: { train: 0.75, val: 0.25, test: 0 }
  augment: { horizontalFlip: 0.5 }
epochs: 2
batchSize: 8
seed: 5
out: ${out}
${extra}`;
}

describe('finetorch train', () => {
  let events: Event[] = [];
  const out = () => join(dir, 'runs', 'shoes');

  it('runs a YAML recipe end to end; the JSON Lines follow the documented schema', () => {
    const r = cli(['train', '--config', join(dir, 'shoes.yaml')]);
    expect(r.status, r.stderr).toBe(0);
    events = r.events;
    checkSchema(events);
    const start = events[0];
    expect(start).toMatchObject({
      type: 'start',
      command: 'train',
      classes: ['ankle-boot', 'sandal', 'sneaker'],
      samples: { train: 36, val: 12, test: 24 },
      batchesPerEpoch: 5,
    });
    const model = start.model as { checkpoint: string; parameters: number; trainable: number };
    expect(model.checkpoint).toBe(pretrained);
    expect(model.trainable).toBeLessThan(model.parameters); // stem and layer1 frozen
    // geometric from bottomLr (stem) to topLr (head) over the 6 blocks; frozen blocks have no group
    const groups = start.groups as Array<{ block: string; lr: number }>;
    expect([...new Set(groups.map((g) => g.block))]).toEqual(['layer2', 'layer3', 'layer4', 'head']);
    expect(groups.find((g) => g.block === 'layer2')!.lr).toBeCloseTo(1e-4 * 30 ** (2 / 5), 12);
    expect(groups.find((g) => g.block === 'head')!.lr).toBeCloseTo(3e-3, 12);
    const steps = only(events, 'step');
    expect(steps.map((s) => [s.epoch, s.batch])).toEqual([0, 1].flatMap((e) => [0, 1, 2, 3, 4].map((b) => [e, b])));
    expect(steps.map((s) => s.step)).toEqual([...Array(10).keys()]);
    expect(steps[0].batches).toBe(5);
    // warmup: the first step trains at 0, the second at half the base LRs
    expect((steps[1].lrs as number[]).at(-1)).toBeCloseTo(1.5e-3, 12);
    expect(only(events, 'epoch')).toHaveLength(2);
    for (const c of only(events, 'checkpoint')) expect(existsSync(join(c.path as string, 'model.safetensors'))).toBe(true);
    const end = events.at(-1)!;
    expect(end).toMatchObject({ status: 'ok', exitCode: 0, epochs: 2 });
    // the output folder: run.json, metrics.json, events.jsonl with the same events
    const run = JSON.parse(readFileSync(join(out(), 'run.json'), 'utf8'));
    expect(run.classes).toEqual(start.classes);
    expect(run.recipe.data.root).toBe(join(dir, 'shoes'));
    const logged = readFileSync(join(out(), 'events.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(logged.map((e: Event) => e.type)).toEqual(events.map((e) => e.type));
    const metrics = JSON.parse(readFileSync(join(out(), 'metrics.json'), 'utf8'));
    expect(metrics.history).toHaveLength(2);
  }, 180000);

  it('eval reproduces the metrics train reported, and predict agrees with eval', () => {
    const trained = only(events, 'eval')[0];
    expect(trained.split).toBe('test');
    // the test part, the best checkpoint
    const ev = cli(['eval', '--checkpoint', out()]);
    expect(ev.status, ev.stderr).toBe(0);
    checkSchema(ev.events);
    const test = only(ev.events, 'eval')[0];
    for (const k of ['loss', 'accuracy', 'f1Macro', 'rocAuc', 'confusionMatrix', 'samples', 'checkpoint']) expect(test[k], k).toEqual(trained[k]);
    // the validation part of the best epoch
    const best = only(events, 'epoch')
      .filter((e) => e.best)
      .at(-1)!;
    const val = cli(['eval', '--checkpoint', join(out(), 'best'), '--split', 'val']);
    expect(val.status, val.stderr).toBe(0);
    const v = only(val.events, 'eval')[0];
    const bestVal = best.val as Record<string, unknown>;
    for (const k of ['loss', 'accuracy', 'confusionMatrix']) expect(v[k], k).toEqual(bestVal[k]);
    // predict on the test folder: per-file predictions add up to eval's confusion matrix
    const p = cli(['predict', '--checkpoint', out(), join(dir, 'shoes-test')]);
    expect(p.status, p.stderr).toBe(0);
    const preds = only(p.events, 'prediction');
    expect(preds).toHaveLength(24);
    const classes = only(events, 'start')[0].classes as string[];
    const matrix = classes.map(() => classes.map(() => 0));
    for (const e of preds) {
      const truth = classes.indexOf(basename(dirname(e.input as string)));
      matrix[truth][e.prediction as number]++;
      expect((e.probabilities as number[]).reduce((a, b) => a + b, 0)).toBeCloseTo(1, 5);
      expect(e.class).toBe(classes[e.prediction as number]);
    }
    expect(matrix).toEqual(test.confusionMatrix);
    // a bare weights file with the recipe gives the same numbers
    copyFileSync(join(out(), 'best', 'model.safetensors'), join(dir, 'bare.safetensors'));
    const file = cli(['eval', '--checkpoint', join(dir, 'bare.safetensors'), '--config', join(dir, 'shoes.yaml')]);
    expect(file.status, file.stderr).toBe(0);
    expect(only(file.events, 'eval')[0].confusionMatrix).toEqual(test.confusionMatrix);
    expect(cli(['eval', '--checkpoint', join(dir, 'bare.safetensors')]).stderr).toMatch(/no run\.json next to it; give --config <recipe>/);
  }, 180000);

  it('human-readable output: epoch lines and a final metrics table', () => {
    const r = cli(['train', '--config', join(dir, 'shoes.yaml'), '--out', join(dir, 'runs', 'pretty'), '--epochs', '1', '--pretty']);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^epoch 1\/1 {2}train loss [\d.]+ {2}val loss [\d.]+ {2}acc [\d.]+% {2}F1 [\d.]+/m);
    expect(r.stdout).toMatch(/results \(best checkpoint\)\nsplit +samples +loss +accuracy +f1Macro +rocAuc\n[- ]+\nval \(epoch 1\) +12 /);
    expect(r.stdout).toMatch(/\ntest +24 /);
    expect(r.stdout).not.toMatch(/^\{/m);
    // the events still go to the run's events.jsonl
    const logged = readFileSync(join(dir, 'runs', 'pretty', 'events.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    checkSchema(logged);
    expect(logged.map((e: Event) => e.type)).toEqual(expect.arrayContaining(['start', 'step', 'epoch', 'eval', 'table', 'end']));
  }, 180000);

  it('flags override the recipe: --epochs, --batch-size, --lr, --seed, --out, --set', () => {
    const r = cli([
      'train',
      '--config',
      join(dir, 'shoes.yaml'),
      '--epochs',
      '1',
      '--batch-size',
      '12',
      '--lr',
      '1e-3',
      '--seed',
      '9',
      '--out',
      join(dir, 'runs', 'flags'),
      '--set',
      'data.augment.horizontalFlip=0',
      '--set',
      'schedule={"kind":"constant"}',
      '--set',
      'freeze.blocks=5',
    ]);
    expect(r.status, r.stderr).toBe(0);
    const start = r.events[0];
    // biome-ignore lint/suspicious/noExplicitAny: a recipe as parsed JSON
    const recipe = start.recipe as Record<string, any>;
    expect(recipe.epochs).toBe(1);
    expect(recipe.batchSize).toBe(12);
    expect(recipe.seed).toBe(9);
    expect(recipe.optimizer).toEqual({ type: 'AdamW', lr: 1e-3, weightDecay: 0.01 }); // --lr replaces bottomLr/topLr
    expect(recipe.schedule).toEqual({ kind: 'constant' });
    expect(recipe.data.augment.horizontalFlip).toBe(0);
    expect(start.out).toBe(join(dir, 'runs', 'flags'));
    expect(start.batchesPerEpoch).toBe(3);
    expect((start.groups as Array<{ block: string; lr: number }>).map((g) => g.block)).toEqual(['head', 'head']); // 5 of 6 blocks frozen
    expect(only(r.events, 'step').every((s) => (s.lrs as number[]).every((lr) => lr === 1e-3))).toBe(true);
  }, 180000);

  it('an output folder holding a run is not overwritten without --force', () => {
    const r = cli(['train', '--config', join(dir, 'shoes.yaml')]);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/already holds a run; continue it with --resume .*last, or start over with --force/);
  });
});

describe('exit codes', () => {
  it('2: bad recipes and flags, naming the field, the value and what was expected', () => {
    const bad = cli([
      'train',
      '--config',
      write('bad.json', {
        model: { ...MODEL, numClasses: 0 },
        optimizer: { lr: 1e-3, bottomLr: 1e-4, topLr: 1e-3 },
        data: { kind: 'imagefolder', root: 'shoes' },
        epochs: 'two',
        batchsize: 8,
      }),
    ]);
    expect(bad.status).toBe(2);
    const message = bad.stderr;
    expect(message).toMatch(/recipe\.model\.numClasses: .*expected number to be >0.* \(got 0\)/);
    expect(message).toMatch(/recipe\.optimizer: give only one of lr, bottomLr\/topLr, lrs/);
    expect(message).toMatch(
      /recipe\.data\.kind: .*'imageFolder' \| 'fashionMnist' \| 'csv' \| 'jsonl' \| 'conll' \| 'jsonlSpans' \| 'coco' \| 'voc' \(got "imagefolder"\)/,
    );
    expect(message).toMatch(/recipe\.epochs: .*expected number.* \(got "two"\)/);
    expect(message).toMatch(/recipe\.batchsize: unknown field \(got 8\)/);
    // JSON Lines: an error event with the kind, then end
    checkSchema(bad.events);
    expect(bad.events.at(-2)).toMatchObject({ type: 'error', kind: 'config', code: 2 });
    expect(bad.events.at(-1)).toMatchObject({ type: 'end', status: 'error', exitCode: 2 });

    const viaSet = cli([
      'train',
      '--config',
      join(dir, 'shoes.yaml'),
      '--out',
      join(dir, 'runs', 'x'),
      '--set',
      'schedule.kind=step',
      '--set',
      'data.channels=2',
    ]);
    expect(viaSet.status).toBe(2);
    expect(viaSet.stderr).toMatch(/recipe\.schedule\.kind: .*"linear"\|"cosine"\|"constant"\|"onecycle" \[set by --set schedule\.kind=step\] \(got "step"\)/);
    expect(viaSet.stderr).toMatch(/recipe\.data\.channels: .*\[set by --set data\.channels=2\] \(got 2\)/);

    const flag = cli(['train', '--config', join(dir, 'shoes.yaml'), '--epochs', 'ten']);
    expect(flag.status).toBe(2);
    expect(flag.stderr).toMatch(/--epochs: expected a positive integer, got "ten"/);
    expect(flag.events.at(-2)).toMatchObject({ type: 'error', kind: 'usage' });
    expect(cli(['train', '--config', join(dir, 'shoes.yaml'), '--lr', '-1']).stderr).toMatch(/--lr: expected a positive number, got "-1"/);
    expect(cli(['train', '--config', join(dir, 'shoes.yaml'), '--epoch', '3']).stderr).toMatch(/unknown option --epoch \(options: --config, --resume/);
    expect(cli(['train', '--config', join(dir, 'shoes.yaml'), '--set', 'optimizer.lr']).stderr).toMatch(
      /--set: expected field\.path=value, got "optimizer\.lr"/,
    );
    expect(cli(['train']).stderr).toMatch(/give --config <recipe>/);
    expect(cli(['train', '--config', join(dir, 'nope.yaml')]).stderr).toMatch(/--config: .*nope\.yaml does not exist/);
    const yaml = cli(['train', '--config', write('broken.yaml', 'model: { arch: resnet18\nepochs: 1\n')]);
    expect(yaml.status).toBe(2);
    expect(yaml.stderr).toMatch(/broken\.yaml: not valid YAML/);
    // a recipe that validates but does not fit the model
    const lrs = cli(['train', '--config', join(dir, 'shoes.yaml'), '--out', join(dir, 'runs', 'x'), '--set', 'optimizer={"lrs":[0.1,0.1]}']);
    expect(lrs.status).toBe(2);
    expect(lrs.stderr).toMatch(/recipe\.optimizer\.lrs: lrs has 2 entries but the model has 6 blocks/);
  }, 120000);

  it('3: missing or broken data', () => {
    const missing = cli(['train', '--config', join(dir, 'shoes.yaml'), '--out', join(dir, 'runs', 'x'), '--set', 'data.root=no-such-folder']);
    expect(missing.status).toBe(3);
    expect(missing.events.at(-2)).toMatchObject({ type: 'error', kind: 'data', code: 3 });
    expect(missing.stderr).toMatch(/no-such-folder/);
    // an undecodable image found while training
    const broken = join(dir, 'broken');
    rmSync(broken, { recursive: true, force: true });
    for (const c of ['a', 'b']) {
      const src = join(dir, 'shoes', c === 'a' ? 'sandal' : 'sneaker');
      for (const f of readdirNames(src).slice(0, 6)) copy(join(src, f), join(broken, c, f));
    }
    writeFileSync(join(broken, 'b', 'corrupt.png'), 'this is not a PNG');
    const r = cli([
      'train',
      '--config',
      join(dir, 'shoes.yaml'),
      '--out',
      join(dir, 'runs', 'broken'),
      '--set',
      `data.root=${broken}`,
      '--set',
      'data.testRoot=null',
      '--set',
      'data.split={"train":1,"val":0,"test":0}',
    ]);
    expect(r.status, r.stderr).toBe(3);
    expect(r.events.at(-2)!.message).toMatch(/corrupt\.png: cannot decode image/);
    const predict = cli(['predict', '--checkpoint', join(dir, 'runs', 'shoes'), join(dir, 'nothing-here.png')]);
    expect(predict.status).toBe(3);
  }, 120000);

  it('4: training diverged (lr 1e6)', () => {
    const r = cli(['train', '--config', join(dir, 'shoes.yaml'), '--out', join(dir, 'runs', 'diverged'), '--lr', '1e6', '--set', 'schedule=null']);
    expect(r.status, r.stderr).toBe(4);
    checkSchema(r.events);
    expect(r.events.at(-2)).toMatchObject({ type: 'error', kind: 'diverged', code: 4 });
    expect(r.events.at(-2)!.message).toMatch(/loss became (NaN|Infinity|-Infinity) at epoch \d+, step \d+ \(training diverged: lower the learning rate\)/);
    expect(r.events.at(-1)).toMatchObject({ type: 'end', status: 'diverged', exitCode: 4 });
  }, 120000);
});

describe('Ctrl-C', () => {
  it('stops after the current step with a resumable checkpoint (exit 130); the resumed run ends bit-identical to an uninterrupted one', async () => {
    const recipe = ['--config', join(dir, 'shoes.yaml'), '--set', 'data.augment={"horizontalFlip":0.5,"rotation":10}'];
    const straight = cli(['train', ...recipe, '--out', join(dir, 'runs', 'straight')]);
    expect(straight.status, straight.stderr).toBe(0);

    const out = join(dir, 'runs', 'interrupted');
    let signalled = false;
    const first = await cliLive(['train', ...recipe, '--out', out], (e, child) => {
      if (e.type === 'step' && !signalled) {
        signalled = true;
        child.kill('SIGINT');
      }
    });
    expect(first.status, first.stderr).toBe(130);
    checkSchema(first.events);
    const stopped = only(first.events, 'interrupted')[0];
    expect(stopped).toMatchObject({ epoch: 0, path: join(out, 'last') });
    const steps = only(first.events, 'step');
    expect(stopped.batch).toBe(steps.length); // every step that started finished, then it stopped
    expect(steps.length).toBeLessThan(10);
    expect(first.events.at(-1)).toMatchObject({ status: 'interrupted', exitCode: 130, resume: `finetorch train --resume ${join(out, 'last')}` });
    const state = JSON.parse(readFileSync(join(out, 'last', 'trainer.json'), 'utf8'));
    expect(state.position).toMatchObject({ epoch: 0, batch: stopped.batch });

    const resumed = cli(['train', '--resume', join(out, 'last')]);
    expect(resumed.status, resumed.stderr).toBe(0);
    checkSchema(resumed.events);
    expect(only(resumed.events, 'resumed')[0]).toMatchObject({ epoch: 0, batch: stopped.batch, step: stopped.step });
    // the steps of the two parts are exactly the uninterrupted run's
    const all = [...steps, ...only(resumed.events, 'step')];
    const strip = (e: Event) => ({ epoch: e.epoch, step: e.step, batch: e.batch, loss: e.loss, lrs: e.lrs });
    expect(all.map(strip)).toEqual(only(straight.events, 'step').map(strip));
    expect(only(resumed.events, 'epoch').map((e) => [e.trainLoss, e.val])).toEqual(only(straight.events, 'epoch').map((e) => [e.trainLoss, e.val]));
    for (const f of ['last/model.safetensors', 'best/model.safetensors', 'last/optimizer.safetensors'])
      expect(readFileSync(join(out, f)).equals(readFileSync(join(dir, 'runs', 'straight', f))), f).toBe(true);
  }, 240000);
});

function readdirNames(d: string): string[] {
  return readdirSync(d).sort();
}
function copy(from: string, to: string): void {
  mkdirSync(dirname(to), { recursive: true });
  copyFileSync(from, to);
}
