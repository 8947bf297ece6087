export { sqliteBusyDelaysMs, sqliteBusyMaxDelayMs } from './busy-wait.ts';
export { isBusyError, OpenDatabaseError, type OpenDatabaseErrorCode, sqliteCodeOf } from './errors.ts';
export {
  applyMigrations,
  assertSchemaMatches,
  type MigrationResult,
  type MigrationState,
  migrationState,
} from './migrator.ts';
export {
  hardLinked,
  type JournalMode,
  type MetricsDatabase,
  migrationsFolder,
  type OpenDatabaseOptions,
  type OpenedDatabase,
  openDatabase,
  type ResolvedDatabaseFile,
  resolveDatabaseFile,
  resolveDatabasePath,
  type Synchronous,
} from './open.ts';
export * as schema from './schema.ts';
export { type Metric, type MetricLabels, metrics, metricsMailboxReceipts, type NewMetric } from './schema.ts';
export { cpuClockMs, type Phase, type PhaseTrace, phaseChannel, tracePhases } from './trace.ts';
