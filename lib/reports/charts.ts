// Line charts as plain SVG (no browser, no canvas), rendered to PNG by sharp.
// Used by the demo's report, `train`'s curves.png, `lr-find`'s plot and `eval`'s pictures.
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import sharp from 'sharp';

export interface ChartSeries {
  name: string;
  points: Array<[number, number]>;
  /** Index into the palette (default: the series' position); a dashed series shares its colour with the solid one it varies. */
  colour?: number;
  dashed?: boolean;
  /** Left out of the legend (e.g. dashed variants a shared legend explains once). */
  hideInLegend?: boolean;
}

export interface LineChart {
  title: string;
  xLabel: string;
  yLabel: string;
  xScale?: 'linear' | 'log';
  yScale?: 'linear' | 'log';
  series: ChartSeries[];
  /** A vertical dashed line with a label (e.g. the LR finder's suggestion). */
  marker?: { x: number; label: string };
}

export interface LegendItem {
  name: string;
  colour?: number;
  dashed?: boolean;
}

export const PALETTE = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f', '#bcbd22', '#17becf'];
const FONT = 'DejaVu Sans, sans-serif';

export const escapeXml = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
const colourOf = (i: number) => (i < 0 ? '#555' : PALETTE[i % PALETTE.length]);

/** Readable tick label: plain decimals for ordinary magnitudes, exponent form for very small or large ones. */
export function formatTick(v: number): string {
  if (v === 0) return '0';
  const a = Math.abs(v);
  if (a >= 1e5 || a < 1e-3) return v.toExponential(0).replace('e+', 'e');
  return String(Number(v.toPrecision(4)));
}

/** "Nice" linear ticks (steps of 1, 2 or 5 times a power of ten) covering [lo, hi]. */
export function niceTicks(lo: number, hi: number, count = 5): number[] {
  const raw = (hi - lo) / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const norm = raw / mag;
  const step = (norm < 1.5 ? 1 : norm < 3 ? 2 : norm < 7 ? 5 : 10) * mag;
  const ticks: number[] = [];
  for (let t = Math.ceil(lo / step - 1e-9) * step; t <= hi + step * 1e-9; t += step) ticks.push(Math.abs(t) < step * 1e-9 ? 0 : t);
  return ticks;
}

/** Powers of ten within [lo, hi] (with 2x and 5x when fewer than three decades are shown). */
function logTicks(lo: number, hi: number): number[] {
  const a = Math.floor(Math.log10(lo));
  const b = Math.ceil(Math.log10(hi));
  const mults = b - a < 3 ? [1, 2, 5] : [1];
  const ticks: number[] = [];
  for (let e = a; e <= b; e++)
    for (const m of mults) {
      const t = m * 10 ** e;
      if (t >= lo * (1 - 1e-9) && t <= hi * (1 + 1e-9)) ticks.push(t);
    }
  return ticks;
}

interface Axis {
  map: (v: number) => number;
  ticks: number[];
}

/** An axis mapping data values in `values` onto pixels [p0, p1] (p1 may be smaller: the y axis grows upwards). */
function axis(values: number[], scale: 'linear' | 'log', p0: number, p1: number, pad: number): Axis {
  const usable = values.filter((v) => Number.isFinite(v) && (scale === 'linear' || v > 0));
  let lo = usable.length ? Math.min(...usable) : scale === 'log' ? 1 : 0;
  let hi = usable.length ? Math.max(...usable) : scale === 'log' ? 10 : 1;
  if (scale === 'log') {
    let l = Math.log10(lo),
      h = Math.log10(hi);
    if (!(h > l)) {
      l -= 0.5;
      h += 0.5;
    }
    const d = (h - l) * pad;
    l -= d;
    h += d;
    const ticks = logTicks(10 ** l, 10 ** h);
    return { map: (v) => p0 + ((Math.log10(v) - l) / (h - l)) * (p1 - p0), ticks };
  }
  if (!(hi > lo) && usable.length && usable.every(Number.isInteger)) {
    lo -= 1;
    hi += 1;
  } else if (!(hi > lo)) {
    lo -= lo === 0 ? 0.5 : Math.abs(lo) * 0.1;
    hi += hi === 0 ? 0.5 : Math.abs(hi) * 0.1;
  }
  const d = (hi - lo) * pad;
  lo -= d;
  hi += d;
  let ticks = niceTicks(lo, hi);
  // Epochs and steps are whole numbers: no tick at 1.5 epochs.
  if (usable.every(Number.isInteger)) {
    const whole = ticks.filter(Number.isInteger);
    if (whole.length >= 2) ticks = whole;
  }
  return { map: (v) => p0 + ((v - lo) / (hi - lo)) * (p1 - p0), ticks };
}

