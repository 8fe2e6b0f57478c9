// `finetorch eval` and `finetorch predict`: a trained checkpoint (a run
// folder, best/ or last/, or a weights file with --config) on a split of the
// recipe's data, or on new files.
import { readFileSync } from 'node:fs';
import { basename, dirname, extname, join, resolve } from 'node:path';
import type { Architecture } from '../models/architecture.js';
import { torch } from '../tensor/index.js';
import { evaluate, predict } from '../train/trainer.js';
import { tta } from '../train/tta.js';
import type { Recipe } from '../recipes/schema.js';
import { buildData, buildLoss, checkDevice, prepareInputs, type InputSpec, type ModelSpec, type Part } from '../recipes/build.js';
import { loadTrainedModel, requireSequenceClassifier, trainedSpec } from '../recipes/load-run.js';
import { resolveCheckpoint, type ResolvedCheckpoint } from '../recipes/run-record.js';
import { parseArgs, recipeOverrides, usageLines, type FlagSpec, type FlagValues } from './args.js';
import { OUTPUT_FLAGS, RECIPE_FLAGS, fail, reporterFor, usageFailure } from './command.js';
import { DataError, EXIT, UsageError } from './errors.js';
import { loadRecipe } from './recipe-file.js';
import type { Reporter, Row } from './progress.js';
import { scoreAgainstLabels, writeEvaluationReport } from '../reports/evaluation.js';
import { classificationTable, type ClassificationTable } from '../reports/table.js';
import type { Tagger } from '../models/taggers.js';
import { buildTokenData, evaluateTagger, predictSpans, taggerLoss, type TokenInputSpec } from '../recipes/token-classification.js';
import { buildDetectionData, detectorOptions, imageFiles, loadDetector, predictDetections } from '../recipes/detection.js';
import { DETECTOR_ARCH } from '../recipes/schema.js';
import { evaluateDetector } from '../train/detection-fit.js';
import { formatDetectionScores } from '../metrics/detection.js';
import { drawBoxes } from '../data/detection/draw.js';
import { mkdirSync } from 'node:fs';

const COMMON: Record<string, FlagSpec> = {
  checkpoint: { type: 'string', arg: 'path', help: 'a run folder (uses best/, else last/), a checkpoint folder, or a weights file (then --config is needed)' },
  config: { type: 'string', arg: 'recipe', help: "the recipe (default: the run's run.json)" },
};

const EVAL_FLAGS: Record<string, FlagSpec> = {
  ...COMMON,
  split: { type: 'string', arg: 'test|val|train', help: "which part of the recipe's data (default test)" },
  report: { type: 'string', arg: 'dir', help: 'where to write report.md, per-class.csv, confusion.svg/png (default <run>/eval-<split>)' },
  ...RECIPE_FLAGS,
  ...OUTPUT_FLAGS,
};

const PREDICT_FLAGS: Record<string, FlagSpec> = {
  ...COMMON,
  text: { type: 'string', repeat: true, arg: 'text', help: 'a text to classify or tag (text models; repeatable)' },
  top: { type: 'positiveInt', arg: 'k', help: 'also list the k most likely classes (default 1)' },
  'score-thresh': { type: 'string', arg: 'p', help: 'detectors: list and draw boxes scoring at least p, 0-1 (default 0.5)' },
  out: { type: 'string', arg: 'dir', help: 'detectors: where the images with their boxes drawn go, one PNG each (default <run>/predictions)' },
  ...RECIPE_FLAGS,
  ...OUTPUT_FLAGS,
};

export const EVAL_USAGE = `usage: finetorch eval --checkpoint <run|checkpoint|weights> [--config <recipe>] [--split test|val|train] [options]

${usageLines(EVAL_FLAGS)}
`;
export const PREDICT_USAGE = `usage: finetorch predict --checkpoint <run|checkpoint|weights> [--config <recipe>] <image|folder|file.csv|file.jsonl>... [--text "..."]

${usageLines(PREDICT_FLAGS)}
`;

interface Loaded {
  recipe: Recipe;
  ck: ResolvedCheckpoint;
  classes: string[] | null;
  input: InputSpec | null;
  spec: ModelSpec;
}

