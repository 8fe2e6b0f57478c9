// `finetorch demo --text`: the seed's third pitfall measured on real text. The
// small BERT pretrained on Debian's package descriptions (general English,
// shipped in assets/, made by scripts/make-text-checkpoint.mjs) is fine-tuned
// to classify the licence paragraphs of this machine's machine-readable
// copyright files by the licence name their maintainers wrote, from a few
// labels per class, three ways:
//   from scratch      the same architecture and vocabulary, random weights
//   general           the shipped checkpoint
//   domain-adapted    the shipped checkpoint after more masked-language
//                     modelling on unlabelled legal text of this machine
//                     (copyright files, common-licenses, licence headers),
//                     with every test and validation paragraph kept out
// at two label budgets, several seeds each, on one fixed test set.
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { packageRoot, loadReport } from '../../native/loader.js';
import { torch } from '../../tensor/index.js';
import { optim } from '../../optim/index.js';
import { models } from '../../models/index.js';
import type { Architecture } from '../../models/architecture.js';
import { LRScheduler } from '../../optim/lr-scheduler.js';
import { fit, evaluate, type EvalResult } from '../../train/trainer.js';
import { TensorLoader } from '../../data/tensor-loader.js';
import { loadTokenizer, type Tokenizer } from '../../data/load-tokenizer.js';
import { licenceCorpus, licenceParagraphs, licenceSplit, type LabelledParagraph, type LicenceSplit } from '../../data/debian.js';
import { encodeTexts } from '../../recipes/build.js';
import { pretrain } from '../../pretrain/run.js';
import { fmt, mean, writeReport, type Table } from './report.js';
import type { Reporter } from '../progress.js';

export const TEXT_CHECKPOINT = join(packageRoot, 'assets', 'bert-tiny-debian');

export interface TextDemoOptions {
  quick: boolean;
  out: string;
  seeds: number;
  /** Labelled paragraphs per class for each budget. */
  budgets: number[];
}

/** The three starting points compared; the rows of the table. */
export const TEXT_STARTS = ['from scratch', 'general (Debian descriptions)', 'domain-adapted (+ legal MLM)'] as const;
type Start = (typeof TEXT_STARTS)[number];

const MAX_LENGTH = 128;
/** Fine-tuning: full, AdamW lr 1e-3 (BERT-tiny sized models want more than BERT-base's 2e-5), 10% warmup then linear decay, about this many steps. */
const FINE_TUNE = { lr: 1e-3, weightDecay: 0.01, batchSize: 8, steps: 200, warmupRatio: 0.1 };

// biome-ignore lint/suspicious/noExplicitAny: the provenance file's parsed JSON
export function verifyTextCheckpoint(dir = TEXT_CHECKPOINT): Record<string, any> {
  const file = join(dir, 'provenance.json');
  if (!existsSync(file)) throw new Error(`demo --text: the pretrained BERT is missing (${file}); run node scripts/make-text-checkpoint.mjs`);
  const provenance = JSON.parse(readFileSync(file, 'utf8'));
  for (const [name, sha] of Object.entries(provenance.files as Record<string, string>)) {
    const got = createHash('sha256')
      .update(readFileSync(join(dir, name)))
      .digest('hex');
    if (got !== sha)
      throw new Error(`demo --text: ${join(dir, name)} does not match its provenance (sha256 ${got.slice(0, 12)}, expected ${sha.slice(0, 12)})`);
  }
  return provenance;
}

function encode(tokenizer: Tokenizer, items: LabelledParagraph[]) {
  const input = encodeTexts(
    tokenizer,
    items.map((p) => p.text),
    MAX_LENGTH,
  );
  return { input, target: torch.tensor(items.map((p) => p.y)) };
}

interface TextRun {
  test: EvalResult;
  seconds: number;
  epochs: number;
}

async function fineTune(
  start: Start,
  dirs: { general: string; adapted: string },
  split: LicenceSplit,
  tokenizer: Tokenizer,
  o: { seed: number; reporter: Reporter; label: string; steps: number },
): Promise<TextRun> {
  const started = Date.now();
  const numClasses = split.classes.length;
  torch.manualSeed(o.seed);
  let model: Architecture;
  if (start === 'from scratch') {
    const config = JSON.parse(readFileSync(join(dirs.general, 'config.json'), 'utf8'));
    model = models.bert(config, { numClasses });
  } else model = models.fromPretrained(start === 'general (Debian descriptions)' ? dirs.general : dirs.adapted, { task: 'sequenceClassification', numClasses });
  const train = encode(tokenizer, split.train);
  const val = encode(tokenizer, split.validation);
  const test = encode(tokenizer, split.test);
  const loader = new TensorLoader(train.input, train.target, { batchSize: FINE_TUNE.batchSize, shuffle: true, seed: o.seed });
  const epochs = Math.max(1, Math.ceil(o.steps / loader.length));
  const optimizer = new optim.AdamW(model.parameters(), { lr: FINE_TUNE.lr, weightDecay: FINE_TUNE.weightDecay });
  const scheduler = new LRScheduler(optimizer, { kind: 'linear', totalSteps: epochs * loader.length, warmupRatio: FINE_TUNE.warmupRatio });
  o.reporter.stage(o.label, { epochs });
  try {
    await fit({
      model,
      optimizer,
      scheduler,
      train: loader,
      val: new TensorLoader(val.input, val.target, { batchSize: 64 }),
      epochs,
      seed: o.seed,
      monitor: 'f1Macro',
      onEvent: (e) => o.reporter.train(e),
    });
    o.reporter.stage(null);
    const result = await evaluate(model, new TensorLoader(test.input, test.target, { batchSize: 64 }));
    return { test: result, seconds: (Date.now() - started) / 1000, epochs };
  } finally {
    for (const t of [train, val, test]) {
      for (const x of Object.values(t.input)) x.dispose();
      t.target.dispose();
    }
    optimizer.dispose();
    model.dispose();
  }
}

