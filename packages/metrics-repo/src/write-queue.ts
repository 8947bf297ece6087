import { isBusyError, type Metric, metrics, sqliteCodeOf } from '@repo/db';
import { Mutex } from 'async-mutex';
import type BetterSqlite3 from 'better-sqlite3';
import { getTableName } from 'drizzle-orm';
import {
  DatabaseError,
  DuplicateEventError,
  LockTimeoutError,
  type MetricsRepoError,
  QueueFullError,
  RepoClosedError,
  ValidationError,
} from './errors.ts';
import { captureIdentity, type FileIdentity, verifyFile } from './file-identity.ts';
import { Backoff, sleep, tryBeginImmediate, yieldToEventLoop } from './lock.ts';
import type { ResolvedOptions } from './options.ts';
import type { ValidRow } from './validate.ts';

/** One caller's write: a single `insert` or a whole, all-or-nothing `insertMany`. */
interface Job {
  /** One row (`insert`: no array allocated per call) or the rows of an `insertMany`. */
  rows: ValidRow | ValidRow[];
  size: number;
  /** Its deadline is `enqueuedAt + lockTimeoutMs`. */
  enqueuedAt: number;
  // biome-ignore lint/suspicious/noExplicitAny: resolves with Metric (single) or Metric[] (many)
  resolve(value: any): void;
  reject(error: MetricsRepoError): void;
}

/** A caller waiting for room in a full queue (`onQueueFull: 'wait'`). */
interface Waiter {
  rows: number;
  admit(): void;
  reject(error: MetricsRepoError): void;
}

type JobOutcome = Metric | Metric[] | MetricsRepoError;

// Column names come from the schema, so the statement cannot drift from the table.
const insertColumns = [metrics.name, metrics.value, metrics.recordedAt, metrics.labels, metrics.eventId];
const insertSql = `INSERT INTO "${getTableName(metrics)}" (${insertColumns.map((column) => `"${column.name}"`).join(', ')}) VALUES (${insertColumns.map(() => '?').join(', ')})`;

/**
 * Group commit. Every write is queued; one drain loop at a time (guarded by an
 * async mutex) takes the file's write lock with `BEGIN IMMEDIATE`, writes as many
 * queued rows as one batch holds with a prepared statement, commits, and only
 * then settles the callers' promises. Rows that arrive while a transaction runs
 * or while the loop waits for the lock join the next batch.
 *
 * The transaction itself is synchronous and short: nothing awaits while it is
 * open, so no other code can interleave with it.
 */
export class WriteQueue {
  private readonly jobs: Job[] = [];
  private head = 0;
  private queuedRows = 0;
  private readonly waiters: Waiter[] = [];
  private readonly mutex = new Mutex();
  private readonly insert: BetterSqlite3.Statement;
  private readonly pageCount: BetterSqlite3.Statement;
  private drainScheduled = false;
  private accepting = true;
  private connectionOpen = true;
  private readonly identity: FileIdentity;

  constructor(
    private readonly sqlite: BetterSqlite3.Database,
    private readonly path: string,
    private readonly options: ResolvedOptions,
  ) {
    this.insert = sqlite.prepare(insertSql);
    this.pageCount = sqlite.prepare('PRAGMA page_count').pluck();
    this.identity = captureIdentity(path, sqlite.pragma('page_size', { simple: true }) as number);
  }

  /** Rows accepted and not yet committed or failed. */
  get pendingRows(): number {
    return this.queuedRows;
  }

  /** Queues one row (resolves with its Metric) or an all-or-nothing array of rows (resolves with Metric[]). */
  submit(rows: ValidRow | ValidRow[]): Promise<Metric | Metric[]> {
    if (!this.accepting) return Promise.reject(new RepoClosedError());
    const { maxQueuedRows, onQueueFull } = this.options;
    const size = Array.isArray(rows) ? rows.length : 1;
    if (size > maxQueuedRows) {
      return Promise.reject(
        new ValidationError('rows', `has ${size} rows, more than maxQueuedRows (${maxQueuedRows})`),
      );
    }
    // Fast path: room in the queue. (No closure is created per call beyond the executor.)
    if (this.waiters.length === 0 && this.queuedRows + size <= maxQueuedRows) {
      const promise = new Promise<Metric | Metric[]>(captureSettlers);
      this.enqueue(rows, size, capturedResolve, capturedReject);
      return promise;
    }
    if (onQueueFull === 'reject') return Promise.reject(new QueueFullError(maxQueuedRows));
    return new Promise((resolve, reject) => {
      this.waiters.push({ rows: size, admit: () => this.enqueue(rows, size, resolve, reject), reject });
    });
  }