/** The recipe and the trained model a checkpoint argument stands for. */
function loadTrained(flags: FlagValues): Loaded {
  if (!flags.checkpoint) throw new UsageError('give --checkpoint <run folder, best/ or last/, or weights file>');
  const ck = resolveCheckpoint(flags.checkpoint as string);
  const overrides = recipeOverrides(flags);
  let recipe: Recipe;
  if (flags.config) recipe = loadRecipe({ file: flags.config as string }, overrides);
  else if (ck.run) recipe = loadRecipe({ object: ck.run.recipe as unknown as Record<string, unknown> }, overrides);
  else throw new UsageError(`--checkpoint ${flags.checkpoint}: no run.json next to it; give --config <recipe>`);
  checkDevice(recipe.device);
  // a detector's class count comes from its data when there is no run.json (see evalDetector)
  if (recipe.task === 'detection' || ck.run?.input.kind === 'detection')
    return {
      recipe,
      ck,
      classes: ck.run?.classes ?? null,
      input: ck.run?.input ?? null,
      spec: ck.run?.model ?? { arch: DETECTOR_ARCH, options: { ...detectorOptions(recipe) } },
    };
  const spec = trainedSpec(ck, recipe);
  // eval and predict give one class per input: a masked-LM or token-classification model cannot
  requireSequenceClassifier(spec, ck.run && ck.runDir ? `${join(ck.runDir, 'run.json')}: model.options.task` : `${ck.weights}: finetorch.options.task`);
  return { recipe, ck, classes: ck.run?.classes ?? null, input: ck.run?.input ?? null, spec };
}

const loadWeights = (loaded: Loaded, numClasses: number | null): Architecture =>
  loadTrainedModel(loaded.spec, loaded.ck.weights, { numClasses, device: loaded.recipe.device });

function parse(command: string, argv: string[], spec: Record<string, FlagSpec>, usage: string) {
  try {
    const args = parseArgs(command, argv, spec);
    if (args.flags.help) {
      process.stdout.write(usage);
      return EXIT.ok;
    }
    return args;
  } catch (err) {
    return usageFailure(command, argv, err, usage);
  }
}

export async function evalCommand(argv: string[]): Promise<number> {
  const started = Date.now();
  const args = parse('eval', argv, EVAL_FLAGS, EVAL_USAGE);
  if (typeof args === 'number') return args;
  const reporter = reporterFor('eval', args.flags);
  try {
    if (args.positionals.length) throw new UsageError(`unexpected argument ${JSON.stringify(args.positionals[0])}`);
    const split = (args.flags.split as string | undefined) ?? 'test';
    if (!['train', 'val', 'test'].includes(split)) throw new UsageError(`--split: expected test, val or train, got ${JSON.stringify(split)}`);
    const loaded = loadTrained(args.flags);
    torch.manualSeed(loaded.recipe.seed);
    if (isDetector(loaded)) {
      await evalDetector(reporter, loaded, split as Part);
      reporter.emit({ type: 'end', status: 'ok', exitCode: EXIT.ok, seconds: (Date.now() - started) / 1000 });
      return EXIT.ok;
    }
    if (isTagger(loaded)) {
      await evalTagger(reporter, loaded, split as Part);
      reporter.emit({ type: 'end', status: 'ok', exitCode: EXIT.ok, seconds: (Date.now() - started) / 1000 });
      return EXIT.ok;
    }
    // images prepared as the run recorded them (run.json's input)
    const data = await buildData(loaded.recipe, [split as Part], loaded.input ?? undefined);
    const source = data.parts[split as Part];
    if (!source) throw new DataError(`the recipe's data has no ${split} part (see recipe.data.split)`);
    if (loaded.classes && loaded.classes.join('\n') !== data.classes.join('\n'))
      throw new DataError(`the data's classes (${data.classes.join(', ')}) differ from those the model was trained on (${loaded.classes.join(', ')})`);
    const model = loadWeights(loaded, data.classes.length);
    const loss = buildLoss(loaded.recipe, data.classes.length);
    reporter.emit({
      type: 'start',
      command: 'eval',
      checkpoint: loaded.ck.weights,
      split,
      classes: data.classes,
      samples: data.sizes[split as Part],
      ...(loaded.recipe.tta ? { tta: loaded.recipe.tta } : {}),
    });
    // the recipe's test-time augmentation (tta: {hflip, vflip, crops}) applies here as in train's test evaluation
    const r = await evaluate(model, source, { loss, forward: loaded.recipe.tta ? tta(loaded.recipe.tta) : undefined });
    reporter.evaluation(split, r, { checkpoint: loaded.ck.weights });
    if (!reporter.json) {
      const rows = r.confusionMatrix.map((row, i) => ({
        'true \\ predicted': data.classes[i],
        ...Object.fromEntries(row.map((n, j) => [data.classes[j], n])),
      }));
      reporter.table('confusion matrix', rows);
    }
    // the per-class table and the report folder (report.md, per-class.csv, confusion.svg/png, metrics.json)
    reporter.table(`per class (${split})`, perClassRows(classificationTable(r.confusionMatrix, data.classes)));
    const reportDir = resolve((args.flags.report as string | undefined) ?? defaultReportDir(loaded.ck, split));
    let files: string[] | null = null;
    try {
      files = (await writeEvaluationReport(reportDir, { result: r, classes: data.classes, split, checkpoint: loaded.ck.weights })).files;
      if (!reporter.json) reporter.message(`report: ${reportDir} (report.md, per-class.csv, confusion.png)`);
    } catch (err) {
      // the numbers are printed; a run folder one cannot write to only loses the files (a folder asked for with --report is an error)
      if (args.flags.report) throw err;
      reporter.message(`no report written: ${(err as Error).message} (choose a folder with --report DIR)`, 'warn');
    }
    reporter.emit({ type: 'end', status: 'ok', exitCode: EXIT.ok, seconds: (Date.now() - started) / 1000, ...(files ? { report: reportDir, files } : {}) });
    return EXIT.ok;
  } catch (err) {
    return fail(reporter, err, started);
  }
}

