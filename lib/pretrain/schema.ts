// A pretraining config (`finetorch pretrain --config pretrain.yaml`, or
// pretrain() in the library) as one validated object. Two kinds:
//   mlm             masked-language modelling of a BERT-family model on text
//   reconstruction  a pretrained CNN backbone adapted on unlabelled images by
//                   reconstructing them from masked-patch corruptions
// Errors name the field ('pretrain.corruption.maskRatio'), the value and what
// was expected, as recipe errors do (they are RecipeErrors, exit code 2).
import { isAbsolute, resolve } from 'node:path';
import { z } from 'zod';
import { RecipeError, formatIssue, type RecipeIssue } from '../recipes/schema.js';

const positiveInt = z.number().int().positive();
const atMost = (n: number, what: string) => positiveInt.max(n, { message: `must be at most ${n.toLocaleString('en-US')} (${what})` });
const fraction = z.number().min(0).max(1);
const seed = z
  .number()
  .int()
  .min(0)
  .max(2 ** 31 - 1);
/** Case-insensitive choice normalised to its canonical spelling. */
function choice<const T extends readonly [string, ...string[]]>(values: T) {
  return z.preprocess((v) => (typeof v === 'string' ? (values.find((x) => x.toLowerCase() === v.toLowerCase()) ?? v) : v), z.enum(values));
}

/** Fields every kind has: length of training, optimizer (AdamW), schedule, output. */
const common = {
  /** Passes over the training data; give epochs or steps. */
  epochs: atMost(100_000, 'epochs').optional(),
  /** Optimizer steps in all (the last pass over the data stops early); give epochs or steps. */
  steps: atMost(1_000_000_000, 'steps').optional(),
  batchSize: atMost(65_536, 'samples per batch; a batch is held in memory at once').default(32),
  /** AdamW's peak learning rate. */
  lr: z.number().positive().finite(),
  /** AdamW weight decay (not on biases and normalisation weights, as Hugging Face's Trainer). */
  weightDecay: z.number().min(0).default(0.01),
  /** Learning-rate schedule after the warmup (Hugging Face's default: linear decay to 0). */
  schedule: choice(['linear', 'cosine', 'constant']).default('linear'),
  /** Linear warmup: a number of steps (>= 1) or a fraction of all steps (< 1). */
  warmup: z.number().min(0).default(0),
  clipGradNorm: z.number().positive().optional(),
  /** Also write the resumable last/ checkpoint every this many steps inside an epoch (default: at epoch ends and on Ctrl-C only). */
  checkpointEvery: atMost(1_000_000_000, 'steps').optional(),
  seed: seed.default(0),
  /** The run folder: pretrain.json, best/ and last/ checkpoints, events.jsonl, metrics.json and the output model. */
  out: z.string().min(1).optional(),
  device: z
    .string()
    .regex(/^(cpu|cuda(:\d+)?)$/, { message: "expected 'cpu', 'cuda' or 'cuda:N'" })
    .default('cpu'),
};

const MlmModel = z.union([
  z.object({ fromPretrained: z.string().min(1) }).strict(),
  z
    .object({
      arch: choice(['bert', 'roberta', 'distilbert']),
      /** Hugging Face config.json: its path or the object itself; vocab_size defaults to the tokenizer's size. */
      config: z.union([z.string().min(1), z.record(z.string(), z.unknown())]),
    })
    .strict(),
]);

