// A fine-tuning recipe as one validated object: model, checkpoint, head,
// freezing, groups/LRs, schedule, loss, data, epochs. Errors name the field,
// the value and what was expected.
import { z } from 'zod';
import { FinetorchError } from '../errors.js';

const positiveInt = z.number().int().positive();
/**
 * Every field that sizes an allocation (pixels, padding, batch, epochs,
 * widths, counts, list lengths) has a maximum, so a typo cannot ask for
 * gigabytes: imageSize 20000 or randomCropPadding 20000 used to run out of
 * memory instead of failing here.
 */
const atMost = (n: number, what: string) => positiveInt.max(n, { message: `must be at most ${n.toLocaleString('en-US')} (${what})` });
const countUpTo = (n: number, what: string) =>
  z
    .number()
    .int()
    .min(0)
    .max(n, { message: `must be at most ${n.toLocaleString('en-US')} (${what})` });
const listUpTo = <T extends z.ZodType>(item: T, n: number, what: string) =>
  z.array(item).max(n, { message: `must have at most ${n.toLocaleString('en-US')} entries (${what})` });
const MAX_CLASSES = 100_000;
const MAX_SAMPLES = 10_000_000;

/** A string choice matched case-insensitively and normalised to its canonical spelling ('adamw' -> 'AdamW'). */
function choice<const T extends readonly [string, ...string[]]>(values: T) {
  return z.preprocess((v) => (typeof v === 'string' ? (values.find((x) => x.toLowerCase() === v.toLowerCase()) ?? v) : v), z.enum(values));
}
// no upper bound: a far too large LR is a runtime matter (fit stops with 'training diverged')
const lr = z.number().positive().finite();
const fraction = z.number().min(0).max(1);

/** How the samples of one dataset are split into train / validation / test (stratified by class). */
const SplitSchema = z
  .object({
    train: fraction.default(0.8),
    val: fraction.default(0.1),
    test: fraction.default(0.1),
    /** Seed of the split (default: the recipe's seed). */
    seed: z
      .number()
      .int()
      .min(0)
      .max(2 ** 31 - 1)
      .optional(),
  })
  .strict()
  .refine((s) => Math.abs(s.train + s.val + s.test - 1) < 1e-9, { message: 'train + val + test must sum to 1' })
  .refine((s) => s.train > 0, { message: 'train must be > 0' });

/** Pixel normalisation: ImageNet's mean/std, none (values in [0, 1]), or explicit per-channel values. */
const NormalizeSchema = z.union([
  choice(['imagenet', 'none']),
  z.object({ mean: listUpTo(z.number(), 64, 'one per channel').min(1), std: listUpTo(z.number().positive(), 64, 'one per channel').min(1) }).strict(),
]);

/** Training-time augmentation (seeded per sample and epoch). */
const AugmentSchema = z
  .object({
    /** Probability of a left-right flip. */
    horizontalFlip: fraction.optional(),
    verticalFlip: fraction.optional(),
    /** Random crop of imageSize (or crop) after padding by this many pixels (torchvision RandomCrop(size, padding)). */
    randomCropPadding: countUpTo(1024, 'pixels on each side; the padded image is held in memory').optional(),
    /** RandomResizedCrop to imageSize (or crop) with this area range (instead of a plain resize). */
    randomResizedCrop: z
      .object({ scale: z.tuple([fraction, fraction]).default([0.08, 1]), ratio: z.tuple([z.number().positive(), z.number().positive()]).optional() })
      .strict()
      .optional(),
    /** Random rotation in [-degrees, degrees]. */
    rotation: z.number().min(0).max(180).optional(),
    colorJitter: z.object({ brightness: fraction.optional(), contrast: fraction.optional() }).strict().optional(),
  })
  .strict();

const ImageFolderData = z
  .object({
    kind: z.literal('imageFolder'),
    /** root/<class>/<image> (png, jpg, jpeg, webp); classes are the sorted folder names. */
    root: z.string().min(1),
    /** Separate folders for validation / test (same class folders); a part given here is not split off root. */
    valRoot: z.string().min(1).optional(),
    testRoot: z.string().min(1).optional(),
    split: SplitSchema.default({ train: 0.8, val: 0.1, test: 0.1 }),
    /** Images are stretched to imageSize x imageSize (default: left as they are; they must then share one size). */
    imageSize: atMost(4096, 'pixels a side; a 4096x4096 RGB image is 200 MB as float32').optional(),
    /**
     * torchvision's Resize(resize) + CenterCrop(crop): the shorter side resized to `resize` (aspect ratio kept,
     * PIL's bilinear), then a centred crop x crop. Training with augment: a random crop instead (a random resized
     * crop of `crop` with augment.randomResizedCrop). Default for a pretrained ImageNet checkpoint: 256 and 224.
     */
    resize: atMost(4096, 'pixels on the shorter side').optional(),
    crop: atMost(4096, 'pixels a side; a 4096x4096 RGB image is 200 MB as float32').optional(),
    channels: z.union([z.literal(1), z.literal(3)]).default(3),
    /** Default: 'imagenet' for 3 channels, 'none' for 1. */
    normalize: NormalizeSchema.optional(),
    augment: AugmentSchema.optional(),
    /** Batches decoded ahead of training (sharp runs on its own threads). */
    prefetch: countUpTo(64, 'batches decoded ahead').default(2),
  })
  .strict();

