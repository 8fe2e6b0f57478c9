// What the CLI shows while it works. On a terminal: a progress bar per epoch
// (loss, learning rate, throughput, ETA), one summary line per epoch, tables
// and messages. Otherwise (or with --json): one JSON object per line, the
// schema in docs/cli.md. Commands other than train (e.g. demo) use the same
// reporter: createReporter(), then stage() before each fit and train() as
// its onEvent.
import { appendFileSync } from 'node:fs';
import type { EvalResult, TrainEvent } from '../train/trainer.js';

export interface OutputStream {
  write(chunk: string): unknown;
  isTTY?: boolean;
  columns?: number;
}

export interface ReporterOptions {
  /** JSON Lines instead of text (default: when the stream is not a terminal). */
  json?: boolean;
  /** Where output goes (default process.stdout). */
  stream?: OutputStream;
  /** Where human-readable errors go (default process.stderr; in JSON mode errors go to both). */
  errorStream?: OutputStream;
  /** Redraw the progress bar in place (default: the stream is a terminal). Without it, text mode prints a line per epoch. */
  live?: boolean;
  /** Also append every event, as JSON Lines, to this file. */
  logFile?: string;
  /** Command name for error lines ('finetorch train: ...'). */
  command?: string;
}

/** A row of a table: column name -> value (numbers are formatted, null shows as '-'). */
export type Row = Record<string, string | number | boolean | null | undefined>;

export interface Reporter {
  readonly json: boolean;
  /** Any event (an object with a `type`): JSON mode writes it as a line (with `time`); text mode shows the kinds it knows. */
  emit(event: { type: string; [k: string]: unknown }): void;
  /** Names what follows (e.g. one strategy of a comparison) and how many epochs it has, for the progress display. */
  stage(label: string | null, options?: { epochs?: number }): void;
  /** fit()'s onEvent: pass every TrainEvent. */
  train(event: TrainEvent): void;
  /** A table: text mode draws it with aligned columns, JSON mode emits {type: 'table', title, columns, rows}. */
  table(title: string, rows: Row[], options?: { columns?: string[] }): void;
  /** A line of information (level 'warn' prints as a warning). */
  message(text: string, level?: 'info' | 'warn'): void;
  /** Metrics of one evaluation as a table (text) or an {type: 'eval'} event (JSON). */
  evaluation(split: string, result: EvalResult, extra?: Record<string, unknown>): void;
  /** Reports an error: JSON mode emits {type: 'error', kind, code, message} and writes the message to errorStream too. */
  error(message: string, kind: string, code: number): void;
  /** Clears the progress bar; call before exiting. */
  close(): void;
}

const time = () => new Date().toISOString();

/** Numbers for people: integers as they are, others to 4 significant digits (scientific when tiny or huge). */
export function formatNumber(v: number): string {
  if (!Number.isFinite(v)) return String(v);
  if (Number.isInteger(v)) return String(v);
  const a = Math.abs(v);
  if (a !== 0 && (a < 1e-3 || a >= 1e6)) return v.toExponential(2);
  return v
    .toPrecision(4)
    .replace(/(\.\d*?)0+$/, '$1')
    .replace(/\.$/, '');
}

const pct = (v: number) => `${(v * 100).toFixed(2)}%`;
const fmtLr = (v: number) => (v === 0 ? '0' : v.toExponential(1).replace('.0e', 'e'));

function lrRange(lrs: number[]): string {
  if (!lrs.length) return '-';
  const lo = Math.min(...lrs);
  const hi = Math.max(...lrs);
  return lo === hi ? fmtLr(hi) : `${fmtLr(lo)}..${fmtLr(hi)}`;
}

function duration(s: number): string {
  if (!Number.isFinite(s) || s < 0) return '?';
  if (s < 60) return `${s.toFixed(s < 10 ? 1 : 0)}s`;
  const m = Math.floor(s / 60);
  return m < 60 ? `${m}m${String(Math.round(s % 60)).padStart(2, '0')}s` : `${Math.floor(m / 60)}h${String(m % 60).padStart(2, '0')}m`;
}

function cell(v: Row[string]): string {
  if (v === null || v === undefined) return '-';
  if (typeof v === 'number') return formatNumber(v);
  return String(v);
}

