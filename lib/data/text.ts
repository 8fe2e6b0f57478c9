// Text classification data from CSV and JSONL (a text column and a label
// column; labels as names or ids), and token-level BIO tags from CoNLL-style
// files. Problems name the file and the row.
import { readFileSync } from 'node:fs';
import { DataError } from '../errors.js';

export interface TextDataset {
  texts: string[];
  /** Class index per sample. */
  labels: number[];
  /** Class names, index = class id (sorted names, as torchvision sorts folders). */
  classes: string[];
  counts: Record<string, number>;
}

/** Parses CSV (RFC 4180: quotes, doubled quotes, newlines inside quotes). Returns rows with their line numbers. */
export function parseCsv(text: string, path = 'csv'): Array<{ line: number; fields: string[] }> {
  const rows: Array<{ line: number; fields: string[] }> = [];
  let field = '';
  let fields: string[] = [];
  let inQuotes = false;
  let line = 1;
  let rowLine = 1;
  let fieldStarted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (inQuotes) {
      if (c === '"') {
        if (text[i + 1] === '"') {
          field += '"';
          i++;
        } else inQuotes = false;
      } else {
        if (c === '\n') line++;
        field += c;
      }
      continue;
    }
    if (c === '"' && !fieldStarted) {
      inQuotes = true;
      fieldStarted = true;
      continue;
    }
    if (c === ',') {
      fields.push(field);
      field = '';
      fieldStarted = false;
      continue;
    }
    if (c === '\r' && text[i + 1] === '\n') continue;
    if (c === '\n') {
      fields.push(field);
      if (fields.length > 1 || fields[0] !== '') rows.push({ line: rowLine, fields });
      fields = [];
      field = '';
      fieldStarted = false;
      line++;
      rowLine = line;
      continue;
    }
    field += c;
    fieldStarted = true;
  }
  if (inQuotes) throw new Error(`${path}:${rowLine}: unterminated quoted field`);
  if (field !== '' || fields.length) {
    fields.push(field);
    rows.push({ line: rowLine, fields });
  }
  return rows;
}

export interface TextDatasetOptions {
  textColumn?: string;
  labelColumn?: string;
  /** Fixed class names in id order; otherwise the sorted distinct labels. Unknown labels are then an error. */
  classes?: string[];
  /** Skip rows with an empty text or label instead of failing (they are counted in `skipped`). */
  skipInvalid?: boolean;
}

function build(path: string, rows: Array<{ where: string; text: unknown; label: unknown }>, o: TextDatasetOptions): TextDataset & { skipped: number } {
  const texts: string[] = [];
  const raw: string[] = [];
  let skipped = 0;
  for (const r of rows) {
    const bad =
      typeof r.text !== 'string' || r.text === ''
        ? 'empty or missing text'
        : r.label === undefined || r.label === null || r.label === ''
          ? 'empty or missing label'
          : null;
    if (bad) {
      if (o.skipInvalid) {
        skipped++;
        continue;
      }
      throw new Error(`${r.where}: ${bad}`);
    }
    texts.push(r.text as string);
    raw.push(String(r.label));
  }
  const classes = o.classes ?? [...new Set(raw)].sort((a, b) => (/^\d+$/.test(a) && /^\d+$/.test(b) ? Number(a) - Number(b) : a < b ? -1 : a > b ? 1 : 0));
  const index = new Map(classes.map((c, i) => [c, i]));
  // numeric labels given as ids into `classes`
  const labels = raw.map((l, i) => {
    if (index.has(l)) return index.get(l)!;
    if (o.classes && /^\d+$/.test(l) && Number(l) < o.classes.length) return Number(l);
    throw new Error(`${path}: sample ${i + 1}: unknown label ${JSON.stringify(l)} (classes: ${classes.join(', ')})`);
  });
  const counts: Record<string, number> = {};
  for (const l of labels) counts[classes[l]] = (counts[classes[l]] ?? 0) + 1;
  return { texts, labels, classes, counts, skipped };
}

/** One row of a CSV or JSONL text file: its 1-based line, the text and the label fields as found (undefined when absent). */
export interface TextRow {
  line: number;
  where: string;
  text: unknown;
  label: unknown;
}

/** Whether a file holds JSON Lines (by extension; otherwise by its first character) rather than CSV. */
export function isJsonl(path: string, content: string): boolean {
  if (/\.(jsonl|ndjson)$/i.test(path)) return true;
  if (/\.csv$/i.test(path)) return false;
  return content.trimStart().startsWith('{');
}

/**
 * The rows of a CSV (with a header) or JSONL file: the text column must exist;
 * the label column must too unless `labelOptional` (for prediction inputs).
 */
