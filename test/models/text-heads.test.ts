// The masked-LM and token-classification heads of BERT, RoBERTa and DistilBERT
// against Hugging Face transformers itself: transformers builds tiny
// *ForMaskedLM / *ForTokenClassification models (every dropout at 0) and
// save_pretrained()s them (scripts/make-transformers-fixtures.py heads);
// models.fromPretrained must build the class config.json names and give
// transformers' logits within 1e-5, its loss (labels -100 ignored) within 1e-5
// and every parameter's gradient within 1e-4 (the word embeddings' includes
// the tied decoder's), with the same parameter names. models.savePretrained's
// folders must load in transformers' AutoModelFor* with no missing or
// unexpected keys and give the same logits.
//
// Needs a Python with torch and transformers (as text-transformers.test.ts:
// FINETORCH_TRANSFORMERS_PYTHON, else .venv-torch2, else /usr/bin/python3);
// without one those tests are skipped unless FINETORCH_REQUIRE_TRANSFORMERS=1.
// The API and error tests need no Python.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { torch, io, models, nn, finetune, ArgumentError, ConfigError, type Architecture, type Tensor } from 'finetorch';
import { cacheDir, root, transformersPython } from '../reference';

const ARCHS = ['bert', 'roberta', 'distilbert'] as const;
const TASKS = ['maskedLM', 'tokenClassification'] as const;
const CLASS: Record<string, string> = { bert: 'Bert', roberta: 'Roberta', distilbert: 'DistilBert' };
const SUFFIX: Record<string, string> = { maskedLM: 'ForMaskedLM', tokenClassification: 'ForTokenClassification' };
const AUTO: Record<string, string> = { maskedLM: 'MaskedLM', tokenClassification: 'TokenClassification', sequenceClassification: 'SequenceClassification' };
const WORDS: Record<string, string> = {
  bert: 'bert.embeddings.word_embeddings.weight',
  roberta: 'roberta.embeddings.word_embeddings.weight',
  distilbert: 'distilbert.embeddings.word_embeddings.weight',
};

const python = transformersPython();

const script = join(root, 'scripts', 'make-transformers-fixtures.py');
const dir = join(cacheDir, 'transformers-heads');
let scratch = '';
beforeAll(() => {
  scratch = mkdtempSync(join(tmpdir(), 'finetorch-heads-'));
  if (!python) return;
  const produces = ARCHS.flatMap((a) => TASKS.map((t) => `${a}-${t}/io.safetensors`)).concat('versions.json');
  if (produces.every((f) => existsSync(join(dir, f)))) return;
  execFileSync(python, [script, 'heads', dir], { stdio: ['ignore', 'ignore', 'inherit'], timeout: 600000 });
}, 600000);
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

const maxDiff = (a: Tensor, b: Tensor) => a.sub(b).abs().max().item() as number;
const taskOf = (m: Architecture) => (m as unknown as { task: string }).task;

function forward(model: Architecture, arch: string, r: Record<string, Tensor>): Tensor {
  return arch === 'distilbert' ? model.forward(r.input_ids, r.attention_mask) : model.forward(r.input_ids, r.attention_mask, r.token_type_ids);
}

interface Loaded {
  class: string;
  missing: string[];
  unexpected: string[];
  mismatched: string[];
  logits: Tensor;
}

/** transformers' AutoModelFor<task> loads each folder (one interpreter for all): its logits on `inputs` and the loading info. */
function loadInTransformers(jobs: Array<{ task: string; folder: string; inputs: string }>): Loaded[] {
  const outs = jobs.map((_, i) => join(scratch, `logits-${i}.safetensors`));
  const args = jobs.flatMap((j, i) => [AUTO[j.task], j.folder, j.inputs, outs[i]]);
  const stdout = execFileSync(python!, [script, 'load', ...args], { encoding: 'utf8', timeout: 300000 });
  const lines = stdout
    .trim()
    .split('\n')
    .filter((l) => l.startsWith('{'));
  expect(lines).toHaveLength(jobs.length);
  return lines.map((l, i) => ({ ...JSON.parse(l), logits: io.load(outs[i]).logits }));
}

