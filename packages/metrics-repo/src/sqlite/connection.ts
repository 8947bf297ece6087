import {
  isBusyError,
  type Metric,
  metrics,
  OpenDatabaseError,
  type OpenedDatabase,
  openDatabase,
  sqliteCodeOf,
  tracePhases,
} from '@repo/db';
import type BetterSqlite3 from 'better-sqlite3';
import { and, count, eq, getTableName, gte, lt, type SQL } from 'drizzle-orm';
import { DatabaseError, DuplicateEventError, type MetricsRepoError } from '../errors.ts';
import type { ResolvedSqliteOptions } from '../options.ts';
import type { Job, JobOutcome } from '../queue.ts';
import { storedMetric, type ValidFilter, type ValidRow } from '../validate.ts';
import { Checkpointer } from './checkpoint.ts';
import { captureIdentity, type FileIdentity, verifyFile } from './file-identity.ts';
import { retryWhileBusy, tryBeginImmediate } from './lock.ts';
import { Receipts } from './mailbox.ts';
import { askThreadSlice, dropThreadSlice, holderOpenSliceNs } from './turn.ts';

// Column names come from the schema, so the statement cannot drift from the table.
const insertColumns = [metrics.name, metrics.value, metrics.recordedAt, metrics.labels, metrics.eventId];
export const insertSql = `INSERT INTO "${getTableName(metrics)}" (${insertColumns.map((column) => `"${column.name}"`).join(', ')}) VALUES (${insertColumns.map(() => '?').join(', ')})`;

/**
 * One open connection to the file and what a transaction on it needs: the prepared INSERT, the
 * file's identity (checked before each transaction), the receipts of posted jobs, the checkpointer.
 * It never sleeps inside a call (`busy_timeout = 0`): a lock in the way fails at once, and the
 * caller waits on timers (docs/decisions/0002-wait-on-timers-not-busy-timeout.md).
 */
export class Connection {
  readonly identity: FileIdentity;
  readonly checkpointer: Checkpointer;
  private readonly insert: BetterSqlite3.Statement;
  private readonly pageCount: BetterSqlite3.Statement;
  private readonly receipts: Receipts;
  private readonly sqlite: BetterSqlite3.Database;

  private constructor(
    readonly opened: OpenedDatabase,
    private readonly options: ResolvedSqliteOptions,
  ) {
    this.sqlite = opened.sqlite;
    this.identity = captureIdentity(opened.path, this.sqlite.pragma('page_size', { simple: true }) as number);
    this.insert = this.sqlite.prepare(insertSql);
    this.pageCount = this.sqlite.prepare('PRAGMA page_count').pluck();
    this.receipts = new Receipts(this.sqlite);
    this.checkpointer = new Checkpointer(this.sqlite, opened.path);
  }

  /**
   * Opens the file, trying again on timers while a lock is in the way, until `lockTimeoutMs`.
   * `holding`: this writer holds the file's turn and its followers wait for this open; with the
   * `threadSlices` option it then runs in one long CPU slice (docs/decisions/0015-cpu-slices.md).
   */
  static async open(options: ResolvedSqliteOptions, holding = false): Promise<Connection> {
    const slice = options.threadSlices && holding ? askThreadSlice(holderOpenSliceNs) : undefined;
    try {
      return Connection.over(await openRetrying(options), options);
    } finally {
      dropThreadSlice(slice);
    }
  }

  /** One attempt, without waiting: throws if a lock is in the way (for synchronous callers). */
  static openNow(options: ResolvedSqliteOptions): Connection {
    return Connection.over(openOnce(options), options);
  }

  private static over(opened: OpenedDatabase, options: ResolvedSqliteOptions): Connection {
    const trace = tracePhases('open');
    try {
      const connection = new Connection(opened, options);
      trace.mark('repo-setup');
      return connection;
    } catch (error) {
      opened.close();
      throw new OpenDatabaseError('OPEN_FAILED', opened.path, `${error instanceof Error ? error.message : error}`, {
        cause: error,
      });
    }
  }

  get path(): string {
    return this.opened.path;
  }

  /** `BEGIN IMMEDIATE`: false, at once, when another connection holds the write lock. */
  tryBegin(): boolean {
    return tryBeginImmediate(this.sqlite);
  }

  rollback(): void {
    if (this.sqlite.inTransaction) this.sqlite.exec('ROLLBACK');
  }

  /**
   * Inside BEGIN IMMEDIATE: checks that the path is still the file opened, whole, then writes
   * `jobs` (a SAVEPOINT per job only when a row fails) and commits. Returns each job's outcome;
   * throws, with the transaction rolled back, when nothing was committed (a busy error: try again).
   */
  commit(jobs: Job[]): JobOutcome[] {
    try {
      verifyFile(this.path, this.identity, this.pageCount.get() as number);
      const outcomes = jobs.length === 1 ? this.writeAlone(jobs[0] as Job) : this.writeBatch(jobs);
      if (this.sqlite.inTransaction) this.sqlite.exec('COMMIT');
      return outcomes;
    } catch (error) {
      this.rollback();
      throw error;
    }
  }

  /**
   * Counts stored rows, on timers while a lock is in the way. Reads and writes agree: a file
   * deleted or replaced under the repository fails both the same way.
   */
  async count({ name, since, until }: ValidFilter): Promise<number> {
    const conditions: SQL[] = [];
    if (name !== undefined) conditions.push(eq(metrics.name, name));
    if (since !== undefined) conditions.push(gte(metrics.recordedAt, new Date(since)));
    if (until !== undefined) conditions.push(lt(metrics.recordedAt, new Date(until)));
    const query = this.opened.db
      .select({ n: count() })
      .from(metrics)
      .where(and(...conditions));
    try {
      verifyFile(this.path, this.identity);
      const row = await retryWhileBusy(() => query.get(), Date.now() + this.options.lockTimeoutMs);
      return row?.n ?? 0;
    } catch (error) {
      throw toDatabaseError(error);
    }
  }

