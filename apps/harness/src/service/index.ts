export {
  type LatencyFigures,
  runServiceComparison,
  runServiceTarget,
  type ServiceRunResult,
  type ServiceScenarioSettings,
  serviceScenarioDefaults,
} from './run-service.ts';
export {
  formatServiceTable,
  healthzP99TargetMs,
  serviceProblems,
  serviceTargetMisses,
  serviceVerdict,
} from './service-report.ts';
