// The confusion matrix as a heat map: rows true classes, columns predicted,
// each cell shaded by its share of the row (the class's recall on the
// diagonal), with the count written in it when the cells are large enough.
import { ArgumentError } from '../errors.js';
import { escapeXml } from './charts.js';

const FONT = 'DejaVu Sans, sans-serif';

/** White to dark blue (matplotlib's "Blues" ends), t in [0, 1]. */
function blue(t: number): string {
  const from = [247, 251, 255],
    to = [8, 48, 107];
  const c = from.map((f, i) => Math.round(f + (to[i] - f) * t));
  return `rgb(${c[0]},${c[1]},${c[2]})`;
}

const clip = (s: string, n: number) => (s.length > n ? `${s.slice(0, n - 1)}…` : s);

export function confusionMatrixSvg(matrix: number[][], classNames?: string[], options: { title?: string } = {}): string {
  const n = matrix.length;
  if (n === 0) throw new ArgumentError('confusionMatrixSvg', 'the matrix is empty');
  matrix.forEach((row, i) => {
    if (!Array.isArray(row) || row.length !== n)
      throw new ArgumentError('confusionMatrixSvg', `row ${i} has ${Array.isArray(row) ? row.length : 'no'} entries, expected ${n}`);
    row.forEach((v, j) => {
      if (!Number.isFinite(v) || v < 0) throw new ArgumentError('confusionMatrixSvg', `[${i}][${j}] = ${v} is not a count`);
    });
  });
  const names = (classNames ?? matrix.map((_, i) => String(i))).map((s) => clip(s, 18));
  if (names.length !== n) throw new ArgumentError('confusionMatrixSvg', `${names.length} class names for a ${n} x ${n} matrix`);
  const cell = Math.max(10, Math.min(64, Math.floor(640 / n)));
  const fontSize = Math.max(7, Math.min(13, Math.floor(cell / 3.2)));
  const labelWidth = Math.max(...names.map((s) => s.length)) * fontSize * 0.62 + 12;
  const left = 40 + labelWidth,
    top = 44,
    size = cell * n;
  // column names are written at 45 degrees under the grid
  const bottomSpace = labelWidth * 0.72 + 40;
  const width = Math.ceil(left + size + 30),
    height = Math.ceil(top + size + bottomSpace);
  const showCounts = cell >= 18;
  const out: string[] = [
    `<text x="${left + size / 2}" y="24" text-anchor="middle" font-size="15" font-weight="bold">${escapeXml(options.title ?? 'Confusion matrix')}</text>`,
  ];
  matrix.forEach((row, i) => {
    const rowSum = row.reduce((a, b) => a + b, 0);
    row.forEach((v, j) => {
      const share = rowSum > 0 ? v / rowSum : 0;
      const x = left + j * cell,
        y = top + i * cell;
      out.push(`<rect x="${x}" y="${y}" width="${cell}" height="${cell}" fill="${blue(share)}" stroke="#ddd" stroke-width="0.5"/>`);
      if (showCounts) {
        const colour = share > 0.5 ? 'white' : '#222';
        out.push(`<text x="${x + cell / 2}" y="${y + cell / 2 + fontSize * 0.35}" text-anchor="middle" font-size="${fontSize}" fill="${colour}">${v}</text>`);
      }
    });
  });
  out.push(`<rect x="${left}" y="${top}" width="${size}" height="${size}" fill="none" stroke="#666"/>`);
  names.forEach((name, i) => {
    const y = top + i * cell + cell / 2 + fontSize * 0.35;
    out.push(`<text x="${left - 6}" y="${y}" text-anchor="end" font-size="${fontSize}">${escapeXml(name)}</text>`);
    const x = left + i * cell + cell / 2;
    const yb = top + size + 8;
    out.push(`<text x="${x}" y="${yb}" text-anchor="end" font-size="${fontSize}" transform="rotate(-45 ${x} ${yb})">${escapeXml(name)}</text>`);
  });
  out.push(`<text x="${left + size / 2}" y="${height - 10}" text-anchor="middle" font-size="12">predicted</text>`);
  const ym = top + size / 2;
  out.push(`<text x="16" y="${ym}" text-anchor="middle" font-size="12" transform="rotate(-90 16 ${ym})">true</text>`);
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="${FONT}">
<rect width="${width}" height="${height}" fill="white"/>
${out.join('\n')}
</svg>
`;
}