const FashionMnistData = z
  .object({
    kind: z.literal('fashionMnist'),
    /** The IDX files' folder (Debian's dataset-fashion-mnist by default). */
    dir: z.string().min(1).optional(),
    /** Classes to use, by index (0-9) or name ('Sneaker'); relabelled 0..k-1 in this order. Default: all ten. */
    classes: listUpTo(z.union([z.number().int().min(0).max(9), z.string().min(1)]), 10, 'Fashion-MNIST has 10 classes')
      .min(2)
      .optional(),
    /** Training images per class (the first ones of the official training set, in file order); default all. Split into train/val by `val`. */
    perClass: atMost(MAX_SAMPLES, 'images per class').optional(),
    /** Per-class counts instead of perClass (same order as classes), e.g. an imbalanced [400, 20]. */
    counts: listUpTo(atMost(MAX_SAMPLES, 'images per class'), 10, 'one per class').optional(),
    /** Fraction of the training images kept for validation (stratified). */
    val: fraction.default(0.1),
    /** Test images per class from the official test set (first ones); default all. */
    testPerClass: atMost(MAX_SAMPLES, 'images per class').optional(),
    /** 3 repeats the grey channel (for RGB models). */
    channels: z.union([z.literal(1), z.literal(3)]).default(1),
    /** Default 'none': pixel values in [0, 1]. */
    normalize: NormalizeSchema.optional(),
    seed: z
      .number()
      .int()
      .min(0)
      .max(2 ** 31 - 1)
      .optional(),
  })
  .strict();

const textData = {
  /** The CSV / JSONL file: one sample per row. */
  path: z.string().min(1),
  textColumn: z.string().min(1).default('text'),
  labelColumn: z.string().min(1).default('label'),
  /** vocab.txt (WordPiece), tokenizer.json (WordPiece or BPE), or a folder with one of those or vocab.json + merges.txt. */
  tokenizer: z.string().min(1),
  /** WordPiece only: lowercase (uncased models); default true for vocab.txt, tokenizer.json says for itself. */
  lowercase: z.boolean().optional(),
  maxLength: z.number().int().min(2).max(4096, { message: 'must be at most 4,096 (tokens per text; BERT-style models have 512 positions)' }).default(128),
  /** Class names in id order (default: the sorted distinct labels). */
  classes: listUpTo(z.string(), MAX_CLASSES, 'class names').min(2).optional(),
  split: SplitSchema.default({ train: 0.8, val: 0.1, test: 0.1 }),
};
const CsvData = z.object({ kind: z.literal('csv'), ...textData }).strict();
const JsonlData = z.object({ kind: z.literal('jsonl'), ...textData }).strict();

/** The tag schemes of token classification (BIO is IOB2). */
export const TAG_SCHEME_NAMES = ['IOB1', 'IOB2', 'BIO', 'IOE1', 'IOE2', 'IOBES', 'BILOU'] as const;
const tagScheme = choice(TAG_SCHEME_NAMES);

/** Token classification (task: tokenClassification): documents of words with one tag each. */
const tokenData = {
  /** The documents (train, and val/test unless valPath/testPath give them). */
  path: z.string().min(1),
  /** Separate files for validation / test (same format); a part given here is not split off path. */
  valPath: z.string().min(1).optional(),
  testPath: z.string().min(1).optional(),
  /** Pretrained encoders: vocab.txt / tokenizer.json or a folder (default: the model.checkpoint folder). BiLSTM-CRF: not used (its vocabulary comes from the training words). */
  tokenizer: z.string().min(1).optional(),
  /** Lowercase words (WordPiece vocab.txt; the BiLSTM-CRF's vocabulary). */
  lowercase: z.boolean().optional(),
  /** Pieces per window with [CLS]/[SEP] (pretrained encoders), or words per window (BiLSTM-CRF); longer documents are cut into overlapping windows. */
  maxLength: z.number().int().min(3).max(4096, { message: 'must be at most 4,096 (tokens per window; BERT-style models have 512 positions)' }).default(128),
  /** Overlap of consecutive windows, in pieces (words for the BiLSTM-CRF), below maxLength - 2. */
  stride: countUpTo(4094, 'pieces of overlap').default(0),
  split: SplitSchema.default({ train: 0.8, val: 0.1, test: 0.1 }),
};
const ConllData = z
  .object({
    kind: z.literal('conll'),
    ...tokenData,
    /** The scheme of the file's tags (checked on reading). */
    scheme: tagScheme.default('IOB2'),
    /** Train on the tags converted to this scheme (e.g. IOBES); default the file's. */
    convertTo: tagScheme.optional(),
    /** The tag's column, 0-based (default the last). */
    tagColumn: countUpTo(1000, 'columns').optional(),
    /** One document per sentence (blank-line separated, default) or per -DOCSTART- section. */
    documents: choice(['sentence', 'docstart']).default('sentence'),
  })
  .strict();
