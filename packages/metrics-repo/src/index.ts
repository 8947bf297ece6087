export { OpenDatabaseError } from '@repo/db';
export {
  DatabaseError,
  DuplicateEventError,
  LockTimeoutError,
  MetricsRepoError,
  type MetricsRepoErrorCode,
  QueueFullError,
  RepoClosedError,
  ValidationError,
} from './errors.ts';
export { limits } from './limits.ts';
export type { MetricsRepoOptions } from './options.ts';
export { defaultOptions } from './options.ts';
export { MetricsRepo, openMetricsRepo } from './repo.ts';
export type { CountFilter, Metric, MetricInput, MetricLabels } from './types.ts';
