import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type BetterSqlite3 from 'better-sqlite3';
import { getTableColumns, getTableName } from 'drizzle-orm';
import committedJournal from '../drizzle/meta/_journal.json' with { type: 'json' };
import { OpenDatabaseError } from './errors.ts';
import { assertNotNewer, migrationsIn } from './migration-files.ts';
import { metrics } from './schema.ts';

/**
 * Drizzle's bookkeeping table. We keep its name and layout so `drizzle-kit migrate`
 * and this migrator agree on what has been applied to a file.
 */
const migrationsTable = '__drizzle_migrations';

/** The folder of the generated, committed drizzle-kit migrations. */
export const migrationsFolder = fileURLToPath(new URL('../drizzle', import.meta.url));

export interface MigrationResult {
  /** How many migrations this call applied (0 when the file was already up to date). */
  applied: number;
}

/**
 * What a file needs, decided without taking any lock or changing anything:
 * `current` (exactly as this migrator left it: schema verified then, unchanged
 * since), `up-to-date` (all migrations applied, but the schema may have been
 * touched since: check its shape), or `pending`.
 */
export type MigrationState = 'current' | 'up-to-date' | 'pending';

/**
 * Reads whether the file needs migrations; throws SCHEMA_TOO_NEW when it holds
 * migrations this code does not know. Read-only.
 *
 * Fast path: after applying migrations, this migrator stamps `user_version` with
 * how many it knows and with SQLite's schema cookie (`schema_version`, which
 * every schema change by anyone increments). When both still match, the file is
 * exactly as this code left it, so an up-to-date file (every open of every
 * short-lived process) costs two pragmas and no read of the migration files or
 * of the bookkeeping table. Anything else (a file migrated by `drizzle-kit
 * migrate`, by newer code, or altered by hand) takes the full check.
 */
export function migrationState(sqlite: BetterSqlite3.Database, path: string, migrationsFolder: string): MigrationState {
  const known = journalOf(migrationsFolder);
  const stamp = sqlite.pragma('user_version', { simple: true }) as number;
  if (stamp === stampOf(known.count, sqlite.pragma('schema_version', { simple: true }) as number)) return 'current';
  const last = lastAppliedMillis(sqlite);
  assertNotNewer(last, known.latestMillis, path);
  return last !== undefined && last >= known.latestMillis ? 'up-to-date' : 'pending';
}

/** `user_version` of a file this migrator brought up to date: migrations known × 2^20 + the schema cookie's low 20 bits. */
function stampOf(migrationCount: number, schemaVersion: number): number {
  return migrationCount * 0x100000 + (schemaVersion & 0xfffff);
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
 * Waiting for the lock uses the connection's busy timeout (0: SQLITE_BUSY at once,
 * for the caller to retry).
 */
export function applyMigrations(
  sqlite: BetterSqlite3.Database,
  path: string,
  migrationsFolder: string,
): MigrationResult {
  if (migrationState(sqlite, path, migrationsFolder) !== 'pending') return { applied: 0 };
  const migrations = migrationsIn(migrationsFolder);
  const latestKnown = migrations.at(-1)?.folderMillis ?? 0;
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
    // The fast path of every later open (see migrationState). Setting user_version leaves the cookie alone.
    const schemaVersion = sqlite.pragma('schema_version', { simple: true }) as number;
    sqlite.pragma(`user_version = ${stampOf(migrations.length, schemaVersion)}`);
    sqlite.exec('COMMIT');
    return { applied };
  } catch (error) {
    if (sqlite.inTransaction) sqlite.exec('ROLLBACK');
    throw error;
  }
}

/**
 * Throws SCHEMA_MISMATCH unless the file's `metrics` table has every column of the
 * schema: a table changed by hand behind a journal that says "up to date" would
 * otherwise fail later, at the first insert, with SQLite's raw error. Read-only.
 */
export function assertSchemaMatches(sqlite: BetterSqlite3.Database, path: string): void {
  const table = getTableName(metrics);
  const present = new Set((sqlite.pragma(`table_info("${table}")`) as { name: string }[]).map((column) => column.name));
  const missing = Object.values(getTableColumns(metrics))
    .map((column) => column.name)
    .filter((name) => !present.has(name));
  if (missing.length > 0) {
    throw new OpenDatabaseError(
      'SCHEMA_MISMATCH',
      path,
      present.size === 0
        ? `its migrations are recorded as applied but it has no "${table}" table; it was changed outside the migrations`
        : `its "${table}" table has no column ${missing.map((name) => `"${name}"`).join(', ')} (it has ${[...present].map((name) => `"${name}"`).join(', ')}); it was changed outside the migrations`,
    );
  }
}

interface JournalSummary {
  count: number;
  latestMillis: number;
}

interface Journal {
  entries: { when: number }[];
}

const summarize = (journal: Journal): JournalSummary => ({
  count: journal.entries.length,
  latestMillis: journal.entries.at(-1)?.when ?? 0,
});

// The committed journal is imported with the code (bundled with it): opening reads no file for it.
const journals = new Map<string, JournalSummary>([[migrationsFolder, summarize(committedJournal)]]);

/** How many migrations the folder holds and when the newest was made, from drizzle-kit's journal alone. */
function journalOf(folder: string): JournalSummary {
  let summary = journals.get(folder);
  if (summary === undefined) {
    // fd-safe: drizzle-kit's migration journal, never a database
    summary = summarize(JSON.parse(readFileSync(join(folder, 'meta', '_journal.json'), 'utf8')) as Journal);
    journals.set(folder, summary);
  }
  return summary;
}

function lastAppliedMillis(sqlite: BetterSqlite3.Database): number | undefined {
  const table = sqlite.prepare(`SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?`).get(migrationsTable);
  if (table === undefined) return undefined;
  const row = sqlite.prepare(`SELECT max(created_at) AS last FROM "${migrationsTable}"`).get() as {
    last: number | string | null;
  };
  return row.last === null ? undefined : Number(row.last);
}
