// What a training run leaves to look at, fed from fit's events: curves.svg /
// curves.png (loss per step and per epoch, validation metrics per epoch,
// learning rate per step) and, on request, TensorBoard event files.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { EvalResult, TrainEvent } from '../train/trainer.js';
import { chartGridSvg, writeChart, type LineChart } from './charts.js';
import { TensorBoardWriter } from './tensorboard.js';

type EpochRecord = { epoch: number; trainLoss: number; val: EvalResult | null };

/** The validation numbers of an epoch as name -> value (loss, accuracy, f1Macro, rocAuc, entity scores, custom metrics). */
export function validationScalars(val: EvalResult): Record<string, number> {
  const out: Record<string, number> = { loss: val.loss, accuracy: val.accuracy, f1Macro: val.f1Macro };
  if (val.rocAuc !== null && val.rocAuc !== undefined) out.rocAuc = val.rocAuc;
  if (val.entities) {
    out.entityPrecision = val.entities.precision;
    out.entityRecall = val.entities.recall;
    out.entityF1 = val.entities.f1;
    out.entityF1Macro = val.entities.f1Macro;
  }
  for (const [k, v] of Object.entries(val.custom ?? {})) out[k] = v;
  for (const k of Object.keys(out)) if (typeof out[k] !== 'number' || !Number.isFinite(out[k])) delete out[k];
  return out;
}

/**
 * The TensorBoard scalars of one training event: per optimizer step `train/loss` and `train/lr/group<i>`
 * (step = fit's step count, from 0); per epoch `train/epoch_loss` and `val/<name>` (step = the epoch's number
 * counted from 1, as the CLI shows it: the number of epochs done).
 */
export function tensorboardScalars(e: TrainEvent): Array<{ tag: string; value: number; step: number }> {
  if (e.type === 'step')
    return [{ tag: 'train/loss', value: e.loss, step: e.step }, ...e.lrs.map((lr, i) => ({ tag: `train/lr/group${i}`, value: lr, step: e.step }))];
  if (e.type === 'epoch') {
    const epoch = e.epoch + 1;
    const out = [{ tag: 'train/epoch_loss', value: e.trainLoss, step: epoch }];
    if (e.val) for (const [k, v] of Object.entries(validationScalars(e.val))) out.push({ tag: `val/${k}`, value: v, step: epoch });
    return out;
  }
  return [];
}

const METRIC_TITLES: Record<string, string> = {
  accuracy: 'accuracy',
  f1Macro: 'macro F1',
  rocAuc: 'ROC AUC',
  entityF1: 'entity F1',
  entityF1Macro: 'entity macro F1',
};

/**
 * The run's curves as one SVG: loss per step, loss per epoch (train, val), validation metrics per epoch,
 * learning rate per step. Epochs as fit numbers them (from 0); drawn from 1, as the CLI shows them.
 */
export function trainingCurvesSvg(steps: Array<{ step: number; loss: number; lrs: number[] }>, epochs: EpochRecord[], title = ''): string {
  const prefix = title ? `${title}: ` : '';
  const epochLoss: LineChart = {
    title: `${prefix}loss per epoch`,
    xLabel: 'epoch',
    yLabel: 'loss',
    series: [{ name: 'train', points: epochs.map((h) => [h.epoch + 1, h.trainLoss]) }],
  };
  const withVal = epochs.filter((h) => h.val);
  if (withVal.length) epochLoss.series.push({ name: 'validation', points: withVal.map((h) => [h.epoch + 1, h.val!.loss]) });
  const metricNames = [...new Set(withVal.flatMap((h) => Object.keys(validationScalars(h.val!))))].filter((k) => k !== 'loss' && k in METRIC_TITLES);
  const charts: LineChart[] = [
    { title: `${prefix}training loss per step`, xLabel: 'step', yLabel: 'loss', series: [{ name: 'train', points: steps.map((s) => [s.step, s.loss]) }] },
    epochLoss,
    {
      title: 'validation metrics',
      xLabel: 'epoch',
      yLabel: withVal.length ? 'score' : 'score (no validation data)',
      series: metricNames.map((k) => ({
        name: METRIC_TITLES[k],
        points: withVal.map((h) => [h.epoch + 1, validationScalars(h.val!)[k]] as [number, number]).filter((p) => p[1] !== undefined),
      })),
    },
    { title: 'learning rate', xLabel: 'step', yLabel: 'learning rate', series: lrSeries(steps) },
  ];
  return chartGridSvg(charts, { columns: 2 });
}