const JsonlSpansData = z
  .object({
    kind: z.literal('jsonlSpans'),
    ...tokenData,
    /** The JSON field of the text, and of its spans [{start, end, label}] (character offsets, end exclusive). */
    textField: z.string().min(1).default('text'),
    spansField: z.string().min(1).default('spans'),
    /** Offsets count UTF-16 units (JavaScript) or code points (Python). */
    offsetUnit: choice(['utf16', 'codepoint']).default('utf16'),
    /** The scheme the words are tagged in for training (default IOB2). */
    scheme: tagScheme.default('IOB2'),
  })
  .strict();

/** Detection (task: detection): what to do with a box that is empty or reaches outside its image (readCoco/readVoc's checks). */
const boxChecks = {
  /** 'error' (default), 'clip' to the image, or 'drop' the box. */
  outside: choice(['error', 'clip', 'drop']).default('error'),
  /** 'error' (default) or 'drop' boxes without width or height. */
  emptyBoxes: choice(['error', 'drop']).default('error'),
  split: SplitSchema.default({ train: 0.8, val: 0.1, test: 0.1 }),
  /** Training-time augmentation: a left-right flip (boxes mirrored) with this probability. */
  augment: z.object({ horizontalFlip: fraction.optional() }).strict().optional(),
  /** Batches decoded ahead of training. */
  prefetch: countUpTo(64, 'batches decoded ahead').default(2),
};
const CocoDetectionData = z
  .object({
    kind: z.literal('coco'),
    /** The COCO annotation file (images, annotations with bbox [x, y, w, h], categories) and the folder of its images. */
    annotations: z.string().min(1),
    images: z.string().min(1),
    /** Separate validation / test sets (annotation file and images folder, default the training images folder); a part given here is not split off. */
    valAnnotations: z.string().min(1).optional(),
    valImages: z.string().min(1).optional(),
    testAnnotations: z.string().min(1).optional(),
    testImages: z.string().min(1).optional(),
    ...boxChecks,
  })
  .strict();
const VocDetectionData = z
  .object({
    kind: z.literal('voc'),
    /** A Pascal VOC folder: Annotations/<id>.xml, JPEGImages/, ImageSets/Main/<name>.txt. */
    root: z.string().min(1),
    /** The ImageSets/Main list of the training images (default: every Annotations/*.xml), and of separate val / test sets. */
    imageSet: z.string().min(1).optional(),
    valImageSet: z.string().min(1).optional(),
    testImageSet: z.string().min(1).optional(),
    /** Class names in label order (default: the names found, sorted). */
    classes: listUpTo(z.string().min(1), MAX_CLASSES, 'class names').min(1).optional(),
    /** Keep objects marked difficult (default true). */
    difficult: z.boolean().default(true),
    ...boxChecks,
  })
  .strict();

export const DataSchema = z.discriminatedUnion('kind', [
  ImageFolderData,
  FashionMnistData,
  CsvData,
  JsonlData,
  ConllData,
  JsonlSpansData,
  CocoDetectionData,
  VocDetectionData,
]);
export type DataSpec = z.infer<typeof DataSchema>;

/** Loss types: cross-entropy and focal for classifiers and linear tagging heads; the CRF's NLL (optionally plus a focal token term) for CRF heads. */
const LOSS_TYPES = ['crossEntropy', 'focal', 'crf', 'crf+focal'] as const;
/** What fit can monitor in a recipe (earlyStopping.metric); the entity metrics need task tokenClassification. */
export const RECIPE_METRICS = [
  'loss',
  'accuracy',
  'f1Macro',
  'rocAuc',
  'entityF1',
  'entityPrecision',
  'entityRecall',
  'entityF1Macro',
  'map',
  'map50',
  'map75',
] as const;
/** The metrics of task detection (COCO mAP of the validation part, or the training loss). */
export const DETECTION_METRICS = ['loss', 'map', 'map50', 'map75'] as const;

