// Real text found on (or one apt fetch away from) every Debian machine, for
// pretraining and domain adaptation:
// - general-domain English: the long descriptions of Debian's packages, from
//   the package index's English translation files, fetched by apt into a
//   private lists folder (the system's lists, cache and lock are not touched,
//   and no root is needed);
// - legal text: the licence paragraphs of machine-readable (DEP-5) copyright
//   files under /usr/share/doc, labelled by the licence name their maintainers
//   wrote, and an unlabelled in-domain corpus for masked-language-model
//   adaptation that can leave out the paragraphs held out for testing.
// What is installed decides the licence data, so counts differ between machines.
import { createHash } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, readSync, readdirSync, realpathSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { ArgumentError, DataError } from '../errors.js';
import { writeAll, writeAtomic } from '../io/atomic.js';
import { split as stratifiedSplit } from './split.js';
import { permutation } from './tensor-loader.js';

// ---------------------------------------------------------------------------
// Package descriptions

export interface DescriptionDocument {
  /** The first package (by name) carrying this long description. */
  package: string;
  /** The one-line short description of that package. */
  short: string;
  /** The long description: its paragraphs (the ' .' breaks) joined by '\n', lines within a paragraph by ' '. */
  text: string;
}

export interface TranslationFile {
  name: string;
  bytes: number;
  sha256: string;
}

export interface DescriptionProvenance {
  source: string;
  command: string;
  files: TranslationFile[];
  /** Package paragraphs read (a package listed in two files counts twice). */
  paragraphs: number;
  /** Paragraphs with a non-empty long description. */
  withLongDescription: number;
  documents: number;
  words: number;
  train: { documents: number; words: number };
  heldOut: { documents: number; words: number; fraction: number; rule: string };
  fetchedAt: string;
}

export interface DescriptionCorpus {
  train: DescriptionDocument[];
  heldOut: DescriptionDocument[];
  provenance: DescriptionProvenance;
}

export interface DescriptionOptions {
  /** Folder for apt's private lists and the parsed corpus (debian-descriptions.json). */
  cacheDir: string;
  /** Fetch and parse again even when the cached corpus exists. */
  refresh?: boolean;
  /** Share of documents held out (default 0.02). */
  heldOutFraction?: number;
  /** Extra apt-get options, e.g. ['-o', 'Acquire::http::Proxy=http://proxy:3128']. */
  aptArgs?: string[];
}

const CACHE_FILE = 'debian-descriptions.json';
const CACHE_VERSION = 2;
const APT_HELPER = '/usr/lib/apt/apt-helper';

function countWords(text: string): number {
  let n = 0;
  for (const w of text.split(/\s+/)) if (w) n++;
  return n;
}

/** Parses the text of a Translation-en file into (package, short, long) records, in file order. */
export function parseTranslation(text: string, name = 'Translation-en'): Array<{ package: string; short: string; text: string }> {
  const out: Array<{ package: string; short: string; text: string }> = [];
  const lines = text.split('\n');
  let pkg: string | undefined;
  let short: string | undefined;
  let paragraphs: string[][] = [];
  let inDescription = false;
  let startLine = 0;
  const flush = () => {
    if (pkg === undefined && short === undefined) return;
    if (pkg === undefined)
      throw new DataError(`${name}: paragraph at line ${startLine} has Description-en but no Package field`, { path: name, row: startLine });
    if (short === undefined) throw new DataError(`${name}: package ${pkg} (line ${startLine}) has no Description-en field`, { path: name, row: startLine });
    const long = paragraphs
      .map((p) => p.join(' '))
      .filter((p) => p)
      .join('\n');
    out.push({ package: pkg, short, text: long });
    pkg = short = undefined;
    paragraphs = [];
  };
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    if (line.trim() === '') {
      flush();
      inDescription = false;
      continue;
    }
    if (pkg === undefined && short === undefined) startLine = i + 1;
    if (line[0] === ' ' || line[0] === '\t') {
      if (!inDescription) continue; // continuation of a field we do not read
      const body = line.trim();
      if (body === '.') paragraphs.push([]);
      else {
        if (paragraphs.length === 0) paragraphs.push([]);
        paragraphs[paragraphs.length - 1].push(body);
      }
      continue;
    }
    const colon = line.indexOf(':');
    if (colon <= 0)
      throw new DataError(`${name}: line ${i + 1} is neither a field nor a continuation: ${JSON.stringify(line.slice(0, 80))}`, { path: name, row: i + 1 });
    const field = line.slice(0, colon);
    const value = line.slice(colon + 1).trim();
    inDescription = field === 'Description-en';
    if (field === 'Package') pkg = value;
    else if (inDescription) short = value;
  }
  flush();
  return out;
}

// Documents whose first paragraph is the same go to the same side: binaries
// built from one source (and sister sources) repeat a shared first paragraph
// and differ in one sentence, so a per-package hash would put near-copies of
// held-out documents into training.
function isHeldOut(doc: DescriptionDocument, fraction: number): boolean {
  const first = doc.text.split('\n', 1)[0];
  const h = createHash('sha256').update(first).digest();
  return h.readUInt32BE(0) / 2 ** 32 < fraction;
}

function sha256File(path: string): string {
  return createHash('sha256').update(readFileSync(path)).digest('hex');
}