const MlmConfig = z
  .object({
    kind: z.literal('mlm'),
    /** { fromPretrained: HF folder } to continue pretraining, or { arch, config } to start from scratch. */
    model: MlmModel,
    /**
     * vocab.txt / tokenizer.json / a folder with one (default: the
     * fromPretrained folder), or { train: { vocabSize } } to train a WordPiece
     * vocabulary on the training texts.
     */
    tokenizer: z
      .union([
        z.string().min(1),
        z
          .object({
            train: z
              .object({
                vocabSize: atMost(1_000_000, 'tokens in the vocabulary').min(10, { message: 'must be at least 10' }),
                /** A pair of pieces is merged only if it occurs this often (default 2). */
                minFrequency: positiveInt.optional(),
              })
              .strict(),
          })
          .strict(),
      ])
      .optional(),
    /** WordPiece vocab.txt only: lowercase the text (default true, as uncased BERT). */
    lowercase: z.boolean().optional(),
    data: z
      .object({
        /** Text files or folders of .txt files (read recursively, in sorted order). */
        path: z.union([z.string().min(1), z.array(z.string().min(1)).min(1)]),
        /** true: one document per line (empty lines skipped); false: one document per file. */
        lineByLine: z.boolean().default(true),
        /** Fraction of the documents held out for the final metrics (seeded). */
        val: fraction.default(0.1),
        /**
         * false (default): one sequence per document, truncated to maxLength, batches padded to their longest.
         * true: the documents (each with its special tokens, [CLS] ... [SEP]) joined end to end and cut into
         * blocks of maxLength tokens, as transformers' run_mlm group_texts does: no padding, no text lost
         * (the last block may be shorter). The held-out documents are split off first and packed apart.
         */
        pack: z.boolean().default(false),
      })
      .strict(),
    /** Tokens per sequence: per document (longer ones are truncated), or per block with data.pack. */
    maxLength: z.number().int().min(4).max(4096, { message: 'must be at most 4,096 (tokens per document)' }).default(128),
    mlmProbability: z.number().gt(0).lt(1).default(0.15),
    wholeWordMask: z.boolean().default(false),
    ...common,
  })
  .strict();

const Normalize = z.union([
  choice(['imagenet', 'none']),
  z.object({ mean: z.array(z.number()).min(1).max(64), std: z.array(z.number().positive()).min(1).max(64) }).strict(),
]);

const ImageData = z.discriminatedUnion('kind', [
  z
    .object({
      kind: z.literal('imageFolder'),
      /** Every image under root (png, jpg, jpeg, webp; any folder depth; labels are not used). */
      root: z.string().min(1),
      /** Resized to imageSize x imageSize (default: as they are; they must then share one size). */
      imageSize: atMost(4096, 'pixels a side').optional(),
      channels: z.union([z.literal(1), z.literal(3)]).default(3),
      /** Default 'imagenet' for 3 channels, 'none' for 1: as the backbone was trained. */
      normalize: Normalize.optional(),
      val: fraction.default(0.1),
    })
    .strict(),
  z
    .object({
      kind: z.literal('fashionMnist'),
      /** The IDX files' folder (Debian's dataset-fashion-mnist by default). */
      dir: z.string().min(1).optional(),
      /** Classes whose training images are used (their labels are not), by index or name; default all ten. */
      classes: z
        .array(z.union([z.number().int().min(0).max(9), z.string().min(1)]))
        .min(1)
        .max(10)
        .optional(),
      /** Images per class (the first ones of the training set); default all. */
      perClass: atMost(10_000_000, 'images per class').optional(),
      channels: z.union([z.literal(1), z.literal(3)]).default(1),
      normalize: Normalize.optional(),
      val: fraction.default(0.1),
    })
    .strict(),
  z
    .object({
      kind: z.literal('idx'),
      /** An IDX images file [N, H, W] of unsigned bytes (gzip or raw), e.g. MNIST's. */
      path: z.string().min(1),
      channels: z.union([z.literal(1), z.literal(3)]).default(1),
      normalize: Normalize.optional(),
      val: fraction.default(0.1),
    })
    .strict(),
]);

const ReconstructionConfig = z
  .object({
    kind: z.literal('reconstruction'),
    model: z
      .object({
        /** The pretrained image model (.safetensors written by models.save names its architecture; .pth needs arch). */
        checkpoint: z.string().min(1),
        arch: z.string().min(1).optional(),
        /** ResNet only, for checkpoints that do not name them: layer1 width, input channels, small-image stem. */
        width: atMost(256, 'layer1 channels').optional(),
        inChannels: atMost(64, 'input channels').optional(),
        smallStem: z.boolean().optional(),
      })
      .strict(),
    data: ImageData,
    /** Masked patches: a fraction of the patchSize x patchSize squares of each image is set to `fill`. */
    corruption: z
      .object({
        patchSize: atMost(1024, 'pixels a side').default(4),
        maskRatio: z.number().gt(0).lt(1).default(0.5),
        /** The value masked pixels get, after normalisation (0: the mean pixel when normalised). */
        fill: z.number().finite().default(0),
      })
      .strict()
      .default({ patchSize: 4, maskRatio: 0.5, fill: 0 }),
    /** The decoder on the backbone's pooled features: Linear(features, hidden) -> ReLU -> Linear(hidden, C*H*W). */
    decoder: z
      .object({ hidden: atMost(65_536, 'decoder units').default(512) })
      .strict()
      .default({ hidden: 512 }),
    /** The pixels the loss (mean squared error against the clean image) counts: all of them, or only the masked ones. */
    lossOn: choice(['all', 'masked']).default('all'),
    ...common,
  })
  .strict();

