// Loaded only through `import()` when a `url` is given: SQLite users never load `pg`.
import { applyPgMigrations, metrics, type PgMetricsDatabase, schema } from '@repo/db/pg';
import { and, count, eq, type SQL, sql } from 'drizzle-orm';
import { drizzle } from 'drizzle-orm/node-postgres';
import pg from 'pg';
import type { Backend } from '../backend.ts';
import { WriteQueue } from '../queue.ts';
import type { ValidFilter } from '../validate.ts';
import { type ResolvedPgOptions, redactPgUrl } from './options.ts';
import { pgReads } from './reads.ts';
import { timestampLiteral } from './rows.ts';
import { PgWriter, toDatabaseError } from './writer.ts';

/**
 * Opens the PostgreSQL backend: a connection pool, the schema (migrated once even
 * when many processes open a fresh database together, see `@repo/db/pg`), the
 * write queue and its writer. Rejects with OpenDatabaseError (from `@repo/db`)
 * naming the database without its password.
 */
export async function openPgBackend(options: ResolvedPgOptions): Promise<Backend<PgMetricsDatabase>> {
  const location = redactPgUrl(options.url);
  const pool = new pg.Pool({
    connectionString: options.url,
    max: options.poolSize,
    connectionTimeoutMillis: options.connectTimeoutMs,
    // Connections stay open while the repository is (pg closes idle ones after 10 s by default):
    // a process that opens the repository early and writes later must not pay a new connection
    // and its password exchange (scram: milliseconds of CPU on both sides) at the moment it writes.
    idleTimeoutMillis: 0,
    // Idle connections do not keep the process alive: a process that ends without close() exits.
    allowExitOnIdle: true,
    application_name: 'metrics-repo',
  });
  // A pool emits 'error' when an idle connection dies (server restart, network): without a
  // listener that would crash the process. The pool has already discarded the connection, no
  // caller was using it, and the next statement opens a new one (or reports its own error).
  pool.on('error', ignoreIdleConnectionError);
  try {
    await applyPgMigrations(pool, { database: location, lockTimeoutMs: options.lockTimeoutMs });
  } catch (error) {
    await pool.end();
    throw error;
  }
  const db = drizzle({ client: pool, schema });
  const queue = new WriteQueue(options, location);
  const writer = new PgWriter(pool, queue, options.lockTimeoutMs);
  return {
    db,
    queue,
    location,
    count: (filter) => countRows(db, filter),
    ...pgReads(pool),
    async close() {
      await writer.close();
      await pool.end();
    },
  };
}

function ignoreIdleConnectionError(): void {}

async function countRows(db: PgMetricsDatabase, { name, since, until }: ValidFilter): Promise<number> {
  const conditions: SQL[] = [];
  if (name !== undefined) conditions.push(eq(metrics.name, name));
  // Bound as literals the writer also uses: exact for every date PostgreSQL holds (a Date bound by
  // Drizzle becomes toISOString(), which PostgreSQL cannot read past year 9999).
  if (since !== undefined) conditions.push(sql`${metrics.recordedAt} >= ${timestampLiteral(since)}::timestamptz`);
  if (until !== undefined) conditions.push(sql`${metrics.recordedAt} < ${timestampLiteral(until)}::timestamptz`);
  try {
    const [row] = await db
      .select({ n: count() })
      .from(metrics)
      .where(and(...conditions));
    return row?.n ?? 0;
  } catch (error) {
    throw toDatabaseError(error);
  }
}
