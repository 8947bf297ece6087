import { fileURLToPath } from 'node:url';
import { drizzle } from 'drizzle-orm/node-postgres';
import { migrate } from 'drizzle-orm/node-postgres/migrator';
import type { Pool, PoolClient } from 'pg';
import { OpenDatabaseError } from '../errors.ts';
import { assertNotNewer, migrationsIn } from '../migration-files.ts';
import type { MigrationResult } from '../migrator.ts';
import { pgCodeOf } from './errors.ts';

/** The folder of the generated, committed drizzle-kit migrations for PostgreSQL. */
export const pgMigrationsFolder = fileURLToPath(new URL('../../drizzle-pg', import.meta.url));

/**
 * The session-level advisory lock every process takes around migrating. Any
 * constant works as long as every process migrating this schema uses the same one
 * ("metrics" in ASCII, so that it is recognisable in `pg_locks`).
 */
export const migrationLockKey = 0x6d6574726963;

/** Drizzle's bookkeeping table, kept so that `drizzle-kit migrate` and this migrator agree. */
const migrationsTable = 'drizzle.__drizzle_migrations';

export interface ApplyPgMigrationsOptions {
  /** Names the database in errors: its URL without the password. */
  database: string;
  /** Longest wait for another process's migration lock, in ms (PostgreSQL `lock_timeout`). Default 30 000. */
  lockTimeoutMs?: number;
  /** Default: this package's `drizzle-pg/` folder. */
  migrationsFolder?: string;
}

/**
 * Applies the pending migrations, safely when many processes open a fresh
 * database at the same moment.
 *
 * Drizzle's `migrate()` takes no lock: it creates its schema and table with
 * `IF NOT EXISTS` (which itself races in the catalog) and decides what is
 * pending before its transaction, so concurrent migrators apply a migration twice
 * or fail (drizzle-orm #874). Here an up-to-date database costs one read and no
 * lock; otherwise the migrator runs while this process holds
 * `pg_advisory_lock(migrationLockKey)` on a dedicated connection (session-level,
 * so it spans Drizzle's own transaction), and the others wait for it, then find
 * nothing to do.
 *
 * Rejects with OpenDatabaseError: `SCHEMA_TOO_NEW`, `BUSY` (the lock stayed
 * held past `lockTimeoutMs`), `OPEN_FAILED` (connection refused, authentication...).
 */
export async function applyPgMigrations(pool: Pool, options: ApplyPgMigrationsOptions): Promise<MigrationResult> {
  const { database, lockTimeoutMs = 30_000, migrationsFolder = pgMigrationsFolder } = options;
  const migrations = migrationsIn(migrationsFolder);
  const latestKnown = migrations.at(-1)?.folderMillis ?? 0;
  let client: PoolClient;
  try {
    client = await pool.connect();
  } catch (error) {
    throw openError(error, database);
  }
  // A checked-out client has no error listener of the pool's: without one, a connection dying
  // between two statements (server restart) would be an uncaught 'error' event. The statement in
  // flight, or the next one, rejects with the error and is reported from there.
  client.on('error', ignoreClientError);
  let broken: unknown;
  try {
    const before = await lastAppliedMillis(client);
    assertNotNewer(before, latestKnown, database);
    if (before !== undefined && before >= latestKnown) return { applied: 0 };

    await client.query(`SET lock_timeout = ${Math.max(1, Math.ceil(lockTimeoutMs))}`);
    await client.query('SELECT pg_advisory_lock($1)', [migrationLockKey]);
    try {
      // Decided again under the lock: another process may have migrated meanwhile.
      const last = await lastAppliedMillis(client);
      assertNotNewer(last, latestKnown, database);
      const applied = migrations.filter((migration) => last === undefined || migration.folderMillis > last).length;
      if (applied > 0) await migrate(drizzle({ client }), { migrationsFolder });
      return { applied };
    } finally {
      await client.query('SELECT pg_advisory_unlock($1)', [migrationLockKey]);
      await client.query('RESET lock_timeout');
    }
  } catch (error) {
    broken = error;
    if (error instanceof OpenDatabaseError) throw error;
    throw openError(error, database);
  } finally {
    // A connection that failed mid-way may still hold the lock or a transaction: destroy it
    // (the server then releases everything it held) instead of returning it to the pool.
    client.removeListener('error', ignoreClientError);
    client.release(broken instanceof Error && !(broken instanceof OpenDatabaseError) ? broken : undefined);
  }
}

function ignoreClientError(): void {}

function openError(error: unknown, database: string): OpenDatabaseError {
  const code = pgCodeOf(error);
  const detail = error instanceof Error ? error.message : String(error);
  if (code === '55P03') {
    return new OpenDatabaseError('BUSY', database, `another process held the migration lock past the lock timeout`, {
      cause: error,
    });
  }
  return new OpenDatabaseError('OPEN_FAILED', database, `${code}: ${detail}`, { cause: error });
}

async function lastAppliedMillis(client: PoolClient): Promise<number | undefined> {
  // to_regclass instead of catching "relation does not exist": a failed statement would abort a transaction.
  const { rows } = await client.query<{ present: boolean }>(
    `SELECT to_regclass('${migrationsTable}') IS NOT NULL AS present`,
  );
  if (rows[0]?.present !== true) return undefined;
  const result = await client.query<{ last: string | null }>(
    `SELECT max(created_at)::text AS last FROM ${migrationsTable}`,
  );
  const last = result.rows[0]?.last;
  return last === null || last === undefined ? undefined : Number(last);
}
