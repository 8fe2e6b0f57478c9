// The live dashboard: a local web page with the runs' loss, learning-rate and
// metric curves, confusion matrices, per-class metrics and a comparison
// table, fed by the runs' events.jsonl (see server.ts).
//   import { dashboard } from 'finetorch'
//   const d = await dashboard.serveDashboard({ runs: 'runs' }); console.log(d.url)
export { serveDashboard, isLocalHost, DashboardError } from './server.js';
export type { DashboardOptions, Dashboard } from './server.js';
export { findRuns, RunReader, RunStore, EVENTS_FILE } from './runs.js';
export type { RunData, RunInfo, RunDelta, RunStatus, StepPoint, EpochPoint, EvalPoint, Metrics } from './runs.js';