describe.skipIf(!python)('masked-LM and token-classification heads match transformers', () => {
  // every fixture written back by models.savePretrained, then loaded by transformers in one run
  const loaded = new Map<string, Loaded>();
  beforeAll(() => {
    const jobs = ARCHS.flatMap((arch) =>
      TASKS.map((task) => {
        const name = `${arch}-${task}`;
        const folder = join(scratch, `saved-${name}`);
        models.savePretrained(models.fromPretrained(join(dir, name)), folder);
        return { name, task, folder, inputs: join(dir, name, 'io.safetensors') };
      }),
    );
    loadInTransformers(jobs).forEach((l, i) => loaded.set(jobs[i].name, l));
  }, 300000);

  for (const arch of ARCHS) {
    for (const task of TASKS) {
      const name = `${arch}-${task}`;
      it(`${CLASS[arch]}${SUFFIX[task]}: logits within 1e-5, loss within 1e-5, gradients within 1e-4, the same parameter names`, () => {
        const model = models.fromPretrained(join(dir, name));
        expect(taskOf(model)).toBe(task);
        const r = io.load(join(dir, name, 'io.safetensors'));
        model.eval();
        const logits = torch.noGrad(() => forward(model, arch, r));
        expect(logits.shape).toEqual(r.logits.shape);
        const dLogits = maxDiff(logits, r.logits);
        expect(dLogits).toBeLessThanOrEqual(1e-5);

        model.train(); // dropout 0 in these configs: train mode gives the same numbers
        const out = forward(model, arch, r);
        const classes = out.shape[2];
        const loss = nn.functional.crossEntropy(out.reshape([-1, classes]), r.labels.reshape([-1]), { ignoreIndex: -100 });
        loss.backward();
        const dLoss = Math.abs((loss.item() as number) - (r.loss.item() as number));
        expect(dLoss).toBeLessThanOrEqual(1e-5);

        // the same parameters as transformers' named_parameters(): the tied decoder weight is not a parameter of its own
        const named = model.namedParameters();
        const theirs = Object.keys(r)
          .filter((k) => k.startsWith('grad.'))
          .map((k) => k.slice(5));
        expect(named.map(([n]) => n).sort()).toEqual(theirs.sort());
        expect(named.filter(([n]) => n === WORDS[arch])).toHaveLength(1);
        let worst = 0;
        for (const [n, p] of named) worst = Math.max(worst, maxDiff(p.grad!, r[`grad.${n}`]));
        expect(worst).toBeLessThanOrEqual(1e-4);
        if (task === 'maskedLM') {
          // the tied decoder's share of the word embeddings' gradient: rows of tokens that are not in the input get one too
          const present = new Set((r.input_ids.toArray() as number[][]).flat());
          const unseen = Array.from({ length: r.logits.shape[2] }, (_, i) => i).find((i) => !present.has(i))!;
          const words = named.find(([n]) => n === WORDS[arch])![1];
          expect(words.grad!.select(0, unseen).abs().sum().item()).toBeGreaterThan(0);
        }
        console.log(
          `${name}: logits ${dLogits.toExponential(2)}, loss ${dLoss.toExponential(2)} (${(r.loss.item() as number).toFixed(4)}), ` +
            `gradients ${worst.toExponential(2)} over ${named.length} parameters`,
        );
      });

      it(`${CLASS[arch]}${SUFFIX[task]}: savePretrained loads in transformers with no missing/unexpected keys and the same logits`, () => {
        const out = join(scratch, `saved-${name}`);
        const config = JSON.parse(readFileSync(join(out, 'config.json'), 'utf8'));
        expect(config.architectures).toEqual([`${CLASS[arch]}${SUFFIX[task]}`]);
        expect(config.model_type).toBe(arch);
        const theirs = loaded.get(name)!;
        expect(theirs.class).toBe(`${CLASS[arch]}${SUFFIX[task]}`);
        expect(theirs.missing).toEqual([]);
        expect(theirs.unexpected).toEqual([]);
        expect(theirs.mismatched).toEqual([]);
        const r = io.load(join(dir, name, 'io.safetensors'));
        expect(maxDiff(theirs.logits, r.logits)).toBeLessThanOrEqual(1e-5);
        // and back into finetorch
        const again = models.fromPretrained(out);
        again.eval();
        expect(
          maxDiff(
            torch.noGrad(() => forward(again, arch, r)),
            r.logits,
          ),
        ).toBeLessThanOrEqual(1e-5);
      });
    }

    it(`${arch}: an MLM checkpoint loaded as a classifier keeps the encoder and starts a fresh head (and the reverse)`, () => {
      const mlmDir = join(dir, `${arch}-maskedLM`);
      const file = io.load(join(mlmDir, 'model.safetensors'));
      const encoderKeys = Object.keys(file).filter((k) => k.startsWith(`${arch}.`));
      expect(encoderKeys.length).toBeGreaterThan(10);
      for (const task of ['sequenceClassification', 'tokenClassification'] as const) {
        const model = models.fromPretrained(mlmDir, { task, numClasses: 5 });
        expect(taskOf(model)).toBe(task);
        const sd = model.stateDict();
        for (const k of encoderKeys) expect(maxDiff(sd[k], file[k]), k).toBe(0);
        expect(sd[task === 'sequenceClassification' && arch === 'roberta' ? 'classifier.out_proj.weight' : 'classifier.weight'].shape[0]).toBe(5);
        // the fresh head is transformers' initialisation: normal(0, initializer_range = 0.2 here), zero bias
        expect(sd['classifier.bias'] ?? sd['classifier.out_proj.bias']).toBeDefined();
      }
      // a classifier checkpoint as MLM: the encoder loads, the prediction head starts fresh (zero vocabulary bias)
      const tokDir = join(dir, `${arch}-tokenClassification`);
      const tokFile = io.load(join(tokDir, 'model.safetensors'));
      const mlm = models.fromPretrained(tokDir, { task: 'maskedLM' });
      const sd = mlm.stateDict();
      for (const k of Object.keys(tokFile).filter((k) => k.startsWith(`${arch}.`))) expect(maxDiff(sd[k], tokFile[k]), k).toBe(0);
      const bias = { bert: 'cls.predictions.bias', roberta: 'lm_head.bias', distilbert: 'vocab_projector.bias' }[arch];
      expect(sd[bias].abs().max().item()).toBe(0);
      expect(Object.keys(sd).some((k) => k.startsWith('classifier.'))).toBe(false);
    });
  }

  it('a checkpoint with the tied decoder keys written out (older transformers) loads: they are the same tensors', () => {
    const src = join(dir, 'bert-maskedLM');
    const sd = io.load(join(src, 'model.safetensors'));
    sd['cls.predictions.decoder.weight'] = sd['bert.embeddings.word_embeddings.weight'];
    sd['cls.predictions.decoder.bias'] = sd['cls.predictions.bias'];
    sd['cls.seq_relationship.weight'] = torch.zeros([2, 32]); // BertForPreTraining's next-sentence head
    const out = join(scratch, 'old-bert');
    mkdirSync(out, { recursive: true });
    io.save(sd, join(out, 'model.safetensors'));
    const config = JSON.parse(readFileSync(join(src, 'config.json'), 'utf8'));
    writeFileSync(join(out, 'config.json'), JSON.stringify({ ...config, architectures: ['BertForPreTraining'] }));
    const model = models.fromPretrained(out);
    expect(taskOf(model)).toBe('maskedLM');
    model.eval();
    const r = io.load(join(src, 'io.safetensors'));
    expect(
      maxDiff(
        torch.noGrad(() => forward(model, 'bert', r)),
        r.logits,
      ),
    ).toBeLessThanOrEqual(1e-5);
  });
});

