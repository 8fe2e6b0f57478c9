// The learning-rate range test (Smith, "Cyclical Learning Rates for Training
// Neural Networks", 2017), with the semantics of fastai's Learner.lr_find and
// its LRFinder callback: train on up to numIt mini-batches while the LR grows
// exponentially from startLr to endLr, record the smoothed loss, stop when it
// diverges, then put the model and the optimizer back as they were, so the
// test changes nothing about the training that follows. The suggestion rules
// (valley, steep, minimum) read the recorded curve.
import type { Module, StateDict } from '../nn/module.js';
import type { Optimizer, OptimizerStateDict } from '../optim/optimizer.js';
import { clipGradNorm } from '../nn/utils.js';
import { Tensor } from '../tensor/tensor.js';
import type { Device } from '../tensor/dtype.js';
import { disposeInput, type ModelInput } from '../data/batch.js';
import { forwardInput, type ForwardFn } from './forward.js';
import { lossFunction, type BatchSource, type BuiltinLoss, type LossFn } from './trainer.js';
import { moveBatch, resolveDevice } from './device.js';

export type SuggestionRule = 'valley' | 'steep' | 'minimum';
export const SUGGESTION_RULES: readonly SuggestionRule[] = ['valley', 'steep', 'minimum'];

export interface LrFindOptions {
  model: Module;
  optimizer: Optimizer;
  train: BatchSource;
  /** Default: cross-entropy (as fit). */
  loss?: LossFn | BuiltinLoss;
  /**
   * The first and the last LR of the schedule (defaults 1e-7 and 10). A number
   * sets every param group to the same LR at each iteration (fastai does this
   * with a single start_lr, which overrides differential LRs for the test);
   * an array gives each group its own schedule, one entry per group.
   */
  startLr?: number | number[];
  endLr?: number | number[];
  /** Iterations (mini-batches) at most; the data is cycled through as often as needed. Default 100; at least 6 run (as fastai's LRFinder), the schedule then spanning 6. */
  numIt?: number;
  /** Stop when the smoothed loss exceeds 4 x its minimum so far. Default true. */
  stopDiv?: boolean;
  /** The weight of the past in the loss's exponential moving average (fastai's beta). Default 0.98. */
  smoothing?: number;
  /** How to run the model on a batch's input (default forwardInput, as fit). */
  forward?: ForwardFn;
  /** Where the batches go (default: the model's device). */
  device?: Device;
  /** Clip the global gradient norm at every step (as fit's clipGradNorm). */
  clipGradNorm?: number;
  /** The rule whose LR is `suggested` (default 'valley', fastai's default since 2.5). */
  suggest?: SuggestionRule;
  /** Called after every iteration. */
  onStep?: (s: { iteration: number; lr: number; loss: number; smoothedLoss: number }) => void;
}

export interface LrFindResult {
  /** The LR of each iteration (the last param group's, as fastai records it). */
  lrs: number[];
  /** The smoothed, debiased loss of each iteration (what the plot and the suggestions use). */
  losses: number[];
  /** Each iteration's batch loss as computed. */
  rawLosses: number[];
  /** Each rule's LR (null when the curve is too short for it: fewer than numIt/10 + 6 points, or 7 for steep). */
  suggestion: Record<SuggestionRule, number | null>;
  /** The LR of `rule`. */
  suggested: number | null;
  rule: SuggestionRule;
  /** Why it ended: all numIt iterations ran, the smoothed loss passed 4 x its minimum, or a loss was NaN/infinite. */
  stopped: 'numIt' | 'diverged' | 'nonFinite';
}

/** The LR of iteration i of numIt (0-based): start * (end / start)^(i / numIt), fastai's SchedExp at pct = i / numIt. */
export function lrAt(startLr: number, endLr: number, i: number, numIt: number): number {
  return startLr * (endLr / startLr) ** (i / numIt);
}

function perGroup(value: number | number[], groups: number, name: string): number[] {
  const values = Array.isArray(value) ? value : Array.from({ length: groups }, () => value);
  if (values.length !== groups) throw new TypeError(`lrFind: ${name} has ${values.length} entries but the optimizer has ${groups} param groups`);
  values.forEach((v, i) => {
    if (typeof v !== 'number' || !(v > 0) || !Number.isFinite(v))
      throw new TypeError(`lrFind: ${name}${Array.isArray(value) ? `[${i}]` : ''} must be a positive finite number, got ${JSON.stringify(v)}`);
  });
  return values;
}

/**
 * Runs the LR range test; see LrFindOptions. The model's weights and buffers,
 * its train/eval mode, and the optimizer's state and param-group options
 * (LRs included) are saved before and restored after, also when a step
 * throws. (torch's random number generator is not restored, as in fastai.)
 */