/** Width of one legend entry: the longest name (about 7 px a character at 12 px) plus the line sample. */
const legendItemWidth = (items: LegendItem[]) => Math.max(120, 50 + 7 * Math.max(...items.map((i) => i.name.length)));

function legendSvg(items: LegendItem[], x0: number, y0: number, width: number): string {
  const itemWidth = legendItemWidth(items);
  const perRow = Math.max(1, Math.floor(width / itemWidth));
  return items
    .map((item, j) => {
      const x = x0 + (j % perRow) * itemWidth;
      const y = y0 + Math.floor(j / perRow) * 18;
      const dash = item.dashed ? ' stroke-dasharray="6 4"' : '';
      return `<line x1="${x}" x2="${x + 24}" y1="${y}" y2="${y}" stroke="${colourOf(item.colour ?? j)}" stroke-width="3"${dash}/><text x="${x + 30}" y="${y + 4}" font-size="12">${escapeXml(item.name)}</text>`;
    })
    .join('\n');
}

const legendRows = (items: LegendItem[], width: number) => Math.ceil(items.length / Math.max(1, Math.floor(width / legendItemWidth(items))));

function ownLegend(chart: LineChart): LegendItem[] {
  if (chart.series.length < 2) return [];
  return chart.series.map((s, j) => ({ name: s.name, colour: s.colour ?? j, dashed: s.dashed, hide: s.hideInLegend })).filter((s) => !s.hide);
}

/** One chart's SVG elements in the box (x0, y0, w, h), its own legend (if any) at the bottom of the box. */
function panelSvg(chart: LineChart, x0: number, y0: number, w: number, h: number, legend: LegendItem[], legendH: number): string {
  const left = x0 + 66,
    right = x0 + w - 14,
    top = y0 + 32,
    bottom = y0 + h - 44 - legendH;
  const xs = chart.series.flatMap((s) => s.points.map((p) => p[0]));
  if (chart.marker) xs.push(chart.marker.x);
  const ys = chart.series.flatMap((s) => s.points.map((p) => p[1]));
  const xa = axis(xs, chart.xScale ?? 'linear', left, right, 0.02);
  const ya = axis(ys, chart.yScale ?? 'linear', bottom, top, 0.05);
  const out: string[] = [
    `<text x="${x0 + w / 2}" y="${y0 + 19}" text-anchor="middle" font-size="14" font-weight="bold">${escapeXml(chart.title)}</text>`,
    `<rect x="${left}" y="${top}" width="${right - left}" height="${bottom - top}" fill="none" stroke="#999"/>`,
  ];
  for (const t of ya.ticks) {
    const y = ya.map(t).toFixed(1);
    out.push(`<line x1="${left}" x2="${right}" y1="${y}" y2="${y}" stroke="#eee"/>`);
    out.push(`<text x="${left - 5}" y="${Number(y) + 4}" text-anchor="end" font-size="10">${formatTick(t)}</text>`);
  }
  for (const t of xa.ticks) {
    const x = xa.map(t).toFixed(1);
    out.push(`<line x1="${x}" x2="${x}" y1="${bottom}" y2="${bottom + 4}" stroke="#999"/>`);
    out.push(`<text x="${x}" y="${bottom + 16}" text-anchor="middle" font-size="10">${formatTick(t)}</text>`);
  }
  out.push(`<text x="${(left + right) / 2}" y="${bottom + 34}" text-anchor="middle" font-size="11">${escapeXml(chart.xLabel)}</text>`);
  const ym = (top + bottom) / 2;
  out.push(`<text x="${x0 + 13}" y="${ym}" text-anchor="middle" font-size="11" transform="rotate(-90 ${x0 + 13} ${ym})">${escapeXml(chart.yLabel)}</text>`);
  const logX = chart.xScale === 'log',
    logY = chart.yScale === 'log';
  chart.series.forEach((s, j) => {
    const pts = s.points.filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y) && (!logX || x > 0) && (!logY || y > 0));
    const colour = colourOf(s.colour ?? j);
    const dash = s.dashed ? ' stroke-dasharray="6 4"' : '';
    if (pts.length === 1) {
      out.push(`<circle cx="${xa.map(pts[0][0]).toFixed(1)}" cy="${ya.map(pts[0][1]).toFixed(1)}" r="3" fill="${colour}"/>`);
    } else if (pts.length > 1) {
      const coords = pts.map(([x, y]) => `${xa.map(x).toFixed(1)},${ya.map(y).toFixed(1)}`).join(' ');
      out.push(`<polyline points="${coords}" fill="none" stroke="${colour}" stroke-width="2"${dash}/>`);
    }
  });
  if (chart.marker && Number.isFinite(chart.marker.x) && (!logX || chart.marker.x > 0)) {
    const x = xa.map(chart.marker.x).toFixed(1);
    out.push(`<line x1="${x}" x2="${x}" y1="${top}" y2="${bottom}" stroke="#d62728" stroke-width="1.5" stroke-dasharray="4 3"/>`);
    const anchor = Number(x) > (left + right) / 2 ? 'end' : 'start';
    const dx = anchor === 'end' ? -4 : 4;
    out.push(`<text x="${Number(x) + dx}" y="${top + 14}" text-anchor="${anchor}" font-size="11" fill="#d62728">${escapeXml(chart.marker.label)}</text>`);
  }
  if (legend.length) out.push(legendSvg(legend, left, bottom + 52, w - 70));
  return out.join('\n');
}

