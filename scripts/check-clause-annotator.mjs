// Prints the measured figures of the licence-clause annotator (data.licenceClauses):
//  1. entity-level precision / recall / F1 per clause type and micro, against the
//     hand-checked gold sample in assets/licence-clauses/gold-sample.jsonl (exact
//     spans; also with overlap matching), on the held-out part (documents not read
//     while the rules were written) and on all of it;
//  2. document-level agreement with the choosealicense.com tags of Debian's
//     ruby-licensee (installed, or downloaded into --cache with apt-get download);
//  3. the data set built from this machine's copyright files: spans per type per split.
// Usage: npx tsc -p tsconfig.json && node scripts/check-clause-annotator.mjs [--cache DIR] [--json]
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { data } from '../dist/index.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const { values: args } = parseArgs({ options: { cache: { type: 'string' }, json: { type: 'boolean' } } });
const L = data.licenceClauses;

export function goldScores(gold) {
  const parts = { 'held-out': gold.filter((g) => g.part === 'held-out'), all: gold };
  const out = {};
  for (const [name, docs] of Object.entries(parts)) {
    const predicted = docs.map((d) => L.annotateClauses(d.text));
    out[name] = {
      documents: docs.length,
      exact: L.compareSpans(
        docs.map((d) => d.spans),
        predicted,
      ),
      overlap: L.compareSpans(
        docs.map((d) => d.spans),
        predicted,
        { overlap: true },
      ),
    };
  }
  return out;
}

const gold = readFileSync(join(root, 'assets/licence-clauses/gold-sample.jsonl'), 'utf8')
  .split('\n')
  .filter(Boolean)
  .map((l) => JSON.parse(l));
const scores = goldScores(gold);

const f = (x) => x.toFixed(3);
const report = { gold: scores };
if (!args.json) {
  for (const [name, s] of Object.entries(scores)) {
    console.log(`\nAnnotator vs gold sample (${name}: ${s.documents} documents), entity level`);
    console.log('type               gold  pred  P(exact) R(exact) F1(exact)  P(overlap) R(overlap)');
    for (const t of Object.keys(s.exact.perType)) {
      const e = s.exact.perType[t];
      const o = s.overlap.perType[t];
      console.log(
        `${t.padEnd(18)} ${String(e.gold).padStart(5)} ${String(e.predicted).padStart(5)}  ${f(e.precision)}    ${f(e.recall)}    ${f(e.f1)}     ${f(o.precision)}      ${f(o.recall)}`,
      );
    }
    const m = s.exact.micro;
    const o = s.overlap.micro;
    console.log(
      `${'micro'.padEnd(18)} ${String(m.gold).padStart(5)} ${String(m.predicted).padStart(5)}  ${f(m.precision)}    ${f(m.recall)}    ${f(m.f1)}     ${f(o.precision)}      ${f(o.recall)}`,
    );
  }
}

// choosealicense (ruby-licensee): document level
let folder;
try {
  folder = L.choosealicenseFolder({ cacheDir: args.cache ?? join(tmpdir(), 'finetorch-ruby-licensee') });
} catch (err) {
  console.log(`\nchoosealicense check skipped: ${err.message}`);
}
if (folder) {
  const texts = L.choosealicenseTexts(folder);
  const rows = [];
  for (const m of L.CHOOSEALICENSE_TAGS) {
    let tp = 0;
    let fp = 0;
    let fn = 0;
    let tn = 0;
    const misses = [];
    for (const t of texts) {
      const truth = L.choosealicenseHasTag(t, m.label);
      const found = L.annotateClauses(t.text).some((s) => s.label === m.label);
      if (truth && found) tp++;
      else if (!truth && found) {
        fp++;
        misses.push(`+${t.id}`);
      } else if (truth && !found) {
        fn++;
        misses.push(`-${t.id}`);
      } else tn++;
    }
    rows.push({ label: m.label, tag: m.tag, tp, fp, fn, tn, agreement: (tp + tn) / texts.length, misses });
  }
  report.choosealicense = { folder, texts: texts.length, rows };
  if (!args.json) {
    console.log(`\nDocument-level agreement with choosealicense tags (${texts.length} texts from ${folder})`);
    console.log(
      'clause type      tag                                        tagged found  TP FP FN TN  agreement  disagreements (+ found untagged, - tagged not found)',
    );
    for (const r of rows)
      console.log(
        `${r.label.padEnd(16)} ${r.tag.padEnd(42)} ${String(r.tp + r.fn).padStart(6)} ${String(r.tp + r.fp).padStart(5)} ${String(r.tp).padStart(3)} ${String(r.fp).padStart(2)} ${String(r.fn).padStart(2)} ${String(r.tn).padStart(2)}  ${f(r.agreement)}      ${r.misses.join(' ')}`,
      );
  }
}

// the data set on this machine
const t0 = Date.now();
const ds = L.licenceClauseDataset();
const split = L.clauseSplit(ds.documents, { seed: 0 });
const ms = Date.now() - t0;
report.dataset = { stats: { ...ds.stats, skipped: { missing: ds.stats.skipped.missing, changed: ds.stats.skipped.changed } }, counts: split.counts, ms };
if (!args.json) {
  const s = ds.stats;
  console.log(
    `\nData set: ${s.paragraphs} licence texts -> ${s.documents} documents after near-duplicate removal (${s.nearDuplicatesRemoved} removed), ${s.packages} packages, ${s.words} words; built and split in ${ms} ms`,
  );
  console.log(
    `split (seed 0): train ${split.train.length} docs / ${split.packages.train.length} packages, validation ${split.validation.length} / ${split.packages.validation.length}, test ${split.test.length} / ${split.packages.test.length}; ${split.overlapDropped.length} training docs dropped for containing or being part of a held-out text`,
  );
  console.log('type                train  validation  test');
  for (const [t, c] of Object.entries(split.counts))
    console.log(`${t.padEnd(18)} ${String(c.train).padStart(6)} ${String(c.validation).padStart(11)} ${String(c.test).padStart(5)}`);
} else console.log(JSON.stringify(report, null, 1));
