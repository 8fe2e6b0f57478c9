// The dashboard's data: run folders found under the paths it was given, each
// read from its events.jsonl (the TrainEvent lines `finetorch train` writes,
// see cli/progress.ts) and run.json, and tailed as the file grows. Events are
// reduced to plain records the page draws: one point per optimizer step, one
// per epoch (with the validation metrics and confusion matrix), the test
// evaluations, and a summary for the comparison table.
import { type Stats, closeSync, existsSync, fstatSync, openSync, readdirSync, readFileSync, readSync, statSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';

export const EVENTS_FILE = 'events.jsonl';
const RUN_FILE = 'run.json';

/** One optimizer step: the loss of its batch and the learning rate of every param group. */
export interface StepPoint {
  step: number;
  epoch: number;
  batch: number;
  batches: number | null;
  loss: number;
  lrs: number[];
  samplesPerSecond: number;
  /** Milliseconds since the epoch (the event's time). */
  time: number;
}

/** Validation (or test) metrics of an evaluation. */
export interface Metrics {
  loss: number;
  accuracy: number;
  f1Macro: number;
  rocAuc: number | null;
  samples: number;
  /** Taggers: seqeval's micro entity F1. */
  entityF1?: number;
}

/** One finished epoch. `steps`: optimizer steps done by its end (its x on the step scale). */
export interface EpochPoint {
  epoch: number;
  steps: number;
  trainLoss: number;
  seconds: number;
  best: boolean;
  val: Metrics | null;
  confusionMatrix: number[][] | null;
  time: number;
}

/** A test (or other split) evaluation of a checkpoint after training. */
export interface EvalPoint {
  split: string;
  checkpoint: string;
  metrics: Metrics;
  confusionMatrix: number[][] | null;
  time: number;
}

export type RunStatus = 'running' | 'ok' | 'error' | 'diverged' | 'interrupted' | 'stopped';

/** What the run selector and the comparison table show. */
export interface RunInfo {
  id: string;
  name: string;
  dir: string;
  status: RunStatus;
  classes: string[];
  arch: string | null;
  parameters: number | null;
  trainable: number | null;
  epochsPlanned: number | null;
  epochsDone: number;
  steps: number;
  /** Param group names (the recipe's blocks), one per learning rate in a step's `lrs`. */
  groups: string[];
  best: { epoch: number; metric: string; value: number } | null;
  test: Metrics | null;
  startedAt: number | null;
  updatedAt: number | null;
  /** Training time: from the start event to the end event (or the last event while running). */
  seconds: number | null;
  error: string | null;
}

export interface RunData {
  info: RunInfo;
  steps: StepPoint[];
  epochs: EpochPoint[];
  evals: EvalPoint[];
}

/** What changed in a run since the last refresh: new records to append, or (reset) the whole run again. */
export interface RunDelta {
  run: string;
  reset: boolean;
  info: RunInfo;
  steps: StepPoint[];
  epochs: EpochPoint[];
  evals: EvalPoint[];
}

type Json = Record<string, unknown>;

// NaN and Infinity are written as strings (progress.ts's jsonLine)
const num = (v: unknown): number => (typeof v === 'number' ? v : typeof v === 'string' ? Number(v) : NaN);
const numOrNull = (v: unknown): number | null => (v === null || v === undefined ? null : num(v));

function metricsOf(e: Json): Metrics {
  const entities = e.entities as Json | undefined;
  return {
    loss: num(e.loss),
    accuracy: num(e.accuracy),
    f1Macro: num(e.f1Macro),
    rocAuc: numOrNull(e.rocAuc),
    samples: num(e.samples),
    ...(entities && typeof entities === 'object' ? { entityF1: num(entities.f1) } : {}),
  };
}

const matrixOf = (v: unknown): number[][] | null =>
  Array.isArray(v) && v.every((r) => Array.isArray(r) && r.every((x) => typeof x === 'number')) ? (v as number[][]) : null;

/** A run folder being read: its events so far, and where in the file the next line starts. */
export class RunReader {
  readonly id: string;
  readonly dir: string;
  private offset = 0;
  private pending = '';
  private fileId = '';
  /** The file's first bytes: a replaced file (train --force) can get the old one's inode back. */
  private head = Buffer.alloc(0);
  private data!: RunData;
  /** Records added since the last takeDelta(); reset: the run was read again from the start. */
  private fresh = { reset: true, steps: 0, epochs: 0, evals: 0, info: true };

  constructor(dir: string, id: string) {
    this.dir = dir;
    this.id = id;
    this.clear();
  }

  private clear(): void {
    const run = readRunJson(this.dir);
    this.data = {
      info: {
        id: this.id,
        name: basename(this.dir),
        dir: this.dir,
        status: 'running',
        classes: run?.classes ?? [],
        arch: run?.arch ?? null,
        parameters: null,
        trainable: null,
        epochsPlanned: run?.epochs ?? null,
        epochsDone: 0,
        steps: 0,
        groups: [],
        best: null,
        test: null,
        startedAt: null,
        updatedAt: null,
        seconds: null,
        error: null,
      },
      steps: [],
      epochs: [],
      evals: [],
    };
    this.offset = 0;
    this.pending = '';
    this.head = Buffer.alloc(0);
    this.fresh = { reset: true, steps: 0, epochs: 0, evals: 0, info: true };
  }

  get snapshot(): RunData {
    return this.data;
  }

  /** Reads what was appended to events.jsonl since the last call (everything again if the file was replaced or truncated). Returns whether anything changed. */
  refresh(): boolean {
    const file = join(this.dir, EVENTS_FILE);
    let fd: number;
    try {
      fd = openSync(file, 'r');
    } catch {
      return false; // not written yet (a run that is starting), or removed
    }
    try {
      const st = fstatSync(fd);
      const id = `${st.dev}:${st.ino}`;
      if (id !== this.fileId || st.size < this.offset || !this.sameHead(fd)) {
        // a new file (train --force starts over) or a truncated one: read it from the start
        if (this.fileId) this.clear();
        this.fileId = id;
      }
      if (st.size === this.offset) return this.changed();
      const buffer = Buffer.alloc(st.size - this.offset);
      const n = readSync(fd, buffer, 0, buffer.length, this.offset);
      if (this.offset === 0) this.head = Buffer.from(buffer.subarray(0, Math.min(n, 256)));
      this.offset += n;
      const text = this.pending + buffer.subarray(0, n).toString('utf8');
      const lines = text.split('\n');
      this.pending = lines.pop()!; // a line still being written
      for (const line of lines) {
        if (!line.trim()) continue;
        let e: Json;
        try {
          e = JSON.parse(line) as Json;
        } catch {
          continue; // not an event (a line cut short by a killed run)
        }
        if (e && typeof e === 'object' && typeof e.type === 'string') this.apply(e);
      }
    } finally {
      closeSync(fd);
    }
    return this.changed();
  }

  private sameHead(fd: number): boolean {
    if (!this.head.length) return true;
    const now = Buffer.alloc(this.head.length);
    return readSync(fd, now, 0, now.length, 0) === now.length && now.equals(this.head);
  }

  private changed(): boolean {
    const f = this.fresh;
    return f.reset || f.info || f.steps > 0 || f.epochs > 0 || f.evals > 0;
  }

  /** The records added since the last call. */
  takeDelta(): RunDelta {
    const f = this.fresh;
    const d = this.data;
    const delta: RunDelta = {
      run: this.id,
      reset: f.reset,
      info: this.info(),
      steps: f.reset ? d.steps : d.steps.slice(d.steps.length - f.steps),
      epochs: f.reset ? d.epochs : d.epochs.slice(d.epochs.length - f.epochs),
      evals: f.reset ? d.evals : d.evals.slice(d.evals.length - f.evals),
    };
    this.fresh = { reset: false, steps: 0, epochs: 0, evals: 0, info: false };
    return delta;
  }

  info(): RunInfo {
    const i = this.data.info;
    // a run without an end event whose file has not changed for a while was killed (or is stuck)
    if (i.status === 'running' && i.updatedAt !== null && Date.now() - i.updatedAt > 10 * 60_000) {
      try {
        if (Date.now() - statSync(join(this.dir, EVENTS_FILE)).mtimeMs > 10 * 60_000) return { ...i, status: 'stopped' };
      } catch {
        return { ...i, status: 'stopped' };
      }
    }
    return i;
  }

  private apply(e: Json): void {
    const d = this.data;
    const info = d.info;
    const time = Date.parse(String(e.time));
    if (Number.isFinite(time)) {
      info.updatedAt = time;
      if (info.startedAt !== null && info.status === 'running') info.seconds = (time - info.startedAt) / 1000;
    }
    this.fresh.info = true;
    switch (e.type) {
      case 'start': {
        if (e.command !== undefined && e.command !== 'train') break;
        const recipe = (e.recipe ?? {}) as Json;
        const model = (e.model ?? {}) as Json;
        if (Array.isArray(e.classes)) info.classes = e.classes.map(String);
        info.arch = typeof model.arch === 'string' ? model.arch : info.arch;
        info.parameters = numOrNull(model.parameters);
        info.trainable = numOrNull(model.trainable);
        info.epochsPlanned = numOrNull(recipe.epochs) ?? info.epochsPlanned;
        if (Array.isArray(e.groups)) info.groups = e.groups.map((g) => String((g as Json)?.block ?? '?'));
        info.status = 'running';
        // a resumed run appends to the same file: keep the first start time
        if (info.startedAt === null && Number.isFinite(time)) info.startedAt = time;
        break;
      }
      case 'resumed': {
        // steps after the checkpoint are run again: drop what the interrupted run logged past it
        const step = num(e.step);
        const epoch = num(e.epoch);
        const keepSteps = d.steps.filter((s) => s.step < step);
        const keepEpochs = d.epochs.filter((p) => p.epoch < epoch);
        if (keepSteps.length !== d.steps.length || keepEpochs.length !== d.epochs.length) {
          d.steps = keepSteps;
          d.epochs = keepEpochs;
          this.fresh.reset = true;
        }
        info.status = 'running';
        break;
      }
      case 'step': {
        d.steps.push({
          step: num(e.step),
          epoch: num(e.epoch),
          batch: num(e.batch),
          batches: numOrNull(e.batches),
          loss: num(e.loss),
          lrs: Array.isArray(e.lrs) ? e.lrs.map(num) : [],
          samplesPerSecond: num(e.samplesPerSecond),
          time,
        });
        info.steps = d.steps.length;
        this.fresh.steps++;
        break;
      }
      case 'epoch': {
        const val = e.val && typeof e.val === 'object' ? (e.val as Json) : null;
        d.epochs.push({
          epoch: num(e.epoch),
          steps: d.steps.length ? d.steps[d.steps.length - 1].step + 1 : 0,
          trainLoss: num(e.trainLoss),
          seconds: num(e.seconds),
          best: e.best === true,
          val: val ? metricsOf(val) : null,
          confusionMatrix: val ? matrixOf(val.confusionMatrix) : null,
          time,
        });
        info.epochsDone = d.epochs.length;
        this.fresh.epochs++;
        break;
      }
      case 'eval': {
        d.evals.push({
          split: String(e.split),
          checkpoint: String(e.checkpoint ?? ''),
          metrics: metricsOf(e),
          confusionMatrix: matrixOf(e.confusionMatrix),
          time,
        });
        if (e.split === 'test') info.test = metricsOf(e);
        this.fresh.evals++;
        break;
      }
      case 'error':
        info.error = String(e.message ?? '');
        break;
      case 'end': {
        const status = String(e.status);
        info.status = (['ok', 'error', 'diverged', 'interrupted'] as const).find((s) => s === status) ?? 'stopped';
        const best = e.best as Json | null | undefined;
        if (best && typeof best === 'object') info.best = { epoch: num(best.epoch), metric: String(best.metric), value: num(best.value) };
        if (info.startedAt !== null && Number.isFinite(time)) info.seconds = (time - info.startedAt) / 1000;
        break;
      }
    }
  }
}

/** classes, architecture and planned epochs from run.json (for a run whose events.jsonl is not there yet). */
function readRunJson(dir: string): { classes: string[]; arch: string | null; epochs: number | null } | null {
  try {
    const run = JSON.parse(readFileSync(join(dir, RUN_FILE), 'utf8')) as Json;
    const recipe = (run.recipe ?? {}) as Json;
    const model = (recipe.model ?? {}) as Json;
    return {
      classes: Array.isArray(run.classes) ? run.classes.map(String) : [],
      arch: typeof model.arch === 'string' ? model.arch : null,
      epochs: typeof recipe.epochs === 'number' ? recipe.epochs : null,
    };
  } catch {
    return null;
  }
}

const isRunDir = (dir: string) => existsSync(join(dir, EVENTS_FILE)) || existsSync(join(dir, RUN_FILE));

/**
 * The run folders under the given paths: a path that holds events.jsonl or
 * run.json is a run; otherwise its subfolders that do (one level, then two,
 * as `runs/` or `runs/<project>/`). A path that does not exist is an error;
 * a folder with no runs yet is fine (runs appear as they start).
 */
export function findRuns(paths: string[]): string[] {
  const found: string[] = [];
  for (const p of paths) {
    const dir = resolve(p);
    let st: Stats;
    try {
      st = statSync(dir);
    } catch {
      throw new Error(`dashboard: ${p} does not exist`);
    }
    if (!st.isDirectory()) throw new Error(`dashboard: ${p} is not a folder (give run folders, or a folder of run folders)`);
    if (isRunDir(dir)) {
      found.push(dir);
      continue;
    }
    for (const sub of subfolders(dir)) {
      if (isRunDir(sub)) found.push(sub);
      else for (const sub2 of subfolders(sub)) if (isRunDir(sub2)) found.push(sub2);
    }
  }
  return [...new Set(found)];
}

function subfolders(dir: string): string[] {
  try {
    return readdirSync(dir, { withFileTypes: true })
      .filter((d) => d.isDirectory() && !d.name.startsWith('.') && d.name !== 'best' && d.name !== 'last' && d.name !== 'node_modules')
      .map((d) => join(dir, d.name))
      .sort();
  } catch {
    return [];
  }
}

/**
 * All the runs under some paths, found again on each refresh (a run started
 * later appears). Run ids are the folder names, made unique with the parent
 * folder's name where two are the same.
 */
export class RunStore {
  private readers = new Map<string, RunReader>();
  constructor(private readonly paths: string[]) {}

  /** Finds new runs and reads what their files gained; returns the deltas of the runs that changed. */
  refresh(): RunDelta[] {
    let dirs: string[];
    try {
      dirs = findRuns(this.paths);
    } catch {
      dirs = [...this.readers.keys()]; // a path removed while serving: keep what was read
    }
    for (const dir of dirs) if (!this.readers.has(dir)) this.readers.set(dir, new RunReader(dir, this.idFor(dir)));
    const deltas: RunDelta[] = [];
    for (const r of this.readers.values()) if (r.refresh()) deltas.push(r.takeDelta());
    return deltas;
  }

  private idFor(dir: string): string {
    const used = new Set([...this.readers.values()].map((r) => r.id));
    let id = basename(dir);
    if (used.has(id)) id = `${basename(resolve(dir, '..'))}/${id}`;
    for (let k = 2; used.has(id); k++) id = `${basename(dir)}-${k}`;
    return id;
  }

  runs(): RunReader[] {
    return [...this.readers.values()];
  }

  get(id: string): RunReader | undefined {
    return this.runs().find((r) => r.id === id);
  }
}