  async close(): Promise<void> {
    await this.checkpointer.close();
    this.sqlite.close();
  }

  /** A batch of one job (a lone process's insert) needs no savepoint: a failed row rolls the transaction back. */
  private writeAlone(job: Job): JobOutcome[] {
    try {
      return [this.writeJob(job)];
    } catch (failure) {
      if (isBusyError(causeOf(failure)) || !this.sqlite.inTransaction) throw causeOf(failure);
      this.sqlite.exec('ROLLBACK');
      return [rowError(failure)];
    }
  }

  /**
   * Every row of the batch under one savepoint. Only when a row fails does the batch run again with
   * one savepoint per job, so the failure reaches that job's caller alone and the others commit.
   */
  private writeBatch(batch: Job[]): JobOutcome[] {
    const fast = this.inSavepoint('batch', () => batch.map((job) => this.writeJob(job)));
    if ('value' in fast) return fast.value;
    return batch.map((job) => {
      const attempt = this.inSavepoint('job', () => this.writeJob(job));
      return 'value' in attempt ? attempt.value : rowError(attempt.failure);
    });
  }

  /** Runs `work` under a savepoint: a failed row rolls back to it; an error that ended the transaction propagates. */
  private inSavepoint<T>(name: string, work: () => T): { value: T } | { failure: unknown } {
    this.sqlite.exec(`SAVEPOINT ${name}`);
    try {
      const value = work();
      this.sqlite.exec(`RELEASE ${name}`);
      return { value };
    } catch (failure) {
      if (isBusyError(causeOf(failure)) || !this.sqlite.inTransaction) throw causeOf(failure);
      this.sqlite.exec(`ROLLBACK TO ${name}`);
      this.sqlite.exec(`RELEASE ${name}`);
      return { failure };
    }
  }

  /**
   * Writes one job's rows. A job that went through the mailbox carries a receipt: if a transaction
   * stored it already (a holder that died before answering, two holders of one file), it is
   * answered from that receipt; otherwise its receipt is recorded with its rows, in this
   * transaction (docs/decisions/0018-the-turn-file-as-a-trust-boundary.md).
   */
  private writeJob(job: Job): JobOutcome {
    const receipt = job.receipt;
    if (receipt !== undefined) {
      const found = this.receipts.find(receipt, Date.now());
      if (found instanceof DatabaseError) return found;
      if (found !== undefined) return storedFrom(job, found);
    }
    let stored: Metric | Metric[];
    if (!Array.isArray(job.rows)) stored = this.writeRow(job.rows);
    else {
      stored = new Array(job.size);
      for (let i = 0; i < job.size; i++) stored[i] = this.writeRow(job.rows[i] as ValidRow);
    }
    if (receipt !== undefined) {
      this.receipts.record(receipt, (Array.isArray(stored) ? stored[0] : stored)?.id ?? 0, Date.now());
    }
    return stored;
  }

  private writeRow(row: ValidRow): Metric {
    let lastInsertRowid: number | bigint;
    try {
      ({ lastInsertRowid } = this.insert.run(row.name, row.value, row.recordedAt, row.labelsJson, row.eventId));
    } catch (error) {
      throw new RowFailure(error, row);
    }
    return storedMetric(row, Number(lastInsertRowid));
  }
}

/** Opens the file, trying again on timers while a lock is in the way, until `lockTimeoutMs`. */
export function openRetrying(options: ResolvedSqliteOptions): Promise<OpenedDatabase> {
  return retryWhileBusy(() => openOnce(options), Date.now() + options.lockTimeoutMs);
}

/** The connection never sleeps inside a call: a lock in the way fails at once. */
function openOnce(options: ResolvedSqliteOptions): OpenedDatabase {
  return openDatabase(options.path, { busyTimeoutMs: 0, synchronous: options.synchronous });
}

/** A job's rows as a transaction stored them, from the first one's id (consecutive: one statement after the other). */
function storedFrom(job: Job, firstId: number): Metric | Metric[] {
  if (!Array.isArray(job.rows)) return storedMetric(job.rows, firstId);
  return job.rows.map((row, k) => storedMetric(row, firstId + k));
}

/** A row's INSERT failed: carries the row, so the error can name its eventId. */
class RowFailure {
  constructor(
    readonly error: unknown,
    readonly row: ValidRow,
  ) {}
}

function causeOf(failure: unknown): unknown {
  return failure instanceof RowFailure ? failure.error : failure;
}

function rowError(failure: unknown): MetricsRepoError {
  const { error, row } = failure instanceof RowFailure ? failure : { error: failure, row: undefined };
  const eventId = row?.eventId;
  if (sqliteCodeOf(error) === 'SQLITE_CONSTRAINT_UNIQUE' && eventId != null && /event_id/.test(String(error))) {
    return new DuplicateEventError(eventId, { cause: error });
  }
  return toDatabaseError(error);
}

export function toDatabaseError(error: unknown): DatabaseError {
  if (error instanceof DatabaseError) return error;
  const message = error instanceof Error ? error.message : String(error);
  return new DatabaseError(sqliteCodeOf(error) ?? 'UNKNOWN', message, { cause: error });
}
