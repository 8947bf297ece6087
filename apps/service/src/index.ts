export { bearerChecker, isLoopback, minTokenLength, tokenProblem } from './auth.ts';
export { startOptionsFromEnv } from './config.ts';
export { ConnectionGuard, type DropReason } from './connections.ts';
export {
  ConfigError,
  clientErrorResponse,
  type ErrorBody,
  type HttpError,
  RateLimitedError,
  ServiceError,
  ShuttingDownError,
  toHttpError,
  UnauthorizedError,
} from './errors.ts';
export type { EventLoopStall } from './event-loop.ts';
export { metricPrefix, ServiceMetrics } from './prometheus.ts';
export { maxRowsPerRequest } from './schemas.ts';
export {
  buildService,
  exposedDefaults,
  type LogLevel,
  logLevels,
  type RunningService,
  type ServiceOptions,
  type ShutdownReport,
  type StartOptions,
  serviceDefaults,
  startService,
} from './service.ts';
export { closeOnSignals, type ShutdownOptions } from './shutdown.ts';
export {
  describeStorage,
  type MetricsStore,
  openStore,
  type StorageConfig,
  type StoreTuning,
  storageFromEnv,
} from './store.ts';