export async function lrFind(o: LrFindOptions): Promise<LrFindResult> {
  const numIt = o.numIt ?? 100;
  if (!Number.isInteger(numIt) || numIt < 1) throw new TypeError(`lrFind: numIt must be a positive integer, got ${o.numIt}`);
  const smoothing = o.smoothing ?? 0.98;
  if (typeof smoothing !== 'number' || !(smoothing >= 0 && smoothing < 1)) throw new TypeError(`lrFind: smoothing must be in [0, 1), got ${o.smoothing}`);
  const rule = o.suggest ?? 'valley';
  if (!SUGGESTION_RULES.includes(rule))
    throw new TypeError(`lrFind: suggest must be ${SUGGESTION_RULES.map((r) => `'${r}'`).join(', ')}, got ${JSON.stringify(o.suggest)}`);
  if (o.clipGradNorm !== undefined && !(o.clipGradNorm > 0)) throw new TypeError(`lrFind: clipGradNorm must be positive, got ${o.clipGradNorm}`);
  const groups = o.optimizer.paramGroups;
  const starts = perGroup(o.startLr ?? 1e-7, groups.length, 'startLr');
  const ends = perGroup(o.endLr ?? 10, groups.length, 'endLr');
  const lossFn = lossFunction(o.loss, 'lrFind');
  const forward = o.forward ?? forwardInput;
  const device = resolveDevice(o.model, o.device, 'lrFind');
  const stopDiv = o.stopDiv ?? true;
  // fastai's LRFinder runs at least 6 iterations (the suggestions still trim by the numIt asked for)
  const iterations = Math.max(6, numIt);

  const savedModel = cloneModelState(o.model);
  const savedOptimizer = cloneOptimizerState(o.optimizer.stateDict());
  const wasTraining = o.model.training;
  const params = o.model.parameters();
  const lrs: number[] = [];
  const losses: number[] = [];
  const rawLosses: number[] = [];
  let stopped: LrFindResult['stopped'] = 'numIt';
  try {
    o.model.train();
    let average = 0; // the moving average before debiasing (fastai's AvgSmoothLoss starts it at 0)
    let best = Infinity;
    let it = 0;
    for (let epoch = 0; it < iterations && stopped === 'numIt'; epoch++) {
      let batches = 0;
      for await (const raw of o.train.batches(epoch)) {
        batches++;
        const { input, target } = moveBatch(raw, device, 'contiguous');
        groups.forEach((g, k) => (g.lr = lrAt(starts[k], ends[k], it, iterations)));
        let value: number;
        try {
          value = await step(o, forward, lossFn, params, input, target);
        } finally {
          disposeInput(input);
          target.dispose();
        }
        if (!Number.isFinite(value)) {
          // fastai would go on training NaN weights and cut the NaN tail off before suggesting; nothing after this point means anything
          stopped = 'nonFinite';
          break;
        }
        average = smoothing * average + (1 - smoothing) * value;
        const smoothed = average / (1 - smoothing ** (it + 1));
        lrs.push(groups[groups.length - 1].lr);
        rawLosses.push(value);
        losses.push(smoothed);
        o.onStep?.({ iteration: it, lr: lrs[it], loss: value, smoothedLoss: smoothed });
        it++;
        if (smoothed < best) best = smoothed;
        if (stopDiv && smoothed > 4 * best) stopped = 'diverged';
        if (stopped !== 'numIt' || it >= iterations) break;
      }
      if (!batches) throw new Error(`lrFind: the training data yielded no batches${epoch ? ` in pass ${epoch + 1}` : ''}`);
    }
  } finally {
    o.optimizer.zeroGrad();
    o.model.loadStateDict(savedModel);
    o.optimizer.loadStateDict(savedOptimizer);
    for (const t of Object.values(savedModel)) t.dispose();
    disposeOptimizerState(savedOptimizer);
    params.forEach((p) => p.dispose());
    if (wasTraining) o.model.train();
    else o.model.eval();
  }
  const suggestion = suggestLrs(lrs, losses, numIt);
  return { lrs, losses, rawLosses, suggestion, suggested: suggestion[rule], rule, stopped };
}