export const RecipeSchema = z
  .object({
    /** 'classification' (default: one class per input), 'tokenClassification' (one tag per word: conll or jsonlSpans data) or 'detection' (boxes: coco or voc data, arch fasterrcnn_resnet50_fpn). */
    task: choice(['classification', 'tokenClassification', 'detection']).optional(),
    model: z
      .object({
        /** Needed unless the checkpoint is a .safetensors written by models.save (it names its architecture). */
        arch: z.string().min(1).optional(),
        /** Pretrained weights (.pth, .safetensors, pytorch_model.bin); without one the model starts from scratch. */
        checkpoint: z.string().min(1).optional(),
        /** Hugging Face config.json for text architectures. */
        config: z.string().min(1).optional(),
        /** Default: the number of classes in the data. */
        numClasses: atMost(MAX_CLASSES, 'classes; the head has one output per class').optional(),
        /**
         * ResNet only: layer1 width and the small-image stem. inChannels: any architecture; a pretrained 3-channel
         * stem is adapted to it (timm's adapt_input_conv), and to 1 channel by itself when the data has 1.
         */
        width: atMost(256, 'layer1 channels; 64 is standard, and the parameters grow with its square').optional(),
        inChannels: atMost(64, 'input channels').optional(),
        smallStem: z.boolean().optional(),
        /** Classifier dropout (VGG, EfficientNet); taggers: dropout on the encoder's / LSTM's output. */
        dropout: fraction.optional(),
        /** Token classification: the tagging head on a pretrained encoder (default crf); bilstmCrf: crf (default) or linear. */
        head: choice(['linear', 'crf', 'bilstm-crf']).optional(),
        /** bilstmCrf: word embedding size (default 100) and LSTM hidden size per direction (default 128). */
        embeddingDim: atMost(4096, 'embedding width').optional(),
        hiddenSize: atMost(4096, 'LSTM hidden size').optional(),
        /** The BiLSTM's hidden size per direction (head bilstm-crf on an encoder; default 256) and its layers (default 1). */
        lstmHiddenSize: atMost(4096, 'LSTM hidden size').optional(),
        lstmLayers: atMost(16, 'stacked LSTM layers').optional(),
        /** bilstmCrf: words seen fewer times in the training data become <unk> (default 1: keep all). */
        minWordCount: atMost(1_000_000, 'occurrences').optional(),
        /** Detection (fasterrcnn_resnet50_fpn): the transform's sizes (shorter side resized to minSize, longer side at most maxSize; default 800 / 1333). */
        minSize: atMost(4096, 'pixels on the shorter side').optional(),
        maxSize: atMost(8192, 'pixels on the longer side').optional(),
        /** Detection: how many of the backbone's stages train, from the top (0-5, default 3), as torchvision's trainable_backbone_layers. */
        trainableBackboneLayers: countUpTo(5, 'stages: conv1, layer1..layer4').optional(),
        /** Detection: the RPN's proposals kept before / after its NMS (train and test), its and the RoI heads' sampled batch per image. */
        rpnPreNmsTopNTrain: atMost(100_000, 'proposals per level').optional(),
        rpnPostNmsTopNTrain: atMost(100_000, 'proposals per image').optional(),
        rpnPreNmsTopNTest: atMost(100_000, 'proposals per level').optional(),
        rpnPostNmsTopNTest: atMost(100_000, 'proposals per image').optional(),
        rpnBatchSizePerImage: atMost(100_000, 'anchors sampled per image').optional(),
        boxBatchSizePerImage: atMost(100_000, 'proposals sampled per image').optional(),
        /** Detection: detections below this score are dropped (default 0.05), NMS IoU per class (default 0.5), detections kept per image (default 100). */
        boxScoreThresh: fraction.optional(),
        boxNmsThresh: fraction.optional(),
        boxDetectionsPerImg: atMost(100_000, 'detections per image').optional(),
        /** Detection: the backbone's norm layers: 'frozen' (FrozenBatchNorm2d, default: fine-tuning) or 'batchnorm' (BatchNorm2d: from scratch, as torchvision without weights). */
        normLayer: choice(['frozen', 'batchnorm']).optional(),
      })
      .strict()
      .refine((m) => m.arch !== undefined || m.checkpoint !== undefined, { message: 'give arch, or a checkpoint that names its architecture' }),
    head: z
      .object({ swap: z.boolean().default(true) })
      .strict()
      .default({ swap: true }),
    freeze: z
      .object({
        blocks: countUpTo(1000, 'blocks').optional(),
        patterns: listUpTo(z.string(), 1000, 'patterns').optional(),
        trainBatchNorm: z.boolean().default(false),
      })
      .strict()
      .optional(),
    optimizer: z
      .object({
        type: choice(['AdamW', 'Adam', 'SGD']).default('AdamW'),
        lr: lr.optional(),
        /** differential learning rates: bottom and top block (geometric in between), or one per block */
        bottomLr: lr.optional(),
        topLr: lr.optional(),
        lrs: listUpTo(z.number().min(0), 1000, 'one per block').optional(),
        /** The head block's LR (with lr for the other blocks): e.g. encoder 2e-5, head and CRF 1e-3. */
        headLr: lr.optional(),
        weightDecay: z.number().min(0).default(0.01),
        momentum: z.number().min(0).max(1).optional(),
      })
      .strict()
      .refine((o) => o.lr !== undefined || (o.bottomLr !== undefined && o.topLr !== undefined) || o.lrs !== undefined, {
        message: 'give lr, or bottomLr and topLr, or lrs',
      })
      .refine((o) => [o.lr !== undefined, o.bottomLr !== undefined || o.topLr !== undefined, o.lrs !== undefined].filter(Boolean).length <= 1, {
        message: 'give only one of lr, bottomLr/topLr, lrs',
      })
      .refine((o) => o.headLr === undefined || o.lr !== undefined, { message: 'headLr goes with lr (the LR of every other block)', path: ['headLr'] }),
    schedule: z
      .object({
        kind: choice(['linear', 'cosine', 'constant', 'onecycle']),
        warmupSteps: countUpTo(1_000_000_000, 'steps').optional(),
        warmupRatio: z.number().min(0).max(1).optional(),
      })
      .strict()
      .optional(),
    loss: z
      .object({
        /** Default crossEntropy; for token classification with a CRF head, crf. */
        type: choice(LOSS_TYPES).default('crossEntropy'),
        /** crf+focal: the focal term's weight next to the CRF's NLL (default 1). */
        focalWeight: z.number().min(0).optional(),
        gamma: z.number().min(0).default(2),
        alpha: z.union([z.number(), listUpTo(z.number(), MAX_CLASSES, 'one per class')]).optional(),
        labelSmoothing: z.number().min(0).max(1).optional(),
        classWeights: listUpTo(z.number().min(0), MAX_CLASSES, 'one per class').optional(),
      })
      .strict()
      .default({ type: 'crossEntropy', gamma: 2 }),
    /** Where the samples come from and how they are split and prepared (see docs/cli.md). */
    data: DataSchema.optional(),
    epochs: atMost(100_000, 'epochs'),
    batchSize: atMost(65_536, 'samples per batch; a batch is held in memory at once').default(32),
    clipGradNorm: z.number().positive().optional(),
    /** Test-time augmentation (image data) of the final test evaluation and `finetorch eval`: the class probabilities averaged over flips and five crops (see tta() in train/tta.ts). */
    tta: z
      .object({ hflip: z.boolean().optional(), vflip: z.boolean().optional(), crops: z.union([z.literal('five'), atMost(4096, 'pixels a side')]).optional() })
      .strict()
      .optional(),
    /** Sum the gradients of this many batches per optimizer step (Hugging Face's gradient_accumulation_steps); the schedule counts optimizer steps. */
    gradientAccumulationSteps: atMost(10_000, 'batches per optimizer step').optional(),
    /** An exponential moving average of the weights (timm's ModelEmaV2): validated, kept in best/ and evaluated on test unless evaluate is false. */
    ema: z
      .object({ decay: z.number().min(0).max(1), warmup: z.boolean().default(false), evaluate: z.boolean().default(true) })
      .strict()
      .optional(),
    /** Gradual unfreezing (ULMFiT): from freeze.blocks frozen blocks, unfreeze `blocks` more from the top every `every` epochs. */
    unfreeze: z
      .object({ every: atMost(100_000, 'epochs'), blocks: atMost(1000, 'blocks').default(1) })
      .strict()
      .optional(),
    /** The metric that picks best/ (default accuracy, entityF1 for taggers, loss without validation data). */
    monitor: choice(RECIPE_METRICS).optional(),
    /** What checkpoints keep: optimizerState false leaves the optimizer's state out of best/ (last/ keeps it for resuming). */
    checkpoint: z
      .object({ optimizerState: z.boolean().default(true) })
      .strict()
      .optional(),
    earlyStopping: z
      .object({ metric: choice(RECIPE_METRICS), patience: atMost(100_000, 'epochs') })
      .strict()
      .optional(),
    seed: z
      .number()
      .int()
      .min(0)
      .max(2 ** 31 - 1)
      .default(0),
    /** Output folder of `finetorch train` (checkpoints, run.json, events.jsonl, metrics.json). */
    out: z.string().min(1).optional(),
    /** 'cpu', 'cuda' or 'cuda:N'. */
    device: z
      .string()
      .regex(/^(cpu|cuda(:\d+)?)$/, { message: "expected 'cpu', 'cuda' or 'cuda:N'" })
      .default('cpu'),
    /** Mixed precision of fit: 'bf16' or 'fp16' (with a GradScaler) run forward and loss under autocast; 'fp32' none. */
    precision: choice(['fp32', 'bf16', 'fp16']).default('fp32'),
    /** 'channelsLast': the model's convolution weights and the image batches in NHWC layout (faster with bf16/fp16 on GPUs). */
    memoryFormat: choice(['contiguous', 'channelsLast']).default('contiguous'),
    /** TensorBoard event files of the run (train/loss per step, train/lr/group<i>, val/* per epoch): true writes them into <out>/tensorboard, a path into that folder. */
    tensorboard: z.union([z.boolean(), z.string().min(1)], { message: 'expected true, false or a folder path' }).optional(),
  })
  .strict();

