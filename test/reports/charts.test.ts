// Charts and confusion-matrix pictures: the PNG files decode (sharp), have the
// SVG's size, and are not blank (the series' colours are drawn).
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, describe, expect, it } from 'vitest';
import { reports } from 'finetorch';

const dir = mkdtempSync(join(tmpdir(), 'finetorch-charts-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Pixels of the PNG near an RGB colour, and the PNG's size. */
async function pixels(file: string, rgb: [number, number, number], tolerance = 30) {
  const { data, info } = await sharp(file).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  let near = 0,
    white = 0;
  for (let i = 0; i < data.length; i += 3) {
    const d = Math.abs(data[i] - rgb[0]) + Math.abs(data[i + 1] - rgb[1]) + Math.abs(data[i + 2] - rgb[2]);
    if (d < tolerance) near++;
    if (data[i] > 250 && data[i + 1] > 250 && data[i + 2] > 250) white++;
  }
  return { near, white, total: info.width * info.height, width: info.width, height: info.height };
}

const svgSize = (svg: string) =>
  svg
    .match(/<svg[^>]* width="(\d+)" height="(\d+)"/)!
    .slice(1)
    .map(Number);

describe('charts', () => {
  it('lineChartSvg on a log x axis with a marker: .svg and .png written, PNG of the SVG size, the curves drawn', async () => {
    const lrs = Array.from({ length: 60 }, (_, i) => 1e-6 * 10 ** (i / 10));
    const svg = reports.lineChartSvg({
      title: 'LR range test',
      xLabel: 'learning rate',
      yLabel: 'loss',
      xScale: 'log',
      series: [
        { name: 'smoothed', points: lrs.map((lr, i) => [lr, 2 - i / 60 + (i > 50 ? (i - 50) * 0.3 : 0)]) },
        { name: 'raw', points: lrs.map((lr, i) => [lr, 2.1 - i / 60]) },
      ],
      marker: { x: 3e-3, label: 'valley 3e-3' },
    });
    const files = await reports.writeChart(svg, join(dir, 'lr', 'chart'));
    expect(files).toEqual([join(dir, 'lr', 'chart.svg'), join(dir, 'lr', 'chart.png')]);
    expect(readFileSync(files[0], 'utf8')).toBe(svg);
    for (const tick of ['1e-6', '1e-5', '0.001', '0.1']) expect(svg).toContain(`>${tick}</text>`);
    expect(svg).toContain('valley 3e-3');
    const blue = await pixels(files[1], [0x1f, 0x77, 0xb4]);
    const orange = await pixels(files[1], [0xff, 0x7f, 0x0e]);
    const red = await pixels(files[1], [0xd6, 0x27, 0x28], 150); // a thin dashed line: anti-aliased
    expect([blue.width, blue.height]).toEqual(svgSize(svg));
    expect(blue.near).toBeGreaterThan(300); // a 2-px line across ~570 px
    expect(orange.near).toBeGreaterThan(300);
    expect(red.near).toBeGreaterThan(50); // the marker
    expect(blue.white / blue.total).toBeGreaterThan(0.7); // a white background, not a filled picture
  });

  it('confusionMatrixSvg: counts written in the cells, the diagonal shaded dark, class names on both axes', async () => {
    const names = ['T-shirt/top', 'Trouser', 'Pullover', 'Dress & <co>'];
    const cm = [
      [50, 2, 0, 1],
      [1, 60, 0, 0],
      [5, 0, 40, 3],
      [0, 0, 2, 0],
    ];
    const svg = reports.confusionMatrixSvg(cm, names);
    for (const n of [50, 60, 40, 5, 3]) expect(svg).toContain(`>${n}</text>`);
    expect(svg).toContain('Dress &amp; &lt;co&gt;');
    const [png] = (await reports.writeChart(svg, join(dir, 'confusion'))).filter((f) => f.endsWith('.png'));
    const dark = await pixels(png, [8, 48, 107]);
    expect([dark.width, dark.height]).toEqual(svgSize(svg));
    // three rows have a diagonal share above 80%: three dark cells of 64 x 64 pixels (less the digits)
    expect(dark.near).toBeGreaterThan(3 * 64 * 64 * 0.5);
    expect(() => reports.confusionMatrixSvg([[1, 2]], ['a'])).toThrow(/row 0 has 2 entries, expected 1/);
    expect(() => reports.confusionMatrixSvg([[-1]], ['a'])).toThrow(/\[0\]\[0\] = -1 is not a count/);
  });

  it('trainingCurvesSvg: four panels from steps and epochs', async () => {
    const steps = Array.from({ length: 20 }, (_, i) => ({ step: i + 1, loss: 2 / (i + 1), lrs: [0.01 * (1 - i / 20), 0.001] }));
    const val = (a: number) => ({ loss: 1 - a, accuracy: a, f1Macro: a - 0.1, rocAuc: a + 0.05, confusionMatrix: [[1]], samples: 4 });
    const svg = reports.trainingCurvesSvg(steps, [
      { epoch: 1, trainLoss: 1, val: val(0.6) },
      { epoch: 2, trainLoss: 0.5, val: val(0.7) },
    ]);
    for (const t of ['training loss per step', 'loss per epoch', 'validation metrics', 'learning rate', 'macro F1', 'ROC AUC', 'group 1'])
      expect(svg).toContain(t);
    const png = await reports.svgToPng(svg);
    const meta = await sharp(png).metadata();
    expect([meta.width, meta.height]).toEqual(svgSize(svg));
  });
});

describe('TrainingMonitor', () => {
  it('draws curves.svg/png after each epoch; a resumed run takes the earlier steps from events.jsonl', async () => {
    const out = join(dir, 'run');
    const { mkdirSync, writeFileSync, existsSync } = await import('node:fs');
    mkdirSync(out, { recursive: true });
    // the CLI's log of the interrupted run: steps 0..4 (step 4 is redone after the resume), and a line cut short
    const step = (s: number, loss: number) => ({ type: 'step', epoch: 0, step: s, batch: s, batches: 8, loss, lrs: [0.1], samplesPerSecond: 1 });
    writeFileSync(
      join(out, 'events.jsonl'),
      [0, 1, 2, 3, 4].map((s) => JSON.stringify({ ...step(s, s === 4 ? 100 : 9 - s), time: 'x' })).join('\n') + '\n{"type":"step","ti',
    );
    const monitor = new reports.TrainingMonitor(out);
    monitor.onEvent({ type: 'resumed', epoch: 0, batch: 4, step: 4, path: join(out, 'last') });
    for (let s = 4; s < 8; s++) monitor.onEvent(step(s, 2 - s / 10) as never);
    monitor.onEvent({ type: 'epoch', epoch: 0, trainLoss: 1, val: null, seconds: 1, best: false });
    const files = await monitor.close();
    expect(files).toEqual([join(out, 'curves.svg'), join(out, 'curves.png')]);
    expect(existsSync(files[1])).toBe(true);
    // the first panel's polyline: steps 0..7, the resumed run's step 4 (loss 1.6), not the interrupted one's (100: no axis up to 100)
    const svg = readFileSync(files[0], 'utf8');
    const points = svg.match(/<polyline points="([^"]+)"/)![1].split(' ');
    expect(points).toHaveLength(8);
    expect(svg).toContain('>8</text>');
    expect(svg).not.toMatch(/>(20|40|60|80|100)<\/text>/);
    expect(monitor.curvesSvg()).toBe(svg);
  });
});
