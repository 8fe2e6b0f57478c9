// The task of a text model (sequenceClassification, tokenClassification,
// maskedLM) survives the recipes' records: run.json's model spec names it,
// loadRun / loadTrainedModel rebuild that head and load the trained weights
// bit for bit, run.json files written before tasks existed still load as
// sequence classifiers, and what gives one class per input (predict,
// evaluate, `finetorch predict`) refuses other heads, naming where the task
// was read. A bare models.save file brings its own task and config.json.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { torch, io, models, parseRecipe, buildModel, runRecipe, loadRun, recipes, ConfigError, type Architecture, type Tensor } from 'finetorch';
import { cli } from '../cli/cli-helpers';

const words = ['good', 'great', 'nice', 'bad', 'awful', 'poor', 'the', 'film', 'was'];
const vocab = ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]', ...words];
const config = {
  model_type: 'bert',
  vocab_size: vocab.length,
  hidden_size: 16,
  num_hidden_layers: 1,
  num_attention_heads: 2,
  intermediate_size: 32,
  max_position_embeddings: 16,
  type_vocab_size: 2,
};

let dir = '';
let base = '';
const texts = ['the film was great', 'the film was awful'];

beforeAll(async () => {
  torch.setNumThreads(1);
  dir = mkdtempSync(join(tmpdir(), 'ft-text-task-'));
  base = join(dir, 'text');
  mkdirSync(base);
  writeFileSync(join(base, 'vocab.txt'), vocab.join('\n') + '\n');
  writeFileSync(join(base, 'config.json'), JSON.stringify(config));
  const rows = Array.from({ length: 24 }, (_, i) => ({ text: `the film was ${words[i % 6]}`, label: i % 6 < 3 ? 'positive' : 'negative' }));
  writeFileSync(join(base, 'reviews.jsonl'), rows.map((r) => JSON.stringify(r)).join('\n') + '\n');
  const recipe = {
    model: { arch: 'bert', config: 'config.json' },
    data: { kind: 'jsonl', path: 'reviews.jsonl', tokenizer: 'vocab.txt', maxLength: 8 },
    optimizer: { lr: 1e-3 },
    epochs: 1,
    batchSize: 8,
    seed: 1,
    out: 'run',
  };
  const r = await runRecipe(recipe, { baseDir: base });
  expect(r.status).toBe('ok');
  r.model.dispose();
}, 120000);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const runJson = (run: string) => JSON.parse(readFileSync(join(run, 'run.json'), 'utf8'));
const writeRunJson = (run: string, record: unknown) => writeFileSync(join(run, 'run.json'), JSON.stringify(record, null, 2));

/** A copy of the trained run whose run.json model.options are `options` and, with `model`, whose checkpoints hold its weights. */
function variant(name: string, options: Record<string, unknown>, model?: Architecture): string {
  const run = join(dir, name);
  cpSync(join(base, 'run'), run, { recursive: true });
  const record = runJson(run);
  record.model.options = options;
  writeRunJson(run, record);
  if (model) for (const ck of ['best', 'last']) io.save(model.stateDict(), join(run, ck, 'model.safetensors'));
  return run;
}

/** Every parameter and buffer of `b` equals `a`'s exactly. */
function expectSameState(a: Architecture, b: Architecture): void {
  const sa = a.stateDict();
  const sb = b.stateDict();
  expect(Object.keys(sb).sort()).toEqual(Object.keys(sa).sort());
  for (const [k, t] of Object.entries(sa)) expect(sb[k].ne(t).sum().item(), k).toBe(0);
}

function perturb(m: Architecture): void {
  torch.noGrad(() => {
    for (const p of m.parameters()) p.add_(torch.randn(p.shape).mul(0.1));
  });
}

const ids = () => torch.tensor([[2, 11, 12, 13, 6, 3]], { dtype: 'int64' });
const logits = (m: Architecture): Tensor => {
  m.eval();
  return torch.noGrad(() => m.forward(ids()));
};
const taskOf = (m: Architecture) => (m as unknown as { task: string }).task;