// ---- the API without transformers -------------------------------------------------------------

const tiny = {
  bert: {
    model_type: 'bert',
    vocab_size: 40,
    hidden_size: 16,
    num_hidden_layers: 2,
    num_attention_heads: 2,
    intermediate_size: 20,
    max_position_embeddings: 24,
  },
  roberta: {
    model_type: 'roberta',
    vocab_size: 40,
    hidden_size: 16,
    num_hidden_layers: 2,
    num_attention_heads: 2,
    intermediate_size: 20,
    max_position_embeddings: 24,
    pad_token_id: 1,
  },
  distilbert: { model_type: 'distilbert', vocab_size: 40, dim: 16, n_layers: 2, n_heads: 2, hidden_dim: 20, max_position_embeddings: 24 },
};

describe('text heads: building, blocks and errors', () => {
  for (const arch of ARCHS) {
    it(`${arch}: models.${arch}(config, { task }) gives [batch, sequence, vocab] / [batch, sequence, numClasses]`, () => {
      const ids = torch.tensor(
        [
          [2, 5, 7, 9, 3],
          [2, 6, 8, 3, 0],
        ],
        { dtype: 'int64' },
      );
      const mlm = models[arch](tiny[arch], { task: 'maskedLM' });
      expect(mlm.forward(ids).shape).toEqual([2, 5, 40]);
      const tok = models[arch](tiny[arch], { task: 'tokenClassification', numClasses: 7 });
      expect(tok.forward(ids).shape).toEqual([2, 5, 7]);
      const seq = models[arch](tiny[arch], { numClasses: 3 });
      expect(seq.forward(ids).shape).toEqual([2, 3]);
    });

    it(`${arch}: blocks end in the task's head; freeze, paramGroups and swapHead work on them`, () => {
      const mlm = models[arch](tiny[arch], { task: 'maskedLM' });
      const blocks = mlm.blockPaths();
      expect(blocks.map((b) => b.name)).toEqual(['embeddings', 'layer0', 'layer1', 'head']);
      const headParams = blocks.at(-1)!.paths.flatMap((p) =>
        mlm
          .getSubmodule(p)
          .namedParameters()
          .map(([n]) => `${p}.${n}`),
      );
      expect(headParams.length).toBe(5); // dense weight/bias, LayerNorm weight/bias, the vocabulary bias
      // every parameter in exactly one group: the tied embedding once
      const groups = finetune.paramGroups(mlm, { bottomLr: 1e-5, topLr: 1e-3 });
      const all = groups.flatMap((g) => g.params);
      expect(all.length).toBe(mlm.parameters().length);
      const frozen = finetune.freeze(mlm, { blocks: 3 });
      expect(frozen).toContain(WORDS[arch]);
      expect(frozen.some((n) => headParams.includes(n))).toBe(false);
      expect(() => finetune.swapHead(mlm, 3)).toThrow(/not a Linear layer/);

      const tok = models[arch](tiny[arch], { task: 'tokenClassification', numClasses: 4 });
      expect(tok.blockPaths().at(-1)!.paths).toEqual(['classifier']);
      expect(tok.head().path).toBe('classifier');
      finetune.swapHead(tok, 9);
      expect(tok.forward(torch.tensor([[2, 5, 7]], { dtype: 'int64' })).shape).toEqual([1, 3, 9]);
    });
  }

  it('weights start as transformers initialises them: normal(0, initializer_range), padding rows and biases zero, no pooler outside sequence classification', () => {
    const mlm = models.bert({ ...tiny.bert, vocab_size: 2000, hidden_size: 64, num_attention_heads: 4 }, { task: 'maskedLM' });
    const sd = mlm.stateDict();
    const words = sd['bert.embeddings.word_embeddings.weight'];
    const std = words.narrow(0, 1, 1999).std().item() as number; // rows 1.. (row 0 is padding)
    expect(std).toBeGreaterThan(0.018);
    expect(std).toBeLessThan(0.022);
    expect(words.select(0, 0).abs().max().item()).toBe(0);
    expect(sd['cls.predictions.bias'].abs().max().item()).toBe(0);
    expect(Object.keys(sd).some((k) => k.includes('pooler'))).toBe(false);
    const wide = models.bert({ ...tiny.bert, initializer_range: 0.5, vocab_size: 2000 }, { task: 'tokenClassification' });
    const s2 = wide.stateDict()['bert.embeddings.word_embeddings.weight'].narrow(0, 1, 1999).std().item() as number;
    expect(s2).toBeGreaterThan(0.45);
    expect(s2).toBeLessThan(0.55);
  });

  it('bad tasks and architecture names are clear errors', () => {
    expect(() => models.bert(tiny.bert, { task: 'maskedLm' as never })).toThrow(ArgumentError);
    expect(() => models.bert(tiny.bert, { task: 'maskedLm' as never })).toThrow(
      /task must be one of 'sequenceClassification', 'tokenClassification', 'maskedLM', 'featureExtraction', got "maskedLm"/,
    );
    const folder = join(scratch, 'errors');
    models.savePretrained(models.bert(tiny.bert, { task: 'maskedLM' }), folder);
    expect(() => models.fromPretrained(folder, { task: 'lm' as never })).toThrow(ArgumentError);
    const config = JSON.parse(readFileSync(join(folder, 'config.json'), 'utf8'));
    writeFileSync(join(folder, 'config.json'), JSON.stringify({ ...config, architectures: ['BertForQuestionAnswering'] }));
    expect(() => models.fromPretrained(folder)).toThrow(ConfigError);
    expect(() => models.fromPretrained(folder)).toThrow(/architectures\[0\]: "BertForQuestionAnswering" is not an architecture finetorch builds/);
    // task overrides what config.json names
    expect(taskOf(models.fromPretrained(folder, { task: 'maskedLM' }))).toBe('maskedLM');
    writeFileSync(join(folder, 'config.json'), JSON.stringify({ ...config, architectures: ['RobertaForMaskedLM'] }));
    expect(() => models.fromPretrained(folder)).toThrow(/does not match model_type "bert"/);
    expect(() => models.savePretrained(models.bert(tiny.bert), folder, { config: { ...tiny.bert, hidden_size: 32 } })).toThrow(
      /config does not describe this model: hiddenSize 32 \(model 16\)/,
    );
    expect(() => models.savePretrained(models.resnet18({ numClasses: 2 }) as never, folder)).toThrow(ArgumentError);
    expect(() => models.savePretrained(models.bert(tiny.bert), join(folder, 'config.json', 'x'))).toThrow(/cannot create the folder/);
  });

  it('savePretrained writes num_labels and id2label for classifiers, keeping names that fit', () => {
    const folder = join(scratch, 'labels');
    const config = { ...tiny.bert, id2label: { 0: 'O', 1: 'B-X', 2: 'I-X' } };
    models.savePretrained(models.bert(config, { task: 'tokenClassification' }), folder);
    const written = JSON.parse(readFileSync(join(folder, 'config.json'), 'utf8'));
    expect(written.architectures).toEqual(['BertForTokenClassification']);
    expect(written.num_labels).toBe(3);
    expect(written.id2label).toEqual({ 0: 'O', 1: 'B-X', 2: 'I-X' });
    expect(written.label2id).toEqual({ O: 0, 'B-X': 1, 'I-X': 2 });
    models.savePretrained(models.bert(config, { task: 'tokenClassification', numClasses: 2 }), folder);
    expect(JSON.parse(readFileSync(join(folder, 'config.json'), 'utf8')).id2label).toEqual({ 0: 'LABEL_0', 1: 'LABEL_1' });
    const back = models.fromPretrained(folder);
    expect(taskOf(back)).toBe('tokenClassification');
    expect(back.archOptions().numClasses).toBe(2);
    // a swapped head is what gets written
    finetune.swapHead(back, 6);
    models.savePretrained(back, folder);
    expect(JSON.parse(readFileSync(join(folder, 'config.json'), 'utf8')).num_labels).toBe(6);
    expect(models.fromPretrained(folder).forward(torch.tensor([[2, 5]], { dtype: 'int64' })).shape).toEqual([1, 2, 6]);
  });
});