  /** Stops accepting writes, commits (or fails) everything accepted, then closes the connection. */
  async close(): Promise<void> {
    this.accepting = false;
    // Callers still waiting for room were never accepted.
    for (const waiter of this.waiters.splice(0)) waiter.reject(new RepoClosedError());
    await this.mutex.runExclusive(async () => {
      await this.drainLoop();
      if (this.connectionOpen) {
        this.connectionOpen = false;
        this.sqlite.close();
      }
    });
  }

  private enqueue(rows: ValidRow | ValidRow[], size: number, resolve: Job['resolve'], reject: Job['reject']): void {
    this.jobs.push({ rows, size, enqueuedAt: Date.now(), resolve, reject });
    this.queuedRows += size;
    if (this.queuedRows >= this.options.maxBatchRows && !this.mutex.isLocked()) this.commitFullBatchNow();
    this.scheduleDrain();
  }

  /**
   * A full batch is committed at once, inside the call that filled it, when the
   * lock is free: a caller issuing thousands of inserts in one synchronous loop
   * then keeps at most one batch of rows alive instead of all of them (with
   * 100,000 calls in flight, keeping every row until the loop ends costs more in
   * garbage collection than the inserts themselves). Never waits: if the lock is
   * taken, the drain loop takes over. Only runs while the mutex is free, so it
   * never interleaves with the drain loop, and it awaits nothing.
   */
  private commitFullBatchNow(): void {
    if (!this.connectionOpen) return;
    let began: boolean;
    try {
      began = tryBeginImmediate(this.sqlite);
    } catch {
      return; // The drain loop meets the same error and reports it to the callers.
    }
    if (began) this.commitNextBatch();
  }

  private scheduleDrain(): void {
    if (this.drainScheduled) return;
    this.drainScheduled = true;
    // setImmediate rather than a microtask: writes issued by other callbacks of this turn join the batch.
    setImmediate(() => {
      void this.mutex
        .runExclusive(() => this.drainLoop())
        .finally(() => {
          this.drainScheduled = false;
          if (this.queuedRows > 0 && this.connectionOpen) this.scheduleDrain();
        });
    });
  }

  private async drainLoop(): Promise<void> {
    const backoff = new Backoff();
    while (this.head < this.jobs.length && this.connectionOpen) {
      let began: boolean;
      try {
        began = tryBeginImmediate(this.sqlite);
      } catch (error) {
        // Not a lock conflict (I/O error, file replaced...): the next batch's callers hear about it.
        this.settle(this.takeBatch(), toDatabaseError(error));
        continue;
      }
      if (!began) {
        this.expireOverdue(Date.now());
        if (this.head < this.jobs.length) await sleep(backoff.next());
        continue;
      }
      backoff.reset();
      this.commitNextBatch();
      // Between transactions, timers and I/O of the host process run, and other connections get a chance at the lock.
      if (this.head < this.jobs.length) await yieldToEventLoop();
    }
  }

  /** Called once BEGIN IMMEDIATE has succeeded: commits the next batch, or fails it if the file is gone. Synchronous. */
  private commitNextBatch(): void {
    try {
      verifyFile(this.path, this.identity, this.pageCount.get() as number);
    } catch (error) {
      this.sqlite.exec('ROLLBACK');
      this.settle(this.takeBatch(), toDatabaseError(error));
      return;
    }
    this.commitBatch(this.takeBatch());
    this.admitWaiters();
  }

  /** Jobs from the front of the queue, up to maxBatchRows rows (at least one job). */
  private takeBatch(): Job[] {
    const batch: Job[] = [];
    let rows = 0;
    while (this.head < this.jobs.length) {
      const job = this.jobs[this.head] as Job;
      if (batch.length > 0 && rows + job.size > this.options.maxBatchRows) break;
      batch.push(job);
      rows += job.size;
      this.head += 1;
    }
    this.compact();
    return batch;
  }

  private compact(): void {
    if (this.head > 1024 && this.head * 2 > this.jobs.length) {
      this.jobs.splice(0, this.head);
      this.head = 0;
    }
  }

