#!/usr/bin/env node
// Makes the small pretrained BERT finetorch ships with: a WordPiece
// vocabulary and a 2-layer, 128-wide BERT (BERT-tiny's shape) pretrained by
// masked-language modelling on general-domain English, the long descriptions
// of Debian's packages (fetched with apt into a private lists folder, see
// lib/data/debian.ts). Writes assets/bert-tiny-debian/ (config.json,
// model.safetensors, vocab.txt: a Hugging Face folder) and its provenance.json.
// Everything goes through the library: data.debian.debianDescriptions, then
// pretrain() (which trains the vocabulary with data.trainWordPiece).
//   node scripts/make-text-checkpoint.mjs [--epochs 3] [--stage2-epochs 2] [--vocab-size 8000] [--seed 0] [--quick]
// --quick: a few hundred documents, to check the script end to end.
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { data, pretrain, torch, loadReport } from '../dist/index.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const { values } = parseArgs({
  options: {
    epochs: { type: 'string', default: '3' },
    'stage2-epochs': { type: 'string', default: '2' },
    'reuse-stage1': { type: 'boolean', default: false },
    'vocab-size': { type: 'string', default: '8000' },
    'max-length': { type: 'string', default: '128' },
    seed: { type: 'string', default: '0' },
    quick: { type: 'boolean', default: false },
    cache: { type: 'string', default: join(root, 'test', '.cache', 'debian') },
    out: { type: 'string', default: join(root, 'assets', 'bert-tiny-debian') },
    work: { type: 'string', default: join(root, 'runs', 'make-text-checkpoint') },
  },
});
const epochs = Number(values.epochs);
const stage2Epochs = Number(values['stage2-epochs']);
const vocabSize = Number(values['vocab-size']);
const maxLength = Number(values['max-length']);
const seed = Number(values.seed);
const started = Date.now();
const sha256 = (file) => createHash('sha256').update(readFileSync(file)).digest('hex');

// general-domain English: one long description per line (paragraph breaks become spaces)
const corpus = data.debian.debianDescriptions({ cacheDir: values.cache });
let docs = corpus.train;
if (values.quick) docs = docs.slice(0, 400);
mkdirSync(values.work, { recursive: true });
const textFile = join(values.work, 'descriptions.txt');
writeFileSync(textFile, docs.map((d) => d.text.replace(/\s+/g, ' ').trim()).join('\n') + '\n');
console.log(`${docs.length} descriptions (${corpus.provenance.words} words in all) -> ${textFile}`);