/** A text table with aligned columns (numbers right-aligned). */
export function renderTable(title: string, rows: Row[], columns?: string[]): string {
  const cols = columns ?? [...new Set(rows.flatMap((r) => Object.keys(r)))];
  const cells = rows.map((r) => cols.map((c) => cell(r[c])));
  const numeric = cols.map((c) => rows.every((r) => r[c] === null || r[c] === undefined || typeof r[c] === 'number'));
  const widths = cols.map((c, i) => Math.max(c.length, ...cells.map((r) => r[i].length)));
  const line = (vals: string[]) =>
    vals
      .map((v, i) => (numeric[i] ? v.padStart(widths[i]) : v.padEnd(widths[i])))
      .join('  ')
      .trimEnd();
  const out = ['', title, line(cols), widths.map((w) => '-'.repeat(w)).join('  '), ...cells.map(line)];
  return out.join('\n') + '\n';
}

function evalSummary(r: EvalResult): string {
  // taggers: the entity scores (seqeval micro P/R/F1, macro F1) and word accuracy
  if (r.entities)
    return `loss ${formatNumber(r.loss)}  entity P ${r.entities.precision.toFixed(4)} R ${r.entities.recall.toFixed(4)} F1 ${r.entities.f1.toFixed(4)} (macro ${r.entities.f1Macro.toFixed(4)})  word acc ${pct(r.accuracy)}`;
  return `loss ${formatNumber(r.loss)}  acc ${pct(r.accuracy)}  F1 ${r.f1Macro.toFixed(4)}${r.rocAuc === null ? '' : `  AUC ${r.rocAuc.toFixed(4)}`}`;
}

/** JSON-safe copy of an event: NaN/Infinity become strings so a wrapper can tell them from null. */
function jsonLine(e: Record<string, unknown>): string {
  return JSON.stringify(e, (_k, v) => (typeof v === 'number' && !Number.isFinite(v) ? String(v) : v));
}