export const PretrainSchema = z.discriminatedUnion('kind', [MlmConfig, ReconstructionConfig]);
export type PretrainConfig = z.infer<typeof PretrainSchema>;
export type MlmPretrainConfig = z.infer<typeof MlmConfig>;
export type ReconstructionPretrainConfig = z.infer<typeof ReconstructionConfig>;

const PROTOTYPE_KEYS = ['__proto__', 'constructor', 'prototype'];

function prototypeKeyIssues(value: unknown, keys: Array<string | number>): RecipeIssue[] {
  if (!value || typeof value !== 'object') return [];
  return Object.keys(value).flatMap((k) => {
    const at = [...keys, Array.isArray(value) ? Number(k) : k];
    const v = (value as Record<string, unknown>)[k];
    if (PROTOTYPE_KEYS.includes(k))
      return [{ path: ['pretrain', ...at.map(String)].join('.'), keys: at, message: `"${k}" is not allowed as a field name`, value: v }];
    return prototypeKeyIssues(v, at);
  });
}

/** Validates a pretraining config; throws one RecipeError listing every problem with its field path ('pretrain.lr'). */
export function parsePretrainConfig(input: unknown, where = ''): PretrainConfig {
  const fail = (issues: RecipeIssue[]): never => {
    throw new RecipeError(issues, `invalid pretraining config${where ? ` (${where})` : ''}:\n  ${issues.map(formatIssue).join('\n  ')}`);
  };
  const unsafe = prototypeKeyIssues(input, []);
  if (unsafe.length) fail(unsafe);
  const r = PretrainSchema.safeParse(input);
  if (!r.success) {
    const issues = r.error.issues.flatMap((i): RecipeIssue[] => {
      const paths = (i.code === 'unrecognized_keys' ? i.keys.map((k) => [...i.path, k]) : [i.path]) as Array<Array<string | number>>;
      return paths.map((path) => {
        let value: unknown = input;
        for (const k of path) value = value && typeof value === 'object' ? (value as Record<string | number, unknown>)[k as string] : undefined;
        let message = i.code === 'unrecognized_keys' ? 'unknown field' : i.message;
        if (path.length === 1 && path[0] === 'kind') message = "expected 'mlm' or 'reconstruction'";
        return { path: ['pretrain', ...path.map(String)].join('.'), keys: path, message, value };
      });
    });
    return fail(issues);
  }
  const c = r.data;
  if ((c.epochs === undefined) === (c.steps === undefined))
    fail([{ path: 'pretrain.epochs', keys: ['epochs'], message: 'give epochs or steps (one of them)', value: c.epochs ?? c.steps }]);
  return c;
}

/** The path fields of a config; relative ones are relative to the config file's folder (or pretrain()'s baseDir). */
const PATH_FIELDS = ['model.fromPretrained', 'model.config', 'model.checkpoint', 'tokenizer', 'data.path', 'data.root', 'data.dir', 'out'];

/** Makes the path fields of a raw config object absolute, relative to `base` (in place). */
export function resolvePretrainPaths(config: Record<string, unknown>, base: string): void {
  const abs = (v: unknown) => (typeof v === 'string' && v !== '' && !isAbsolute(v) ? resolve(base, v) : v);
  for (const f of PATH_FIELDS) {
    const keys = f.split('.');
    let parent: unknown = config;
    for (const k of keys.slice(0, -1))
      parent = parent && typeof parent === 'object' && Object.hasOwn(parent, k) ? (parent as Record<string, unknown>)[k] : undefined;
    if (!parent || typeof parent !== 'object' || Array.isArray(parent)) continue;
    const last = keys[keys.length - 1];
    if (!Object.hasOwn(parent, last)) continue;
    const p = parent as Record<string, unknown>;
    p[last] = Array.isArray(p[last]) ? (p[last] as unknown[]).map(abs) : abs(p[last]);
  }
}