  /** Fails the jobs whose deadline passed while the lock was held elsewhere. Deadlines grow along the queue. */
  private expireOverdue(now: number): void {
    const expired: Job[] = [];
    const enqueuedBefore = now - this.options.lockTimeoutMs;
    while (this.head < this.jobs.length && (this.jobs[this.head] as Job).enqueuedAt <= enqueuedBefore) {
      expired.push(this.jobs[this.head] as Job);
      this.head += 1;
    }
    for (const job of expired) {
      this.queuedRows -= job.size;
      job.reject(new LockTimeoutError(this.path, now - job.enqueuedAt));
    }
    this.compact();
    if (expired.length > 0) this.admitWaiters();
  }

  /** Runs inside BEGIN IMMEDIATE; commits, or rolls back and reports. Synchronous from start to end. */
  private commitBatch(batch: Job[]): void {
    let outcomes: JobOutcome[];
    try {
      outcomes = this.writeBatch(batch);
      this.sqlite.exec('COMMIT');
    } catch (error) {
      if (this.sqlite.inTransaction) this.sqlite.exec('ROLLBACK');
      if (isBusyError(error)) {
        // Nothing was committed: the batch goes back to the front of the queue, in order.
        this.jobs.splice(this.head, 0, ...batch);
        return;
      }
      this.settle(batch, toDatabaseError(error));
      return;
    }
    for (let i = 0; i < batch.length; i++) {
      const job = batch[i] as Job;
      const outcome = outcomes[i];
      this.queuedRows -= job.size;
      if (outcome instanceof Error) job.reject(outcome);
      else job.resolve(outcome);
    }
  }

  /**
   * Fast path: every row of the batch under one savepoint. Only when a row fails
   * does the batch run again with one savepoint per job, so the failure reaches
   * that job's caller alone and the others still commit.
   */
  private writeBatch(batch: Job[]): JobOutcome[] {
    const fast = this.inSavepoint('batch', () => batch.map((job) => this.writeJob(job)));
    if ('value' in fast) return fast.value;
    return batch.map((job) => {
      const attempt = this.inSavepoint('job', () => this.writeJob(job));
      return 'value' in attempt ? attempt.value : this.rowError(attempt.failure);
    });
  }

  /**
   * Runs `work` under a savepoint. A failed row rolls back to it and is returned;
   * an error that ended the transaction or means "locked" propagates to commitBatch.
   */
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

  private writeJob(job: Job): Metric | Metric[] {
    if (!Array.isArray(job.rows)) return this.writeRow(job.rows);
    const stored: Metric[] = new Array(job.size);
    for (let i = 0; i < job.size; i++) stored[i] = this.writeRow(job.rows[i] as ValidRow);
    return stored;
  }

  private writeRow(row: ValidRow): Metric {
    let lastInsertRowid: number | bigint;
    try {
      ({ lastInsertRowid } = this.insert.run(row.name, row.value, row.recordedAt, row.labelsJson, row.eventId));
    } catch (error) {
      throw new RowFailure(error, row);
    }
    return {
      id: Number(lastInsertRowid),
      name: row.name,
      value: row.value,
      recordedAt: new Date(row.recordedAt),
      labels: row.labels,
      eventId: row.eventId,
    };
  }

  private rowError(failure: unknown): MetricsRepoError {
    const { error, row } = failure instanceof RowFailure ? failure : { error: failure, row: undefined };
    const eventId = row?.eventId;
    if (sqliteCodeOf(error) === 'SQLITE_CONSTRAINT_UNIQUE' && eventId != null && /event_id/.test(String(error))) {
      return new DuplicateEventError(eventId, { cause: error });
    }
    return toDatabaseError(error);
  }

  private settle(batch: Job[], error: MetricsRepoError): void {
    for (const job of batch) {
      this.queuedRows -= job.size;
      job.reject(error);
    }
    this.admitWaiters();
  }

  private admitWaiters(): void {
    while (this.waiters.length > 0) {
      const waiter = this.waiters[0] as Waiter;
      if (this.queuedRows + waiter.rows > this.options.maxQueuedRows) return;
      this.waiters.shift();
      waiter.admit();
    }
  }
}

// A module-level executor: `new Promise(captureSettlers)` allocates no closure per call, and with
// 100,000 calls in flight every allocation that lives until the commit costs garbage-collection time.
let capturedResolve: Job['resolve'];
let capturedReject: Job['reject'];
function captureSettlers(resolve: Job['resolve'], reject: Job['reject']): void {
  capturedResolve = resolve;
  capturedReject = reject;
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

export function toDatabaseError(error: unknown): DatabaseError {
  if (error instanceof DatabaseError) return error;
  const message = error instanceof Error ? error.message : String(error);
  return new DatabaseError(sqliteCodeOf(error) ?? 'UNKNOWN', message, { cause: error });
}