export type Recipe = z.infer<typeof RecipeSchema>;

export interface RecipeIssue {
  /** Dotted path from the recipe root, e.g. 'recipe.optimizer.lr'. */
  path: string;
  /** The same path as keys (no 'recipe' prefix). */
  keys: Array<string | number>;
  message: string;
  /** The offending value (undefined when missing). */
  value: unknown;
}

/** A recipe that failed validation; `issues` has one entry per problem. */
export class RecipeError extends FinetorchError {
  /** The first bad field's path (all of them are in `issues`). */
  readonly field: string;
  constructor(
    readonly issues: RecipeIssue[],
    message?: string,
  ) {
    super('config', message ?? `invalid recipe:\n  ${issues.map(formatIssue).join('\n  ')}`);
    this.field = issues[0]?.path ?? 'recipe';
    this.name = 'RecipeError';
  }
}

function describe(value: unknown): string {
  if (value === undefined) return 'nothing';
  const s = JSON.stringify(value);
  return s && s.length > 60 ? s.slice(0, 57) + '...' : String(s);
}

export function formatIssue(i: RecipeIssue): string {
  return `${i.path}: ${i.message} (got ${describe(i.value)})`;
}

/** Keys that reach Object.prototype when a recipe is copied or merged (prototype pollution): never recipe fields. */
export const PROTOTYPE_KEYS: readonly string[] = ['__proto__', 'constructor', 'prototype'];