function fetchTranslations(listsDir: string, cacheDir: string, aptArgs: string[]): { files: string[]; command: string } {
  for (const d of [join(listsDir, 'partial'), join(cacheDir, 'apt-cache', 'archives', 'partial')]) mkdirSync(d, { recursive: true });
  const args = [
    'update',
    '-o',
    'Acquire::Languages=en',
    '-o',
    `Dir::State::Lists=${listsDir}`,
    '-o',
    `Dir::Cache=${join(cacheDir, 'apt-cache')}`,
    // no binary cache files, no lock on the system's lists, no Packages indexes (only the translations are read)
    '-o',
    'Dir::Cache::pkgcache=',
    '-o',
    'Dir::Cache::srcpkgcache=',
    '-o',
    'Debug::NoLocking=1',
    '-o',
    'Acquire::IndexTargets::deb::Packages::DefaultEnabled=false',
    ...aptArgs,
  ];
  const command = `apt-get ${args.join(' ')}`;
  const run = spawnSync('apt-get', args, { encoding: 'utf8', timeout: 300_000 });
  if (run.error) {
    const why = (run.error as NodeJS.ErrnoException).code === 'ENOENT' ? 'apt-get is not installed (this needs a Debian-based system)' : run.error.message;
    throw new DataError(`debianDescriptions: could not run apt-get: ${why}`);
  }
  const output = `${run.stdout}\n${run.stderr}`;
  const files = readdirSync(listsDir)
    .filter((f) => f.endsWith('_i18n_Translation-en.lz4') || f.endsWith('_i18n_Translation-en'))
    .sort();
  // apt-get update exits 0 after failed downloads, with 'W: Failed to fetch' / 'Err:' lines
  const failed = /^(Err:|W: Failed to fetch|E: )/m.test(output);
  if (run.status !== 0 || files.length === 0 || failed) {
    const tail = output
      .split('\n')
      .filter((l) => /^(Err|W:|E:|\s)/.test(l) && l.trim())
      .slice(-6)
      .join('\n');
    const why = files.length === 0 ? 'fetched no Translation-en file' : `exited ${run.status} or reported failed downloads`;
    throw new DataError(
      `debianDescriptions: apt-get update ${why}: the package index could not be downloaded (no network, or no reachable Debian mirror in /etc/apt/sources.list*; a failing extra source can be left out with aptArgs ['-o', 'Dir::Etc::SourceParts=<a folder with only the Debian .sources>'])\n  command: ${command}\n${tail}`,
    );
  }
  return { files: files.map((f) => join(listsDir, f)), command };
}

function readTranslation(path: string): string {
  const run = spawnSync(APT_HELPER, ['cat-file', path], { encoding: 'utf8', maxBuffer: 1 << 30 });
  if (run.error || run.status !== 0)
    throw new DataError(`debianDescriptions: ${APT_HELPER} cat-file could not read ${path}: ${run.error?.message ?? run.stderr.trim()}`, { path });
  return run.stdout;
}

function buildCorpus(cacheDir: string, aptArgs: string[]): { documents: DescriptionDocument[]; provenance: Omit<DescriptionProvenance, 'train' | 'heldOut'> } {
  const listsDir = join(cacheDir, 'apt-lists');
  const { files, command } = fetchTranslations(listsDir, cacheDir, aptArgs);
  const byText = new Map<string, DescriptionDocument>();
  let paragraphs = 0;
  let withLong = 0;
  for (const file of files) {
    for (const rec of parseTranslation(readTranslation(file), file)) {
      paragraphs++;
      if (!rec.text) continue;
      withLong++;
      const seen = byText.get(rec.text);
      // keep the smallest package name, whatever the file order
      if (!seen || rec.package < seen.package) byText.set(rec.text, rec);
    }
  }
  const documents = [...byText.values()].sort((a, b) => (a.package < b.package ? -1 : a.package > b.package ? 1 : a.text < b.text ? -1 : 1));
  let words = 0;
  for (const d of documents) words += countWords(d.text);
  return {
    documents,
    provenance: {
      source: "Debian package index, English descriptions (Translation-en) of the system's apt sources",
      command,
      files: files.map((f) => ({ name: f.slice(listsDir.length + 1), bytes: statSync(f).size, sha256: sha256File(f) })),
      paragraphs,
      withLongDescription: withLong,
      documents: documents.length,
      words,
      fetchedAt: new Date().toISOString(),
    },
  };
}

/**
 * General-domain English: the unique long descriptions of Debian's packages.
 * The first call fetches the English translation files with
 * `apt-get update -o Acquire::Languages=en` into `cacheDir/apt-lists` (no root,
 * the system's lists untouched; about 6.6 MB, seconds) and caches the parsed
 * corpus in `cacheDir/debian-descriptions.json`; later calls read that file.
 * Documents are sorted by package name; the held-out part (2% by default) is
 * chosen by a hash of each description's first paragraph, so it is fixed and
 * near-copies stay on one side.
 */