export function readTextRows(
  path: string,
  o: { textColumn?: string; labelColumn?: string; labelOptional?: boolean; format?: 'csv' | 'jsonl' } = {},
): TextRow[] {
  const textCol = o.textColumn ?? 'text';
  const labelCol = o.labelColumn ?? 'label';
  const content = readFileSync(path, 'utf8');
  const jsonl = o.format ? o.format === 'jsonl' : isJsonl(path, content);
  if (jsonl) {
    return content
      .split('\n')
      .map((l, i) => ({ l, line: i + 1 }))
      .filter((r) => r.l.trim() !== '')
      .map(({ l, line }) => {
        let obj: Record<string, unknown>;
        try {
          obj = JSON.parse(l);
        } catch (err) {
          throw new Error(`${path}:${line}: not valid JSON: ${(err as Error).message}`);
        }
        if (!obj || typeof obj !== 'object' || Array.isArray(obj)) throw new Error(`${path}:${line}: expected a JSON object`);
        return {
          line,
          where: `${path}:${line}`,
          text: Object.hasOwn(obj, textCol) ? obj[textCol] : undefined,
          label: Object.hasOwn(obj, labelCol) ? (obj[labelCol] ?? undefined) : undefined,
        };
      });
  }
  const rows = parseCsv(content, path);
  if (!rows.length) throw new Error(`${path}: empty file`);
  const header = rows[0].fields.map((h) => h.trim());
  const ti = header.indexOf(textCol);
  const li = header.indexOf(labelCol);
  if (ti < 0 || (li < 0 && !o.labelOptional))
    throw new Error(`${path}: no column ${JSON.stringify(ti < 0 ? textCol : labelCol)} in the header (columns: ${header.join(', ')})`);
  return rows.slice(1).map((r) => {
    if (r.fields.length !== header.length) throw new Error(`${path}:${r.line}: ${r.fields.length} fields, the header has ${header.length}`);
    return { line: r.line, where: `${path}:${r.line}`, text: r.fields[ti], label: li >= 0 ? r.fields[li] : undefined };
  });
}

function readDataset(path: string, format: 'csv' | 'jsonl', options: TextDatasetOptions) {
  const rows = readTextRows(path, { textColumn: options.textColumn, labelColumn: options.labelColumn, format });
  // a header alone (CSV) or blank lines (JSONL) used to surface later as "the data has 0 class"
  if (!rows.length) throw new DataError(`${path}: no data rows${format === 'csv' ? ' (only a header)' : ''}`, { path });
  const d = build(path, rows, options);
  if (!d.texts.length) throw new DataError(`${path}: no usable rows (all ${d.skipped} have an empty or missing text or label)`, { path });
  return d;
}

export function readCsvDataset(path: string, options: TextDatasetOptions = {}) {
  return readDataset(path, 'csv', options);
}

export function readJsonlDataset(path: string, options: TextDatasetOptions = {}) {
  return readDataset(path, 'jsonl', options);
}

/**
 * CoNLL-style token files: one "token ... tag" per line, blank lines between
 * sentences. Tags are only checked for their form (O, B-/I-/E-/S-X); for a
 * scheme's order checks, offsets and spans see data.readConllTags.
 */
export function readConll(path: string, options: { tagColumn?: number } = {}): { sentences: Array<{ tokens: string[]; tags: string[] }>; tags: string[] } {
  const sentences: Array<{ tokens: string[]; tags: string[] }> = [];
  let tokens: string[] = [];
  let tags: string[] = [];
  const flush = () => {
    if (tokens.length) sentences.push({ tokens, tags });
    tokens = [];
    tags = [];
  };
  let content: string;
  try {
    content = readFileSync(path, 'utf8');
  } catch (err) {
    throw new DataError(`${path}: cannot read: ${(err as Error).message}`, { path, cause: err });
  }
  content.split('\n').forEach((raw, i) => {
    const line = raw.trim();
    const where = `${path}:${i + 1}`;
    if (line === '' || line.startsWith('-DOCSTART-')) return flush();
    const cols = line.split(/\s+/);
    if (cols.length < 2) throw new DataError(`${where}: expected "token tag", got ${JSON.stringify(line)}`, { path, row: i + 1 });
    const column = options.tagColumn ?? cols.length - 1;
    if (column >= cols.length) throw new DataError(`${where}: no tag column ${column} (the line has ${cols.length} columns)`, { path, row: i + 1 });
    const tag = cols[column];
    if (!/^(O|[BIES]-.+)$/.test(tag))
      throw new DataError(`${where}: tag ${JSON.stringify(tag)} is not a BIO tag (O, B-X, I-X; or E-X, S-X)`, { path, row: i + 1 });
    tokens.push(cols[0]);
    tags.push(tag);
  });
  flush();
  return { sentences, tags: [...new Set(sentences.flatMap((s) => s.tags))].sort() };
}
