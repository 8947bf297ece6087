import type BetterSqlite3 from 'better-sqlite3';
import { type MigrationMeta, readMigrationFiles } from 'drizzle-orm/migrator';
import { OpenDatabaseError } from './errors.ts';

/**
 * Drizzle's bookkeeping table. We keep its name and layout so `drizzle-kit migrate`
 * and this migrator agree on what has been applied to a file.
 */
const migrationsTable = '__drizzle_migrations';

export interface MigrationResult {
  /** How many migrations this call applied (0 when the file was already up to date). */
  applied: number;
}

/**
 * Applies the pending migrations of `migrationsFolder`, safely when many processes
 * do it at once on the same file.
 *
 * Drizzle's own `migrate()` reads the last applied migration and then opens a
 * deferred transaction, so two processes can both decide a migration is pending
 * and both apply it (drizzle-orm issue #874). Here the decision is taken again
 * inside `BEGIN IMMEDIATE`, which holds the write lock: exactly one process
 * applies each migration, the others find it done.
 *
 * Waiting for the lock uses the connection's busy timeout.
 */
export function applyMigrations(
  sqlite: BetterSqlite3.Database,
  path: string,
  migrationsFolder: string,
): MigrationResult {
  const migrations = migrationsIn(migrationsFolder);
  const latestKnown = migrations.at(-1)?.folderMillis ?? 0;

  // Fast path without any write lock: most opens find the file up to date.
  const before = lastAppliedMillis(sqlite);
  assertNotNewer(before, latestKnown, path);
  if (before !== undefined && before >= latestKnown) return { applied: 0 };

  sqlite.exec('BEGIN IMMEDIATE');
  try {
    sqlite.exec(
      `CREATE TABLE IF NOT EXISTS "${migrationsTable}" (id INTEGER PRIMARY KEY AUTOINCREMENT, hash text NOT NULL, created_at numeric)`,
    );
    const last = lastAppliedMillis(sqlite) ?? -1;
    assertNotNewer(last, latestKnown, path);
    const record = sqlite.prepare(`INSERT INTO "${migrationsTable}" (hash, created_at) VALUES (?, ?)`);
    let applied = 0;
    for (const migration of migrations) {
      if (migration.folderMillis <= last) continue;
      for (const statement of migration.sql) {
        if (statement.trim() !== '') sqlite.exec(statement);
      }
      record.run(migration.hash, migration.folderMillis);
      applied += 1;
    }
    sqlite.exec('COMMIT');
    return { applied };
  } catch (error) {
    if (sqlite.inTransaction) sqlite.exec('ROLLBACK');
    throw error;
  }
}

const migrationsByFolder = new Map<string, MigrationMeta[]>();

/** Reads and hashes a folder's migrations once per process: every open needs them, they never change at run time. */
function migrationsIn(folder: string): MigrationMeta[] {
  let migrations = migrationsByFolder.get(folder);
  if (migrations === undefined) {
    migrations = readMigrationFiles({ migrationsFolder: folder });
    migrationsByFolder.set(folder, migrations);
  }
  return migrations;
}

function lastAppliedMillis(sqlite: BetterSqlite3.Database): number | undefined {
  const table = sqlite.prepare(`SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?`).get(migrationsTable);
  if (table === undefined) return undefined;
  const row = sqlite.prepare(`SELECT max(created_at) AS last FROM "${migrationsTable}"`).get() as {
    last: number | string | null;
  };
  return row.last === null ? undefined : Number(row.last);
}

function assertNotNewer(lastApplied: number | undefined, latestKnown: number, path: string): void {
  if (lastApplied !== undefined && lastApplied > latestKnown) {
    throw new OpenDatabaseError(
      'SCHEMA_TOO_NEW',
      path,
      `its schema is newer than this code (last applied migration ${new Date(lastApplied).toISOString()}, newest known ${new Date(latestKnown).toISOString()}); upgrade the code`,
    );
  }
}