/** One series per parameter group; one for all of them when every group had the same LR at every step. */
function lrSeries(steps: Array<{ step: number; lrs: number[] }>): LineChart['series'] {
  const groups = Math.max(0, ...steps.map((s) => s.lrs.length));
  if (groups > 1 && steps.every((s) => s.lrs.length === groups && s.lrs.every((lr) => lr === s.lrs[0])))
    return [{ name: `all ${groups} groups`, points: steps.map((s) => [s.step, s.lrs[0]]) }];
  return Array.from({ length: groups }, (_, g) => ({
    name: `group ${g}`,
    points: steps.filter((s) => s.lrs[g] !== undefined).map((s) => [s.step, s.lrs[g]] as [number, number]),
  }));
}

export interface TrainingMonitorOptions {
  /** Write curves.svg / curves.png into the run folder (default true). */
  curves?: boolean;
  /** Redraw the curves after every epoch, not only at close() (default true). */
  curvesEachEpoch?: boolean;
  /** TensorBoard event files: true for <out>/tensorboard, a folder path, or false/undefined for none. */
  tensorboard?: boolean | string;
}

/**
 * Watches fit's events for a run folder: collects the curves and writes TensorBoard scalars as they come.
 * Call onEvent(e) for every TrainEvent and close() at the end (it draws the final curves and closes the
 * event file); close() returns the files written.
 */
export class TrainingMonitor {
  readonly tensorboard: TensorBoardWriter | null;
  private steps: Array<{ step: number; loss: number; lrs: number[] }> = [];
  private epochs: EpochRecord[] = [];
  private drawing: Promise<unknown> = Promise.resolve();
  private drawError: unknown = null;
  private readonly options: TrainingMonitorOptions;

  constructor(
    readonly out: string,
    options: TrainingMonitorOptions = {},
  ) {
    this.options = options;
    const tb = options.tensorboard;
    this.tensorboard = tb ? new TensorBoardWriter(typeof tb === 'string' ? tb : join(out, 'tensorboard')) : null;
  }

  onEvent(e: TrainEvent): void {
    if (e.type === 'resumed') this.stepsBefore(e.step);
    if (e.type === 'step') this.steps.push({ step: e.step, loss: e.loss, lrs: [...e.lrs] });
    if (e.type === 'epoch') {
      // a resumed epoch replaces the record of the same epoch
      this.epochs = this.epochs.filter((h) => h.epoch !== e.epoch);
      this.epochs.push({ epoch: e.epoch, trainLoss: e.trainLoss, val: e.val });
    }
    if (this.tensorboard) {
      for (const s of tensorboardScalars(e)) this.tensorboard.addScalar(s.tag, s.value, s.step);
      if (e.type === 'epoch') this.tensorboard.flush();
    }
    if (e.type === 'epoch' && this.options.curves !== false && this.options.curvesEachEpoch !== false) this.draw();
  }

  /** A resumed run: the steps before `step` from <out>/events.jsonl (the CLI's log of the earlier run), so the curves start at step 0. */
  private stepsBefore(step: number): void {
    const log = join(this.out, 'events.jsonl');
    if (!existsSync(log)) return;
    const earlier: typeof this.steps = [];
    for (const line of readFileSync(log, 'utf8').split('\n')) {
      if (!line.startsWith('{"type":"step"')) continue;
      try {
        const e = JSON.parse(line) as { step: number; loss: number; lrs: number[] };
        if (e.step < step && typeof e.loss === 'number' && Array.isArray(e.lrs)) earlier.push({ step: e.step, loss: e.loss, lrs: e.lrs });
      } catch {
        // a line cut short by a killed run
      }
    }
    // the last record of each step wins (a step may have been logged by several interrupted runs)
    const byStep = new Map(earlier.map((x) => [x.step, x]));
    this.steps = [...[...byStep.values()].sort((a, b) => a.step - b.step), ...this.steps.filter((x) => x.step >= step)];
  }

  /** The epochs of the whole run (fit's history, which includes those before a resume). */
  setHistory(history: EpochRecord[]): void {
    this.epochs = history.map((h) => ({ epoch: h.epoch, trainLoss: h.trainLoss, val: h.val }));
  }

  /** curves.svg as it stands now. */
  curvesSvg(): string {
    return trainingCurvesSvg(this.steps, this.epochs);
  }

  private draw(): Promise<unknown> {
    const svg = this.curvesSvg();
    // one drawing at a time, in order; a failure is reported by close()
    this.drawing = this.drawing.then(() => writeChart(svg, join(this.out, 'curves'))).catch((err) => (this.drawError = err));
    return this.drawing;
  }

  /** Draws the final curves, closes the TensorBoard file; returns the files written. */
  async close(): Promise<string[]> {
    const files: string[] = [];
    if (this.options.curves !== false && (this.steps.length || this.epochs.length)) {
      await this.draw();
      if (this.drawError) throw this.drawError;
      files.push(join(this.out, 'curves.svg'), join(this.out, 'curves.png'));
    }
    if (this.tensorboard) {
      this.tensorboard.close();
      files.push(this.tensorboard.file);
    }
    return files;
  }
}