describe('run.json records the task of a text model', () => {
  it('a recipe run writes {task, numClasses}; a run.json without a task (older) loads as the same sequence classifier', async () => {
    const run = join(base, 'run');
    expect(runJson(run).model.options).toEqual({ task: 'sequenceClassification', numClasses: 2 });
    const now = loadRun(run);
    expect(taskOf(now.model)).toBe('sequenceClassification');
    const older = loadRun(variant('older', { numClasses: 2 }));
    expect(taskOf(older.model)).toBe('sequenceClassification');
    expectSameState(now.model, older.model);
    const [a, b] = [await now.predict(texts), await older.predict(texts)];
    expect(b).toEqual(a);
    // the trained weights, as the file holds them
    const file = io.load(join(run, 'best', 'model.safetensors'));
    expect(now.model.stateDict()['classifier.weight'].ne(file['classifier.weight']).sum().item()).toBe(0);
    now.dispose();
    older.dispose();
  });

  for (const task of ['tokenClassification', 'maskedLM'] as const) {
    it(`a ${task} run is rebuilt with its own head and weights; predict and evaluate refuse it, naming run.json`, async () => {
      torch.manualSeed(4);
      const trained = models.bert(config, { task, numClasses: 2 });
      perturb(trained);
      const run = variant(task, task === 'maskedLM' ? { task } : { task, numClasses: 2 }, trained);
      const loaded = loadRun(run);
      expect(taskOf(loaded.model)).toBe(task);
      expectSameState(trained, loaded.model);
      const [want, got] = [logits(trained), logits(loaded.model)];
      expect(got.shape).toEqual(task === 'maskedLM' ? [1, 6, vocab.length] : [1, 6, 2]);
      expect(got.ne(want).sum().item()).toBe(0);
      const refused = new RegExp(`${run}/run\\.json: model\\.options\\.task: the model is a ${task} model; predict and evaluate give one class per input`);
      await expect(loaded.predict(texts)).rejects.toThrow(refused);
      await expect(loaded.predict(texts)).rejects.toBeInstanceOf(ConfigError);
      await expect(loaded.evaluate('test')).rejects.toThrow(refused);
      loaded.dispose();

      // the CLI: a usage/config error (exit 2) naming the task, not a shape error
      const r = cli(['predict', '--checkpoint', run, '--text', texts[0]]);
      expect(r.status, r.stderr + r.stdout).toBe(2);
      expect(r.stdout + r.stderr).toMatch(new RegExp(`model\\.options\\.task: the model is a ${task} model`));
    });
  }

  it('a task run.json does not know is named with the file', () => {
    const run = variant('unknown-task', { task: 'translation', numClasses: 2 });
    expect(() => loadRun(run)).toThrow(
      new RegExp(`${run}/run\\.json: model\\.options\\.task: must be one of sequenceClassification, tokenClassification, maskedLM, got "translation"`),
    );
  });
});

describe('a bare models.save text file', () => {
  const dataSpec = () => ({ kind: 'jsonl', path: join(base, 'reviews.jsonl'), tokenizer: join(base, 'vocab.txt'), maxLength: 8 });
  const training = { optimizer: { lr: 1e-3 }, epochs: 1 };

  it('trainedSpec takes its task and config.json, and loadTrainedModel rebuilds it exactly', () => {
    torch.manualSeed(6);
    const mlm = models.bert(config, { task: 'maskedLM' });
    perturb(mlm);
    const file = join(dir, 'mlm.safetensors');
    models.save(mlm, file);
    const recipe = parseRecipe({ model: { arch: 'bert' }, data: dataSpec(), ...training });
    const spec = recipes.trainedSpec(recipes.resolveCheckpoint(file), recipe);
    expect(spec).toEqual({ arch: 'bert', options: { task: 'maskedLM' }, hfConfig: config });
    const back = recipes.loadTrainedModel(spec, file);
    expect(taskOf(back)).toBe('maskedLM');
    expectSameState(mlm, back);

    // without a config anywhere, the error says so
    io.save(mlm.stateDict(), join(dir, 'plain.safetensors'));
    expect(() => recipes.trainedSpec(recipes.resolveCheckpoint(join(dir, 'plain.safetensors')), recipe)).toThrow(
      /recipe\.model\.config: needed: .*plain\.safetensors holds a bert model and neither it nor the recipe gives its config\.json/,
    );
    // finetorch predict on it: refused, naming the file's metadata
    writeFileSync(join(dir, 'recipe.json'), JSON.stringify({ model: { arch: 'bert' }, data: dataSpec(), ...training }));
    const r = cli(['predict', '--checkpoint', file, '--config', join(dir, 'recipe.json'), '--text', texts[0]]);
    expect(r.status, r.stderr + r.stdout).toBe(2);
    expect(r.stdout + r.stderr).toMatch(/mlm\.safetensors: finetorch\.options\.task: the model is a maskedLM model/);
  });

  it('a recipe fine-tunes a sequence classifier from a masked-LM file: its encoder, its config, a new head', () => {
    torch.manualSeed(8);
    const mlm = models.bert(config, { task: 'maskedLM' });
    perturb(mlm);
    const file = join(dir, 'mlm-for-recipe.safetensors');
    models.save(mlm, file);
    const { model, spec } = buildModel(parseRecipe({ model: { checkpoint: file }, data: dataSpec(), ...training }), 2);
    expect(taskOf(model)).toBe('sequenceClassification');
    expect(spec).toEqual({ arch: 'bert', options: { task: 'sequenceClassification', numClasses: 2 }, hfConfig: config });
    const sm = mlm.stateDict();
    const sc = model.stateDict();
    const encoder = Object.keys(sm).filter((k) => k.startsWith('bert.'));
    expect(encoder.length).toBeGreaterThan(10);
    for (const k of encoder) expect(sc[k].ne(sm[k]).sum().item(), k).toBe(0);
    expect(sc['classifier.weight'].shape).toEqual([2, 16]);
    expect(logits(model).shape).toEqual([1, 2]);
  });
});
