import type { MetricsDatabase } from '@repo/db';
import type { PgMetricsDatabase } from '@repo/db/pg';
import type { Backend } from './backend.ts';
import { DuplicateEventError, RepoClosedError, ValidationError } from './errors.ts';
import type { ResolvedSqliteOptions, SqliteRepoOptions } from './options.ts';
import { resolveSqliteOptions } from './options.ts';
import { isPgOptions, type PgRepoOptions, type ResolvedPgOptions, resolvePgOptions } from './pg/options.ts';
import { validateExportFilter, validatePruneOptions, validateSummaryFilter } from './read-validate.ts';
import { Retention } from './retention.ts';
import { openSqliteBackend } from './sqlite/driver.ts';
import type {
  CountFilter,
  ExportFilter,
  Metric,
  MetricInput,
  MetricSummary,
  PruneOptions,
  SummaryFilter,
} from './types.ts';
import { type ValidRow, validateFilter, validateMetric } from './validate.ts';

/** `{ path }` for a SQLite file, `{ url }` for PostgreSQL (see `PgRepoOptions`). */
export type MetricsRepoOptions = SqliteRepoOptions | PgRepoOptions;

/**
 * Opens the repository on a SQLite file (`path`, created and migrated if needed)
 * or on a PostgreSQL database (`url`, migrated if needed; `pg` is loaded only then).
 *
 * Opening waits for other connections' locks the same way writes do (on timers,
 * up to `lockTimeoutMs`): the event loop stays free. Rejects with
 * InvalidOptionError for options it cannot use, and with `OpenDatabaseError`
 * (from `@repo/db`) when the file cannot be used, naming the file and the cause.
 */
export function openMetricsRepo(options: SqliteRepoOptions): Promise<MetricsRepo>;
export function openMetricsRepo(options: PgRepoOptions): Promise<MetricsRepo<PgMetricsDatabase, ResolvedPgOptions>>;
/** Options decided at run time (either backend): the repository of whichever they name. */
export function openMetricsRepo(
  options: MetricsRepoOptions,
): Promise<MetricsRepo | MetricsRepo<PgMetricsDatabase, ResolvedPgOptions>>;
export async function openMetricsRepo(
  options: MetricsRepoOptions,
): Promise<MetricsRepo | MetricsRepo<PgMetricsDatabase, ResolvedPgOptions>> {
  if (isPgOptions(options)) {
    const resolved = resolvePgOptions(options);
    const { openPgBackend } = await import('./pg/driver.ts');
    const backend = await openPgBackend(resolved);
    // The URL as it may be shown: without its password.
    return new MetricsRepo(backend, { ...resolved, url: backend.location });
  }
  const resolved = resolveSqliteOptions(options);
  const backend = await openSqliteBackend(resolved);
  return new MetricsRepo(backend, { ...resolved, path: backend.location });
}

/**
 * Records metrics into one database, safely from any number of async tasks,
 * worker threads and processes at once. Create it with {@link openMetricsRepo}.
 */
export class MetricsRepo<Db = MetricsDatabase, Options = ResolvedSqliteOptions> {
  /** The SQLite file's absolute path, or the PostgreSQL URL without its password. */
  readonly path: string;
  /** The options in force, defaults filled in. */
  readonly options: Readonly<Options>;
  private readonly backend: Backend<Db>;
  private closing: Promise<void> | undefined;
  private readonly retention: Retention | undefined;

  /** @internal use openMetricsRepo */
  constructor(backend: Backend<Db>, options: Options) {
    this.backend = backend;
    this.path = backend.location;
    this.options = Object.freeze({ ...options });
    const retainMs = (options as { retainMs?: number | undefined }).retainMs;
    if (retainMs !== undefined) {
      this.retention = new Retention(retainMs, (before, signal) => backend.prune(before, signal));
    }
  }

  /** The typed Drizzle database, for reads beyond `count`. Do not write through it while the repository is open. */
  get db(): Db {
    return this.backend.db;
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
    return this.backend.queue.submit(row) as Promise<Metric>;
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
    return this.backend.queue.submit(rows) as Promise<Metric[]>;
  }

  /**
   * Counts stored metrics, optionally by name and `since <= recordedAt < until`.
   * Sees every insert whose promise resolved before the call, and what other
   * connections committed. A bad filter rejects with InvalidFilterError.
   */
  async count(filter?: CountFilter): Promise<number> {
    if (this.closing !== undefined) throw new RepoClosedError();
    return this.backend.count(validateFilter(filter));
  }

  /**
   * Summaries of the stored values, one per name and time bucket (buckets aligned to the epoch;
   * the whole range when `bucketMs` is absent), sorted by name then `bucketStart`: count, sum,
   * min, max, avg and nearest-rank p50, p95, p99. `labels` keeps the rows that have each of its
   * keys with exactly its value. The same rows give the same numbers on SQLite and PostgreSQL.
   * A bad filter rejects with InvalidFilterError.
   */
  async summarize(filter?: SummaryFilter): Promise<MetricSummary[]> {
    if (this.closing !== undefined) throw new RepoClosedError();
    return this.backend.summarize(validateSummaryFilter(filter));
  }

  /**
   * The stored rows (`since <= recordedAt < until`, `name`), in `id` order, as `insert` resolves
   * with them. Fetched a page at a time (keyset on `id`), each page its own short read: memory
   * stays flat and no read transaction is held between pages. Rows stored after the export began
   * are left for the next one. A bad filter rejects the first `next()` with InvalidFilterError;
   * after `close()`, the next page rejects with RepoClosedError.
   */
  async *export(filter?: ExportFilter): AsyncGenerator<Metric, void, undefined> {
    if (this.closing !== undefined) throw new RepoClosedError();
    const valid = validateExportFilter(filter);
    for await (const row of this.backend.exportRows(valid)) {
      yield row;
      if (this.closing !== undefined) throw new RepoClosedError();
    }
  }

  /**
   * Deletes every row recorded before `before` (a Date or epoch ms), in short transactions
   * (about 3 ms each) with pauses between them for writers, and resolves with how many rows
   * it deleted. `signal` stops it between two transactions. Rejects with InvalidFilterError,
   * LockTimeoutError (a transaction waited `lockTimeoutMs` for the write lock), RepoClosedError
   * or DatabaseError; rows deleted before the error stay deleted.
   */
  async prune(options: PruneOptions): Promise<number> {
    if (this.closing !== undefined) throw new RepoClosedError();
    const { before, signal } = validatePruneOptions(options);
    return this.backend.prune(before, signal);
  }

  /** Rows accepted and not yet committed or failed. */
  get pendingRows(): number {
    return this.backend.queue.pendingRows;
  }

  /**
   * Stops accepting calls, commits everything already accepted (or fails it with
   * its own error), then closes the database. Later calls reject with
   * RepoClosedError. Idempotent.
   */
  close(): Promise<void> {
    if (this.closing === undefined) {
      this.backend.queue.stopAccepting();
      const backend = this.backend;
      const retention = this.retention;
      // Reads and prunes first (each stops after its current statement), then the writes are committed.
      this.closing = (async () => {
        try {
          await retention?.stop();
          await backend.closeReads();
        } finally {
          await backend.close();
        }
      })();
    }
    return this.closing;
  }
}
