// The demo's report folder: results.md and results.json (the tables) and
// curves.svg / curves.png (validation accuracy and training loss per epoch).
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { chartGridSvg, writeChart, type LegendItem, type LineChart } from '../../reports/charts.js';

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

/** Two panels side by side (e.g. validation accuracy and training loss, per epoch) with one legend; `dashed` names what dashed curves show. */
export function curvesSvg(
  left: { title: string; yLabel: string; curves: Curve[] },
  right: { title: string; yLabel: string; curves: Curve[] },
  dashed = 'dashed',
): string {
  const chart = (p: { title: string; yLabel: string; curves: Curve[] }): LineChart => ({
    title: p.title,
    xLabel: 'epoch',
    yLabel: p.yLabel,
    series: p.curves.map((c, j) => ({
      name: c.label,
      points: c.values.map((v, i): [number, number] => [i + 1, v]),
      colour: c.colour ?? j,
      dashed: c.dashed,
    })),
  });
  const entries: LegendItem[] = left.curves.map((c, j) => ({ name: c.label, colour: c.colour ?? j })).filter((_, j) => !left.curves[j].dashed);
  const legend = left.curves.some((c) => c.dashed) ? [...entries, { name: dashed, colour: -1, dashed: true }] : entries;
  return chartGridSvg([chart(left), chart(right)], { columns: 2, legend, height: 420 });
}

/** Writes results.md and results.json, and curves.svg / curves.png when a chart is given. */
export async function writeReport(
  dir: string,
  o: { title: string; intro: string[]; tables: Table[]; svg?: string; caption?: string; json: unknown },
): Promise<string[]> {
  mkdirSync(dir, { recursive: true });
  const md = [`# ${o.title}`, '', ...o.intro, ''];
  for (const t of o.tables) {
    md.push(`## ${t.title}`, '', markdownTable(t), '');
    if (t.notes?.length) md.push(...t.notes.map((n) => `- ${n}`), '');
  }
  if (o.svg) md.push(`![${o.caption ?? 'validation accuracy and training loss per epoch'}](curves.png)`, '');
  const files = ['results.md', 'results.json', ...(o.svg ? ['curves.svg', 'curves.png'] : [])].map((f) => join(dir, f));
  writeFileSync(files[0], md.join('\n'));
  writeFileSync(files[1], JSON.stringify(o.json, null, 2) + '\n');
  if (o.svg) await writeChart(o.svg, join(dir, 'curves'));
  return files;
}