/** eval's report folder: eval-<split> in the run folder (eval-<split>-last for last/), else beside the weights file. */
function defaultReportDir(ck: ResolvedCheckpoint, split: string): string {
  const which = ck.dir && basename(ck.dir) !== 'best' ? `-${basename(ck.dir)}` : '';
  return join(ck.runDir ?? dirname(ck.weights), `eval-${split}${which}`);
}

/** The per-class table as rows for reporter.table (then accuracy, macro and weighted averages). */
function perClassRows(t: ClassificationTable): Row[] {
  const row = (name: string, x: { precision: number; recall: number; f1: number; support: number }) => ({
    class: name,
    precision: x.precision,
    recall: x.recall,
    f1: x.f1,
    support: x.support,
  });
  return [
    ...t.classes.map((c) => row(c.name, c)),
    { class: 'accuracy', precision: null, recall: null, f1: t.accuracy, support: t.total },
    row('macro avg', t.macroAvg),
    row('weighted avg', t.weightedAvg),
  ];
}

export async function predictCommand(argv: string[]): Promise<number> {
  const started = Date.now();
  const args = parse('predict', argv, PREDICT_FLAGS, PREDICT_USAGE);
  if (typeof args === 'number') return args;
  const reporter = reporterFor('predict', args.flags);
  try {
    const texts = (args.flags.text as string[] | undefined) ?? [];
    if (!args.positionals.length && !texts.length) throw new UsageError('give the inputs: image files or folders, a CSV/JSONL file of texts, or --text');
    const loaded = loadTrained(args.flags);
    if (isDetector(loaded)) {
      if (texts.length) throw new UsageError('--text: a detector takes images (files or folders), not texts');
      const n = await predictDetector(reporter, loaded, args.positionals, args.flags);
      reporter.emit({ type: 'end', status: 'ok', exitCode: EXIT.ok, seconds: (Date.now() - started) / 1000, predictions: n });
      return EXIT.ok;
    }
    if (args.flags['score-thresh'] !== undefined || args.flags.out !== undefined)
      throw new UsageError(`--${args.flags.out !== undefined ? 'out' : 'score-thresh'}: only for detectors (task detection)`);
    if (isTagger(loaded)) {
      const n = await predictTagger(reporter, loaded, args.positionals, texts);
      reporter.emit({ type: 'end', status: 'ok', exitCode: EXIT.ok, seconds: (Date.now() - started) / 1000, predictions: n });
      return EXIT.ok;
    }
    let classes = loaded.classes;
    let input = loaded.input;
    if (!classes || !input) {
      // no run.json: the recipe's data says how inputs are prepared and names the classes
      const data = await buildData(loaded.recipe, []);
      classes = data.classes;
      input = data.input;
    }
    const model = loadWeights(loaded, classes.length);
    const top = (args.flags.top as number | undefined) ?? 1;
    const inputs = await prepareInputs(input, { paths: args.positionals, texts, batchSize: loaded.recipe.batchSize, device: loaded.recipe.device });
    reporter.emit({ type: 'start', command: 'predict', checkpoint: loaded.ck.weights, classes, inputs: inputs.names.length });
    const { probabilities, predictions } = await predict(model, inputs.source);
    const rows = predictions.map((p, i) => {
      const probs = probabilities[i];
      const ranked = probs
        .map((v, k) => [k, v] as const)
        .sort((a, b) => b[1] - a[1])
        .slice(0, top);
      const e = {
        type: 'prediction',
        index: i,
        input: inputs.names[i],
        ...(inputs.texts[i] !== null ? { text: inputs.texts[i] } : {}),
        prediction: p,
        class: classes![p],
        probability: probs[p],
        ...(top > 1 ? { top: ranked.map(([k, v]) => ({ class: classes![k], probability: v })) } : {}),
        probabilities: probs,
        label: inputs.labels[i],
      };
      if (reporter.json) reporter.emit(e);
      return {
        // text inputs show their text (shortened), not file:line
        input: inputs.texts[i] !== null ? shorten(inputs.texts[i]!, 60) : inputs.names[i],
        class: classes![p],
        probability: probs[p],
        ...(top > 1 ? { top: ranked.map(([k, v]) => `${classes![k]} ${(v * 100).toFixed(1)}%`).join(', ') } : {}),
        ...(inputs.labels.some((l) => l !== null) ? { label: inputs.labels[i] } : {}),
      };
    });
    if (!reporter.json) reporter.table(`predictions (${rows.length})`, rows);
    // inputs with a label (a CSV/JSONL label column): the accuracy and the per-class table
    const score = scoreAgainstLabels(predictions, inputs.labels, classes);
    if (score) {
      const unknown = Object.entries(score.unknownLabels);
      if (unknown.length)
        reporter.message(
          `${unknown.reduce((n, [, k]) => n + k, 0)} input(s) have a label that names no class (${unknown.map(([l, k]) => `${JSON.stringify(l)} x${k}`).join(', ')}): left out of the accuracy`,
          'warn',
        );
      if (score.table) {
        reporter.message(`accuracy on the ${score.labelled} labelled input(s): ${(score.accuracy * 100).toFixed(2)}% (${score.correct}/${score.labelled})`);
        reporter.table(`per class (${score.labelled} labelled inputs)`, perClassRows(score.table));
      }
    }
    const scored = score ? { labelled: score.labelled, correct: score.correct, accuracy: score.table ? score.accuracy : null } : {};
    reporter.emit({ type: 'end', status: 'ok', exitCode: EXIT.ok, seconds: (Date.now() - started) / 1000, predictions: rows.length, ...scored });
    return EXIT.ok;
  } catch (err) {
    return fail(reporter, err, started);
  }
}

