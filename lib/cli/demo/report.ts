// The demo's report folder: results.md and results.json (the tables) and
// curves.svg / curves.png (validation accuracy and training loss per epoch).
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';

/** Mean and sample standard deviation of one figure over seeds, as the demos' tables print them. */
export const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
export const sd = (xs: number[]) => (xs.length < 2 ? 0 : Math.sqrt(xs.reduce((a, x) => a + (x - mean(xs)) ** 2, 0) / (xs.length - 1)));
/** "mean ± sd" with `digits` decimals (the value alone for one seed), after multiplying by `scale`. */
export const fmt = (xs: number[], digits: number, scale = 1) =>
  xs.length > 1 ? `${(mean(xs) * scale).toFixed(digits)} ± ${(sd(xs) * scale).toFixed(digits)}` : (xs[0] * scale).toFixed(digits);

export interface Row {
  [column: string]: string | number | null;
}
export interface Table {
  title: string;
  columns: string[];
  rows: Row[];
  notes?: string[];
}
export interface Curve {
  label: string;
  values: number[];
  /** Index into the palette (default: the curve's position); a dashed curve shares its colour with the solid one it varies. */
  colour?: number;
  /** Drawn dashed and left out of the legend, which explains dashes once (curvesSvg's `dashed`). */
  dashed?: boolean;
}

function cell(v: string | number | null | undefined): string {
  if (v === null || v === undefined) return '–';
  return typeof v === 'number' ? String(v) : v;
}

export function markdownTable(t: Table): string {
  const lines = [`| ${t.columns.join(' | ')} |`, `|${t.columns.map(() => '---').join('|')}|`];
  for (const r of t.rows) lines.push(`| ${t.columns.map((c) => cell(r[c])).join(' | ')} |`);
  return lines.join('\n');
}

const COLOURS = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b', '#e377c2'];
const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;');

/** One line-chart panel as SVG elements, placed at (x0, y0). */
function panel(title: string, curves: Curve[], x0: number, y0: number, w: number, h: number, yLabel: string): string {
  const all = curves.flatMap((c) => c.values).filter(Number.isFinite);
  let lo = Math.min(...all);
  let hi = Math.max(...all);
  if (!(hi > lo)) {
    lo -= 0.5;
    hi += 0.5;
  }
  const pad = (hi - lo) * 0.05;
  lo -= pad;
  hi += pad;
  const n = Math.max(...curves.map((c) => c.values.length));
  const px = (i: number) => x0 + 50 + (n > 1 ? (i / (n - 1)) * (w - 60) : 0);
  const py = (v: number) => y0 + 30 + (1 - (v - lo) / (hi - lo)) * (h - 70);
  const out: string[] = [`<text x="${x0 + w / 2}" y="${y0 + 18}" text-anchor="middle" font-size="14" font-weight="bold">${esc(title)}</text>`];
  out.push(`<rect x="${x0 + 50}" y="${y0 + 30}" width="${w - 60}" height="${h - 70}" fill="none" stroke="#999"/>`);
  for (let k = 0; k <= 4; k++) {
    const v = lo + ((hi - lo) * k) / 4;
    out.push(`<text x="${x0 + 45}" y="${py(v) + 4}" text-anchor="end" font-size="10">${v.toFixed(hi - lo < 0.5 ? 3 : 2)}</text>`);
    out.push(`<line x1="${x0 + 50}" x2="${x0 + w - 10}" y1="${py(v)}" y2="${py(v)}" stroke="#eee"/>`);
  }
  for (let i = 0; i < n; i += Math.max(1, Math.ceil(n / 10)))
    out.push(`<text x="${px(i)}" y="${y0 + h - 25}" text-anchor="middle" font-size="10">${i + 1}</text>`);
  out.push(`<text x="${x0 + w / 2}" y="${y0 + h - 8}" text-anchor="middle" font-size="11">epoch</text>`);
  out.push(`<text x="${x0 + 12}" y="${y0 + h / 2}" text-anchor="middle" font-size="11" transform="rotate(-90 ${x0 + 12} ${y0 + h / 2})">${esc(yLabel)}</text>`);
  curves.forEach((c, j) => {
    const pts = c.values.map((v, i) => `${px(i).toFixed(1)},${py(v).toFixed(1)}`).join(' ');
    const dash = c.dashed ? ' stroke-dasharray="6 4"' : '';
    out.push(`<polyline points="${pts}" fill="none" stroke="${COLOURS[(c.colour ?? j) % COLOURS.length]}" stroke-width="2"${dash}/>`);
  });
  return out.join('\n');
}

/** Two panels side by side (e.g. validation accuracy and training loss) with one legend; `dashed` names what dashed curves show. */
export function curvesSvg(
  left: { title: string; yLabel: string; curves: Curve[] },
  right: { title: string; yLabel: string; curves: Curve[] },
  dashed = 'dashed',
): string {
  const W = 1000,
    H = 420;
  const entries = left.curves.map((c, j) => ({ ...c, colour: c.colour ?? j })).filter((c) => !c.dashed);
  const legendItems = left.curves.some((c) => c.dashed) ? [...entries, { label: dashed, colour: -1, dashed: true }] : entries;
  const legend = legendItems
    .map((c, j) => {
      const x = 60 + (j % 4) * 230,
        y = H - 40 + Math.floor(j / 4) * 18;
      const stroke = c.colour < 0 ? '#555' : COLOURS[c.colour % COLOURS.length];
      return `<line x1="${x}" x2="${x + 24}" y1="${y}" y2="${y}" stroke="${stroke}" stroke-width="3"${c.dashed ? ' stroke-dasharray="6 4"' : ''}/><text x="${x + 30}" y="${y + 4}" font-size="12">${esc(c.label)}</text>`;
    })
    .join('\n');
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="DejaVu Sans, sans-serif">
<rect width="${W}" height="${H}" fill="white"/>
${panel(left.title, left.curves, 0, 0, W / 2, H - 50, left.yLabel)}
${panel(right.title, right.curves, W / 2, 0, W / 2, H - 50, right.yLabel)}
${legend}
</svg>
`;
}

/** Writes results.md, results.json, curves.svg and curves.png into `dir`; returns the file paths. */
/** Writes results.md and results.json, and curves.svg / curves.png when a chart is given. */
export async function writeReport(dir: string, o: { title: string; intro: string[]; tables: Table[]; svg?: string; json: unknown }): Promise<string[]> {
  mkdirSync(dir, { recursive: true });
  const md = [`# ${o.title}`, '', ...o.intro, ''];
  for (const t of o.tables) {
    md.push(`## ${t.title}`, '', markdownTable(t), '');
    if (t.notes?.length) md.push(...t.notes.map((n) => `- ${n}`), '');
  }
  if (o.svg) md.push('![validation accuracy and training loss per epoch](curves.png)', '');
  const files = ['results.md', 'results.json', ...(o.svg ? ['curves.svg', 'curves.png'] : [])].map((f) => join(dir, f));
  writeFileSync(files[0], md.join('\n'));
  writeFileSync(files[1], JSON.stringify(o.json, null, 2) + '\n');
  if (o.svg) {
    writeFileSync(files[2], o.svg);
    await sharp(Buffer.from(o.svg)).png().toFile(files[3]);
  }
  return files;
}
