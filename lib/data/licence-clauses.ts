// Clause extraction on real legal text: the licence paragraphs of Debian's
// machine-readable copyright files (data.debian.licenceParagraphs), labelled
// with character spans of clause types by readable rules (the annotator; see
// assets/licence-clauses/RULES.md and its measurement against a hand-checked
// gold sample), de-duplicated, split by source package, with a manifest that
// pins the data set to file paths and text hashes.
import { createHash } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ArgumentError, DataError } from '../errors.js';
import { writeAll, writeAtomic } from '../io/atomic.js';
import { deb822Paragraphs, fieldText, licenceParagraphs, licenceTextKey, type LicenceParagraph } from './debian.js';
import { permutation } from './tensor-loader.js';

// ---------------------------------------------------------------------------
// Clause types and the annotator's rules

/** The clause types, in the order the rules are tried (the first rule that matches a clause labels it). */
export const CLAUSE_TYPES = [
  'exception',
  'public-domain',
  'common-licenses',
  'copy-received',
  'liability',
  'warranty',
  'advertising',
  'endorsement',
  'binary',
  'altered-marked',
  'misrepresentation',
  'notice',
  'patent',
  'trademark',
  'grant',
] as const;
export type ClauseType = (typeof CLAUSE_TYPES)[number];

export interface ClauseRule {
  label: ClauseType;
  /** Matched against one clause (case-insensitive). */
  pattern: RegExp;
  /** What the type means, in words. */
  meaning: string;
}

/**
 * The annotator: one rule per type, tried in this order on each clause; the
 * first match labels it (so a clause that both grants and excepts is an
 * exception, a sentence that says "in no event liable ... warranty" is a
 * liability limitation). Clauses no rule matches are left unlabelled.
 */
