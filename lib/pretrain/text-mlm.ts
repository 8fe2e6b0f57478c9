// Text masked-language modelling: a BERT-family model with its masked-LM
// head (continued from a Hugging Face folder, or from scratch with a config),
// trained to predict masked tokens of in-domain text. Documents (lines or
// files) are tokenized once, truncated to maxLength and padded per batch to
// the batch's longest, or with data.pack joined end to end and cut into
// blocks of maxLength (run_mlm's group_texts: no padding); each batch is masked by data.MaskedLMCollator keyed by
// (seed, epoch, batch), so a resumed run masks exactly as an uninterrupted
// one. The loss is cross-entropy over the masked positions (labels -100
// elsewhere are ignored), as transformers' BertForMaskedLM computes it; the
// model's head runs only at those positions (forward's maskedPositions: the
// vocabulary projection of the other ~85% would be thrown away). The
// output is a Hugging Face folder (config.json naming BertForMaskedLM,
// model.safetensors, the tokenizer's files) that models.fromPretrained and
// transformers load.
import { copyFileSync, existsSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { extname, join } from 'node:path';
import { ConfigError, DataError } from '../errors.js';
import { MaskedLMCollator } from '../data/mlm-collator.js';
import { loadTokenizer, type Tokenizer } from '../data/load-tokenizer.js';
import { WordPieceTokenizer } from '../data/tokenizer.js';
import { trainWordPiece, type WordPieceVocabulary } from '../data/wordpiece-trainer.js';
import { permutation } from '../data/tensor-loader.js';
import { fromPretrained, savePretrained } from '../models/index.js';
import { checkVocabulary, textModel, type HfConfig, type TextArch, type TextModel } from '../models/text.js';
import { crossEntropy } from '../nn/functional.js';
import { torch } from '../tensor/index.js';
import type { Tensor } from '../tensor/tensor.js';
import { forwardArgs } from '../train/forward.js';
import type { LossFn } from '../train/trainer.js';
import { VAL_SALT, limitSteps, splitHeldOut, type KindSetup, type Sized } from './common.js';
import type { MlmMetrics } from './run.js';
import type { MlmPretrainConfig } from './schema.js';

/** The output folder's name in the run folder. */
export const MODEL_DIR = 'model';
/** A vocabulary trained for the run is kept here (resuming uses it). */
export const TRAINED_VOCAB = 'vocab.txt';

/** What rebuilds the model and tokenizer of a run (pretrain.json). */
export interface MlmSpec {
  arch: TextArch;
  hfConfig: HfConfig;
  /** The tokenizer file or folder. */
  tokenizer: string;
  lowercase?: boolean;
}

/** Every .txt file under a folder, in sorted order. */
function textFiles(path: string): string[] {
  if (!statSync(path).isDirectory()) return [path];
  return readdirSync(path)
    .sort()
    .flatMap((n) => {
      const p = join(path, n);
      return statSync(p).isDirectory() ? textFiles(p) : extname(n).toLowerCase() === '.txt' ? [p] : [];
    });
}

/** The documents of the config's data: non-empty lines (lineByLine) or whole files. */
function readDocuments(d: MlmPretrainConfig['data']): string[] {
  const paths = Array.isArray(d.path) ? d.path : [d.path];
  const docs: string[] = [];
  for (const p of paths) {
    if (!existsSync(p)) throw new DataError(`${p} does not exist (pretrain.data.path)`, { path: p });
    const files = textFiles(p);
    if (!files.length) throw new DataError(`${p} has no .txt files (pretrain.data.path)`, { path: p });
    for (const f of files) {
      let text: string;
      try {
        text = readFileSync(f, 'utf8');
      } catch (err) {
        throw new DataError(`cannot read ${f}: ${(err as Error).message}`, { path: f, cause: err });
      }
      if (d.lineByLine) for (const line of text.split(/\r?\n/)) line.trim() && docs.push(line.trim());
      else if (text.trim()) docs.push(text.trim());
    }
  }
  if (!docs.length) throw new DataError(`no text in ${paths.join(', ')} (pretrain.data.path)`);
  return docs;
}

function readJson(path: string, field: string): HfConfig {
  try {
    return JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new ConfigError(field, `cannot read ${path}: ${(err as Error).message}`, { cause: err });
  }
}

/** The tokenizer of a fresh run, and where it lives (a trained vocabulary is written to `out`). */
function tokenizerFor(c: MlmPretrainConfig, texts: string[], out: string): { tokenizer: Tokenizer; path: string } {
  const t = c.tokenizer;
  const load = (path: string, field: string) => {
    try {
      return { tokenizer: loadTokenizer(path, { lowercase: c.lowercase }), path };
    } catch (err) {
      throw new ConfigError(field, (err as Error).message, { cause: err });
    }
  };
  if (typeof t === 'string') return load(t, 'pretrain.tokenizer');
  if (t === undefined) {
    if ('fromPretrained' in c.model) return load(c.model.fromPretrained, 'pretrain.tokenizer');
    throw new ConfigError('pretrain.tokenizer', 'a model from scratch needs a tokenizer: a vocab.txt / tokenizer.json, or { train: { vocabSize } }');
  }
  let trained: WordPieceVocabulary;
  try {
    trained = trainWordPiece(texts, { vocabSize: t.train.vocabSize, minFrequency: t.train.minFrequency, lowercase: c.lowercase ?? true });
  } catch (err) {
    throw new ConfigError('pretrain.tokenizer.train', (err as Error).message, { cause: err });
  }
  const path = join(out, TRAINED_VOCAB);
  trained.saveVocab(path);
  const tokenizer = trained.tokenizer();
  return { tokenizer, path };
}

function vocabLines(t: Tokenizer): string[] {
  return Array.from({ length: t.vocabSize }, (_, i) => t.idToToken(i) ?? `[unused${i}]`);
}

/** The masked-LM model of a fresh run: from a Hugging Face folder, or built from a config with the tokenizer's vocabulary size. */
function modelFor(c: MlmPretrainConfig, tokenizer: Tokenizer): { model: TextModel; arch: TextArch } {
  const m = c.model;
  if ('fromPretrained' in m) {
    if (!existsSync(join(m.fromPretrained, 'config.json'))) throw new ConfigError('pretrain.model.fromPretrained', `${m.fromPretrained} has no config.json`);
    let model: TextModel;
    try {
      model = fromPretrained(m.fromPretrained, { task: 'maskedLM' }) as TextModel;
    } catch (err) {
      throw new ConfigError('pretrain.model.fromPretrained', (err as Error).message, { cause: err });
    }
    checkVocabulary(tokenizer, model.hfConfig, { field: 'pretrain.tokenizer' });
    return { model, arch: model.arch as TextArch };
  }
  const config: HfConfig = typeof m.config === 'string' ? readJson(m.config, 'pretrain.model.config') : structuredClone(m.config);
  config.vocab_size ??= tokenizer.vocabSize;
  config.pad_token_id ??= tokenizer.padId;
  config.model_type = m.arch;
  checkVocabulary(tokenizer, config, { field: 'pretrain.model.config' });
  try {
    return { model: textModel(m.arch, config, { task: 'maskedLM' }), arch: m.arch };
  } catch (err) {
    throw new ConfigError('pretrain.model.config', (err as Error).message, { cause: err });
  }
}

/** Ids [B, T] (padded to the longest) and the attention mask of some documents. */
function padBatch(docs: number[][], padId: number): { inputIds: Tensor; attentionMask: Tensor } {
  const length = Math.max(...docs.map((d) => d.length));
  const ids = new BigInt64Array(docs.length * length).fill(BigInt(padId));
  const mask = new BigInt64Array(docs.length * length);
  docs.forEach((d, r) =>
    d.forEach((id, i) => {
      ids[r * length + i] = BigInt(id);
      mask[r * length + i] = 1n;
    }),
  );
  return { inputIds: torch.tensor(ids, { shape: [docs.length, length] }), attentionMask: torch.tensor(mask, { shape: [docs.length, length] }) };
}

/**
 * Token ids of documents joined end to end, each with its own special tokens
 * ([CLS] ... [SEP], <s> ... </s>) as transformers' run_mlm tokenizes every
 * line before group_texts, cut into blocks of maxLength. run_mlm drops the
 * remainder of each chunk of 1,000 lines; here only the very last block is
 * shorter, and nothing is dropped.
 */
export function packDocuments(docs: number[][], maxLength: number): number[][] {
  const blocks: number[][] = [];
  let block: number[] = [];
  for (const doc of docs)
    for (const id of doc) {
      block.push(id);
      if (block.length === maxLength) {
        blocks.push(block);
        block = [];
      }
    }
  if (block.length) blocks.push(block);
  return blocks;
}

/** Flat indices (int64 [N], on the labels' device) of the positions whose label is not -100: where the masked-LM head predicts. */
export function maskedPositions(labels: Tensor): Tensor {
  const flat = labels.dataSync();
  const picked: bigint[] = [];
  for (let i = 0; i < flat.length; i++) if (Number(flat[i]) !== -100) picked.push(BigInt(i));
  const positions = torch.tensor(BigInt64Array.from(picked), { shape: [picked.length] });
  if (labels.device === 'cpu') return positions;
  const moved = positions.to(labels.device);
  positions.dispose();
  return moved;
}

/**
 * Masked batches of tokenized sequences: input {inputIds, attentionMask,
 * tokenTypeIds (BERT, RoBERTa: zeros), maskedPositions}, target the labels
 * [B, T] (-100 where nothing is predicted).
 */
function maskedBatches(
  docs: number[][],
  c: MlmPretrainConfig,
  collator: MaskedLMCollator,
  padId: number,
  o: { shuffle: boolean; epochOffset?: number; tokenTypes: boolean },
): Sized {
  const size = docs.length;
  const length = Math.ceil(size / c.batchSize);
  return {
    length,
    *batches(epoch: number) {
      // the same per-epoch order as TensorLoader's
      const order = o.shuffle ? permutation(size, c.seed * 100003 + epoch) : Array.from({ length: size }, (_, i) => i);
      for (let b = 0; b < length; b++) {
        const picked = order.slice(b * c.batchSize, (b + 1) * c.batchSize).map((i) => docs[i]);
        const { inputIds, attentionMask } = padBatch(picked, padId);
        const masked = collator.collate(inputIds, { epoch: epoch + (o.epochOffset ?? 0), batchIndex: b, attentionMask });
        const input: Record<string, Tensor> = { inputIds: masked.inputIds, attentionMask };
        // maskedPositions comes after tokenTypeIds in BERT's and RoBERTa's forward: their token types are all 0
        if (o.tokenTypes) input.tokenTypeIds = torch.zerosLike(inputIds);
        input.maskedPositions = maskedPositions(masked.labels);
        inputIds.dispose();
        yield { input, target: masked.labels };
      }
    },
  };
}

/**
 * Cross-entropy of the vocabulary logits over the predicted positions
 * (labels [B, T], -100 elsewhere); 0 when a batch has none. The logits are
 * [B, T, V], or [N, V] at the maskedPositions(labels) only (the model's
 * forward with maskedPositions), in the same order.
 */
export const maskedLMLoss: LossFn = (logits, labels) =>
  torch.tidy(() => {
    let flat = labels.reshape([-1]);
    if (logits.ndim === labels.ndim) flat = flat.indexSelect(0, maskedPositions(labels));
    if (!(Number(flat.ne(-100).sum().item()) > 0)) return logits.sum().mul(0);
    return crossEntropy(logits.reshape([-1, logits.shape[logits.ndim - 1]]), flat, { ignoreIndex: -100 });
  });

export async function setupMlm(c: MlmPretrainConfig, saved: Record<string, unknown> | undefined, out: string): Promise<KindSetup<MlmMetrics>> {
  const texts = readDocuments(c.data);
  const parts = splitHeldOut(texts.length, c.data.val, c.seed);
  if (!parts.train.length) throw new DataError(`all ${texts.length} documents are held out (pretrain.data.val ${c.data.val}); lower it`);
  let tokenizer: Tokenizer;
  let model: TextModel;
  let spec: MlmSpec;
  if (saved) {
    spec = saved as unknown as MlmSpec;
    tokenizer = loadTokenizer(spec.tokenizer, { lowercase: spec.lowercase });
    model = textModel(spec.arch, spec.hfConfig, { task: 'maskedLM' });
  } else {
    const t = tokenizerFor(
      c,
      parts.train.map((i) => texts[i]),
      out,
    );
    tokenizer = t.tokenizer;
    const built = modelFor(c, tokenizer);
    model = built.model;
    spec = { arch: built.arch, hfConfig: model.hfConfig, tokenizer: t.path, ...(c.lowercase === undefined ? {} : { lowercase: c.lowercase }) };
  }
  const positions = (model.archOptions().maxPositionEmbeddings as number) - (spec.arch === 'roberta' ? (model.archOptions().padTokenId as number) + 1 : 0);
  if (c.maxLength > positions) {
    model.dispose();
    throw new ConfigError('pretrain.maxLength', `${c.maxLength} is more than the model's ${positions} positions (config max_position_embeddings)`);
  }
  let collator: MaskedLMCollator;
  try {
    collator = new MaskedLMCollator(tokenizer, { seed: c.seed, mlmProbability: c.mlmProbability, wholeWordMask: c.wholeWordMask });
  } catch (err) {
    model.dispose();
    throw new ConfigError('pretrain.tokenizer', (err as Error).message, { cause: err });
  }
  // the held-out split is by document, before packing: no held-out text is in a training block
  const encode = (indices: number[]) =>
    c.data.pack
      ? packDocuments(
          indices.map((i) => tokenizer.encode(texts[i]).ids),
          c.maxLength,
        )
      : indices.map((i) => tokenizer.encode(texts[i], null, { maxLength: c.maxLength, truncation: true }).ids);
  const trainDocs = encode(parts.train);
  const valDocs = encode(parts.val);
  // held-out batches are masked once, with keys no training batch uses
  const tokenTypes = spec.arch !== 'distilbert';
  const val = valDocs.length
    ? maskedBatches(valDocs, c, collator, tokenizer.padId, { shuffle: false, epochOffset: 1_000_000_000 + VAL_SALT, tokenTypes })
    : null;

  return {
    model,
    train: limitSteps(maskedBatches(trainDocs, c, collator, tokenizer.padId, { shuffle: true, tokenTypes }), c.steps),
    loss: maskedLMLoss,
    samples: { train: trainDocs.length, val: valDocs.length },
    spec: spec as unknown as Record<string, unknown>,
    describe: { arch: spec.arch, from: saved ? null : 'fromPretrained' in c.model ? c.model.fromPretrained : null },
    async evaluate() {
      if (!val) return null;
      const wasTraining = model.training;
      model.eval();
      let lossSum = 0;
      let correct = 0;
      let tokens = 0;
      try {
        for (const b of val.batches(0) as Iterable<{ input: Record<string, Tensor>; target: Tensor }>) {
          const onDevice = (t: Tensor) => (c.device === 'cpu' ? t : t.to(c.device));
          const inputs = forwardArgs(model, b.input).map(onDevice);
          // logits [N, V] at the masked positions only
          const logits = await torch.noGrad(() => model.forwardAsync(...inputs));
          const [l, right, n] = torch.tidy(() => {
            const labels = onDevice(b.target)
              .reshape([-1])
              .indexSelect(0, inputs[inputs.length - 1]);
            const flat = logits;
            const chosen = labels.ne(-100);
            return [crossEntropy(flat, labels, { ignoreIndex: -100, reduction: 'sum' }), flat.argmax(1).eq(labels).logicalAnd(chosen).sum(), chosen.sum()].map(
              (t) => Number(t.item()),
            );
          });
          lossSum += l;
          correct += right;
          tokens += n;
          for (const t of new Set([...inputs, logits, ...Object.values(b.input), b.target])) t.dispose();
        }
      } finally {
        if (wasTraining) model.train();
      }
      const loss = lossSum / Math.max(1, tokens);
      return { loss, perplexity: Math.exp(loss), accuracy: correct / Math.max(1, tokens), tokens, samples: valDocs.length };
    },
    save(runDir) {
      const dir = join(runDir, MODEL_DIR);
      savePretrained(model, dir);
      writeTokenizer(spec, tokenizer, dir);
      return dir;
    },
    dispose() {
      model.dispose();
    },
  };
}

/** The tokenizer's files beside the model, as a Hugging Face folder holds them. */
function writeTokenizer(spec: MlmSpec, tokenizer: Tokenizer, dir: string): void {
  const src = spec.tokenizer;
  if (statSync(src).isDirectory()) {
    for (const f of ['tokenizer.json', 'vocab.txt', 'vocab.json', 'merges.txt', 'tokenizer_config.json', 'special_tokens_map.json'])
      if (existsSync(join(src, f))) copyFileSync(join(src, f), join(dir, f));
    return;
  }
  if (src.toLowerCase().endsWith('.json')) copyFileSync(src, join(dir, 'tokenizer.json'));
  else writeFileSync(join(dir, 'vocab.txt'), vocabLines(tokenizer).join('\n') + '\n');
  if (tokenizer instanceof WordPieceTokenizer && !existsSync(join(dir, 'tokenizer_config.json')))
    writeFileSync(
      join(dir, 'tokenizer_config.json'),
      JSON.stringify({ tokenizer_class: 'BertTokenizer', do_lower_case: tokenizer.options.lowercase ?? true }, null, 2) + '\n',
    );
}
