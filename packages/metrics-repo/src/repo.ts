import type { MetricsDatabase } from '@repo/db';
import type { PgMetricsDatabase } from '@repo/db/pg';
import type { Backend } from './backend.ts';
import { DuplicateEventError, RepoClosedError, ValidationError } from './errors.ts';
import type { ResolvedSqliteOptions, SqliteRepoOptions } from './options.ts';
import { resolveSqliteOptions } from './options.ts';
import { isPgOptions, type PgRepoOptions, type ResolvedPgOptions, resolvePgOptions } from './pg/options.ts';
import { openSqliteBackend } from './sqlite/driver.ts';
import type { CountFilter, Metric, MetricInput } from './types.ts';
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

  /** @internal use openMetricsRepo */
  constructor(backend: Backend<Db>, options: Options) {
    this.backend = backend;
    this.path = backend.location;
    this.options = Object.freeze({ ...options });
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
      this.closing = this.backend.close();
    }
    return this.closing;
  }
}
