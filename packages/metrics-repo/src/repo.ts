import { type MetricsDatabase, metrics, type OpenedDatabase, openDatabase } from '@repo/db';
import { and, count, eq, gte, lt, type SQL } from 'drizzle-orm';
import { DuplicateEventError, RepoClosedError, ValidationError } from './errors.ts';
import { retryWhileBusy } from './lock.ts';
import { type MetricsRepoOptions, type ResolvedOptions, resolveOptions } from './options.ts';
import type { CountFilter, Metric, MetricInput } from './types.ts';
import { type ValidRow, validateFilter, validateMetric } from './validate.ts';
import { toDatabaseError, WriteQueue } from './write-queue.ts';

/**
 * Opens the repository on a SQLite file (created and migrated if needed).
 *
 * Opening waits for other connections' locks the same way writes do (on timers,
 * up to `lockTimeoutMs`), so even a migration racing other processes does not
 * freeze the event loop. Rejects with `OpenDatabaseError` (from `@repo/db`) when
 * the file cannot be used, naming the file and the cause.
 */
export async function openMetricsRepo(options: MetricsRepoOptions): Promise<MetricsRepo> {
  const resolved = resolveOptions(options);
  const deadline = Date.now() + resolved.lockTimeoutMs;
  // A BUSY OpenDatabaseError is retried on timers until the deadline, then surfaces as is.
  const opened = await retryWhileBusy(
    () =>
      openDatabase(resolved.path, { busyTimeoutMs: openBusyTimeoutMs(resolved), synchronous: resolved.synchronous }),
    deadline,
  );
  // From here on SQLite never sleeps inside a call: writes wait for the lock on timers (see lock.ts).
  opened.sqlite.pragma('busy_timeout = 0');
  return new MetricsRepo(opened, resolved);
}

/**
 * The busy timeout used while opening, and only then. Opening an existing WAL file
 * that is up to date takes no lock at all. Only the one-time steps (switching a
 * rollback-journal file to WAL, applying a migration) need the exclusive or write
 * lock, and there SQLite's own wait is the one that works: while it sleeps it keeps
 * its claim on the lock (PENDING), so hundreds of processes opening a new file at
 * once queue up instead of starving each other, as retries from scratch would.
 * That wait blocks the thread, at most this long per attempt, once per file.
 */
function openBusyTimeoutMs(options: ResolvedOptions): number {
  return Math.min(options.lockTimeoutMs, 5000);
}

/**
 * Records metrics into one SQLite file, safely from any number of async tasks,
 * worker threads and processes at once. Create it with {@link openMetricsRepo}.
 */
export class MetricsRepo {
  /** The typed Drizzle database, for reads beyond `count`. Do not write through it while the repository is open. */
  readonly db: MetricsDatabase;
  /** The absolute path of the file. */
  readonly path: string;
  /** The options in force, defaults filled in. */
  readonly options: Readonly<ResolvedOptions>;
  private readonly writes: WriteQueue;
  private closing: Promise<void> | undefined;

  /** @internal use openMetricsRepo */
  constructor(opened: OpenedDatabase, options: ResolvedOptions) {
    this.db = opened.db;
    this.path = opened.path;
    this.options = Object.freeze({ ...options, path: opened.path });
    this.writes = new WriteQueue(opened.sqlite, opened.path, this.options);
  }

  /**
   * Records one metric. Resolves with the stored row (and its id) once it is
   * committed; never throws synchronously. Rejects with ValidationError,
   * DuplicateEventError, LockTimeoutError, QueueFullError, RepoClosedError or
   * DatabaseError, each for this call alone.
   */
  insert(metric: MetricInput): Promise<Metric> {
    let row: ValidRow;
    try {
      if (this.closing !== undefined) throw new RepoClosedError();
      row = validateMetric(metric);
    } catch (error) {
      return Promise.reject(error);
    }
    return this.writes.submit(row) as Promise<Metric>;
  }

  /**
   * Records several metrics atomically: all are stored, in order, or none is.
   * `insertMany([])` resolves with `[]`. An eventId repeated inside the call
   * rejects with DuplicateEventError before anything is written.
   */
  insertMany(metrics: readonly MetricInput[]): Promise<Metric[]> {
    let rows: ValidRow[];
    try {
      if (this.closing !== undefined) throw new RepoClosedError();
      if (!Array.isArray(metrics)) throw new ValidationError('rows', 'must be an array');
      const now = Date.now();
      rows = metrics.map((metric, index) => validateMetric(metric, `rows[${index}].`, now));
      const seen = new Set<string>();
      for (const row of rows) {
        if (row.eventId === null) continue;
        if (seen.has(row.eventId)) throw new DuplicateEventError(row.eventId);
        seen.add(row.eventId);
      }
    } catch (error) {
      return Promise.reject(error);
    }
    if (rows.length === 0) return Promise.resolve([]);
    return this.writes.submit(rows) as Promise<Metric[]>;
  }

  /**
   * Counts stored metrics, optionally by name and `since <= recordedAt < until`.
   * Sees every insert whose promise resolved before the call, and what other
   * connections committed.
   */
  async count(filter?: CountFilter): Promise<number> {
    if (this.closing !== undefined) throw new RepoClosedError();
    const { name, since, until } = validateFilter(filter);
    const conditions: SQL[] = [];
    if (name !== undefined) conditions.push(eq(metrics.name, name));
    if (since !== undefined) conditions.push(gte(metrics.recordedAt, new Date(since)));
    if (until !== undefined) conditions.push(lt(metrics.recordedAt, new Date(until)));
    const query = this.db
      .select({ n: count() })
      .from(metrics)
      .where(and(...conditions));
    try {
      const row = await retryWhileBusy(() => query.get(), Date.now() + this.options.lockTimeoutMs);
      return row?.n ?? 0;
    } catch (error) {
      throw toDatabaseError(error);
    }
  }

  /** Rows accepted and not yet committed or failed. */
  get pendingRows(): number {
    return this.writes.pendingRows;
  }

  /**
   * Stops accepting calls, commits everything already accepted (or fails it with
   * its own error), then closes the file. Later calls reject with RepoClosedError.
   * Idempotent.
   */
  close(): Promise<void> {
    this.closing ??= this.writes.close();
    return this.closing;
  }
}