// task 'featureExtraction': the encoder alone. Its last hidden state, through the
// token-classification fixture's own classifier, must give transformers' logits.
describe.skipIf(!python)("task 'featureExtraction': the encoder's last hidden state", () => {
  for (const arch of ARCHS) {
    it(`${CLASS[arch]}Model: hidden states x classifier = transformers' token-classification logits (1e-5); no head, names kept`, () => {
      const name = `${arch}-tokenClassification`;
      const encoder = models.fromPretrained(join(dir, name), { task: 'featureExtraction' });
      expect(taskOf(encoder)).toBe('featureExtraction');
      const names = encoder.namedParameters().map(([n]) => n);
      expect(names.every((n) => n.startsWith(`${arch}.`))).toBe(true);
      const full = io.load(join(dir, name, 'model.safetensors'));
      const encoderKeys = Object.keys(full).filter((k) => k.startsWith(`${arch}.`));
      expect(names.sort()).toEqual(encoderKeys.sort());
      const r = io.load(join(dir, name, 'io.safetensors'));
      encoder.eval();
      const hidden = torch.noGrad(() => forward(encoder, arch, r));
      const config = JSON.parse(readFileSync(join(dir, name, 'config.json'), 'utf8'));
      expect(hidden.shape).toEqual([...r.input_ids.shape, config.hidden_size ?? config.dim]);
      const logits = nn.functional.linear(hidden, full['classifier.weight'], full['classifier.bias']);
      expect(maxDiff(logits, r.logits)).toBeLessThanOrEqual(1e-5);
      expect(() => encoder.forward(r.input_ids, r.attention_mask, ...(arch === 'distilbert' ? [] : [r.token_type_ids]), r.input_ids)).toThrow(
        /maskedPositions is for the masked-LM head/,
      );
    });
  }
});
