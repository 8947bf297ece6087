import type { Metric, MetricLabels, OpenedDatabase } from '@repo/db';
import { Mutex } from 'async-mutex';
import type BetterSqlite3 from 'better-sqlite3';
import { RepoClosedError } from '../errors.ts';
import type { ResolvedSqliteOptions } from '../options.ts';
import type { ValidSummaryFilter } from '../read-validate.ts';
import { exportPolicy, type ReadsBackend } from '../reads.ts';
import { SummaryBuilder } from '../summary.ts';
import type { MetricSummary } from '../types.ts';
import type { ValidFilter } from '../validate.ts';
import { openRetrying, toDatabaseError } from './connection.ts';
import { captureIdentity, type FileIdentity, verifyFile } from './file-identity.ts';
import { retryWhileBusy, yieldToEventLoop } from './lock.ts';
import { pruneSqlite } from './prune.ts';

/**
 * Reads and retention on a SQLite file: `summarize`, `export` and `prune`, on a
 * connection of their own (opened on first use, closed with the repository), so
 * that they depend on nothing of the write path. Like the writer's, it never
 * sleeps inside a call (`busy_timeout = 0`): a statement that meets a lock is
 * retried on timers, with the event loop free. One statement at a time on it
 * (a mutex); every read is short, none spans an `await` except a summary's
 * single statement, which yields to the event loop every few milliseconds.
 */
export class SqliteSide {
  private opened: OpenedDatabase | undefined;
  private identity: FileIdentity | undefined;
  private opening: Promise<OpenedDatabase> | undefined;
  private closed = false;
  readonly mutex = new Mutex();

  constructor(
    readonly path: string,
    readonly options: ResolvedSqliteOptions,
  ) {}

  /** The connection, opened on first use (retrying on timers while a lock is in the way). */
  async connection(): Promise<OpenedDatabase> {
    if (this.closed) throw new RepoClosedError();
    if (this.opened !== undefined) return this.opened;
    this.opening ??= openRetrying(this.options).then(
      (opened) => {
        // Small PASSIVE checkpoints after prune's commits, on this loop but without the write lock.
        // Not the writer's checkpoint thread: its TRUNCATE takes the write lock, and beside a prune
        // the writers waited longer (docs/decisions/0019-reading-and-retention.md).
        opened.sqlite.pragma(`wal_autocheckpoint = ${sidePolicy.autocheckpointPages}`);
        this.identity = captureIdentity(opened.path, opened.sqlite.pragma('page_size', { simple: true }) as number);
        if (this.closed) {
          opened.close();
          throw new RepoClosedError();
        }
        this.opened = opened;
        return opened;
      },
      (error: unknown) => {
        this.opening = undefined;
        throw error;
      },
    );
    return this.opening;
  }

  /** Reads and writes agree: a file deleted or replaced under the repository fails both the same way. */
  verify(): void {
    if (this.identity !== undefined) verifyFile(this.path, this.identity);
  }

  /** Runs `step` alone on the connection (no other statement of this repository's side at the same time). */
  async exclusive<T>(step: (sqlite: BetterSqlite3.Database) => Promise<T> | T): Promise<T> {
    const opened = await this.connection();
    return this.mutex.runExclusive(() => {
      if (this.closed) throw new RepoClosedError();
      return step(opened.sqlite);
    });
  }

  /** Closes the connection once the statement under way (if any) is done. Idempotent. */
  async close(): Promise<void> {
    this.closed = true;
    await this.opening?.catch(() => undefined);
    await this.mutex.runExclusive(() => {
      this.opened?.close();
      this.opened = undefined;
    });
  }

  get isClosed(): boolean {
    return this.closed;
  }
}

export const sidePolicy = {
  autocheckpointPages: 256,
  /** A summary's statement yields to the event loop after this long of synchronous work. */
  sliceMs: 8,
} as const;

/** The SQLite backend's reads and retention, for `Backend`. */
export function sqliteReads(path: string, options: ResolvedSqliteOptions): ReadsBackend {
  const side = new SqliteSide(path, options);
  return {
    summarize: (filter) => summarize(side, filter),
    exportRows: (filter) => exportRows(side, filter),
    prune: (before, signal) => pruneSqlite(side, before, signal),
    closeReads: () => side.close(),
  };
}

const selectColumns = 'id, name, value, recorded_at, labels, event_id';

function whereClause(filter: ValidFilter, params: unknown[], extra: string[] = []): string {
  const conditions = [...extra];
  if (filter.name !== undefined) {
    conditions.push('name = ?');
    params.push(filter.name);
  }
  if (filter.since !== undefined) {
    conditions.push('recorded_at >= ?');
    params.push(filter.since);
  }
  if (filter.until !== undefined) {
    conditions.push('recorded_at < ?');
    params.push(filter.until);
  }
  return conditions.length === 0 ? '' : ` WHERE ${conditions.join(' AND ')}`;
}