// BERT-tiny's shape (2 layers, 128 wide, 2 heads): pretraining takes minutes on 2 cores
const bertConfig = {
  model_type: 'bert',
  hidden_size: 128,
  num_hidden_layers: 2,
  num_attention_heads: 2,
  intermediate_size: 512,
  max_position_embeddings: maxLength,
  type_vocab_size: 2,
  hidden_dropout_prob: 0.1,
  attention_probs_dropout_prob: 0.1,
};
// Stage 1: vocabulary and model from scratch, large batches. A post-LN BERT
// this small sits on the unigram plateau (loss ~6) for hundreds of updates
// (transformers' BertForMaskedLM does the same on the same data), so stage 2
// continues with 4x smaller batches: 4x the updates for the same tokens.
const stage1 = {
  kind: 'mlm',
  model: { arch: 'bert', config: bertConfig },
  tokenizer: { train: { vocabSize: values.quick ? 1000 : vocabSize, minFrequency: 2 } },
  lowercase: true,
  // documents joined and cut into full blocks of maxLength tokens (run_mlm's group_texts): no padding, nothing truncated
  data: { path: textFile, lineByLine: true, pack: true, val: values.quick ? 0.1 : 0.02 },
  maxLength,
  mlmProbability: 0.15,
  epochs,
  batchSize: 64,
  lr: 1e-3,
  weightDecay: 0.01,
  warmup: 0.05,
  schedule: 'linear',
  seed,
};
const stage2 = {
  ...stage1,
  model: { fromPretrained: join(values.work, 'stage1', 'model') },
  tokenizer: undefined,
  epochs: stage2Epochs,
  batchSize: 16,
  lr: 5e-4,
  warmup: 0.02,
};
let lastPrint = 0;
const onEvent = (e) => {
  if (e.type === 'start') console.log(`pretraining: ${JSON.stringify(e.model)}, ${e.totalSteps} steps`);
  if (e.type === 'step' && Date.now() - lastPrint > 30_000) {
    lastPrint = Date.now();
    console.log(`  step ${e.step}: loss ${e.loss?.toFixed(3)} lr ${e.lrs[0].toExponential(2)}`);
  }
  if (e.type === 'epoch') console.log(`epoch ${e.epoch + 1}: train loss ${e.trainLoss.toFixed(4)} (${e.seconds.toFixed(0)} s)`);
  if (e.type === 'eval')
    console.log(`held-out: loss ${e.loss.toFixed(4)}, perplexity ${e.perplexity.toFixed(2)}, masked-token accuracy ${(e.accuracy * 100).toFixed(2)}%`);
};
// --reuse-stage1: keep a finished stage 1 in the work folder (its metrics.json says it finished)
const stage1Out = join(values.work, 'stage1');
let stage1Result;
if (values['reuse-stage1'] && existsSync(join(stage1Out, 'metrics.json'))) {
  const m = JSON.parse(readFileSync(join(stage1Out, 'metrics.json'), 'utf8'));
  stage1Result = { metrics: m.val, fit: { history: m.history }, seconds: m.seconds, reused: true };
  console.log(`stage 1 reused from ${stage1Out}`);
} else {
  stage1Result = await pretrain(stage1, { out: stage1Out, force: true, onEvent });
  if (stage1Result.status !== 'ok') throw new Error(`stage 1 stopped: ${stage1Result.status}`);
}
const result = await pretrain(stage2, { out: join(values.work, 'stage2'), force: true, onEvent });
if (result.status !== 'ok') throw new Error(`stage 2 stopped: ${result.status}`);

rmSync(values.out, { recursive: true, force: true });
mkdirSync(values.out, { recursive: true });
const files = {};
for (const f of ['config.json', 'model.safetensors', 'vocab.txt', 'tokenizer_config.json']) {
  copyFileSync(join(result.output, f), join(values.out, f));
  files[f] = sha256(join(values.out, f));
}
const provenance = {
  name: 'bert-tiny-debian',
  files,
  architecture: { ...bertConfig, vocab_size: JSON.parse(readFileSync(join(values.out, 'config.json'), 'utf8')).vocab_size },
  data: {
    corpus: 'long descriptions of Debian packages (English), deduplicated',
    ...corpus.provenance,
    documentsUsed: docs.length,
    lineByLine: true,
  },
  recipe: {
    stage1: { ...stage1, data: { ...stage1.data, path: 'descriptions.txt' } },
    stage2: { ...stage2, model: { fromPretrained: 'stage 1 output' }, data: { ...stage2.data, path: 'descriptions.txt' } },
  },
  heldOut: result.metrics,
  stages: [
    { heldOut: stage1Result.metrics, history: stage1Result.fit.history, seconds: stage1Result.seconds },
    { heldOut: result.metrics, history: result.fit.history, seconds: result.seconds },
  ],
  madeWith: {
    command: `node scripts/make-text-checkpoint.mjs --epochs ${epochs} --stage2-epochs ${stage2Epochs} --vocab-size ${vocabSize} --max-length ${maxLength} --seed ${seed}${values.quick ? ' --quick' : ''}`,
    libtorch: loadReport.libtorch.version,
    threads: torch.getNumThreads(),
    cores: availableParallelism(),
    seconds: Math.round((Date.now() - started) / 1000),
  },
};
writeFileSync(join(values.out, 'provenance.json'), JSON.stringify(provenance, null, 2) + '\n');
console.log(`wrote ${values.out} in ${provenance.madeWith.seconds} s`);