/**
 * Continues masked-language modelling of the general checkpoint on this
 * machine's legal text, keeping the held-out paragraphs out, in
 * `<out>/adapted` (run again each time: unlike the clause demo's, it is not reused).
 */
async function adapt(general: string, heldOut: LabelledParagraph[], o: { out: string; quick: boolean; reporter: Reporter }) {
  const dir = join(o.out, 'adapted');
  const corpus = licenceCorpus({ exclude: heldOut });
  mkdirSync(dir, { recursive: true });
  const textFile = join(dir, 'legal-text.txt');
  writeFileSync(textFile, corpus.documents.map((d) => d.text.replace(/\s+/g, ' ')).join('\n') + '\n');
  o.reporter.message(
    `domain adaptation: masked-language modelling on ${corpus.provenance.documents} chunks of legal text (${corpus.provenance.words} words; ${corpus.provenance.excluded.documentsDropped} chunks that hold a test or validation paragraph left out)`,
  );
  o.reporter.stage('MLM on legal text', {});
  const result = await pretrain(
    {
      kind: 'mlm',
      model: { fromPretrained: general },
      // chunks joined and cut into full blocks (no padding, nothing truncated)
      data: { path: textFile, lineByLine: true, pack: true, val: 0.05 },
      maxLength: MAX_LENGTH,
      ...(o.quick ? { steps: 40 } : { epochs: 2 }),
      batchSize: 32,
      lr: 5e-4,
      warmup: 0.06,
      seed: 0,
    },
    { out: join(dir, 'run'), force: true, onEvent: (e) => (e.type === 'step' || e.type === 'epoch' ? o.reporter.train(e) : undefined) },
  );
  o.reporter.stage(null);
  if (result.status !== 'ok' || !result.output) throw new Error('demo --text: the domain-adaptation run stopped');
  return { dir: result.output, corpus: corpus.provenance, metrics: result.metrics, seconds: result.seconds };
}