function svgDocument(width: number, height: number, body: string): string {
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="${FONT}">
<rect width="${width}" height="${height}" fill="white"/>
${body}
</svg>
`;
}

/** One line chart as a standalone SVG document (legend below the plot when there are several series). */
export function lineChartSvg(chart: LineChart, size: { width?: number; height?: number } = {}): string {
  const width = size.width ?? 640;
  const legend = ownLegend(chart);
  const legendH = legend.length ? legendRows(legend, width - 70) * 18 + 6 : 0;
  const height = (size.height ?? 400) + legendH;
  return svgDocument(width, height, panelSvg(chart, 0, 0, width, height, legend, legendH));
}

/**
 * Several charts in a grid (`columns` per row). With `legend`, one shared legend is drawn at the bottom
 * (each chart's own legend is left out); otherwise each chart with several series has its own.
 */
export function chartGridSvg(
  charts: LineChart[],
  options: {
    columns?: number;
    panelWidth?: number;
    panelHeight?: number;
    /** The whole picture's height (the panels share what the legend leaves); overrides panelHeight. */
    height?: number;
    legend?: LegendItem[];
  } = {},
): string {
  const columns = Math.max(1, Math.min(options.columns ?? 2, charts.length));
  const pw = options.panelWidth ?? 500;
  const rows = Math.ceil(charts.length / columns);
  const legends = charts.map((c) => (options.legend ? [] : ownLegend(c)));
  const extra = Math.max(0, ...legends.map((l) => (l.length ? legendRows(l, pw - 70) * 18 + 6 : 0)));
  const sharedH = options.legend?.length ? legendRows(options.legend, columns * pw - 60) * 18 + 16 : 0;
  const ph = options.height ? Math.floor((options.height - sharedH) / rows) : (options.panelHeight ?? 380) + extra;
  const width = columns * pw;
  const height = options.height ?? rows * ph + sharedH;
  const body = charts.map((c, i) => panelSvg(c, (i % columns) * pw, Math.floor(i / columns) * ph, pw, ph, legends[i], extra));
  if (sharedH) body.push(legendSvg(options.legend!, 60, rows * ph + 6, width - 60));
  return svgDocument(width, height, body.join('\n'));
}

/** Renders an SVG document to PNG bytes (sharp/librsvg; the SVG's width and height become the PNG's). */
export async function svgToPng(svg: string): Promise<Buffer> {
  return sharp(Buffer.from(svg)).png().toBuffer();
}

/** Writes `<path>.svg` and `<path>.png` (folders created); returns both paths. */
export async function writeChart(svg: string, pathWithoutExt: string): Promise<string[]> {
  const base = pathWithoutExt.replace(/\.(svg|png)$/i, '');
  mkdirSync(dirname(base), { recursive: true });
  const files = [`${base}.svg`, `${base}.png`];
  writeFileSync(files[0], svg);
  writeFileSync(files[1], await svgToPng(svg));
  return files;
}
