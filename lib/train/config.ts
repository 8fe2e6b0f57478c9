// A fine-tuning recipe as one validated object: model, checkpoint, head,
// freezing, groups/LRs, schedule, loss, data, epochs. Errors name the field,
// the value and what was expected.
import { z } from 'zod';

const positiveInt = z.number().int().positive();
const lr = z.number().positive().max(10);

export const RecipeSchema = z.object({
  model: z.object({
    arch: z.string().min(1),
    checkpoint: z.string().min(1).optional(),
    /** Hugging Face config.json for text architectures. */
    config: z.string().min(1).optional(),
    numClasses: positiveInt,
  }).strict(),
  head: z.object({ swap: z.boolean().default(true) }).strict().default({ swap: true }),
  freeze: z.object({
    blocks: z.number().int().min(0).optional(),
    patterns: z.array(z.string()).optional(),
    trainBatchNorm: z.boolean().default(false),
  }).strict().optional(),
  optimizer: z.object({
    type: z.enum(['AdamW', 'Adam', 'SGD']).default('AdamW'),
    lr: lr.optional(),
    /** differential learning rates: bottom and top block (geometric in between), or one per block */
    bottomLr: lr.optional(),
    topLr: lr.optional(),
    lrs: z.array(z.number().min(0)).optional(),
    weightDecay: z.number().min(0).default(0.01),
    momentum: z.number().min(0).max(1).optional(),
  }).strict().refine((o) => o.lr !== undefined || (o.bottomLr !== undefined && o.topLr !== undefined) || o.lrs !== undefined, {
    message: 'give lr, or bottomLr and topLr, or lrs',
  }),
  schedule: z.object({
    kind: z.enum(['linear', 'cosine', 'constant', 'onecycle']),
    warmupSteps: z.number().int().min(0).optional(),
    warmupRatio: z.number().min(0).max(1).optional(),
  }).strict().optional(),
  loss: z.object({
    type: z.enum(['crossEntropy', 'focal']).default('crossEntropy'),
    gamma: z.number().min(0).default(2),
    alpha: z.union([z.number(), z.array(z.number())]).optional(),
    labelSmoothing: z.number().min(0).max(1).optional(),
    classWeights: z.array(z.number().min(0)).optional(),
  }).strict().default({ type: 'crossEntropy', gamma: 2 }),
  /** Data description for the data loaders (see the data documentation). */
  data: z.record(z.string(), z.unknown()).optional(),
  epochs: positiveInt,
  batchSize: positiveInt.default(32),
  clipGradNorm: z.number().positive().optional(),
  earlyStopping: z.object({ metric: z.enum(['loss', 'accuracy', 'f1Macro', 'rocAuc']), patience: positiveInt }).strict().optional(),
  seed: z.number().int().min(0).default(0),
}).strict();

export type Recipe = z.infer<typeof RecipeSchema>;

function describe(value: unknown): string {
  if (value === undefined) return 'nothing';
  const s = JSON.stringify(value);
  return s && s.length > 60 ? s.slice(0, 57) + '...' : String(s);
}

/** Validates a recipe object; throws one error listing every problem with its field path. */
export function parseRecipe(input: unknown): Recipe {
  const r = RecipeSchema.safeParse(input);
  if (r.success) return r.data;
  const lines = r.error.issues.map((i) => {
    const path = ['recipe', ...i.path.map(String)].join('.');
    let value: unknown = input;
    for (const k of i.path) value = value && typeof value === 'object' ? (value as Record<string | number, unknown>)[k as string] : undefined;
    return `${path}: ${i.message} (got ${describe(value)})`;
  });
  throw new TypeError(`invalid recipe:\n  ${lines.join('\n  ')}`);
}