/** One line of at most `n` characters (whitespace runs as one space, an ellipsis where cut). */
function shorten(text: string, n: number): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length > n ? `${flat.slice(0, n - 1)}…` : flat;
}

// ---- taggers (token classification)

function isTagger(loaded: Loaded): boolean {
  return loaded.input?.kind === 'tokens' || loaded.recipe.task === 'tokenClassification';
}

/** The tagger of a run and how its inputs are prepared (run.json's input: tags, scheme, tokenizer or vocabulary). */
function loadTagger(loaded: Loaded): { model: Tagger; input: TokenInputSpec } {
  const input = loaded.input;
  if (input?.kind !== 'tokens')
    throw new UsageError(`--checkpoint ${loaded.ck.weights}: a tagger needs its run folder (run.json holds its tags and its tokenizer or vocabulary)`);
  const model = loadWeights(loaded, input.tags.length) as unknown as Tagger;
  return { model, input };
}

/** `finetorch eval` of a tagger: whole documents of the split, seqeval's entity report (per type, micro / macro / weighted). */
async function evalTagger(reporter: Reporter, loaded: Loaded, split: Part): Promise<void> {
  const { model, input } = loadTagger(loaded);
  const data = await buildTokenData(loaded.recipe, [split], input);
  const docs = data.documents[split];
  if (!docs?.length) throw new DataError(`the recipe's data has no ${split} part (see recipe.data.split, valPath, testPath)`);
  reporter.emit({ type: 'start', command: 'eval', checkpoint: loaded.ck.weights, split, classes: input.tags, samples: docs.length });
  const r = await evaluateTagger(model, input, docs, {
    loss: taggerLoss(loaded.recipe, model, input.tags.length),
    batchSize: loaded.recipe.batchSize,
    device: loaded.recipe.device,
    tokenizer: data.tokenizer as never,
  });
  const { text: _text, ...report } = r.report;
  reporter.evaluation(split, { ...r, report } as never, { checkpoint: loaded.ck.weights, documents: r.documents, words: r.words });
  if (!reporter.json) {
    const row = (name: string, x: { precision: number; recall: number; f1: number; support: number }) => ({
      type: name,
      precision: x.precision,
      recall: x.recall,
      f1: x.f1,
      support: x.support,
    });
    reporter.table(`entities (${split}, seqeval)`, [
      ...Object.entries(r.report.types).map(([t, x]) => row(t, x)),
      row('micro avg', r.report.microAvg),
      row('macro avg', r.report.macroAvg),
      row('weighted avg', r.report.weightedAvg),
    ]);
  }
}