export const CLAUSE_RULES: ReadonlyArray<ClauseRule> = [
  {
    label: 'exception',
    meaning: 'an additional permission or exception to a copyleft licence (linking, Autoconf, Bison, font, classpath exceptions)',
    pattern:
      /\b(special|linking|additional) (exception|permission)|\bexceptions?\b.{0,60}\b(gpl|general public license|license)\b|\bas an? (special )?exception\b|\bgives? (you )?(unlimited )?permission to (link|copy, distribute and modify the configure)|\bthis exception\b/i,
  },
  {
    label: 'public-domain',
    meaning: 'the work is placed in (or dedicated to) the public domain, or copyright is waived',
    pattern: /\bpublic[ -]domain\b|\bwaive[sd]?\b.{0,40}\b(copyright|rights)\b|\bno copyright\b|\bnot (subject to )?copyright(ed)?\b/i,
  },
  {
    label: 'common-licenses',
    meaning: "a pointer to the licence's full text in /usr/share/common-licenses",
    pattern: /common-licenses|\/usr\/share\/common\b/i,
  },
  {
    label: 'copy-received',
    meaning: "'you should have received a copy of the licence along with this program'",
    pattern: /\b(should|must) have received a copy\b|\bhave received a copy\b/i,
  },
  {
    label: 'liability',
    meaning: 'a limitation of liability: in no event shall the authors be liable for damages',
    pattern:
      /\bin no event\b|\b(be|been|is|are|held|not) (held )?liable\b|\bliable (for|to)\b|\blimitation of liability\b|\bno liability\b|\bany liability\b|\bresponsib(le|ility) for (the |any )?(damage|loss|consequence)/i,
  },
  {
    label: 'warranty',
    meaning: "a warranty disclaimer: provided 'as is', without warranty of any kind, implied warranties disclaimed",
    pattern:
      /\bwarrant(y|ies|ed)\b(?![- ]notice)|["'\u201c\u2018`]as[ -]is[.,]?["'\u201d\u2019]|\bbear the risk\b|\bas[ -]is\b.{0,20}\bbasis\b|\bprovided as[ -]is\b|\bmerchantability\b|\bfitness for a particular purpose\b|\bentire risk\b|\bwith all faults\b/i,
  },
  {
    label: 'advertising',
    meaning:
      "the advertising / acknowledgement clause: advertising materials or end-user documentation must display 'This product includes software developed by ...'",
    pattern:
      /\badvertising materials\b|\bmust (display|include) (the following|an) acknowle?dge?ment\b|\bthis product includes software developed\b|\bthis acknowle?dge?ment may appear\b/i,
  },
  {
    label: 'endorsement',
    meaning:
      'no endorsement: the name of the authors may not be used to endorse or promote products, or in advertising; derived products may not be called by the name',
    pattern:
      /\bendorse\b|\bpromote (products|the sale)\b|\b(in|for) advertising or publicity\b|\bname[s]? of\b.{0,120}\b(may|shall|must) not be used\b|\bnot be used\b.{0,60}\b(advertising|publicity|promote)\b|\bmay not be called\b/i,
  },
  {
    label: 'binary',
    meaning: 'binary reproduction: redistributions in binary form must reproduce the notice in the documentation',
    pattern:
      /\b(redistributions?|distributions?) in binary form\b|\bin the documentation and\/or other materials\b|\b(executable|object|compiled|binary) (code|form)\b.{0,40}\bdistributed\b.{0,80}\bdocumentation\b/i,
  },
  {
    label: 'altered-marked',
    meaning: 'altered versions must be plainly marked as such, or changes to files must be indicated / documented',
    pattern:
      /\baltered (source )?versions?\b.{0,40}\bmarked\b|\bmust be (plainly )?marked as\b|\bprominent notices? stating\b|\bcarry prominent notices?\b|\bchanges\b.{0,60}\bmust be (clearly |plainly )?(indicated|documented|marked)\b/i,
  },
  {
    label: 'misrepresentation',
    meaning: 'the origin must not be misrepresented',
    pattern: /\bmisrepresent/i,
  },
  {
    label: 'notice',
    meaning: 'notice retention: the copyright / permission notice must be retained, reproduced or kept with copies, or a copy of the licence included',
    pattern:
      /\b(retain|reproduce|preserve|include|included|keep|kept|accompan\w*|appear|remains?|leave)\b.{0,80}\bnotices?\b|\b(copyright|permission) notices?\b.{0,120}\b(appear|included|retained|preserved|remains?|intact|reproduced|accompan\w*)\b|\bnotices?\b.{0,40}\b(may|must) not be (removed|altered)|\bnot (be )?remove\b.{0,40}\bnotices?\b|\bretain\b.{0,40}\b(copyright|notices?)\b|\b(include|includ\w+|contain) (a |the )?(complete |full )?copy of (this|the) (licen[cs]e|document)\b/i,
  },
  {
    label: 'patent',
    meaning: 'a patent grant, licence, retaliation or exclusion',
    pattern: /\bpatent/i,
  },
  {
    label: 'trademark',
    meaning: 'trademarks, trade names or service marks are not licensed',
    pattern: /\btrade ?marks?\b|\bservice marks?\b|\btrade names?\b|\btrade dress\b/i,
  },
  {
    label: 'grant',
    meaning: 'a grant of permission to use, copy, modify or distribute (including licensing under a named licence)',
    pattern:
      /\bpermission\b.{0,120}\b(is|are) (hereby )?granted\b|\b(is|are) hereby granted\b|\bhereby grants?\b|\b(are|is) permitted\b|\byou (can|may) (redistribute|use|copy|modify|distribute)\b|\bis (licen[cs]ed|released|distributed|made available) under\b|\blicen[cs]ed under\b|\breleased under\b|\bfree to (use|copy|modify|redistribute)\b|\bpermission to (use|copy|modify|distribute)\b.{0,80}\bgranted\b|\bgrants? (you|to you|anyone|everyone)\b|\bmay be (freely )?(used|copied|distributed|redistributed|modified)\b|\b(unlimited|free) permission\b|\bfree for\b.{0,40}\buse\b|\b(we|specifically) permit\b/i,
  },
];

export interface ClauseSpan {
  /** Character offsets into the document's text, end exclusive. */
  start: number;
  end: number;
  label: string;
}

// Abbreviations after which a full stop does not end a sentence.
const ABBREVIATION = /\b(e\.g|i\.e|etc|inc|ltd|co|corp|no|vs|cf|dr|mr|mrs|ms|st|jr|sr|ver|vol|al|u\.s|fig|sec|art|approx|incl)\.$/i;

/**
 * The annotator's units, as [start, end) character ranges: sentences (ended
 * by . ! ? followed by white space, a line break, or a colon before a line
 * break), cut further at semicolons outside parentheses and before ', provided
 * that' / ', and that' (so a grant followed by its notice condition gives two
 * clauses). Leading list markers ('1.', '*', '-', '(a)') and white space are
 * left out of a unit; units without a letter are dropped.
 */
export function clauseUnits(text: string): Array<[number, number]> {
  if (typeof text !== 'string') throw new ArgumentError('clauseUnits', `text must be a string, got ${typeof text}`, 'text');
  const cuts: number[] = [0];
  let depth = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '(') depth++;
    else if (c === ')' && !(/[.!?]/.test(text[i - 1] ?? '') && /\s/.test(text[i + 1] ?? ' '))) depth = Math.max(0, depth - 1);
    else if (c === '\n') {
      cuts.push(i + 1);
      depth = 0;
    } else if ((c === '.' || c === '!' || c === '?') && /\s/.test(text[i + 1] ?? ' ')) {
      // a full stop after a number alone ('1.') or an abbreviation does not end a sentence
      const before = text.slice(Math.max(0, i - 12), i + 1);
      const word = /(\S+)$/.exec(text.slice(0, i + 1))?.[1] ?? '';
      if (c === '.' && (ABBREVIATION.test(before) || /^\(?([0-9]{1,2}|[a-z]|[ivx]{1,4})\.$/i.test(word))) continue;
      cuts.push(i + 1);
    } else if ((c === '"' || c === "'" || c === ')' || c === '\u201d') && /[.!?]/.test(text[i - 1] ?? '') && /\s/.test(text[i + 1] ?? ' ')) {
      cuts.push(i + 1); // a sentence that ends inside quotes or parentheses: '... "as-is." You bear'
      depth = 0;
      depth = 0;
    } else if (c === ';' && depth === 0) cuts.push(i + 1);
    else if (c === ':' && /^(\s*(\n|$)|\s+([*\u2022-]|\(?[0-9]{1,2}[.)]|\([a-z]\))\s)/.test(text.slice(i + 1, i + 8))) cuts.push(i + 1);
    else if (c === ',' && depth === 0 && /^,\s+(provided that|provided the|and that)\b/i.test(text.slice(i, i + 20))) cuts.push(i + 1);
  }
  cuts.push(text.length);
  const units: Array<[number, number]> = [];
  for (let k = 0; k + 1 < cuts.length; k++) {
    let s = cuts[k];
    let e = cuts[k + 1];
    // leading white space and list markers: '1.', '1)', '(a)', '*', '-', 'o'
    for (;;) {
      const m = /^(\s+|\(?[0-9]{1,2}[.)](?=\s)|\([a-z]\)(?=\s)|[a-z][.)](?=\s)|[*\u2022-](?=\s)|o(?=\s))/i.exec(text.slice(s, e));
      if (!m || m[0].length === 0) break;
      s += m[0].length;
    }
    while (e > s && /\s/.test(text[e - 1])) e--;
    if (e > s && /\p{L}/u.test(text.slice(s, e))) units.push([s, e]);
  }
  return units;
}

/** The label the rules give one clause, or undefined. */
export function labelClause(clause: string): ClauseType | undefined {
  for (const rule of CLAUSE_RULES) if (rule.pattern.test(clause)) return rule.label;
  return undefined;
}

/**
 * Runs the annotator on one licence text. Each clause (clauseUnits) gets the
 * first matching rule's label; within a sentence, a clause no rule matches
 * joins its labelled neighbour (the previous one, else the next: "This program
 * is free software; you can redistribute it ..." is one grant), and
 * neighbouring clauses of one label merge. So an entity is a sentence, or the
 * part of a sentence that holds one clause type ("Permission ... is hereby
 * granted," / "provided that the above copyright notice ... appear in all
 * copies."). A sentence ends at . ! ? (also inside closing quotes or
 * parentheses) or a line break; a colon does not end one. Spans are sorted
 * and never overlap.
 */
