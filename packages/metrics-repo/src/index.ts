export { OpenDatabaseError, type OpenDatabaseErrorCode } from '@repo/db';
export type { Backend } from './backend.ts';
export {
  DatabaseError,
  DuplicateEventError,
  InvalidFilterError,
  InvalidOptionError,
  LockTimeoutError,
  MetricsRepoError,
  type MetricsRepoErrorCode,
  QueueFullError,
  RepoClosedError,
  ValidationError,
} from './errors.ts';
export { limits } from './limits.ts';
export type { CommonRepoOptions, ResolvedSqliteOptions, SqliteRepoOptions } from './options.ts';
export { defaultOptions } from './options.ts';
export { defaultPgOptions, type PgRepoOptions, type ResolvedPgOptions } from './pg/options.ts';
export { MetricsRepo, type MetricsRepoOptions, openMetricsRepo } from './repo.ts';
export { sqliteWritePath } from './sqlite/turn.ts';
export { nearestRank } from './summary.ts';
export type {
  CountFilter,
  ExportFilter,
  Metric,
  MetricInput,
  MetricLabels,
  MetricSummary,
  PruneOptions,
  SummaryFilter,
} from './types.ts';