/** The texts of predict's inputs: a JSONL file's text field per line, any other file's non-empty lines, then --text. */
function readTexts(paths: string[], literal: string[], textField: string): Array<{ name: string; text: string }> {
  const out: Array<{ name: string; text: string }> = [];
  for (const p of paths) {
    let content: string;
    try {
      content = readFileSync(p, 'utf8');
    } catch (err) {
      throw new DataError(`${p}: cannot read: ${(err as Error).message}`, { path: p });
    }
    const jsonl = ['.jsonl', '.ndjson'].includes(extname(p).toLowerCase());
    content.split('\n').forEach((raw, i) => {
      const line = raw.replace(/\r$/, '');
      if (line.trim() === '') return;
      const where = `${p}:${i + 1}`;
      if (!jsonl) return void out.push({ name: where, text: line });
      let row: unknown;
      try {
        row = JSON.parse(line);
      } catch (err) {
        throw new DataError(`${where}: not valid JSON: ${(err as Error).message}`, { path: p, row: i + 1 });
      }
      const text = row && typeof row === 'object' ? (row as Record<string, unknown>)[textField] : undefined;
      if (typeof text !== 'string')
        throw new DataError(`${where}: no text in "${textField}" (a JSON object with a string field "${textField}" per line)`, { path: p, row: i + 1 });
      out.push({ name: where, text });
    });
  }
  literal.forEach((text, i) => out.push({ name: `text ${i + 1}`, text }));
  return out;
}

/** `finetorch predict` with a tagger: the spans found in each text (type, character offsets, the text they cover). */
async function predictTagger(reporter: Reporter, loaded: Loaded, paths: string[], literal: string[]): Promise<number> {
  const { model, input } = loadTagger(loaded);
  const inputs = readTexts(paths, literal, input.textField);
  if (!inputs.length) throw new DataError('nothing to predict: the inputs hold no text');
  reporter.emit({ type: 'start', command: 'predict', checkpoint: loaded.ck.weights, classes: input.tags, inputs: inputs.length });
  const results = await predictSpans(
    model,
    input,
    inputs.map((x) => x.text),
    { batchSize: loaded.recipe.batchSize, device: loaded.recipe.device },
  );
  const rows: Array<Record<string, unknown>> = [];
  results.forEach((r, i) => {
    if (reporter.json) reporter.emit({ type: 'prediction', index: i, input: inputs[i].name, text: inputs[i].text, spans: r.spans });
    for (const s of r.spans) rows.push({ input: inputs[i].name, type: s.label, start: s.start, end: s.end, text: s.text });
  });
  if (!reporter.json) reporter.table(`spans (${rows.length} in ${inputs.length} text${inputs.length === 1 ? '' : 's'})`, rows as never);
  return inputs.length;
}

// ---- detectors (task detection)

function isDetector(loaded: Loaded): boolean {
  return loaded.input?.kind === 'detection' || loaded.recipe.task === 'detection';
}

