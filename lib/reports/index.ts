// Reports: charts (SVG + PNG), confusion-matrix pictures, per-class tables,
// evaluation reports, training curves and TensorBoard event files.
//   import { reports } from 'finetorch'
import { lineChartSvg, chartGridSvg, writeChart, svgToPng } from './charts.js';
import { confusionMatrixSvg } from './confusion.js';
import { classificationTable } from './table.js';
import { writeEvaluationReport, scoreAgainstLabels } from './evaluation.js';
import { TensorBoardWriter } from './tensorboard.js';
import { TrainingMonitor, trainingCurvesSvg, tensorboardScalars } from './training.js';

export { lineChartSvg, chartGridSvg, writeChart, svgToPng } from './charts.js';
export type { LineChart, ChartSeries, LegendItem } from './charts.js';
export { confusionMatrixSvg } from './confusion.js';
export { classificationTable } from './table.js';
export type { ClassificationTable, ClassRow, ClassificationTableOptions } from './table.js';
export { writeEvaluationReport, scoreAgainstLabels } from './evaluation.js';
export type { EvaluationReport, LabelledScore } from './evaluation.js';
export { TensorBoardWriter } from './tensorboard.js';
export { TrainingMonitor, trainingCurvesSvg, tensorboardScalars } from './training.js';
export type { TrainingMonitorOptions } from './training.js';

export const reports = {
  lineChartSvg,
  chartGridSvg,
  writeChart,
  svgToPng,
  confusionMatrixSvg,
  classificationTable,
  writeEvaluationReport,
  scoreAgainstLabels,
  TensorBoardWriter,
  TrainingMonitor,
  trainingCurvesSvg,
  tensorboardScalars,
};