/** Every own key of the recipe (at any depth) that is a prototype key, as issues. */
function prototypeKeyIssues(value: unknown, keys: Array<string | number>, seen = new Set<object>()): RecipeIssue[] {
  if (!value || typeof value !== 'object' || seen.has(value)) return [];
  seen.add(value);
  return Object.keys(value).flatMap((k) => {
    const at = [...keys, Array.isArray(value) ? Number(k) : k];
    const v = (value as Record<string, unknown>)[k];
    if (PROTOTYPE_KEYS.includes(k))
      return [
        {
          path: ['recipe', ...at.map(String)].join('.'),
          keys: at,
          message: `"${k}" is not allowed as a field name (it would reach Object.prototype)`,
          value: v,
        },
      ];
    return prototypeKeyIssues(v, at, seen);
  });
}

/** Validates a recipe object; throws one RecipeError listing every problem with its field path. */
export function parseRecipe(input: unknown): Recipe {
  const unsafe = prototypeKeyIssues(input, []);
  if (unsafe.length) throw new RecipeError(unsafe);
  const r = RecipeSchema.safeParse(input);
  if (r.success) {
    const given = (input as { loss?: { type?: unknown } }).loss?.type;
    const problems = taskIssues(r.data, given !== undefined, (input as { loss?: unknown }).loss !== undefined);
    if (problems.length) throw new RecipeError(problems);
    return r.data;
  }
  const issues = r.error.issues.flatMap((i): RecipeIssue[] => {
    // unknown keys: name each one in the path
    const keys = (i.code === 'unrecognized_keys' ? i.keys.map((k) => [...i.path, k]) : [i.path]) as Array<Array<string | number>>;
    return keys.map((path) => {
      let value: unknown = input;
      for (const k of path) value = value && typeof value === 'object' ? (value as Record<string | number, unknown>)[k as string] : undefined;
      const message = i.code === 'unrecognized_keys' ? 'unknown field' : i.message;
      return { path: ['recipe', ...path.map(String)].join('.'), keys: path, message, value };
    });
  });
  throw new RecipeError(issues);
}

/** The detector's options a recipe sets under model (task detection only). */
export const DETECTION_MODEL_FIELDS = [
  'minSize',
  'maxSize',
  'trainableBackboneLayers',
  'rpnPreNmsTopNTrain',
  'rpnPostNmsTopNTrain',
  'rpnPreNmsTopNTest',
  'rpnPostNmsTopNTest',
  'rpnBatchSizePerImage',
  'boxBatchSizePerImage',
  'boxScoreThresh',
  'boxNmsThresh',
  'boxDetectionsPerImg',
  'normLayer',
] as const;
/** The detection architecture (torchvision's name). */
export const DETECTOR_ARCH = 'fasterrcnn_resnet50_fpn';