export async function runTextDemo(o: TextDemoOptions, reporter: Reporter): Promise<{ files: string[]; summary: Record<string, unknown> }> {
  const started = Date.now();
  const provenance = verifyTextCheckpoint();
  const general = TEXT_CHECKPOINT;
  const tokenizer = loadTokenizer(join(general, 'vocab.txt'));
  const paragraphs = licenceParagraphs();
  // the test and validation paragraphs do not depend on the budget or seed
  const splits = new Map<string, LicenceSplit>();
  const splitFor = (budget: number, seed: number) => {
    const key = `${budget}/${seed}`;
    if (!splits.has(key)) splits.set(key, licenceSplit(paragraphs, { perClass: budget, seed }));
    return splits.get(key)!;
  };
  const first = splitFor(o.budgets[0], 0);
  reporter.emit({
    type: 'start',
    command: 'demo',
    task: 'text',
    out: o.out,
    quick: o.quick,
    seeds: o.seeds,
    budgets: o.budgets,
    threads: torch.getNumThreads(),
  });
  reporter.message(
    `finetorch demo --text: licence paragraphs of ${first.classes.length} licences (${first.test.length} test, ${first.validation.length} validation), budgets ${o.budgets.join(' and ')} labels per class, ${o.seeds} seed(s)`,
  );
  reporter.message(
    `pretrained: ${provenance.name}, ${provenance.architecture.num_hidden_layers} layers x ${provenance.architecture.hidden_size}, MLM on ${provenance.data.documentsUsed} Debian package descriptions (held-out masked-token accuracy ${(provenance.heldOut.accuracy * 100).toFixed(1)}%)`,
  );
  const adapted = await adapt(general, [...first.test, ...first.validation], { out: o.out, quick: o.quick, reporter });
  const adaptedAccuracy = adapted.metrics && 'accuracy' in adapted.metrics ? `${(adapted.metrics.accuracy * 100).toFixed(1)}%` : 'not measured';
  reporter.message(`adapted in ${adapted.seconds.toFixed(0)} s: masked-token accuracy on held-out legal text ${adaptedAccuracy}`);

  const runs = new Map<string, TextRun[]>();
  const steps = o.quick ? 60 : FINE_TUNE.steps;
  for (const budget of o.budgets)
    for (let seed = 0; seed < o.seeds; seed++) {
      const split = splitFor(budget, seed);
      for (const start of TEXT_STARTS) {
        const r = await fineTune(start, { general, adapted: adapted.dir }, split, tokenizer, { seed, reporter, label: `${budget}/class ${start}`, steps });
        const key = `${budget}|${start}`;
        (runs.get(key) ?? runs.set(key, []).get(key)!).push(r);
        if (reporter.json)
          reporter.emit({ type: 'result', task: 'licences', budget, run: start, seed, accuracy: r.test.accuracy, f1Macro: r.test.f1Macro, seconds: r.seconds });
        else
          reporter.message(
            `${String(budget).padStart(3)} labels/class, ${start.padEnd(30)} seed ${seed}: accuracy ${(r.test.accuracy * 100).toFixed(1)}%, macro-F1 ${r.test.f1Macro.toFixed(3)} (${r.seconds.toFixed(1)} s)`,
          );
      }
    }

  const table: Table = {
    title: `Licence classification (${first.classes.length} classes, ${first.test.length} test paragraphs): from scratch vs general vs domain-adapted`,
    columns: ['labels per class', 'start', 'training paragraphs', 'accuracy %', 'macro-F1', 'epochs', 'wall time s'],
    rows: o.budgets.flatMap((budget) =>
      TEXT_STARTS.map((start) => {
        const rs = runs.get(`${budget}|${start}`)!;
        return {
          'labels per class': budget,
          start,
          'training paragraphs': splitFor(budget, 0).train.length,
          'accuracy %': fmt(
            rs.map((r) => r.test.accuracy),
            1,
            100,
          ),
          'macro-F1': fmt(
            rs.map((r) => r.test.f1Macro),
            3,
          ),
          epochs: rs[0].epochs,
          'wall time s': fmt(
            rs.map((r) => r.seconds),
            1,
          ),
        };
      }),
    ),
    notes: [
      `every start: full fine-tuning, AdamW lr ${FINE_TUNE.lr} weight decay ${FINE_TUNE.weightDecay}, batch ${FINE_TUNE.batchSize}, about ${steps} steps with ${FINE_TUNE.warmupRatio * 100}% warmup then linear decay, the epoch with the best validation macro-F1 kept; first ${MAX_LENGTH} tokens of each paragraph`,
      `classes: ${first.classes.join(', ')} (licences with fewer than 20 unique paragraphs dropped)`,
    ],
  };
  const verdict = o.budgets.map((budget) => {
    const f1 = (s: Start) => mean(runs.get(`${budget}|${s}`)!.map((r) => r.test.f1Macro));
    return `${budget} labels per class: macro-F1 ${f1('from scratch').toFixed(3)} from scratch, ${f1('general (Debian descriptions)').toFixed(3)} general, ${f1('domain-adapted (+ legal MLM)').toFixed(3)} domain-adapted.`;
  });
  const seconds = (Date.now() - started) / 1000;
  const summary = {
    task: 'text',
    quick: o.quick,
    seeds: o.seeds,
    budgets: o.budgets,
    classes: first.classes,
    testParagraphs: first.test.length,
    threads: torch.getNumThreads(),
    libtorch: loadReport.libtorch.version,
    seconds,
    pretrained: { name: provenance.name, files: provenance.files, heldOut: provenance.heldOut },
    adaptation: { corpus: adapted.corpus, heldOut: adapted.metrics, seconds: adapted.seconds },
    runs: Object.fromEntries(
      [...runs.entries()].map(([k, rs]) => [k, rs.map(({ test, ...r }, seed) => ({ seed, ...r, accuracy: test.accuracy, f1Macro: test.f1Macro }))]),
    ),
    meanF1: Object.fromEntries([...runs.entries()].map(([k, rs]) => [k, mean(rs.map((r) => r.test.f1Macro))])),
  };
  const files = await writeReport(o.out, {
    title: 'finetorch demo --text: domain adaptation before fine-tuning, on licence texts',
    intro: [
      `The small BERT in assets/bert-tiny-debian (pretrained on Debian package descriptions), fine-tuned to name the licence of a licence paragraph from this machine's copyright files.`,
      `${o.seeds} seed(s) per row (mean ± sd; each seed draws its own labelled paragraphs), ${torch.getNumThreads()} threads, libtorch ${loadReport.libtorch.version}, total ${seconds.toFixed(0)} s.`,
      '',
      ...verdict.map((v) => `**${v}**`),
    ],
    tables: [table],
    json: summary,
  });
  reporter.table(table.title, table.rows, { columns: table.columns });
  for (const v of verdict) reporter.message(v);
  reporter.message(`report: ${o.out} (results.md, results.json) in ${seconds.toFixed(0)} s`);
  reporter.emit({ type: 'end', status: 'ok', exitCode: 0, seconds, report: o.out, files, meanF1: summary.meanF1 });
  return { files, summary };
}
