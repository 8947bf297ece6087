export {
  type BenchOptions,
  type BenchReport,
  type RunFigures,
  runBench,
  type ScenarioResult,
  scenarios,
  type TargetCheck,
} from './bench.ts';
export { type BenchSizes, fullSizes, quickSizes } from './config.ts';
export { formatReport, formatResultsTable } from './table.ts';