export function annotateClauses(text: string): ClauseSpan[] {
  const units = clauseUnits(text);
  const labels = units.map(([s, e]) => labelClause(text.slice(s, e)));
  // sentence number of each unit
  const sentence: number[] = [];
  let n = 0;
  units.forEach(([s, e], k) => {
    sentence.push(n);
    const next = k + 1 < units.length ? units[k + 1][0] : text.length;
    if (/[.!?]["'\u201d)]?$/.test(text.slice(s, e)) || text.slice(e, next).includes('\n')) n++;
  });
  const filled = labels.slice();
  for (let k = 0; k < units.length; k++) {
    if (filled[k]) continue;
    let j = k - 1;
    while (j >= 0 && sentence[j] === sentence[k] && !labels[j]) j--;
    if (j >= 0 && sentence[j] === sentence[k]) {
      filled[k] = labels[j];
      continue;
    }
    j = k + 1;
    while (j < units.length && sentence[j] === sentence[k] && !labels[j]) j++;
    if (j < units.length && sentence[j] === sentence[k]) filled[k] = labels[j];
  }
  const spans: ClauseSpan[] = [];
  units.forEach(([s, e], k) => {
    const label = filled[k];
    if (!label) return;
    const last = spans[spans.length - 1];
    if (last && k > 0 && filled[k - 1] === label && sentence[k - 1] === sentence[k]) last.end = e;
    else spans.push({ start: s, end: e, label });
  });
  return spans;
}

// ---------------------------------------------------------------------------
// Entity-level comparison (exact spans)

export interface SpanScores {
  /** Per type: true positives, predicted and gold counts, precision, recall, F1 (0 where undefined). */
  perType: Record<string, { tp: number; predicted: number; gold: number; precision: number; recall: number; f1: number }>;
  micro: { tp: number; predicted: number; gold: number; precision: number; recall: number; f1: number };
}

function prf(tp: number, predicted: number, gold: number) {
  const precision = predicted ? tp / predicted : 0;
  const recall = gold ? tp / gold : 0;
  const f1 = precision + recall ? (2 * precision * recall) / (precision + recall) : 0;
  return { tp, predicted, gold, precision, recall, f1 };
}

/**
 * Entity-level precision / recall / F1 of predicted spans against gold spans,
 * document by document: a predicted span counts only when a gold span has the
 * same label, start and end (seqeval's exact match). `overlap: true` counts a
 * prediction as correct when it overlaps a gold span of its label instead.
 */
export function compareSpans(gold: ClauseSpan[][], predicted: ClauseSpan[][], options: { overlap?: boolean } = {}): SpanScores {
  if (!Array.isArray(gold) || !Array.isArray(predicted) || gold.length !== predicted.length)
    throw new ArgumentError(
      'compareSpans',
      `gold and predicted must be arrays of the same length (one span list per document), got ${gold?.length} and ${predicted?.length}`,
      'predicted',
    );
  const counts = new Map<string, { tp: number; predicted: number; gold: number }>();
  const at = (l: string) => {
    let c = counts.get(l);
    if (!c) counts.set(l, (c = { tp: 0, predicted: 0, gold: 0 }));
    return c;
  };
  gold.forEach((g, d) => {
    const p = predicted[d];
    for (const s of g) at(s.label).gold++;
    const used = new Set<number>();
    for (const s of p) {
      at(s.label).predicted++;
      const j = g.findIndex(
        (t, k) => !used.has(k) && t.label === s.label && (options.overlap ? t.start < s.end && s.start < t.end : t.start === s.start && t.end === s.end),
      );
      if (j >= 0) {
        used.add(j);
        at(s.label).tp++;
      }
    }
  });
  const perType: SpanScores['perType'] = {};
  let tp = 0;
  let np = 0;
  let ng = 0;
  for (const l of [...counts.keys()].sort()) {
    const c = counts.get(l)!;
    perType[l] = prf(c.tp, c.predicted, c.gold);
    tp += c.tp;
    np += c.predicted;
    ng += c.gold;
  }
  return { perType, micro: prf(tp, np, ng) };
}

// ---------------------------------------------------------------------------
// The data set

export interface ClauseDocument {
  /** First 16 hex digits of the text's sha256. */
  id: string;
  /** The source package the document is filed under (the first, by name, of those shipping the text): the unit of the split. */
  package: string;
  text: string;
  spans: ClauseSpan[];
}

export interface ClauseManifestEntry {
  id: string;
  package: string;
  /** Every source package shipping this text or a near-duplicate of it. */
  packages: string[];
  /** The copyright file the text was read from, and the index of its deb822 paragraph. */
  path: string;
  paragraph: number;
  /** sha256 of the text (hex). */
  sha256: string;
  /** The licence name the maintainers wrote (normalised). */
  licence: string;
  /** How many near-duplicates were merged into this document (1 = none). */
  merged: number;
}

export interface ClauseDatasetOptions {
  /** Where to look for <package>/copyright (default /usr/share/doc). */
  docDir?: string;
  /**
   * Rebuild the documents a manifest lists (from licenceClauseDataset or
   * readClauseManifest) instead of scanning docDir: entries whose file is
   * missing, or whose paragraph's text no longer has the recorded hash, are
   * skipped and counted.
   */
  manifest?: ClauseManifestEntry[];
  /** Two texts whose word 5-gram sets have a Jaccard similarity at or above this are near-duplicates (default 0.9). */
  nearDuplicateJaccard?: number;
}

export interface ClauseDataset {
  documents: ClauseDocument[];
  manifest: ClauseManifestEntry[];
  stats: {
    /** licenceParagraphs groups (same licenceTextKey) read. */
    paragraphs: number;
    /** Removed as near-duplicates of a kept document. */
    nearDuplicatesRemoved: number;
    documents: number;
    packages: number;
    words: number;
    /** Manifest entries skipped: file missing or unreadable, paragraph not found, or text changed (hash differs). */
    skipped: { missing: number; changed: number; entries: Array<{ path: string; paragraph: number; reason: string }> };
    /** Spans per clause type over all documents. */
    spans: Record<string, number>;
  };
}

const SHINGLE_WORDS = 5;

function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

function shingles(key: string): Set<string> {
  const w = key.split(' ');
  const out = new Set<string>();
  if (w.length < SHINGLE_WORDS) out.add(key);
  for (let i = 0; i + SHINGLE_WORDS <= w.length; i++) out.add(w.slice(i, i + SHINGLE_WORDS).join(' '));
  return out;
}

/**
 * Pairs of texts (indices i < j) whose word 5-gram sets (of licenceTextKey)
 * have Jaccard similarity >= threshold, found through an inverted index.
 */
export function nearDuplicatePairs(texts: string[], threshold: number): Array<[number, number, number]> {
  const sets = texts.map((t) => shingles(licenceTextKey(t)));
  const index = new Map<string, number[]>();
  sets.forEach((s, i) => {
    for (const g of s) {
      const l = index.get(g);
      if (l) l.push(i);
      else index.set(g, [i]);
    }
  });
  const out: Array<[number, number, number]> = [];
  for (let i = 0; i < sets.length; i++) {
    const shared = new Map<number, number>();
    for (const g of sets[i]) for (const j of index.get(g)!) if (j > i) shared.set(j, (shared.get(j) ?? 0) + 1);
    for (const [j, n] of shared) {
      const jac = n / (sets[i].size + sets[j].size - n);
      if (jac >= threshold) out.push([i, j, jac]);
    }
  }
  return out;
}

function paragraphsFromManifest(
  manifest: ClauseManifestEntry[],
  skipped: ClauseDataset['stats']['skipped'],
): Array<LicenceParagraph & { manifestPackage: string }> {
  const fileCache = new Map<string, string | null>();
  const out: Array<LicenceParagraph & { manifestPackage: string }> = [];
  manifest.forEach((m, row) => {
    if (!m || typeof m.path !== 'string' || !Number.isInteger(m.paragraph) || typeof m.sha256 !== 'string' || typeof m.package !== 'string')
      throw new DataError(`licenceClauseDataset: manifest entry ${row} needs path, paragraph (integer), sha256 and package`, { row });
    if (!fileCache.has(m.path)) {
      try {
        fileCache.set(m.path, readFileSync(m.path, 'utf8'));
      } catch {
        fileCache.set(m.path, null);
      }
    }
    const file = fileCache.get(m.path);
    if (file === null || file === undefined) {
      skipped.missing++;
      skipped.entries.push({ path: m.path, paragraph: m.paragraph, reason: 'file missing or unreadable' });
      return;
    }
    const fields = deb822Paragraphs(file)[m.paragraph];
    const licence = fields?.find((f) => f.name.toLowerCase() === 'license');
    const text = licence ? fieldText(licence.body) : '';
    if (!text || sha256(text) !== m.sha256) {
      skipped.changed++;
      skipped.entries.push({ path: m.path, paragraph: m.paragraph, reason: text ? 'text changed (sha256 differs)' : 'paragraph has no licence text' });
      return;
    }
    out.push({
      label: m.licence ?? '',
      names: {},
      text,
      key: licenceTextKey(text),
      packages: Array.isArray(m.packages) ? m.packages : [m.package],
      copies: m.merged ?? 1,
      source: { path: m.path, paragraph: m.paragraph },
      manifestPackage: m.package,
    });
  });
  return out;
}

/**
 * The clause-extraction data set from this machine's DEP-5 copyright files:
 * the unique licence paragraphs of data.debian.licenceParagraphs, with
 * near-duplicates (word 5-gram Jaccard >= 0.9, single linkage) merged into one
 * document (the one with most copies, then the shortest), each labelled by
 * annotateClauses and filed under one source package. Deterministic: sorted
 * by package, then id. The manifest records where each text was read and its
 * hash; pass it back as `manifest` to rebuild the same documents elsewhere
 * (missing files are skipped and counted).
 */
export function licenceClauseDataset(options: ClauseDatasetOptions = {}): ClauseDataset {
  const fn = 'licenceClauseDataset';
  const threshold = options.nearDuplicateJaccard ?? 0.9;
  if (!(threshold > 0 && threshold <= 1))
    throw new ArgumentError(fn, `nearDuplicateJaccard must be in (0, 1], got ${options.nearDuplicateJaccard}`, 'nearDuplicateJaccard');
  const skipped: ClauseDataset['stats']['skipped'] = { missing: 0, changed: 0, entries: [] };
  let paragraphs: Array<LicenceParagraph & { manifestPackage?: string }>;
  if (options.manifest !== undefined) {
    if (!Array.isArray(options.manifest)) throw new ArgumentError(fn, 'manifest must be an array of manifest entries', 'manifest');
    paragraphs = paragraphsFromManifest(options.manifest, skipped);
  } else paragraphs = licenceParagraphs({ docDir: options.docDir });

  // Near-duplicate groups (single linkage); the representative: most copies, then shortest text, then smallest key.
  const parent = paragraphs.map((_, i) => i);
  const find = (x: number): number => (parent[x] === x ? x : (parent[x] = find(parent[x])));
  for (const [i, j] of nearDuplicatePairs(
    paragraphs.map((p) => p.text),
    threshold,
  ))
    parent[find(i)] = find(j);
  const groups = new Map<number, number[]>();
  paragraphs.forEach((_, i) => {
    const r = find(i);
    const g = groups.get(r);
    if (g) g.push(i);
    else groups.set(r, [i]);
  });
  const documents: ClauseDocument[] = [];
  const manifest: ClauseManifestEntry[] = [];
  for (const members of groups.values()) {
    const rep = [...members].sort((a, b) => {
      const pa = paragraphs[a];
      const pb = paragraphs[b];
      return pb.copies - pa.copies || pa.text.length - pb.text.length || (pa.key < pb.key ? -1 : pa.key > pb.key ? 1 : 0);
    })[0];
    const p = paragraphs[rep];
    const packages = [...new Set(members.flatMap((m) => paragraphs[m].packages))].sort();
    const pkg = p.manifestPackage ?? p.packages[0];
    const hash = sha256(p.text);
    const id = hash.slice(0, 16);
    documents.push({ id, package: pkg, text: p.text, spans: annotateClauses(p.text) });
    manifest.push({
      id,
      package: pkg,
      packages,
      path: p.source.path,
      paragraph: p.source.paragraph,
      sha256: hash,
      licence: p.label,
      merged: options.manifest ? p.copies : members.length,
    });
  }
  const order = documents.map((_, i) => i).sort((a, b) => cmp(documents[a].package, documents[b].package) || cmp(documents[a].id, documents[b].id));
  const spans: Record<string, number> = {};
  for (const t of CLAUSE_TYPES) spans[t] = 0;
  let words = 0;
  for (const d of documents) {
    for (const s of d.spans) spans[s.label]++;
    words += d.text.split(/\s+/).filter(Boolean).length;
  }
  return {
    documents: order.map((i) => documents[i]),
    manifest: order.map((i) => manifest[i]),
    stats: {
      paragraphs: paragraphs.length,
      nearDuplicatesRemoved: paragraphs.length - documents.length,
      documents: documents.length,
      packages: new Set(documents.map((d) => d.package)).size,
      words,
      skipped,
      spans,
    },
  };
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

// ---------------------------------------------------------------------------
// Split by source package

export interface ClauseSplitOptions {
  /** Seed of the package order (default 0). */
  seed?: number;
  /** Share of documents for test (default 0.2) and validation (default 0.1), reached by whole packages. */
  testFraction?: number;
  validationFraction?: number;
  /** Spans of each type the test split should hold (default 10), where the type has enough: at most 40% of a type's spans are pulled into test for it. */
  minTestSpans?: number;
  /** Take this many training documents (default: all): rare types first (each type in at least two documents where possible), the rest in seeded order; a smaller budget's set is part of a larger one's. */
  labelBudget?: number;
  /** Seed of the label-budget draw (default: `seed`). */
  budgetSeed?: number;
}

export interface ClauseSplit {
  train: ClauseDocument[];
  validation: ClauseDocument[];
  test: ClauseDocument[];
  /** Training documents left out by labelBudget (unlabelled in-domain text). */
  unusedTrain: ClauseDocument[];
  /** Training documents removed because their text contains, or is part of, a validation or test text (8+ words). */
  overlapDropped: ClauseDocument[];
  /** Spans per type in each part. */
  counts: Record<string, { train: number; validation: number; test: number; unusedTrain: number }>;
  /** Packages per part. */
  packages: { train: string[]; validation: string[]; test: string[] };
}

function typeCounts(docs: ClauseDocument[]): Map<string, number> {
  const m = new Map<string, number>();
  for (const d of docs) for (const s of d.spans) m.set(s.label, (m.get(s.label) ?? 0) + 1);
  return m;
}

/**
 * Splits the documents by package: every document of a package lands in the
 * same part. Packages are taken in a seeded order; the test split first takes
 * the packages that bring a type it still lacks (up to minTestSpans of each
 * type, at most 40% of a type), then fills to testFraction of the documents;
 * validation fills to validationFraction; the rest is training. Training
 * documents whose text contains, or is part of, a held-out text (8 words or
 * more) are removed (overlapDropped), so no held-out text is trained on.
 */
export function clauseSplit(documents: ClauseDocument[], options: ClauseSplitOptions = {}): ClauseSplit {
  const fn = 'clauseSplit';
  if (!Array.isArray(documents) || documents.some((d) => !d || typeof d.package !== 'string' || typeof d.text !== 'string' || !Array.isArray(d.spans)))
    throw new ArgumentError(fn, 'documents must be the array licenceClauseDataset().documents returns (items with package, text and spans)', 'documents');
  const seed = options.seed ?? 0;
  const testFraction = options.testFraction ?? 0.2;
  const validationFraction = options.validationFraction ?? 0.1;
  const minTestSpans = options.minTestSpans ?? 10;
  if (!Number.isInteger(seed)) throw new ArgumentError(fn, `seed must be an integer, got ${options.seed}`, 'seed');
  if (!(testFraction > 0 && validationFraction >= 0 && testFraction + validationFraction < 1))
    throw new ArgumentError(
      fn,
      `testFraction and validationFraction must be a positive and a non-negative share with a sum below 1, got ${testFraction} and ${validationFraction}`,
      'testFraction',
    );
  if (!Number.isInteger(minTestSpans) || minTestSpans < 0)
    throw new ArgumentError(fn, `minTestSpans must be a non-negative integer, got ${options.minTestSpans}`, 'minTestSpans');
  if (options.labelBudget !== undefined && !(Number.isInteger(options.labelBudget) && options.labelBudget > 0))
    throw new ArgumentError(fn, `labelBudget must be a positive integer, got ${options.labelBudget}`, 'labelBudget');

  const byPackage = new Map<string, ClauseDocument[]>();
  for (const d of documents) {
    const l = byPackage.get(d.package);
    if (l) l.push(d);
    else byPackage.set(d.package, [d]);
  }
  const names = [...byPackage.keys()].sort();
  const order = permutation(names.length, seed).map((i) => names[i]);
  const total = typeCounts(documents);
  const target = new Map<string, number>();
  for (const [t, n] of total) target.set(t, Math.min(minTestSpans, Math.floor(n * 0.4)));
  const testCap = Math.ceil(documents.length * Math.min(0.4, testFraction * 2));

  const test = new Set<string>();
  const have = new Map<string, number>();
  let testDocs = 0;
  const addTest = (p: string) => {
    test.add(p);
    testDocs += byPackage.get(p)!.length;
    for (const [t, n] of typeCounts(byPackage.get(p)!)) have.set(t, (have.get(t) ?? 0) + n);
  };
  // rare types first: for each type (fewest spans first), packages that bring it, in seeded order
  const types = [...total.keys()].sort((a, b) => total.get(a)! - total.get(b)! || cmp(a, b));
  for (const t of types) {
    for (const p of order) {
      if ((have.get(t) ?? 0) >= target.get(t)!) break;
      if (test.has(p) || !byPackage.get(p)!.some((d) => d.spans.some((s) => s.label === t))) continue;
      if (testDocs + byPackage.get(p)!.length > testCap) continue;
      addTest(p);
    }
  }
  for (const p of order) if (!test.has(p) && testDocs < testFraction * documents.length) addTest(p);
  const validation = new Set<string>();
  let valDocs = 0;
  for (const p of order)
    if (!test.has(p) && valDocs < validationFraction * documents.length) {
      validation.add(p);
      valDocs += byPackage.get(p)!.length;
    }
  const part = (set: Set<string> | null) => documents.filter((d) => (set ? set.has(d.package) : !test.has(d.package) && !validation.has(d.package)));
  const testDocsList = part(test);
  const validationDocs = part(validation);
  const pool = part(null);

  // training texts that contain, or are part of, a held-out text (the inner one 8+ words)
  const { kept: train, dropped: overlapDropped } = dropContained(pool, [...testDocsList, ...validationDocs]);

  // label budget: a fixed order of the training documents, rare types first
  let chosen = train;
  let unused: ClauseDocument[] = [];
  if (options.labelBudget !== undefined) {
    const perm = permutation(train.length, options.budgetSeed ?? seed).map((i) => train[i]);
    const picked: ClauseDocument[] = [];
    const inPicked = new Set<ClauseDocument>();
    const trainTotal = typeCounts(train);
    const trainTypes = [...trainTotal.keys()].sort((a, b) => trainTotal.get(a)! - trainTotal.get(b)! || cmp(a, b));
    for (let round = 0; round < 2; round++)
      for (const t of trainTypes) {
        const d = perm.find((x) => !inPicked.has(x) && x.spans.some((s) => s.label === t));
        const already = picked.filter((x) => x.spans.some((s) => s.label === t)).length;
        if (d && already <= round) {
          picked.push(d);
          inPicked.add(d);
        }
      }
    for (const d of perm) if (!inPicked.has(d)) picked.push(d);
    const n = Math.min(options.labelBudget, picked.length);
    const take = new Set(picked.slice(0, n));
    chosen = train.filter((d) => take.has(d));
    unused = train.filter((d) => !take.has(d));
  }

  const counts: ClauseSplit['counts'] = {};
  for (const t of CLAUSE_TYPES) counts[t] = { train: 0, validation: 0, test: 0, unusedTrain: 0 };
  const tally = (docs: ClauseDocument[], k: 'train' | 'validation' | 'test' | 'unusedTrain') => {
    for (const d of docs) for (const s of d.spans) (counts[s.label] ??= { train: 0, validation: 0, test: 0, unusedTrain: 0 })[k]++;
  };
  tally(chosen, 'train');
  tally(validationDocs, 'validation');
  tally(testDocsList, 'test');
  tally(unused, 'unusedTrain');
  const pk = (docs: ClauseDocument[]) => [...new Set(docs.map((d) => d.package))].sort();
  return {
    train: chosen,
    validation: validationDocs,
    test: testDocsList,
    unusedTrain: unused,
    overlapDropped,
    counts,
    packages: { train: pk(pool), validation: pk(validationDocs), test: pk(testDocsList) },
  };
}

// Splits `pool` into the documents whose text neither contains nor is part of
// a held-out text (the inner one 8 words or more, after licenceTextKey) and the rest.
function dropContained(pool: ClauseDocument[], heldOut: ClauseDocument[]): { kept: ClauseDocument[]; dropped: ClauseDocument[] } {
  const held = heldOut.map((d) => licenceTextKey(d.text));
  // only held-out texts sharing an 8-word run with a pool text can be inside it or around it
  const runs = new Map<string, number[]>();
  held.forEach((k, i) => {
    const w = k.split(' ');
    for (let j = 0; j + 8 <= w.length; j++) {
      const g = w.slice(j, j + 8).join(' ');
      const l = runs.get(g);
      if (!l) runs.set(g, [i]);
      else if (l[l.length - 1] !== i) l.push(i);
    }
  });
  const kept: ClauseDocument[] = [];
  const dropped: ClauseDocument[] = [];
  for (const d of pool) {
    const k = licenceTextKey(d.text);
    const w = k.split(' ');
    const candidates = new Set<number>();
    for (let j = 0; j + 8 <= w.length; j++) for (const i of runs.get(w.slice(j, j + 8).join(' ')) ?? []) candidates.add(i);
    const padded = ` ${k} `;
    const hit = [...candidates].some((i) => ` ${held[i]} `.includes(padded) || padded.includes(` ${held[i]} `));
    (hit ? dropped : kept).push(d);
  }
  return { kept, dropped };
}

/**
 * k folds by package, for types too rare for one test split: packages are
 * dealt, rarest type first (a package counts under the rarest type it has; ties
 * in a seeded order), each to the fold holding the fewest spans of that type
 * (then the fewest documents). Fold i tests on its own packages and trains on
 * the others' documents, less those whose text contains or is part of a test
 * text (8+ words), as in clauseSplit.
 */
export function clauseFolds(
  documents: ClauseDocument[],
  options: { k?: number; seed?: number } = {},
): Array<{ train: ClauseDocument[]; test: ClauseDocument[]; overlapDropped: ClauseDocument[]; packages: string[] }> {
  const fn = 'clauseFolds';
  if (!Array.isArray(documents) || documents.some((d) => !d || typeof d.package !== 'string' || typeof d.text !== 'string' || !Array.isArray(d.spans)))
    throw new ArgumentError(fn, 'documents must be the array licenceClauseDataset().documents returns (items with package, text and spans)', 'documents');
  const k = options.k ?? 5;
  const seed = options.seed ?? 0;
  if (!Number.isInteger(k) || k < 2) throw new ArgumentError(fn, `k must be an integer >= 2, got ${options.k}`, 'k');
  if (!Number.isInteger(seed)) throw new ArgumentError(fn, `seed must be an integer, got ${options.seed}`, 'seed');
  const byPackage = new Map<string, ClauseDocument[]>();
  for (const d of documents) {
    const l = byPackage.get(d.package);
    if (l) l.push(d);
    else byPackage.set(d.package, [d]);
  }
  const names = [...byPackage.keys()].sort();
  if (names.length < k) throw new ArgumentError(fn, `k = ${k} folds need at least ${k} packages, the documents have ${names.length}`, 'k');
  const total = typeCounts(documents);
  const rank = new Map(permutation(names.length, seed).map((p, r) => [names[p], r]));
  const rarest = (p: string) => {
    const types = [...typeCounts(byPackage.get(p)!).keys()];
    return types.length ? Math.min(...types.map((t) => total.get(t)!)) : Number.POSITIVE_INFINITY;
  };
  const order = names.map((p) => ({ p, r: rarest(p) })).sort((a, b) => a.r - b.r || rank.get(a.p)! - rank.get(b.p)!);
  const folds: Array<{ packages: string[]; docs: number; spans: Map<string, number> }> = Array.from({ length: k }, () => ({
    packages: [],
    docs: 0,
    spans: new Map(),
  }));
  for (const { p } of order) {
    const docs = byPackage.get(p)!;
    const own = typeCounts(docs);
    const key = [...own.keys()].sort((a, b) => total.get(a)! - total.get(b)! || cmp(a, b))[0];
    let best = 0;
    for (let f = 1; f < k; f++) {
      const a = key ? (folds[f].spans.get(key) ?? 0) - (folds[best].spans.get(key) ?? 0) : 0;
      if (a < 0 || (a === 0 && folds[f].docs < folds[best].docs)) best = f;
    }
    folds[best].packages.push(p);
    folds[best].docs += docs.length;
    for (const [t, n] of own) folds[best].spans.set(t, (folds[best].spans.get(t) ?? 0) + n);
  }
  return folds.map((f) => {
    const inFold = new Set(f.packages);
    const test = documents.filter((d) => inFold.has(d.package));
    const { kept, dropped } = dropContained(
      documents.filter((d) => !inFold.has(d.package)),
      test,
    );
    return { train: kept, test, overlapDropped: dropped, packages: f.packages.sort() };
  });
}

// ---------------------------------------------------------------------------
// Files

/** One document per line: {"id","package","text","spans":[{"start","end","label"}]} (the token-classification JSONL form). */
export function clauseJsonl(documents: ClauseDocument[]): string {
  return (
    documents
      .map((d) => JSON.stringify({ id: d.id, package: d.package, text: d.text, spans: d.spans.map((s) => ({ start: s.start, end: s.end, label: s.label })) }))
      .join('\n') + (documents.length ? '\n' : '')
  );
}

/**
 * Writes a split as dir/train.jsonl, validation.jsonl, test.jsonl (and
 * unused-train.jsonl when a label budget left documents out), plus
 * dir/manifest.jsonl when a manifest is given. Each file is written atomically.
 * Returns the paths written.
 */
export function writeClauseDataset(dir: string, split: ClauseSplit, manifest?: ClauseManifestEntry[]): string[] {
  if (typeof dir !== 'string' || !dir) throw new ArgumentError('writeClauseDataset', 'dir must be a folder path', 'dir');
  mkdirSync(dir, { recursive: true });
  const files: Array<[string, string]> = [
    ['train.jsonl', clauseJsonl(split.train)],
    ['validation.jsonl', clauseJsonl(split.validation)],
    ['test.jsonl', clauseJsonl(split.test)],
  ];
  if (split.unusedTrain.length) files.push(['unused-train.jsonl', clauseJsonl(split.unusedTrain)]);
  if (manifest) files.push(['manifest.jsonl', manifest.map((m) => JSON.stringify(m)).join('\n') + (manifest.length ? '\n' : '')]);
  const out: string[] = [];
  for (const [name, body] of files) {
    const p = join(dir, name);
    const bytes = Buffer.from(body);
    writeAtomic(p, (fd) => writeAll(fd, bytes));
    out.push(p);
  }
  return out;
}

/** Reads a manifest.jsonl written by writeClauseDataset; errors name the file and line. */
export function readClauseManifest(path: string): ClauseManifestEntry[] {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new DataError(`readClauseManifest: cannot read ${path}: ${(err as Error).message}`, { path, cause: err });
  }
  const out: ClauseManifestEntry[] = [];
  text.split('\n').forEach((line, i) => {
    if (!line.trim()) return;
    let e: ClauseManifestEntry;
    try {
      e = JSON.parse(line);
    } catch (err) {
      throw new DataError(`${path}:${i + 1}: not valid JSON: ${(err as Error).message}`, { path, row: i + 1 });
    }
    for (const k of ['id', 'package', 'path', 'sha256'] as const)
      if (typeof e?.[k] !== 'string') throw new DataError(`${path}:${i + 1}: field '${k}' must be a string`, { path, row: i + 1 });
    if (!Number.isInteger(e.paragraph)) throw new DataError(`${path}:${i + 1}: field 'paragraph' must be an integer`, { path, row: i + 1 });
    out.push(e);
  });
  return out;
}

// ---------------------------------------------------------------------------
// choosealicense.com texts (Debian's ruby-licensee): an independent, human-tagged check

export interface ChoosealicenseText {
  /** File name without .txt, e.g. 'mit'. */
  id: string;
  title: string;
  spdxId: string;
  permissions: string[];
  conditions: string[];
  limitations: string[];
  /** The licence text after the front matter. */
  text: string;
}

const LICENSEE_GLOB_ROOT = '/usr/share/rubygems-integration/all/gems';

function licenseeFolder(root: string): string | undefined {
  let gems: string[];
  try {
    gems = readdirSync(root)
      .filter((g) => /^licensee-/.test(g))
      .sort();
  } catch {
    return undefined;
  }
  for (const g of gems.reverse()) {
    const d = join(root, g, 'vendor', 'choosealicense.com', '_licenses');
    if (existsSync(d)) return d;
  }
  return undefined;
}

/**
 * The folder of choosealicense.com licence texts shipped by Debian's
 * ruby-licensee: the installed package's, or, when it is not installed, the
 * package downloaded with `apt-get download` and unpacked with `dpkg -x` into
 * cacheDir (no root needed). Throws a DataError saying what to install when
 * neither works.
 */
export function choosealicenseFolder(options: { cacheDir?: string } = {}): string {
  const installed = licenseeFolder(LICENSEE_GLOB_ROOT);
  if (installed) return installed;
  if (!options.cacheDir)
    throw new DataError(
      'choosealicenseFolder: ruby-licensee is not installed; install it (apt-get install ruby-licensee) or pass cacheDir to download and unpack it there',
    );
  const unpacked = join(options.cacheDir, 'ruby-licensee');
  const cached = licenseeFolder(join(unpacked, LICENSEE_GLOB_ROOT));
  if (cached) return cached;
  mkdirSync(options.cacheDir, { recursive: true });
  const dl = spawnSync('apt-get', ['download', 'ruby-licensee'], { cwd: options.cacheDir, encoding: 'utf8', timeout: 120_000 });
  const deb = existsSync(options.cacheDir)
    ? readdirSync(options.cacheDir)
        .filter((f) => /^ruby-licensee_.*\.deb$/.test(f))
        .sort()
        .pop()
    : undefined;
  if (!deb)
    throw new DataError(
      `choosealicenseFolder: ruby-licensee is not installed and 'apt-get download ruby-licensee' failed (${dl.error?.message ?? dl.stderr?.trim().split('\n').pop() ?? `exit ${dl.status}`}); install it with apt-get install ruby-licensee`,
    );
  const x = spawnSync('dpkg', ['-x', join(options.cacheDir, deb), unpacked], { encoding: 'utf8' });
  if (x.error || x.status !== 0) throw new DataError(`choosealicenseFolder: dpkg -x ${deb} failed: ${x.error?.message ?? x.stderr.trim()}`);
  const folder = licenseeFolder(join(unpacked, LICENSEE_GLOB_ROOT));
  if (!folder) throw new DataError(`choosealicenseFolder: ${deb} holds no vendor/choosealicense.com/_licenses folder`);
  return folder;
}

/** Parses one choosealicense licence file (YAML front matter between '---' lines, then the text). */
export function parseChoosealicense(source: string, id = 'licence'): ChoosealicenseText {
  const m = /^---\n([\s\S]*?)\n---\n([\s\S]*)$/.exec(source.replace(/\r/g, ''));
  if (!m) throw new DataError(`${id}: no '---' front matter`);
  const lists: Record<string, string[]> = { permissions: [], conditions: [], limitations: [] };
  let current: string | undefined;
  let title = '';
  let spdx = '';
  for (const line of m[1].split('\n')) {
    const key = /^([a-z-]+):\s*(.*)$/.exec(line);
    if (key) {
      current = key[1] in lists ? key[1] : undefined;
      if (key[1] === 'title') title = key[2].trim();
      if (key[1] === 'spdx-id') spdx = key[2].trim();
      continue;
    }
    const item = /^\s+-\s+(\S+)/.exec(line);
    if (item && current) lists[current].push(item[1]);
  }
  return { id, title, spdxId: spdx, permissions: lists.permissions, conditions: lists.conditions, limitations: lists.limitations, text: m[2].trim() };
}

/** Reads every choosealicense text of a folder (choosealicenseFolder), sorted by id. */
export function choosealicenseTexts(folder: string): ChoosealicenseText[] {
  let files: string[];
  try {
    files = readdirSync(folder)
      .filter((f) => f.endsWith('.txt'))
      .sort();
  } catch (err) {
    throw new DataError(`choosealicenseTexts: cannot list ${folder}: ${(err as Error).message}`, { path: folder, cause: err });
  }
  return files.map((f) => parseChoosealicense(readFileSync(join(folder, f), 'utf8'), f.slice(0, -4)));
}

/**
 * Which choosealicense tag each clause type is checked against, document by
 * document (a tag present <-> at least one span of the type). Only the pairs
 * whose meanings coincide are listed.
 */
export const CHOOSEALICENSE_TAGS: ReadonlyArray<{ label: ClauseType; tag: string; note: string }> = [
  { label: 'warranty', tag: 'limitations/warranty', note: 'the licence states it provides no warranty' },
  { label: 'liability', tag: 'limitations/liability', note: 'the licence limits the authors\u2019 liability' },
  { label: 'trademark', tag: 'limitations/trademark-use', note: 'the licence states it grants no trademark rights' },
  { label: 'patent', tag: 'permissions/patent-use or limitations/patent-use', note: 'an express patent grant, or an express refusal of one' },
  { label: 'notice', tag: 'conditions/include-copyright (or include-copyright--source)', note: 'a copy of the licence and copyright notice must be included' },
  { label: 'altered-marked', tag: 'conditions/document-changes', note: 'changes made to the code must be documented' },
];

/** The document-level truth of a CHOOSEALICENSE_TAGS row for one text. */
export function choosealicenseHasTag(t: ChoosealicenseText, label: ClauseType): boolean {
  switch (label) {
    case 'warranty':
      return t.limitations.includes('warranty');
    case 'liability':
      return t.limitations.includes('liability');
    case 'trademark':
      return t.limitations.includes('trademark-use');
    case 'patent':
      return t.permissions.includes('patent-use') || t.limitations.includes('patent-use');
    case 'notice':
      return t.conditions.some((c) => c.startsWith('include-copyright'));
    case 'altered-marked':
      return t.conditions.includes('document-changes');
    default:
      throw new ArgumentError('choosealicenseHasTag', `no choosealicense tag is mapped to ${label}`, 'label');
  }
}