export function debianDescriptions(options: DescriptionOptions): DescriptionCorpus {
  const fn = 'debianDescriptions';
  if (!options || typeof options.cacheDir !== 'string' || !options.cacheDir) throw new ArgumentError(fn, 'options.cacheDir must be a folder path', 'cacheDir');
  const fraction = options.heldOutFraction ?? 0.02;
  if (!(fraction >= 0 && fraction < 1)) throw new ArgumentError(fn, `heldOutFraction must be in [0, 1), got ${options.heldOutFraction}`, 'heldOutFraction');
  const aptArgs = options.aptArgs ?? [];
  if (!Array.isArray(aptArgs) || aptArgs.some((a) => typeof a !== 'string')) throw new ArgumentError(fn, 'aptArgs must be an array of strings', 'aptArgs');
  mkdirSync(options.cacheDir, { recursive: true });
  const cachePath = join(options.cacheDir, CACHE_FILE);
  let cached: { version: number; documents: DescriptionDocument[]; words: number[]; provenance: Omit<DescriptionProvenance, 'train' | 'heldOut'> } | undefined;
  if (!options.refresh && existsSync(cachePath)) {
    try {
      const parsed = JSON.parse(readFileSync(cachePath, 'utf8'));
      if (parsed?.version === CACHE_VERSION && Array.isArray(parsed.documents) && parsed.words?.length === parsed.documents.length) cached = parsed;
    } catch {
      cached = undefined; // unreadable cache: build it again
    }
  }
  if (!cached) {
    const built = buildCorpus(options.cacheDir, aptArgs);
    // word counts stored beside the documents, so a cached call need not count 3M words again
    cached = { version: CACHE_VERSION, ...built, words: built.documents.map((d) => countWords(d.text)) };
    const body = Buffer.from(JSON.stringify(cached));
    writeAtomic(cachePath, (fd) => writeAll(fd, body));
  }
  const train: DescriptionDocument[] = [];
  const heldOut: DescriptionDocument[] = [];
  let trainWords = 0;
  let heldOutWords = 0;
  cached.documents.forEach((d, i) => {
    if (isHeldOut(d, fraction)) {
      heldOut.push(d);
      heldOutWords += cached.words[i];
    } else {
      train.push(d);
      trainWords += cached.words[i];
    }
  });
  return {
    train,
    heldOut,
    provenance: {
      ...cached.provenance,
      train: { documents: train.length, words: trainWords },
      heldOut: {
        documents: heldOut.length,
        words: heldOutWords,
        fraction,
        rule: "sha256 of the description's first paragraph, first 4 bytes / 2^32 < fraction",
      },
    },
  };
}

// ---------------------------------------------------------------------------
// Licence paragraphs (DEP-5 copyright files)

const DOC_DIR = '/usr/share/doc';

/**
 * The spellings merged by normaliseLicenceName, beyond case and whitespace:
 * only names that mean the same licence by any reading. 'MIT' and 'Expat',
 * 'BSD' and 'BSD-3-clause', 'GPL' and 'GPL-2' are NOT merged (they can name
 * different texts).
 */
export const LICENCE_NAME_MERGES: ReadonlyArray<{ rule: string; pattern: RegExp; replace: string }> = [
  {
    rule: 'GPL-2.0-or-later == GPL-2+ (SPDX spelling; also LGPL, AGPL)',
    pattern: /^(a|l)?gpl-(\d(?:\.\d)?)-or-later$/,
    replace: '$1gpl-$2+',
  },
  { rule: 'GPL-2.0-only == GPL-2 (SPDX spelling; also LGPL, AGPL)', pattern: /^(a|l)?gpl-(\d(?:\.\d)?)-only$/, replace: '$1gpl-$2' },
  { rule: 'GPL-2.0 == GPL-2, GPL2 == GPL-2 (also LGPL, AGPL; SPDX writes the .0)', pattern: /^(a|l)?gpl-?(\d)(?:\.0)?(\+?)$/, replace: '$1gpl-$2$3' },
  { rule: 'BSD-3 == BSD-3-clause (also 2, 4)', pattern: /^bsd-([234])$/, replace: 'bsd-$1-clause' },
  { rule: 'Apache-2 == Apache-2.0', pattern: /^apache-2$/, replace: 'apache-2.0' },
  { rule: 'MPL-2 == MPL-2.0', pattern: /^mpl-2$/, replace: 'mpl-2.0' },
  { rule: 'CC0 == CC0-1.0 (the only version)', pattern: /^cc0$/, replace: 'cc0-1.0' },
  { rule: 'PD == public-domain', pattern: /^(pd|publicdomain)$/, replace: 'public-domain' },
];

/**
 * A licence name as maintainers write it, normalised: lower case, single
 * spaces, 'public domain' as 'public-domain', and the spellings in
 * LICENCE_NAME_MERGES merged word by word (so 'GPL-2.0+ with Texinfo
 * exception' becomes 'gpl-2+ with texinfo exception').
 */
export function normaliseLicenceName(name: string): string {
  if (typeof name !== 'string') throw new ArgumentError('normaliseLicenceName', `name must be a string, got ${typeof name}`, 'name');
  const words = name
    .toLowerCase()
    .replace(/public\s+domain/g, 'public-domain')
    .split(/\s+/)
    .filter(Boolean);
  // the rules in order, each on the previous one's result ('LGPL-2.0-or-later' -> 'lgpl-2.0+' -> 'lgpl-2+')
  const merged = words.map((w) => LICENCE_NAME_MERGES.reduce((acc, m) => acc.replace(m.pattern, m.replace), w));
  return merged.join(' ');
}

/**
 * The key under which two licence texts count as near-duplicates: lower case,
 * years (1900-2099) and punctuation removed, single spaces.
 */
