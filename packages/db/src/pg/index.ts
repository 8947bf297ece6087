import type { NodePgDatabase } from 'drizzle-orm/node-postgres';
import type { Pool } from 'pg';
import type * as pgSchema from './schema.ts';

export { isConnectionError, pgCodeOf } from './errors.ts';
export { type ApplyPgMigrationsOptions, applyPgMigrations, migrationLockKey, pgMigrationsFolder } from './migrator.ts';
export * as schema from './schema.ts';
export { type Metric, type MetricLabels, metrics, type NewMetric } from './schema.ts';

/** The typed Drizzle database on PostgreSQL; `$client` is its `pg` pool. */
export type PgMetricsDatabase = NodePgDatabase<typeof pgSchema> & { $client: Pool };