async function summarize(side: SqliteSide, filter: ValidSummaryFilter): Promise<MetricSummary[]> {
  const params: unknown[] = [];
  // bucketMs is a validated integer: inlined, so the planner sees one expression.
  const bucket =
    filter.bucketMs === undefined
      ? '0'
      : `recorded_at - (((recorded_at % ${filter.bucketMs}) + ${filter.bucketMs}) % ${filter.bucketMs})`;
  const extra: string[] = [];
  let where = whereClause(filter, params);
  // Key and value are bound, never spliced: any key works (dots, quotes, `$`), unlike a JSON path.
  for (const [key, value] of filter.labels ?? []) {
    extra.push(
      "EXISTS (SELECT 1 FROM json_each(metrics.labels) AS l WHERE l.key = ? AND l.type = 'text' AND l.value = ?)",
    );
    params.push(key, value);
  }
  if (extra.length > 0) where = where === '' ? ` WHERE ${extra.join(' AND ')}` : `${where} AND ${extra.join(' AND ')}`;
  const withTime = filter.bucketMs === undefined && filter.since === undefined;
  const sql = `SELECT name, ${bucket} AS bucket, value${withTime ? ', recorded_at' : ''} FROM metrics${where} ORDER BY name, bucket, value`;
  const builder = new SummaryBuilder(filter.bucketMs === undefined ? filter.since : undefined);
  try {
    await side.exclusive(async (sqlite) => {
      side.verify();
      const statement = sqlite.prepare(sql).raw(true);
      const deadline = Date.now() + side.options.lockTimeoutMs;
      // Only the first step can meet a lock (a reader's snapshot starts there): retried on timers.
      const rows = await retryWhileBusy(() => {
        const iterator = statement.iterate(...params) as IterableIterator<unknown[]>;
        return { iterator, first: iterator.next() };
      }, deadline);
      let step = rows.first;
      let sliceStart = performance.now();
      let sinceCheck = 0;
      while (step.done !== true) {
        const row = step.value;
        builder.add(row[0] as string, row[1] as number, row[2] as number, row[3] as number | undefined);
        if (++sinceCheck === 2048) {
          sinceCheck = 0;
          if (performance.now() - sliceStart > sidePolicy.sliceMs) {
            await yieldToEventLoop();
            if (side.isClosed) {
              rows.iterator.return?.();
              throw new RepoClosedError();
            }
            sliceStart = performance.now();
          }
        }
        step = rows.iterator.next();
      }
    });
  } catch (error) {
    if (error instanceof RepoClosedError) throw error;
    throw toDatabaseError(error);
  }
  return builder.finish();
}

async function* exportRows(side: SqliteSide, filter: ValidFilter): AsyncGenerator<Metric, void, undefined> {
  // What is exported: the rows stored when the export began (later ones are the next export's).
  let upper: number;
  try {
    upper = await side.exclusive((sqlite) => {
      side.verify();
      return retryWhileBusy(
        () => (sqlite.prepare('SELECT max(id) FROM metrics').pluck().get() as number | null) ?? 0,
        Date.now() + side.options.lockTimeoutMs,
      );
    });
  } catch (error) {
    if (error instanceof RepoClosedError) throw error;
    throw toDatabaseError(error);
  }
  const params: unknown[] = [];
  // NOT INDEXED: walk the table in id order from the cursor, whatever the filter; an index on the
  // filtered column would make every page sort all the matching rows again.
  const where = whereClause(filter, params, ['id > ?', 'id <= ?']);
  const sql = `SELECT ${selectColumns} FROM metrics NOT INDEXED${where} ORDER BY id LIMIT ?`;
  let after = 0;
  while (after < upper) {
    // Each page its own short read: no snapshot is held between pages, so checkpoints complete.
    const windowEnd = Math.min(upper, after + exportPolicy.scanWindowRows);
    let page: unknown[][];
    try {
      page = await side.exclusive((sqlite) => {
        side.verify();
        const statement = sqlite.prepare(sql).raw(true);
        return retryWhileBusy(
          () => statement.all(after, windowEnd, ...params, exportPolicy.pageRows) as unknown[][],
          Date.now() + side.options.lockTimeoutMs,
        );
      });
    } catch (error) {
      if (error instanceof RepoClosedError) throw error;
      throw toDatabaseError(error);
    }
    for (const row of page) yield toMetric(row);
    after = page.length === exportPolicy.pageRows ? (page[page.length - 1]?.[0] as number) : windowEnd;
    // A consumer that awaits nothing but this iterator would otherwise hold the event loop for the
    // whole export (every await here settles in a microtask): timers and I/O run between pages.
    await yieldToEventLoop();
  }
}

/** A stored row as `insert` resolves with it: labels parsed, `recordedAt` a Date. */
function toMetric(row: unknown[]): Metric {
  const labels = row[4] as string | null;
  return {
    id: row[0] as number,
    name: row[1] as string,
    value: row[2] as number,
    recordedAt: new Date(row[3] as number),
    labels: labels === null ? null : (JSON.parse(labels) as MetricLabels),
    eventId: row[5] as string | null,
  };
}