export function createReporter(options: ReporterOptions = {}): Reporter {
  const stream: OutputStream = options.stream ?? process.stdout;
  const errorStream: OutputStream = options.errorStream ?? process.stderr;
  const json = options.json ?? !stream.isTTY;
  const live = !json && (options.live ?? !!stream.isTTY);
  const prefix = options.command ? `finetorch ${options.command}: ` : 'finetorch: ';
  let label: string | null = null;
  let epochs: number | null = null;
  // live bar state
  let barShown = false;
  let lastDraw = 0;
  let epochStart = 0;
  let epochLossSum = 0;
  let epochSteps = 0;
  let rate = 0;

  const log = (e: Record<string, unknown>) => {
    if (options.logFile) appendFileSync(options.logFile, jsonLine(e) + '\n');
  };
  const clearBar = () => {
    if (barShown) {
      stream.write('\r\x1b[K');
      barShown = false;
    }
  };
  const say = (text: string) => {
    clearBar();
    stream.write(text.endsWith('\n') ? text : text + '\n');
  };
  const tag = () => (label ? `[${label}] ` : '');
  const epochTag = (epoch: number) => `epoch ${epoch + 1}${epochs ? `/${epochs}` : ''}`;

  function drawBar(e: Extract<TrainEvent, { type: 'step' }>): void {
    const now = Date.now();
    const done = e.batch + 1;
    const last = e.batches !== null && done >= e.batches;
    if (!last && now - lastDraw < 100) return;
    lastDraw = now;
    const width = Math.max(40, (stream.columns || 100) - 1);
    const mean = epochLossSum / Math.max(1, epochSteps);
    const elapsed = (now - epochStart) / 1000;
    const eta = e.batches !== null && epochSteps > 0 ? (elapsed / epochSteps) * (e.batches - done) : NaN;
    const stats = `loss ${formatNumber(mean)}  lr ${lrRange(e.lrs)}  ${formatNumber(Math.round(rate))} samples/s${Number.isFinite(eta) ? `  eta ${duration(eta)}` : ''}`;
    const head = `${tag()}${epochTag(e.epoch)} `;
    let bar = '';
    if (e.batches !== null) {
      const counter = ` ${done}/${e.batches} `;
      const room = Math.max(10, Math.min(30, width - head.length - counter.length - stats.length - 2));
      const filled = Math.min(room, Math.round((done / Math.max(1, e.batches)) * room));
      bar = '█'.repeat(filled) + '░'.repeat(room - filled) + counter;
    } else bar = `step ${done} `;
    const text = (head + bar + ' ' + stats).slice(0, width);
    stream.write('\r\x1b[K' + text);
    barShown = true;
  }

  const reporter: Reporter = {
    json,
    emit(event) {
      const { type, ...rest } = event;
      const e = { type, time: time(), ...(label && event.stage === undefined ? { stage: label } : {}), ...rest };
      log(e);
      if (json) stream.write(jsonLine(e) + '\n');
      else if (event.type === 'message') say(`${event.level === 'warn' ? 'warning: ' : ''}${String(event.text)}`);
    },
    stage(name, o = {}) {
      label = name;
      epochs = o.epochs ?? null;
      epochSteps = 0;
      if (json && name) reporter.emit({ type: 'stage', stage: name, epochs });
      else if (name) say(`── ${name} ──`);
    },
    train(e) {
      if (json || options.logFile) {
        const { type, ...rest } = e;
        const event = { type, time: time(), ...(label ? { stage: label } : {}), ...rest };
        log(event);
        if (json) stream.write(jsonLine(event) + '\n');
      }
      if (json) return;
      switch (e.type) {
        case 'step':
          if (epochSteps === 0) {
            epochStart = Date.now();
            epochLossSum = 0;
            rate = 0;
          }
          epochLossSum += e.loss;
          epochSteps++;
          rate = rate === 0 ? e.samplesPerSecond : 0.8 * rate + 0.2 * e.samplesPerSecond;
          if (live) drawBar(e);
          break;
        case 'epoch': {
          epochSteps = 0;
          const val = e.val ? `  val ${evalSummary(e.val)}` : '';
          // a detector's epoch has no EvalResult; its val scores are the COCO mAPs
          const det = e.detection ? `  val mAP ${formatNumber(e.detection.map)} mAP@.5 ${formatNumber(e.detection.map50)}` : '';
          say(`${tag()}${epochTag(e.epoch)}  train loss ${formatNumber(e.trainLoss)}${val}${det}  ${duration(e.seconds)}${e.best ? '  *best' : ''}`);
          break;
        }
        case 'early-stop':
          say(`${tag()}early stop after ${epochTag(e.epoch)}: ${e.metric} stopped improving (best ${formatNumber(e.best)})`);
          break;
        case 'resumed':
          say(`${tag()}resumed from ${e.path} at ${epochTag(e.epoch)}, batch ${e.batch} (step ${e.step})`);
          break;
        case 'interrupted':
          say(`${tag()}interrupted in ${epochTag(e.epoch)} after batch ${e.batch} (step ${e.step})${e.path ? `; checkpoint ${e.path}` : ''}`);
          break;
        case 'stopped':
          say(`${tag()}stopped by a callback in ${epochTag(e.epoch)} (step ${e.step}): ${e.reason}`);
          break;
        case 'checkpoint':
          break;
      }
    },
    table(title, rows, o = {}) {
      const columns = o.columns ?? [...new Set(rows.flatMap((r) => Object.keys(r)))];
      if (json || options.logFile) {
        const e = { type: 'table', time: time(), ...(label ? { stage: label } : {}), title, columns, rows };
        log(e);
        if (json) stream.write(jsonLine(e) + '\n');
      }
      if (!json) say(renderTable(title, rows, columns));
    },
    message(text, level = 'info') {
      reporter.emit({ type: 'message', level, text });
    },
    evaluation(split, r, extra = {}) {
      if (json || options.logFile) {
        const e = { type: 'eval', time: time(), split, ...extra, ...r };
        log(e);
        if (json) stream.write(jsonLine(e) + '\n');
      }
      if (json) return;
      if (r.entities) {
        const en = r.entities;
        say(
          renderTable(`${split} (${r.samples} documents)`, [
            { loss: r.loss, entityPrecision: en.precision, entityRecall: en.recall, entityF1: en.f1, entityF1Macro: en.f1Macro, wordAccuracy: r.accuracy },
          ]),
        );
        return;
      }
      say(renderTable(`${split} (${r.samples} samples)`, [{ loss: r.loss, accuracy: r.accuracy, f1Macro: r.f1Macro, rocAuc: r.rocAuc }]));
    },
    error(message, kind, code) {
      if (json || options.logFile) {
        const e = { type: 'error', time: time(), kind, code, message };
        log(e);
        if (json) stream.write(jsonLine(e) + '\n');
      }
      clearBar();
      errorStream.write(prefix + message + '\n');
    },
    close() {
      clearBar();
    },
  };
  return reporter;
}