export function licenceTextKey(text: string): string {
  return text
    .toLowerCase()
    .replace(/\b(19|20)\d\d\b/g, ' ')
    .replace(/[^\p{L}\p{N}]+/gu, ' ')
    .trim();
}

export interface LicenceParagraph {
  /** The normalised licence name: the most common one among this text's copies (ties: alphabetical). */
  label: string;
  /** Every normalised name this text (and its near-duplicates) was given, with counts. */
  names: Record<string, number>;
  /** The paragraph text: ' .' breaks as '\n', other whitespace single spaces. */
  text: string;
  /** The near-duplicate key (licenceTextKey of text). */
  key: string;
  /** Source packages whose copyright files carry this text, sorted. */
  packages: string[];
  /** How many copies (paragraphs in unique copyright files) were merged into this one. */
  copies: number;
  /** Where `text` was read: the copyright file (real path) and the index of its deb822 paragraph. */
  source: { path: string; paragraph: number };
}

export interface Deb822Field {
  name: string;
  value: string; // first line
  body: string[]; // continuation lines, trimmed, '.' lines as ''
}

// Paragraphs of a deb822 file (blank or whitespace-only lines separate them; '#' lines are comments).
export function deb822Paragraphs(text: string): Deb822Field[][] {
  const paragraphs: Deb822Field[][] = [];
  let current: Deb822Field[] = [];
  for (const raw of text.replace(/^\uFEFF/, '').split('\n')) {
    const line = raw.replace(/\r$/, '');
    if (line.trim() === '') {
      if (current.length) paragraphs.push(current);
      current = [];
    } else if (line[0] === '#') {
      // a comment line
    } else if (line[0] === ' ' || line[0] === '\t') {
      const body = line.trim();
      if (current.length) current[current.length - 1].body.push(body === '.' ? '' : body);
    } else {
      const colon = line.indexOf(':');
      if (colon > 0) current.push({ name: line.slice(0, colon).trim(), value: line.slice(colon + 1).trim(), body: [] });
      // a line that is no field in a DEP-5 file: maintainers' slip; skipped
    }
  }
  if (current.length) paragraphs.push(current);
  return paragraphs;
}

export function fieldText(body: string[]): string {
  const paragraphs: string[] = [];
  let cur: string[] = [];
  for (const l of body) {
    if (l === '') {
      if (cur.length) paragraphs.push(cur.join(' '));
      cur = [];
    } else cur.push(l);
  }
  if (cur.length) paragraphs.push(cur.join(' '));
  return paragraphs.map((p) => p.split(/\s+/).filter(Boolean).join(' ')).join('\n');
}

export function isDep5(text: string): boolean {
  const first = text.replace(/^\uFEFF/, '').split('\n', 1)[0];
  return /^Format:\s*\S*copyright-format\/1\.0/.test(first);
}

interface CopyrightFile {
  path: string; // real path of the first copy
  text: string;
  packages: string[]; // source packages of every binary whose doc folder holds this text
}

// Unique copyright files under /usr/share/doc (symlinked folders and identical
// copies merged), in path order, each with the source packages that ship it.
function copyrightFiles(fn: string, docDir = DOC_DIR): CopyrightFile[] {
  const sourceOf = new Map<string, string>();
  // biome-ignore lint/suspicious/noTemplateCurlyInString: dpkg-query's own format, not a template
  const q = spawnSync('dpkg-query', ['-W', '-f', '${Package}\t${source:Package}\n'], { encoding: 'utf8', maxBuffer: 1 << 26 });
  if (!q.error && q.status === 0) {
    for (const line of q.stdout.split('\n')) {
      const [bin, src] = line.split('\t');
      if (bin && src) sourceOf.set(bin, src);
    }
  }
  let dirs: string[];
  try {
    dirs = readdirSync(docDir).sort();
  } catch (err) {
    throw new DataError(`${fn}: cannot list ${docDir}: ${(err as Error).message}`, { path: docDir, cause: err });
  }
  const byText = new Map<string, CopyrightFile>();
  for (const dir of dirs) {
    const path = join(docDir, dir, 'copyright');
    let real: string;
    let text: string;
    try {
      real = realpathSync(path);
      text = readFileSync(real, 'utf8');
    } catch {
      continue; // no copyright file here (or a dangling link)
    }
    const pkg = sourceOf.get(dir.replace(/:.*$/, '')) ?? dir;
    const seen = byText.get(text);
    if (seen) {
      if (!seen.packages.includes(pkg)) seen.packages.push(pkg);
    } else byText.set(text, { path: real, text, packages: [pkg] });
  }
  return [...byText.values()];
}

export interface LicenceParagraphOptions {
  /** Where to look for <package>/copyright (default /usr/share/doc). */
  docDir?: string;
}

/**
 * The licence texts of the machine-readable (DEP-5) copyright files under
 * /usr/share/doc: every `License:` field with text (stand-alone License
 * paragraphs and those inside Files/header paragraphs), one item per
 * near-duplicate group (same licenceTextKey), labelled by the licence name
 * the maintainers wrote (normaliseLicenceName). Sorted by label, then text.
 */
