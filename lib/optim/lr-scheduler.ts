// Per-step learning-rate schedules that scale every group's base LR by one
// factor, so differential ratios between groups hold throughout.
import type { Optimizer } from './optimizer.js';

export type ScheduleKind = 'linear' | 'cosine' | 'constant' | 'onecycle';

export interface ScheduleOptions {
  kind: ScheduleKind;
  totalSteps: number;
  /** Linear warmup over this many steps (default 0) ... */
  warmupSteps?: number;
  /** ... or over this fraction of totalSteps (rounded), as a recipe's schedule.warmupRatio. Give one of the two. */
  warmupRatio?: number;
  /** one-cycle only (PyTorch OneCycleLR's names): fraction of steps rising, start and end divisors. */
  pctStart?: number;
  divFactor?: number;
  finalDivFactor?: number;
}

/** The warmup length in steps: warmupSteps, or warmupRatio x totalSteps rounded to the nearest step. */
export function warmupStepsOf(o: ScheduleOptions): number {
  if (o.warmupSteps !== undefined && o.warmupRatio !== undefined) throw new TypeError('LRScheduler: give warmupSteps or warmupRatio, not both');
  if (o.warmupRatio !== undefined) {
    if (typeof o.warmupRatio !== 'number' || !(o.warmupRatio >= 0 && o.warmupRatio <= 1))
      throw new TypeError(`LRScheduler: warmupRatio must be a number in 0..1, got ${o.warmupRatio}`);
    return Math.round(o.warmupRatio * o.totalSteps);
  }
  return o.warmupSteps ?? 0;
}

/** The factor (0..1) applied to the base LRs at `step` (0-based). Hugging Face's and PyTorch's formulas. */
export function scheduleFactor(o: ScheduleOptions, step: number): number {
  const warm = warmupStepsOf(o);
  const total = o.totalSteps;
  switch (o.kind) {
    case 'constant':
      return step < warm ? step / Math.max(1, warm) : 1;
    case 'linear':
      if (step < warm) return step / Math.max(1, warm);
      return Math.max(0, (total - step) / Math.max(1, total - warm));
    case 'cosine': {
      if (step < warm) return step / Math.max(1, warm);
      const progress = (step - warm) / Math.max(1, total - warm);
      return Math.max(0, 0.5 * (1 + Math.cos(Math.PI * progress)));
    }
    case 'onecycle': {
      // OneCycleLR (anneal 'cos', three_phase false): initial = max/div, min = initial/finalDiv
      const div = o.divFactor ?? 25;
      const finalDiv = o.finalDivFactor ?? 1e4;
      const up = (o.pctStart ?? 0.3) * total - 1;
      const end = total - 1;
      const cos = (start: number, stop: number, pct: number) => stop + ((start - stop) / 2) * (Math.cos(Math.PI * pct) + 1);
      if (step <= up) return cos(1 / div, 1, step / up);
      return cos(1, 1 / div / finalDiv, (step - up) / (end - up));
    }
    default:
      throw new TypeError(`unknown schedule kind ${JSON.stringify((o as ScheduleOptions).kind)}`);
  }
}

/** Drives an optimizer's group LRs; call step() after each optimizer step. */
export class LRScheduler {
  readonly baseLrs: number[];
  private stepCount = 0;

  constructor(
    private readonly optimizer: Optimizer,
    readonly options: ScheduleOptions,
  ) {
    if (!Number.isInteger(options.totalSteps) || options.totalSteps < 1)
      throw new TypeError(`LRScheduler: totalSteps must be a positive integer, got ${options.totalSteps}`);
    const warm = warmupStepsOf(options);
    if (!Number.isInteger(warm) || warm < 0 || warm > options.totalSteps)
      throw new TypeError(`LRScheduler: warmupSteps must be an integer in 0..totalSteps (${options.totalSteps}), got ${warm}`);
    // base LRs live on the groups as initialLr (PyTorch's initial_lr) so resumed runs keep them
    this.baseLrs = optimizer.paramGroups.map((g) => {
      if (typeof g.initialLr !== 'number') g.initialLr = g.lr;
      return g.initialLr as number;
    });
    this.apply();
  }

  /** Steps taken so far (saved in checkpoints). */
  get lastStep(): number {
    return this.stepCount;
  }

  step(): void {
    this.stepCount++;
    this.apply();
  }

  /** Continues from a saved position. */
  setStep(step: number): void {
    this.stepCount = step;
    this.apply();
  }

  currentLrs(): number[] {
    return this.optimizer.paramGroups.map((g) => g.lr);
  }

  private apply(): void {
    const f = scheduleFactor(this.options, Math.min(this.stepCount, this.options.totalSteps));
    this.optimizer.paramGroups.forEach((g, i) => {
      g.lr = (this.baseLrs[i] ?? this.baseLrs[0]) * f;
    });
  }
}