/**
 * task detection: coco or voc data, the Faster R-CNN, and none of the
 * options that belong to classifiers (a loss, test-time augmentation, EMA,
 * mixed precision, other metrics than the COCO mAP or the loss).
 */
function detectionIssues(recipe: Recipe, lossGiven: boolean): RecipeIssue[] {
  const issues: RecipeIssue[] = [];
  const at = (keys: Array<string | number>, message: string, value: unknown) => issues.push({ path: ['recipe', ...keys].join('.'), keys, message, value });
  const kind = recipe.data?.kind;
  if (kind !== undefined && kind !== 'coco' && kind !== 'voc')
    at(['data', 'kind'], 'task detection reads coco (images folder + annotations JSON) or voc (Annotations/ + JPEGImages/) data', kind);
  const m = recipe.model;
  if (m.arch !== undefined && m.arch !== DETECTOR_ARCH) at(['model', 'arch'], `task detection runs on ${DETECTOR_ARCH}`, m.arch);
  for (const f of ['width', 'inChannels', 'smallStem', 'dropout', 'config', ...TAGGER_MODEL_FIELDS] as const)
    if (m[f] !== undefined) at(['model', f], `does not apply to ${DETECTOR_ARCH} (task detection)`, m[f]);
  // the loss section's defaults are filled in (a parsed recipe parses again): only what differs from them is refused
  const l = recipe.loss as Record<string, unknown>;
  const set = Object.keys(l).filter((k) => l[k] !== undefined && !(k === 'type' && l[k] === 'crossEntropy') && !(k === 'gamma' && l[k] === 2));
  if (set.length || (lossGiven && recipe.loss.type !== 'crossEntropy'))
    at(
      set.length ? ['loss', set[0]] : ['loss'],
      'does not apply to detection: Faster R-CNN trains on its own four losses (classifier, box regression, RPN objectness and box regression), summed',
      set.length ? l[set[0]] : recipe.loss,
    );
  if (recipe.tta) at(['tta'], 'test-time augmentation is for classifiers, not detection', recipe.tta);
  if (recipe.ema) at(['ema'], 'is not supported for detection (fit does not keep an EMA of a detector)', recipe.ema);
  if (recipe.precision !== 'fp32') at(['precision'], 'detection trains in fp32 only', recipe.precision);
  if (recipe.memoryFormat !== 'contiguous') at(['memoryFormat'], 'detection uses the contiguous layout only', recipe.memoryFormat);
  if (recipe.device !== 'cpu') at(['device'], 'detection trains on the cpu only (fit on a detector does not take a device)', recipe.device);
  if (recipe.unfreeze) at(['unfreeze'], 'gradual unfreezing is not supported for detection', recipe.unfreeze);
  for (const [keys, metric] of [
    [['monitor'], recipe.monitor],
    [['earlyStopping', 'metric'], recipe.earlyStopping?.metric],
  ] as const)
    if (metric !== undefined && !(DETECTION_METRICS as readonly string[]).includes(metric))
      at([...keys], `task detection monitors ${DETECTION_METRICS.join(', ')} (COCO mAP of the validation part, or the training loss)`, metric);
  return issues;
}

/** The architectures a tokenClassification recipe can name. */
const TAGGER_ARCHS = ['bilstmCrf', 'bert', 'roberta', 'distilbert'];
const TAGGER_MODEL_FIELDS = ['head', 'embeddingDim', 'hiddenSize', 'lstmHiddenSize', 'lstmLayers', 'minWordCount'] as const;

/**
 * What the schema cannot say field by field: data kinds, heads, losses and
 * metrics that belong to the other task, and the loss a tagging head trains
 * on. Sets loss.type to 'crf' for a CRF head when the recipe names none.
 */
