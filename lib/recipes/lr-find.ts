// The LR range test on a recipe (the library side of `finetorch lr-find`):
// the recipe's training data, model (pretrained weights, new head, frozen
// blocks) and optimizer built by the same builders runRecipe uses, then
// lrFind; optionally lr-find.json and the plot (lr-find.svg/.png) in a folder.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { DataError } from '../errors.js';
import { torch } from '../tensor/index.js';
import { lrFind, type LrFindResult, type SuggestionRule } from '../train/lr-find.js';
import { lineChartSvg, writeChart } from '../reports/charts.js';
import type { Tagger } from '../models/taggers.js';
import { buildData, buildLoss, buildModel, buildOptimizer, checkDevice } from './build.js';
import { parseRecipe, type Recipe } from './schema.js';
import { resolvePaths } from './paths.js';
import { buildTagger, buildTokenData, taggerLoss, type TokenInputSpec } from './token-classification.js';

export interface LrFindRecipeOptions {
  /** Folder that relative paths in the recipe are relative to (default: the working directory). */
  baseDir?: string;
  startLr?: number;
  endLr?: number;
  numIt?: number;
  stopDiv?: boolean;
  /** The rule of the suggested LR (default 'valley'). */
  suggest?: SuggestionRule;
  /** Write lr-find.json, lr-find.svg and lr-find.png into this folder. */
  out?: string;
  onStep?: (s: { iteration: number; lr: number; loss: number; smoothedLoss: number }) => void;
}

export interface LrFindRecipeResult extends LrFindResult {
  /** The recipe's param groups (block, LR): the test moved them all along one schedule. */
  groups: Array<{ block: string; lr: number; params: number }>;
  /** Files written (with `out`). */
  files: string[];
  /** What the user should know about how the test ran (e.g. it ran in fp32). */
  notes: string[];
}

/**
 * Runs lrFind on a recipe: its training data, its model and its optimizer
 * (frozen blocks left out, as in training), with its loss and clipGradNorm.
 * Every param group follows the same schedule (fastai's lr_find with one
 * start_lr), so with differential LRs the suggestion is one LR for all groups.
 */
export async function lrFindRecipe(input: Recipe | Record<string, unknown>, options: LrFindRecipeOptions = {}): Promise<LrFindRecipeResult> {
  const raw = structuredClone(input) as Record<string, unknown>;
  resolvePaths(raw, resolve(options.baseDir ?? '.'));
  const recipe = parseRecipe(raw);
  checkDevice(recipe.device);
  torch.manualSeed(recipe.seed);
  const tagging = recipe.task === 'tokenClassification';
  const data = tagging ? await buildTokenData(recipe, ['train']) : await buildData(recipe, ['train']);
  const train = data.parts.train;
  if (!train) throw new DataError('the training part of the data is empty');
  const numClasses = data.classes.length;
  const { model } = tagging
    ? buildTagger(recipe, data.classes, (data.input as TokenInputSpec).vocabulary)
    : buildModel(recipe, numClasses, { inChannels: data.input.kind === 'image' ? data.input.channels : undefined });
  if (recipe.device !== 'cpu') model.to(recipe.device);
  const parts = buildOptimizer(recipe, model, train.length);
  const loss = tagging ? taggerLoss(recipe, model as Tagger, numClasses) : buildLoss(recipe, numClasses);
  const notes: string[] = [];
  if (recipe.precision !== 'fp32') notes.push(`the test ran in fp32 (the recipe trains in ${recipe.precision})`);
  if (new Set(parts.groups.map((g) => g.lr)).size > 1)
    notes.push(`the recipe has differential LRs (${parts.groups.length} groups); the test moved every group along the same schedule, as fastai's lr_find does`);
  const result = await lrFind({
    model,
    optimizer: parts.optimizer,
    train,
    loss,
    startLr: options.startLr,
    endLr: options.endLr,
    numIt: options.numIt,
    stopDiv: options.stopDiv,
    suggest: options.suggest,
    clipGradNorm: recipe.clipGradNorm,
    device: recipe.device,
    onStep: options.onStep,
  });
  parts.optimizer.dispose();
  const files: string[] = [];
  if (options.out) {
    const out = resolve(options.out);
    mkdirSync(out, { recursive: true });
    const json = join(out, 'lr-find.json');
    const settings = { startLr: options.startLr ?? 1e-7, endLr: options.endLr ?? 10, numIt: options.numIt ?? 100, stopDiv: options.stopDiv ?? true };
    writeFileSync(json, JSON.stringify({ ...settings, ...result, iterations: result.lrs.length, groups: parts.groups, notes }, null, 2) + '\n');
    files.push(json, ...(await writeChart(lrFindChartSvg(result), join(out, 'lr-find'))));
  }
  return { ...result, groups: parts.groups, files, notes };
}

/** The plot: smoothed loss against LR on a log axis, the last 5 points left out (fastai's plot_lr_find), the suggestion marked and named. */
export function lrFindChartSvg(r: LrFindResult): string {
  const shown = r.lrs.length > 5 ? r.lrs.length - 5 : r.lrs.length;
  const points = r.lrs.slice(0, shown).map((lr, i): [number, number] => [lr, r.losses[i]]);
  const others = (Object.entries(r.suggestion) as Array<[SuggestionRule, number | null]>)
    .filter(([rule, lr]) => rule !== r.rule && lr !== null)
    .map(([rule, lr]) => `${rule} ${formatLr(lr!)}`);
  return lineChartSvg({
    title:
      r.suggested !== null
        ? `LR range test: ${r.rule} ${formatLr(r.suggested)}${others.length ? ` (${others.join(', ')})` : ''}`
        : 'LR range test: no suggestion',
    xLabel: 'learning rate',
    yLabel: 'loss (smoothed)',
    xScale: 'log',
    series: [{ name: 'smoothed loss', points }],
    ...(r.suggested !== null ? { marker: { x: r.suggested, label: `${r.rule}: ${formatLr(r.suggested)}` } } : {}),
  });
}

/** An LR with two significant digits: 0.04, 0.36, 8.3; exponent form below 0.001: 3.5e-4. */
export function formatLr(lr: number): string {
  return lr >= 1e-3 && lr < 1e4 ? String(Number(lr.toPrecision(2))) : lr.toExponential(1).replace('e+', 'e');
}