export function licenceParagraphs(options: LicenceParagraphOptions = {}): LicenceParagraph[] {
  const groups = new Map<
    string,
    { text: string; names: Map<string, number>; packages: Set<string>; copies: number; source: { path: string; paragraph: number } }
  >();
  for (const file of copyrightFiles('licenceParagraphs', options.docDir)) {
    if (!isDep5(file.text)) continue;
    for (const [index, paragraph] of deb822Paragraphs(file.text).entries()) {
      const licence = paragraph.find((f) => f.name.toLowerCase() === 'license');
      if (!licence?.value) continue;
      const text = fieldText(licence.body);
      if (!text) continue;
      const key = licenceTextKey(text);
      if (!key) continue;
      let g = groups.get(key);
      if (!g) groups.set(key, (g = { text, names: new Map(), packages: new Set(), copies: 0, source: { path: file.path, paragraph: index } }));
      const name = normaliseLicenceName(licence.value);
      g.names.set(name, (g.names.get(name) ?? 0) + 1);
      for (const p of file.packages) g.packages.add(p);
      g.copies++;
    }
  }
  const out: LicenceParagraph[] = [];
  for (const [key, g] of groups) {
    const names = [...g.names.entries()].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1));
    out.push({ label: names[0][0], names: Object.fromEntries(names), text: g.text, key, packages: [...g.packages].sort(), copies: g.copies, source: g.source });
  }
  return out.sort((a, b) => (a.label < b.label ? -1 : a.label > b.label ? 1 : a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
}

// ---------------------------------------------------------------------------
// Few-label splits of the licence paragraphs

export interface LicenceSplitOptions {
  /** Seed of the training subset drawn from the training pool (default 0). */
  seed?: number;
  /** Seed of the test/validation partition (default 0): kept apart from `seed` so every seed and budget is scored on the same test set. */
  splitSeed?: number;
  /** Share of each class held out for testing (default 0.3). */
  testFraction?: number;
  /** Share of each class for validation (default 0.1). */
  validationFraction?: number;
  /** Training budget: this many paragraphs per class (fewer where the class's pool is smaller; see `counts`). */
  perClass?: number;
  /** Training budget: this many in all, spread over classes in proportion to their pools, at least one each. */
  total?: number;
  /** Classes with fewer paragraphs than this are rare (default 20). */
  minCount?: number;
  /** What happens to rare classes: 'drop' (default) removes them; 'other' folds them into one class named 'other'. */
  rare?: 'drop' | 'other';
  /**
   * Licence texts are boilerplate: a bare Apache-2.0 notice recurs inside
   * longer paragraphs. Where a training-pool paragraph's text contains, or is
   * part of, a test or validation paragraph's (the shared part 8 words or
   * more), 'pool' (default) removes the pool paragraph, so the held-out sets
   * stay whole and stratified and no held-out text is trained on; 'held-out'
   * removes the held-out paragraph instead; 'keep' removes neither. The removed
   * ones are listed in `overlapDropped`.
   */
  overlap?: 'pool' | 'held-out' | 'keep';
}

export interface LabelledParagraph extends LicenceParagraph {
  /** Class index into `classes`. */
  y: number;
  /** The class name: `label`, or 'other' when a rare label was folded. */
  className: string;
}

export interface LicenceSplit {
  /** Class names, sorted; `y` indexes this. */
  classes: string[];
  train: LabelledParagraph[];
  validation: LabelledParagraph[];
  test: LabelledParagraph[];
  /** The training pool's paragraphs not drawn into `train` (unlabelled in-domain text, usable for adaptation). */
  unusedTrain: LabelledParagraph[];
  /** Per class: how many paragraphs in each part and in all. */
  counts: Record<string, { all: number; train: number; validation: number; test: number; unusedTrain: number }>;
  /** Rare labels dropped or folded into 'other', with their counts. */
  rareLabels: Record<string, number>;
  /** Paragraphs removed because their text contains, or is part of, a text on the other side of the split (see `overlap`). */
  overlapDropped: LabelledParagraph[];
}

// Largest-remainder allocation of `total` over pools of the given sizes, at least one each (when total allows), never above a pool's size.
function proportional(total: number, pools: number[]): number[] {
  const n = pools.reduce((a, b) => a + b, 0);
  const exact = pools.map((p) => (total * p) / n);
  const take = exact.map((e, i) => Math.min(pools[i], Math.floor(e)));
  if (total >= pools.length) for (let i = 0; i < take.length; i++) if (take[i] === 0 && pools[i] > 0) take[i] = 1;
  let left = Math.min(total, n) - take.reduce((a, b) => a + b, 0);
  const order = exact.map((e, i) => [e - Math.floor(e), i] as const).sort((a, b) => b[0] - a[0] || a[1] - b[1]);
  while (left > 0) {
    let moved = false;
    for (const [, i] of order) {
      if (left > 0 && take[i] < pools[i]) {
        take[i]++;
        left--;
        moved = true;
      }
    }
    if (!moved) break;
  }
  while (left < 0) {
    // the at-least-one rule overshot: take back from the largest
    const i = take.indexOf(Math.max(...take));
    take[i]--;
    left++;
  }
  return take;
}

/**
 * Splits labelled licence paragraphs into train / validation / test,
 * stratified by class and deterministic for the seeds. Test and validation
 * come from `splitSeed` alone; the training set is the first `perClass` (or a
 * proportional share of `total`) of each class's pool in a `seed` order, so a
 * smaller budget's training set is part of a larger one's for the same seed.
 * Classes under `minCount` paragraphs are dropped (default) or folded into 'other'.
 * Pool paragraphs that contain or are part of a held-out text are removed by
 * default (`overlap`), so no test input is trained on, with or without labels.
 */
export function licenceSplit(paragraphs: LicenceParagraph[], options: LicenceSplitOptions = {}): LicenceSplit {
  const fn = 'licenceSplit';
  if (!Array.isArray(paragraphs) || paragraphs.some((p) => !p || typeof p.label !== 'string' || typeof p.text !== 'string'))
    throw new ArgumentError(fn, 'paragraphs must be the array licenceParagraphs() returns (items with label and text)', 'paragraphs');
  const testFraction = options.testFraction ?? 0.3;
  const validationFraction = options.validationFraction ?? 0.1;
  const minCount = options.minCount ?? 20;
  const rare = options.rare ?? 'drop';
  if (!(testFraction > 0 && validationFraction > 0 && testFraction + validationFraction < 1))
    throw new ArgumentError(
      fn,
      `testFraction and validationFraction must be positive with a sum below 1, got ${testFraction} and ${validationFraction}`,
      'testFraction',
    );
  if (!Number.isInteger(minCount) || minCount < 3)
    throw new ArgumentError(fn, `minCount must be an integer >= 3 (one paragraph per part), got ${minCount}`, 'minCount');
  const overlap = options.overlap ?? 'pool';
  if (overlap !== 'pool' && overlap !== 'held-out' && overlap !== 'keep')
    throw new ArgumentError(fn, `overlap must be 'pool', 'held-out' or 'keep', got ${JSON.stringify(overlap)}`, 'overlap');
  if (rare !== 'drop' && rare !== 'other') throw new ArgumentError(fn, `rare must be 'drop' or 'other', got ${JSON.stringify(rare)}`, 'rare');
  if ((options.perClass === undefined) === (options.total === undefined))
    throw new ArgumentError(fn, 'give exactly one training budget: perClass or total', 'perClass');
  const budget = options.perClass ?? options.total!;
  if (!Number.isInteger(budget) || budget < 1)
    throw new ArgumentError(fn, `the training budget must be a positive integer, got ${budget}`, options.perClass !== undefined ? 'perClass' : 'total');
  for (const k of ['seed', 'splitSeed'] as const)
    if (options[k] !== undefined && !Number.isInteger(options[k])) throw new ArgumentError(fn, `${k} must be an integer, got ${options[k]}`, k);

  const labelCounts = new Map<string, number>();
  for (const p of paragraphs) labelCounts.set(p.label, (labelCounts.get(p.label) ?? 0) + 1);
  const rareLabels: Record<string, number> = {};
  for (const [l, c] of [...labelCounts].sort((a, b) => (a[0] < b[0] ? -1 : 1))) if (c < minCount) rareLabels[l] = c;
  const kept: Array<{ p: LicenceParagraph; className: string }> = [];
  for (const p of paragraphs) {
    if (rareLabels[p.label] === undefined) kept.push({ p, className: p.label });
    else if (rare === 'other') kept.push({ p, className: 'other' });
  }
  const classes = [...new Set(kept.map((k) => k.className))].sort();
  if (classes.length < 2)
    throw new ArgumentError(fn, `only ${classes.length} class(es) have ${minCount}+ paragraphs; lower minCount or use rare: 'other'`, 'minCount');
  const items: LabelledParagraph[] = kept.map(({ p, className }) => ({ ...p, className, y: classes.indexOf(className) }));

  const [testIdx, validationIdx, poolIdx] = stratifiedSplit(
    items.map((i) => i.y),
    [testFraction, validationFraction, 1 - testFraction - validationFraction],
    { seed: options.splitSeed ?? 0 },
  );
  // Overlap between a held-out and a pool paragraph: one text inside the other, the inner one 8+ words
  // (shorter ones, 'placed in the public domain', are common phrases, not copies).
  const padded = items.map((it) => ` ${it.key} `);
  const long = items.map((it) => it.key.split(' ').length >= SHINGLE);
  const overlaps = (i: number, j: number) => (long[i] && padded[j].includes(padded[i])) || (long[j] && padded[i].includes(padded[j]));
  const heldIdx = [...testIdx, ...validationIdx];
  const overlapDropped = new Set<number>();
  if (overlap === 'pool') {
    for (const j of poolIdx) if (heldIdx.some((i) => overlaps(i, j))) overlapDropped.add(j);
  } else if (overlap === 'held-out') {
    for (const i of heldIdx) if (poolIdx.some((j) => overlaps(i, j))) overlapDropped.add(i);
  }
  const keep = (idx: number[]) => idx.filter((i) => !overlapDropped.has(i));
  const poolByClass: number[][] = classes.map(() => []);
  for (const i of keep(poolIdx)) poolByClass[items[i].y].push(i);
  const takes =
    options.perClass !== undefined
      ? poolByClass.map((p) => Math.min(budget, p.length))
      : proportional(
          budget,
          poolByClass.map((p) => p.length),
        );
  const train: number[] = [];
  const unused: number[] = [];
  poolByClass.forEach((pool, c) => {
    const order = permutation(pool.length, (options.seed ?? 0) * 7919 + c);
    order.forEach((o, rank) => (rank < takes[c] ? train : unused).push(pool[o]));
  });
  const pick = (idx: number[]) => idx.sort((a, b) => a - b).map((i) => items[i]);
  const result = { classes, train: pick(train), validation: pick(keep(validationIdx)), test: pick(keep(testIdx)), unusedTrain: pick(unused) };
  const counts: LicenceSplit['counts'] = {};
  for (const c of classes) counts[c] = { all: 0, train: 0, validation: 0, test: 0, unusedTrain: 0 };
  for (const part of ['train', 'validation', 'test', 'unusedTrain'] as const)
    for (const it of result[part]) {
      counts[it.className][part]++;
      counts[it.className].all++;
    }
  return { ...result, counts, rareLabels, overlapDropped: pick([...overlapDropped]) };
}

// ---------------------------------------------------------------------------
// Unlabelled legal text for masked-language-model adaptation

export interface CorpusDocument {
  /** Where it came from: 'copyright:<path>', 'common-licenses:<path>' or 'header:<path>'. */
  source: string;
  /** One chunk (a deb822 paragraph, or a blank-line separated block), whitespace normalised per line. */
  text: string;
}

export interface LicenceCorpusOptions {
  /**
   * Texts to keep out, e.g. the test and validation paragraphs of a
   * licenceSplit: training a model on the test inputs, even without labels,
   * is transductive and flatters the comparison. A chunk is dropped when it
   * contains one of them (after licenceTextKey normalisation), or when it is
   * itself, 8 words or more, a part of one.
   */
  exclude?: Array<string | { text: string }>;
  /** Include /usr/share/common-licenses (default true). */
  commonLicenses?: boolean;
  /** Include the leading licence comments of installed C/C++ headers and Python files (default true). */
  sourceHeaders?: boolean;
  docDir?: string;
  commonLicensesDir?: string;
  /** Folders searched for headers (*.h, *.hpp, *.hh, *.hxx) and Python files; default /usr/include and the Python 3 library folders. */
  headerRoots?: string[];
}

export interface LicenceCorpus {
  documents: CorpusDocument[];
  provenance: {
    sources: Record<'copyright' | 'common-licenses' | 'header', { files: number; documents: number; words: number }>;
    documents: number;
    words: number;
    excluded: { texts: number; documentsDropped: number; wordsDropped: number; rule: string };
  };
}

const SHINGLE = 8;
const HEADER_BYTES = 16384;

function blocks(text: string): string[] {
  return text
    .replace(/\r/g, '')
    .split(/\n[ \t]*\n/)
    .map((b) =>
      b
        .split('\n')
        .map((l) => l.trim().replace(/\s+/g, ' '))
        .filter(Boolean)
        .join('\n'),
    )
    .filter(Boolean);
}

function copyrightChunks(text: string): string[] {
  if (!isDep5(text)) return blocks(text);
  return deb822Paragraphs(text).map((fields) =>
    fields
      .map((f) => {
        const body = fieldText(f.body);
        return `${f.name}: ${f.value}${body ? `\n${body}` : ''}`;
      })
      .join('\n'),
  );
}

function readHead(path: string): string {
  const fd = openSync(path, 'r');
  try {
    const buf = Buffer.alloc(HEADER_BYTES);
    const n = readSync(fd, buf, 0, HEADER_BYTES, 0);
    return buf.subarray(0, n).toString('utf8');
  } finally {
    closeSync(fd);
  }
}

// The comment a file starts with (after a shebang/coding line and blank lines), markers stripped.
export function leadingComment(source: string, python: boolean): string {
  const lines = source.replace(/\r/g, '').split('\n');
  let i = 0;
  while (i < lines.length && (lines[i].trim() === '' || (python && i < 2 && /^#!|^#.*coding[:=]/.test(lines[i])))) i++;
  const out: string[] = [];
  if (python) {
    for (; i < lines.length && /^\s*#/.test(lines[i]); i++) out.push(lines[i].replace(/^\s*#+!?/, ''));
  } else if (lines[i]?.trimStart().startsWith('/*')) {
    for (; i < lines.length; i++) {
      const end = lines[i].indexOf('*/');
      const line = end >= 0 ? lines[i].slice(0, end) : lines[i];
      out.push(line.replace(/^\s*\/\*+!?/, '').replace(/^\s*\*+(?!\/)/, ''));
      if (end >= 0) break;
    }
  } else {
    for (; i < lines.length && /^\s*\/\//.test(lines[i]); i++) out.push(lines[i].replace(/^\s*\/\/+!?/, ''));
  }
  return out.map((l) => l.trim()).join('\n');
}

function walk(root: string, keep: (name: string) => boolean, out: string[]): void {
  let entries: import('node:fs').Dirent[];
  try {
    entries = readdirSync(root, { withFileTypes: true });
  } catch {
    return;
  }
  entries.sort((a, b) => (a.name < b.name ? -1 : 1));
  for (const e of entries) {
    const p = join(root, e.name);
    if (e.isDirectory()) walk(p, keep, out);
    else if (e.isFile() && keep(e.name)) out.push(p);
  }
}

function defaultHeaderRoots(): string[] {
  const roots = ['/usr/include'];
  try {
    for (const d of readdirSync('/usr/lib').sort()) if (d === 'python3' || /^python3\.\d+$/.test(d)) roots.push(join('/usr/lib', d));
  } catch {
    /* no /usr/lib */
  }
  return roots;
}

const LEGAL = /copyright|licen[cs]e|warrant|permission is hereby/i;

/**
 * In-domain legal text for masked-language-model adaptation, as chunks: the
 * unique copyright files under /usr/share/doc (DEP-5 ones by paragraph),
 * /usr/share/common-licenses, and the licence comments that open installed
 * headers and Python files (unique texts only). Pass the held-out paragraphs
 * in `exclude` so no test input is trained on.
 */
export function licenceCorpus(options: LicenceCorpusOptions = {}): LicenceCorpus {
  const fn = 'licenceCorpus';
  const exclude = options.exclude ?? [];
  if (!Array.isArray(exclude)) throw new ArgumentError(fn, 'exclude must be an array of texts or paragraphs', 'exclude');
  const excludedKeys = exclude.map((e, i) => {
    const text = typeof e === 'string' ? e : e?.text;
    if (typeof text !== 'string') throw new ArgumentError(fn, `exclude[${i}] is neither a string nor an object with a text`, 'exclude');
    return licenceTextKey(text);
  });

  const seen = new Set<string>(); // chunk keys, so repeated chunks are kept once
  const documents: CorpusDocument[] = [];
  const sources: LicenceCorpus['provenance']['sources'] = {
    copyright: { files: 0, documents: 0, words: 0 },
    'common-licenses': { files: 0, documents: 0, words: 0 },
    header: { files: 0, documents: 0, words: 0 },
  };
  const add = (kind: keyof typeof sources, source: string, chunks: string[]) => {
    for (const text of chunks) {
      const key = licenceTextKey(text);
      if (!key || seen.has(key)) continue;
      seen.add(key);
      documents.push({ source: `${kind}:${source}`, text });
    }
    sources[kind].files++;
  };

  for (const file of copyrightFiles(fn, options.docDir)) add('copyright', file.path, copyrightChunks(file.text));
  if (options.commonLicenses !== false) {
    const dir = options.commonLicensesDir ?? '/usr/share/common-licenses';
    let names: string[] = [];
    try {
      names = readdirSync(dir).sort();
    } catch (err) {
      throw new DataError(`${fn}: cannot list ${dir}: ${(err as Error).message}`, { path: dir, cause: err });
    }
    const real = new Set<string>();
    for (const name of names) {
      const p = realpathSync(join(dir, name));
      if (real.has(p)) continue; // GPL -> GPL-3 and the like
      real.add(p);
      add('common-licenses', p, blocks(readFileSync(p, 'utf8')));
    }
  }
  if (options.sourceHeaders !== false) {
    const files: string[] = [];
    for (const root of options.headerRoots ?? defaultHeaderRoots()) walk(root, (n) => /\.(h|hh|hpp|hxx|py)$/.test(n), files);
    for (const f of files) {
      let head: string;
      try {
        head = readHead(f);
      } catch {
        continue; // unreadable: skip
      }
      const comment = leadingComment(head, f.endsWith('.py'));
      if (LEGAL.test(comment)) add('header', f, blocks(comment));
    }
  }

  // Leave out what overlaps the excluded texts.
  let kept = documents;
  let dropped = 0;
  let wordsDropped = 0;
  if (excludedKeys.length) {
    const byStart = new Map<string, string[]>(); // first SHINGLE words (or the whole key when shorter) -> excluded keys
    const owners = new Map<string, string[]>(); // every SHINGLE-word run of an excluded text -> its keys
    const lengths = new Set<number>();
    for (const key of excludedKeys) {
      if (!key) continue;
      const w = key.split(' ');
      const n = Math.min(SHINGLE, w.length);
      lengths.add(n);
      const start = w.slice(0, n).join(' ');
      byStart.set(start, [...(byStart.get(start) ?? []), key]);
      for (let i = 0; i + SHINGLE <= w.length; i++) {
        const g = w.slice(i, i + SHINGLE).join(' ');
        const list = owners.get(g);
        if (!list) owners.set(g, [key]);
        else if (!list.includes(key)) list.push(key);
      }
    }
    kept = documents.filter((d) => {
      const key = licenceTextKey(d.text);
      const w = key.split(' ');
      const padded = ` ${key} `;
      // the chunk contains an excluded text
      let drop = false;
      for (let i = 0; i < w.length && !drop; i++)
        for (const n of lengths) {
          const candidates = i + n <= w.length ? byStart.get(w.slice(i, i + n).join(' ')) : undefined;
          if (candidates?.some((k) => padded.includes(` ${k} `))) drop = true;
        }
      // or is a piece (SHINGLE words or more) of one: common-licenses blocks of a licence copied whole into a held-out paragraph
      if (!drop && w.length >= SHINGLE) drop = (owners.get(w.slice(0, SHINGLE).join(' ')) ?? []).some((k) => ` ${k} `.includes(padded));
      if (drop) {
        dropped++;
        wordsDropped += countWords(d.text);
      }
      return !drop;
    });
  }
  for (const d of kept) {
    const kind = d.source.slice(0, d.source.indexOf(':')) as keyof typeof sources;
    sources[kind].documents++;
    sources[kind].words += countWords(d.text);
  }
  return {
    documents: kept,
    provenance: {
      sources,
      documents: kept.length,
      words: kept.reduce((n, d) => n + countWords(d.text), 0),
      excluded: {
        texts: excludedKeys.length,
        documentsDropped: dropped,
        wordsDropped,
        rule: `a chunk is dropped when its licenceTextKey contains an excluded text's key, or is itself (${SHINGLE} words or more) part of one`,
      },
    },
  };
}