function taskIssues(recipe: Recipe, lossGiven: boolean, lossSectionGiven = lossGiven): RecipeIssue[] {
  const issues: RecipeIssue[] = [];
  const at = (keys: Array<string | number>, message: string, value: unknown) => issues.push({ path: ['recipe', ...keys].join('.'), keys, message, value });
  const kind = recipe.data?.kind;
  const tagging = recipe.task === 'tokenClassification';
  if (recipe.task === 'detection') return detectionIssues(recipe, lossSectionGiven);
  for (const f of DETECTION_MODEL_FIELDS) if (recipe.model[f] !== undefined) at(['model', f], 'is for detection (task: detection)', recipe.model[f]);
  if (kind === 'coco' || kind === 'voc') at(['data', 'kind'], `${kind} data holds boxes: it needs task: detection`, kind);
  for (const [keys, metric] of [
    [['monitor'], recipe.monitor],
    [['earlyStopping', 'metric'], recipe.earlyStopping?.metric],
  ] as const)
    if (metric?.startsWith('map')) at([...keys], `${metric} (COCO mAP) is a detection metric (task: detection)`, metric);
  if (recipe.tta && kind !== undefined && kind !== 'imageFolder' && kind !== 'fashionMnist')
    at(['tta'], `flips and crops apply to images; the data is ${kind}`, recipe.tta);
  if (!tagging) {
    if (kind === 'conll' || kind === 'jsonlSpans') at(['data', 'kind'], `${kind} data has one tag per word: it needs task: tokenClassification`, kind);
    for (const f of TAGGER_MODEL_FIELDS) if (recipe.model[f] !== undefined) at(['model', f], 'is for taggers (task: tokenClassification)', recipe.model[f]);
    if (recipe.loss.type === 'crf' || recipe.loss.type === 'crf+focal')
      at(['loss', 'type'], 'the CRF losses are for task: tokenClassification with a CRF head', recipe.loss.type);
    if (recipe.earlyStopping?.metric.startsWith('entity'))
      at(['earlyStopping', 'metric'], 'entity metrics need task: tokenClassification', recipe.earlyStopping.metric);
    if (recipe.monitor?.startsWith('entity')) at(['monitor'], 'entity metrics need task: tokenClassification', recipe.monitor);
    return issues;
  }
  if (kind !== undefined && kind !== 'conll' && kind !== 'jsonlSpans')
    at(['data', 'kind'], 'task tokenClassification reads conll (word and tag columns) or jsonlSpans (text and character spans) data', kind);
  const m = recipe.model;
  const bilstm = m.arch === 'bilstmCrf';
  if (m.arch !== undefined && !TAGGER_ARCHS.includes(m.arch))
    at(['model', 'arch'], `token classification runs on bilstmCrf (from scratch) or a pretrained bert, roberta or distilbert encoder`, m.arch);
  if (bilstm && m.head === 'bilstm-crf') at(['model', 'head'], "bilstmCrf is a BiLSTM already: its head is 'crf' (default) or 'linear'", m.head);
  if (!bilstm) for (const f of ['embeddingDim', 'hiddenSize', 'minWordCount'] as const) if (m[f] !== undefined) at(['model', f], 'is for arch bilstmCrf', m[f]);
  if (bilstm && m.checkpoint !== undefined)
    at(['model', 'checkpoint'], 'bilstmCrf trains from scratch (its vocabulary comes from the training data); leave checkpoint out', m.checkpoint);
  const crfHead = (m.head ?? 'crf') !== 'linear';
  const l = recipe.loss;
  if (!lossGiven) l.type = crfHead ? 'crf' : 'crossEntropy';
  else if (crfHead && (l.type === 'crossEntropy' || l.type === 'focal'))
    at(['loss', 'type'], `a ${m.head ?? 'crf'} head trains its CRF on 'crf' or 'crf+focal' (or choose model.head: linear)`, l.type);
  else if (!crfHead && (l.type === 'crf' || l.type === 'crf+focal'))
    at(['loss', 'type'], "a linear head has no CRF: use 'crossEntropy' or 'focal' (or a crf head)", l.type);
  if ((l.type === 'crf' || l.type === 'crf+focal') && (l.classWeights !== undefined || l.labelSmoothing !== undefined))
    at(
      ['loss', l.classWeights !== undefined ? 'classWeights' : 'labelSmoothing'],
      `does not apply to the ${l.type} loss (use crf+focal with alpha for per-tag weights)`,
      l.classWeights ?? l.labelSmoothing,
    );
  if (l.focalWeight !== undefined && l.type !== 'crf+focal') at(['loss', 'focalWeight'], "is the focal term's weight of loss type crf+focal", l.focalWeight);
  if (recipe.monitor === 'rocAuc')
    at(['monitor'], 'taggers have no ROC AUC: use entityF1, entityF1Macro, entityPrecision, entityRecall, accuracy or loss', 'rocAuc');
  if (recipe.earlyStopping?.metric === 'rocAuc')
    at(['earlyStopping', 'metric'], 'taggers have no ROC AUC: use entityF1, entityF1Macro, entityPrecision, entityRecall, accuracy or loss', 'rocAuc');
  const d = recipe.data;
  if (d && (d.kind === 'conll' || d.kind === 'jsonlSpans') && d.stride >= d.maxLength - 2)
    at(['data', 'stride'], `must be below maxLength - 2 (${d.maxLength - 2}): each window moves on`, d.stride);
  return issues;
}
