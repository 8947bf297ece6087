import { type MetricsDatabase, metrics, OpenDatabaseError, openDatabase, tracePhases } from '@repo/db';
import { and, count, eq, gte, lt, type SQL } from 'drizzle-orm';
import type { ResolvedSqliteOptions } from '../options.ts';
import { WriteQueue } from '../queue.ts';
import type { Backend } from '../repo.ts';
import type { ValidFilter } from '../validate.ts';
import { captureIdentity, type FileIdentity, verifyFile } from './file-identity.ts';
import { retryWhileBusy } from './lock.ts';
import { SqliteWriter, toDatabaseError } from './writer.ts';

/**
 * Opens the SQLite backend: the file (created and migrated if needed, through
 * `@repo/db`), its write queue and its writer.
 *
 * The connection never sleeps inside a call (`busy_timeout = 0`), opening
 * included: every step that finds a lock taken (another process switching the
 * file to WAL, migrating it, holding it in exclusive locking mode) fails at once
 * and the whole open is tried again on a timer, until `lockTimeoutMs`. The event
 * loop stays free while opening waits, and the deadline holds. A failed attempt
 * closes its connection and leaves the file as it found it.
 */
export async function openSqliteBackend(options: ResolvedSqliteOptions): Promise<Backend<MetricsDatabase>> {
  const deadline = Date.now() + options.lockTimeoutMs;
  const opened = await retryWhileBusy(
    () => openDatabase(options.path, { busyTimeoutMs: 0, synchronous: options.synchronous }),
    deadline,
  );
  const trace = tracePhases('open');
  try {
    const identity = captureIdentity(opened.path, opened.sqlite.pragma('page_size', { simple: true }) as number);
    const queue = new WriteQueue(options, opened.path);
    const writer = new SqliteWriter(opened.sqlite, opened.path, identity, queue, options.maxBatchRows);
    trace.mark('repo-setup');
    return {
      // A getter: Drizzle's database is built on first use (see @repo/db).
      get db() {
        return opened.db;
      },
      queue,
      location: opened.path,
      count: (filter) => countRows(opened.db, opened.path, identity, filter, options.lockTimeoutMs),
      close: () => writer.close(),
    };
  } catch (error) {
    opened.close();
    throw new OpenDatabaseError('OPEN_FAILED', opened.path, `${error instanceof Error ? error.message : error}`, {
      cause: error,
    });
  }
}

async function countRows(
  db: MetricsDatabase,
  path: string,
  identity: FileIdentity,
  { name, since, until }: ValidFilter,
  lockTimeoutMs: number,
): Promise<number> {
  const conditions: SQL[] = [];
  if (name !== undefined) conditions.push(eq(metrics.name, name));
  if (since !== undefined) conditions.push(gte(metrics.recordedAt, new Date(since)));
  if (until !== undefined) conditions.push(lt(metrics.recordedAt, new Date(until)));
  const query = db
    .select({ n: count() })
    .from(metrics)
    .where(and(...conditions));
  try {
    // Reads and writes agree: a file deleted or replaced under the repository fails both the same way.
    verifyFile(path, identity);
    const row = await retryWhileBusy(() => query.get(), Date.now() + lockTimeoutMs);
    return row?.n ?? 0;
  } catch (error) {
    throw toDatabaseError(error);
  }
}