/** The detector of `loaded` for `classes` (background first): run.json's spec, else the recipe's options with the data's class count. */
function loadTrainedDetector(loaded: Loaded, classes: string[]) {
  const spec = { ...loaded.spec, options: { numClasses: classes.length, ...loaded.spec.options } };
  return loadDetector(spec, loaded.ck.weights);
}

/** `finetorch eval` of a detector: COCO's twelve numbers (mAP@[.5:.95], @.5, @.75, per size, AR) and AP per class. */
async function evalDetector(reporter: Reporter, loaded: Loaded, split: Part): Promise<void> {
  const data = await buildDetectionData(loaded.recipe, [split], loaded.classes ? { classes: loaded.classes } : undefined);
  const source = data.parts[split];
  if (!source) throw new DataError(`the recipe's data has no ${split} part (see recipe.data.split, valAnnotations/testAnnotations, valImageSet/testImageSet)`);
  const model = loadTrainedDetector(loaded, data.classes);
  reporter.emit({ type: 'start', command: 'eval', checkpoint: loaded.ck.weights, split, classes: data.classes, samples: data.sizes[split] });
  const scores = await evaluateDetector(model, source);
  model.dispose();
  if (reporter.json) reporter.emit({ type: 'eval', split, checkpoint: loaded.ck.weights, samples: data.sizes[split], detection: scores });
  else reporter.message(`COCO mAP (${split}, ${data.sizes[split]} images):\n${formatDetectionScores(scores)}`);
  reporter.table(
    `per class (${split})`,
    scores.perClass.map((c) => ({
      class: data.classes[c.label] ?? String(c.label),
      boxes: c.groundTruths,
      ap: c.ap,
      ap50: c.ap50,
      ap75: c.ap75,
      ar100: c.ar100,
    })),
  );
}

/** `finetorch predict` with a detector: the boxes found in each image (class, score, corners), and each image with them drawn as PNG. */
async function predictDetector(reporter: Reporter, loaded: Loaded, paths: string[], flags: FlagValues): Promise<number> {
  const raw = flags['score-thresh'] as string | undefined;
  const scoreThresh = raw === undefined ? 0.5 : Number(raw);
  if (raw !== undefined && (raw.trim() === '' || !(scoreThresh >= 0 && scoreThresh <= 1)))
    throw new UsageError(`--score-thresh: expected a number from 0 to 1, got ${JSON.stringify(raw)}`);
  let classes = loaded.classes;
  if (!classes) classes = (await buildDetectionData(loaded.recipe, [])).classes; // no run.json: the recipe's data names them
  const files = imageFiles(paths);
  const outDir = resolve((flags.out as string | undefined) ?? join(loaded.ck.runDir ?? dirname(loaded.ck.weights), 'predictions'));
  mkdirSync(outDir, { recursive: true });
  const model = loadTrainedDetector(loaded, classes);
  reporter.emit({ type: 'start', command: 'predict', checkpoint: loaded.ck.weights, classes, inputs: files.length, scoreThresh, out: outDir });
  const results = await predictDetections(model, classes, files, { scoreThresh, batchSize: loaded.recipe.batchSize });
  model.dispose();
  const rows: Row[] = [];
  const used = new Set<string>();
  for (const [i, r] of results.entries()) {
    // one PNG per input, named after it (a number added where two inputs share a name)
    const stem = basename(r.input, extname(r.input));
    let name = `${stem}.png`;
    for (let k = 2; used.has(name); k++) name = `${stem}-${k}.png`;
    used.add(name);
    const image = join(outDir, name);
    await drawBoxes(
      r.input,
      r.boxes.map((b) => ({ box: b.box, text: `${b.class} ${b.score.toFixed(2)}`, colorIndex: b.label - 1 })),
      { out: image },
    );
    if (reporter.json) reporter.emit({ type: 'prediction', index: i, input: r.input, width: r.width, height: r.height, image, boxes: r.boxes });
    for (const b of r.boxes) rows.push({ input: basename(r.input), class: b.class, score: b.score, x1: b.box[0], y1: b.box[1], x2: b.box[2], y2: b.box[3] });
  }
  if (!reporter.json) {
    reporter.table(`boxes (${rows.length} in ${results.length} image${results.length === 1 ? '' : 's'}, score >= ${scoreThresh})`, rows);
    reporter.message(`images with their boxes drawn: ${outDir}`);
  }
  return results.length;
}
