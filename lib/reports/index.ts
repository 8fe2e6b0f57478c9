// Reports: charts (SVG + PNG), confusion-matrix pictures, per-class tables and TensorBoard event files.
//   import { reports } from 'finetorch'
import { lineChartSvg, chartGridSvg, writeChart, svgToPng } from './charts.js';

export { lineChartSvg, chartGridSvg, writeChart, svgToPng } from './charts.js';
export type { LineChart, ChartSeries, LegendItem } from './charts.js';

export const reports = {
  lineChartSvg,
  chartGridSvg,
  writeChart,
  svgToPng,
};
