// Validation for sequence taggers (token classification), the counterpart of
// Hugging Face's compute_metrics with seqeval: each batch's emissions are
// decoded (the model's CRF by Viterbi when it has one, else the argmax per
// word), the word tags compared as entities with seqeval's semantics
// (metrics.seqeval), and as words (accuracy, macro-F1, confusion matrix).
// evaluate() and fit() take it as their `tagging` option.
import { CRF } from '../nn/crf.js';
import type { Module } from '../nn/module.js';
import type { Tensor } from '../tensor/tensor.js';
import { torch } from '../tensor/index.js';
import { confusionMatrix, f1 } from '../metrics/index.js';
import { seqeval, type SeqevalReport } from '../metrics/seqeval.js';
import type { TagScheme } from '../data/tag-schemes.js';

/** How fit/evaluate score a tagger: targets are word tag ids [B, W], -100 past each sequence's words. */
export interface TaggingOptions {
  /** Tag names by id ('O', 'B-PER', ...). */
  tags: string[];
  /** The tags' scheme (default 'IOB2'). */
  scheme?: TagScheme;
  /** seqeval's entity reading: 'default' (conlleval, lenient; default) or 'strict' (only entities well-formed in `scheme`). */
  mode?: 'default' | 'strict';
}

/** Entity-level scores of an evaluation (seqeval): micro precision/recall/F1, macro and weighted F1, and per type. */
export interface EntityScores {
  precision: number;
  recall: number;
  f1: number;
  f1Macro: number;
  f1Weighted: number;
  /** Per entity type: precision, recall, F1 and the number of true entities. */
  perType: Record<string, { precision: number; recall: number; f1: number; support: number }>;
  /** True entities in all. */
  support: number;
}

/** The entity metrics fit can monitor (FitOptions.monitor, earlyStopping.metric), read from val.entities. */
export const ENTITY_METRICS = { entityF1: 'f1', entityPrecision: 'precision', entityRecall: 'recall', entityF1Macro: 'f1Macro' } as const;
export type EntityMetricName = keyof typeof ENTITY_METRICS;

export function checkTagging(t: TaggingOptions, where: string): void {
  if (!t || typeof t !== 'object' || !Array.isArray(t.tags) || t.tags.length < 1 || t.tags.some((x) => typeof x !== 'string' || x === ''))
    throw new TypeError(`${where}: tagging.tags must be the tag names by id (non-empty strings), got ${JSON.stringify(t?.tags)}`);
  if (t.mode !== undefined && t.mode !== 'default' && t.mode !== 'strict')
    throw new TypeError(`${where}: tagging.mode must be 'default' or 'strict', got ${JSON.stringify(t.mode)}`);
}

/**
 * The predicted tag ids of each sequence from a batch's emissions [B, W, K]
 * and the word mask [B, W] (a left-aligned prefix per row): the model's CRF
 * decodes when it has one (a `crf` that is an nn.CRF), else the argmax.
 */
export function decodeEmissions(model: Module, emissions: Tensor, mask: Tensor): number[][] {
  const crf = (model as { crf?: unknown }).crf;
  return torch.noGrad(() =>
    torch.tidy(() => {
      const e = emissions.dtype === 'float32' ? emissions : emissions.to('float32');
      if (crf instanceof CRF) {
        // a sequence with no words: the CRF needs the first step on; it gets an empty path
        const lengths = Array.from(mask.sum(1).dataSync() as ArrayLike<number | bigint>, Number);
        if (lengths.every((n) => n > 0)) return crf.decode(crf.batchFirst ? e : e.transpose(0, 1), crf.batchFirst ? mask : mask.transpose(0, 1));
        const keep = lengths.flatMap((n, b) => (n > 0 ? [b] : []));
        const paths: number[][] = lengths.map(() => []);
        if (keep.length) {
          const idx = torch.tensor(keep, { dtype: 'int64', device: e.device });
          const sub = crf.decode(
            crf.batchFirst ? e.indexSelect(0, idx) : e.indexSelect(0, idx).transpose(0, 1),
            crf.batchFirst ? mask.indexSelect(0, idx) : mask.indexSelect(0, idx).transpose(0, 1),
          );
          keep.forEach((b, i) => (paths[b] = sub[i]));
        }
        return paths;
      }
      const best = Array.from(e.argmax(2).dataSync() as ArrayLike<number | bigint>, Number);
      const on = Array.from(mask.to('int64').dataSync() as ArrayLike<number | bigint>, Number);
      const [B, W] = mask.shape;
      return Array.from({ length: B }, (_, b) => {
        const row: number[] = [];
        for (let w = 0; w < W; w++) if (on[b * W + w]) row.push(best[b * W + w]);
        return row;
      });
    }),
  );
}

