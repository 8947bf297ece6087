export { ConfigError, startOptionsFromEnv } from './config.ts';
export { type ErrorBody, type HttpError, toHttpError } from './errors.ts';
export type { EventLoopStall } from './event-loop.ts';
export { maxRowsPerRequest } from './schemas.ts';
export {
  buildService,
  type LogLevel,
  logLevels,
  type RunningService,
  type ServiceOptions,
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