/** One plain training step (forward, loss, backward, clip, optimizer step); returns the loss, with no update when it is not finite. */
async function step(o: LrFindOptions, forward: ForwardFn, lossFn: LossFn, params: Tensor[], input: ModelInput, target: Tensor): Promise<number> {
  o.optimizer.zeroGrad();
  const logits = await forward(o.model, input);
  const loss = lossFn(logits, target);
  try {
    const value = loss.item() as number;
    if (!Number.isFinite(value)) return value;
    await loss.backwardAsync();
    if (o.clipGradNorm !== undefined) clipGradNorm(params, o.clipGradNorm);
    await o.optimizer.stepAsync();
    return value;
  } finally {
    logits.dispose();
    loss.dispose();
  }
}

function cloneModelState(model: Module): StateDict {
  const sd = model.stateDict();
  const copy = Object.fromEntries(Object.entries(sd).map(([k, t]) => [k, t.clone()]));
  Object.values(sd).forEach((t) => t.dispose());
  return copy;
}

/** The optimizer's state with its tensors copied (stateDict() hands out the live ones, which the steps change in place). */
function cloneOptimizerState(sd: OptimizerStateDict): OptimizerStateDict {
  const state: OptimizerStateDict['state'] = {};
  for (const [i, s] of Object.entries(sd.state))
    state[Number(i)] = Object.fromEntries(
      Object.entries(s).map(([k, v]) => {
        if (!(v instanceof Tensor)) return [k, v];
        const c = v.clone();
        v.dispose();
        return [k, c];
      }),
    );
  return { state, paramGroups: sd.paramGroups };
}

function disposeOptimizerState(sd: OptimizerStateDict): void {
  for (const s of Object.values(sd.state)) for (const v of Object.values(s)) if (v instanceof Tensor) v.dispose();
}

// ---- the suggestion rules, on the curve fastai hands them: the first numIt/10 and the last 5 points left out

/**
 * Every rule's LR for a recorded curve (lrs and smoothed losses) of a test
 * asked to run numIt iterations. As fastai: the first floor(numIt / 10) and
 * the last 5 points are left out (the start is noise, the end divergence),
 * and so is everything from the first NaN on. A rule gets null when too few
 * points remain (valley and minimum need 1, steep 2).
 */
export function suggestLrs(lrs: number[], losses: number[], numIt: number): Record<SuggestionRule, number | null> {
  if (lrs.length !== losses.length) throw new TypeError(`suggestLrs: ${lrs.length} LRs but ${losses.length} losses`);
  let x = lrs.slice(Math.floor(numIt / 10), Math.max(0, lrs.length - 5));
  let y = losses.slice(Math.floor(numIt / 10), Math.max(0, losses.length - 5));
  const nan = y.findIndex((v) => Number.isNaN(v));
  if (nan >= 0) {
    x = x.slice(0, nan);
    y = y.slice(0, nan);
  }
  return {
    valley: y.length ? valley(x, y) : null,
    steep: y.length >= 2 ? steep(x, y) : null,
    minimum: y.length ? minimum(x, y) : null,
  };
}

/**
 * fastai's 'valley' (its default since 2.5): the longest valley of the curve,
 * found as the longest strictly decreasing subsequence of the losses ending
 * at each point; from the valley's end counted back by its length, the LR
 * about half way along (a third plus a sixth of the way in).
 */
export function valley(lrs: number[], losses: number[]): number {
  const n = losses.length;
  const longest = new Array<number>(n).fill(1); // the longest decreasing subsequence that ends at i
  let end = 0;
  let start = 0;
  for (let i = 1; i < n; i++) {
    for (let j = 0; j < i; j++) if (losses[i] < losses[j] && longest[i] < longest[j] + 1) longest[i] = longest[j] + 1;
    if (longest[end] < longest[i]) {
      end = i;
      start = end - longest[end];
    }
  }
  const third = (end - start) / 3;
  // (a valley that starts at the first point has start -1; the index is then at least 0 from 3 points on, and held at 0 below that)
  return lrs[Math.max(0, start + Math.floor(third) + Math.floor(third / 2))];
}

/** fastai's 'steep': the LR where the loss falls fastest against log(LR) (the most negative forward difference). */
export function steep(lrs: number[], losses: number[]): number {
  let at = 0;
  let steepest = Infinity;
  for (let i = 0; i + 1 < losses.length; i++) {
    const slope = (losses[i + 1] - losses[i]) / (Math.log(lrs[i + 1]) - Math.log(lrs[i]));
    if (slope < steepest) {
      steepest = slope;
      at = i;
    }
  }
  return lrs[at];
}

/** fastai's 'minimum': a tenth of the LR at the lowest loss (one order of magnitude before the loss bottoms out). */
export function minimum(lrs: number[], losses: number[]): number {
  let at = 0;
  for (let i = 1; i < losses.length; i++) if (losses[i] < losses[at]) at = i;
  return lrs[at] / 10;
}