/** Collects word tags batch by batch and scores them at the end. */
export class TaggingAccumulator {
  readonly yTrue: string[][] = [];
  readonly yPred: string[][] = [];
  private readonly trueIds: number[] = [];
  private readonly predIds: number[] = [];

  constructor(readonly options: TaggingOptions) {}

  /** A batch: the model's emissions [B, W, K] and the word targets [B, W] (-100 where there is no word). */
  update(model: Module, emissions: Tensor, target: Tensor): void {
    const { tags } = this.options;
    if (emissions.ndim !== 3 || target.ndim !== 2 || emissions.shape[0] !== target.shape[0] || emissions.shape[1] !== target.shape[1])
      throw new TypeError(
        `evaluate (tagging): the model's output must be emissions [batch, words, tags] matching the targets [batch, words]; got [${emissions.shape}] and [${target.shape}]`,
      );
    if (emissions.shape[2] !== tags.length)
      throw new TypeError(`evaluate (tagging): the model scores ${emissions.shape[2]} tags but tagging.tags names ${tags.length}`);
    const mask = torch.noGrad(() => target.ne(-100));
    const paths = decodeEmissions(model, emissions, mask);
    mask.dispose();
    const t = Array.from(target.dataSync() as ArrayLike<number | bigint>, Number);
    const W = target.shape[1];
    paths.forEach((path, b) => {
      const gold = t.slice(b * W, b * W + W).filter((v) => v !== -100);
      if (gold.length !== path.length) throw new Error(`evaluate (tagging): row ${b} has ${gold.length} tagged words but ${path.length} predictions`);
      for (const v of gold) if (!(v >= 0 && v < tags.length)) throw new TypeError(`evaluate (tagging): target tag id ${v} is outside 0..${tags.length - 1}`);
      this.add(gold, path);
    });
  }

  /** One sequence: its true and predicted tag ids (equal lengths). */
  add(gold: number[], pred: number[]): void {
    if (gold.length !== pred.length) throw new Error(`tagging: ${gold.length} true tags but ${pred.length} predicted`);
    const { tags } = this.options;
    this.yTrue.push(gold.map((v) => tags[v]));
    this.yPred.push(pred.map((v) => tags[v]));
    this.trueIds.push(...gold);
    this.predIds.push(...pred);
  }

  /** Word accuracy, word macro-F1 (over the tags present), the tag confusion matrix, and the entity scores. */
  compute(): { accuracy: number; f1Macro: number; rocAuc: null; confusionMatrix: number[][]; entities: EntityScores } {
    const words = this.trueIds.length;
    return {
      accuracy: words ? this.trueIds.filter((v, i) => v === this.predIds[i]).length / words : 0,
      f1Macro: words ? f1(this.trueIds, this.predIds, { average: 'macro' }) : 0,
      rocAuc: null,
      confusionMatrix: words ? confusionMatrix(this.trueIds, this.predIds, { numClasses: this.options.tags.length }) : [],
      entities: entityScores(this.yTrue, this.yPred, this.options),
    };
  }
}

/** seqeval's report of true vs predicted tag sequences as EntityScores. */
export function entityScores(yTrue: string[][], yPred: string[][], o: Omit<TaggingOptions, 'tags'> = {}): EntityScores {
  const report: SeqevalReport = seqeval.classificationReport(yTrue, yPred, {
    mode: o.mode ?? 'default',
    ...(o.mode === 'strict' ? { scheme: o.scheme ?? 'IOB2' } : o.scheme ? { scheme: o.scheme } : {}),
    zeroDivision: 0,
  });
  return {
    precision: report.microAvg.precision,
    recall: report.microAvg.recall,
    f1: report.microAvg.f1,
    f1Macro: report.macroAvg.f1,
    f1Weighted: report.weightedAvg.f1,
    perType: report.types,
    support: report.microAvg.support,
  };
}
