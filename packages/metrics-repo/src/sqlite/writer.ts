import { isBusyError, type PhaseTrace, tracePhases } from '@repo/db';
import { Mutex } from 'async-mutex';
import type { ResolvedSqliteOptions } from '../options.ts';
import type { WriteQueue } from '../queue.ts';
import { Connection, toDatabaseError } from './connection.ts';
import type { Coordination } from './coordination.ts';
import { Backoff, sleep, walSignature, yieldToEventLoop } from './lock.ts';

/** A writer that has not opened the file opens it inside the call that queued this many rows, not before. */
const openInCallAboveRows = 16;

/** What a write that timed out waited for (LockTimeoutError's message). */
const waitedForLock = "SQLite's write lock, held by another connection";

/**
 * Group commit on one SQLite file. The repository's calls are validated and queued (queue.ts);
 * one drain loop at a time, under an async mutex, takes them in batches:
 *
 *   1. asks the coordination (coordination.ts) whether to attempt SQLite's lock now: with the
 *      file's write turn, a small job may instead go to another process's transaction;
 *   2. opens the file if this writer has not yet (it may never need to);
 *   3. `BEGIN IMMEDIATE`; refused: sleep on a timer (or queue for the turn) and go to 1;
 *   4. writes the batch, and the jobs others posted when it holds the turn, commits;
 *   5. settles every caller with its own outcome, answers the others, and goes on while rows wait.
 *
 * The transaction is synchronous and short: nothing awaits while it is open. The connection never
 * sleeps inside a call; every wait is on a timer or in the kernel, with the event loop free.
 */
export class SqliteWriter {
  private readonly mutex = new Mutex();
  private connection: Connection | undefined;
  private connecting: Promise<Connection> | undefined;
  private drainScheduled = false;
  private committingInline = false;
  /** close() was called: no other process's rows are served from now on. */
  private closing = false;
  private closed = false;
  /** A writer without a connection tries to open one inside a call once, for a loop of inserts. */
  private triedOpenInCall = false;
  /**
   * After an inline attempt found the lock taken, the next one waits until another full batch is
   * queued: a synchronous loop of inserts would otherwise try (and be refused) once per insert.
   */
  private inlineRetryAt = 0;

  constructor(
    readonly queue: WriteQueue,
    private readonly options: ResolvedSqliteOptions,
    private readonly coordination: Coordination,
    /** Open already, or undefined: opened when a transaction (or a read) first needs it. */
    connection: Connection | undefined,
  ) {
    this.connection = connection;
    if (connection !== undefined) this.connecting = Promise.resolve(connection);
    queue.listen({ jobsAdded: (queuedRows) => this.jobsAdded(queuedRows) });
    // A turn taken at open serves this repository's first transaction, and the mailbox with it.
    // Left idle for two turns of the event loop (no insert came), it is handed on.
    if (coordination.holding) {
      setImmediate(() =>
        setImmediate(() => {
          if (!this.drainScheduled && !this.mutex.isLocked()) coordination.release();
        }),
      );
    }
  }

  /** The connection, opened now (on timers while a lock is in the way) if it was not. */
  connected(): Promise<Connection> {
    this.connecting ??= this.open().then(
      (connection) => {
        this.connection = connection;
        return connection;
      },
      (error: unknown) => {
        // A failed open (a lock held past the deadline, a damaged file) is tried afresh next time.
        this.connecting = undefined;
        throw error;
      },
    );
    return this.connecting;
  }

  /** The connection, opened now in one attempt if it was not: throws if a lock is in the way (synchronous callers). */
  connectedNow(): Connection {
    if (this.connection === undefined) {
      this.connection = Connection.openNow(this.options);
      this.connecting = Promise.resolve(this.connection);
    }
    return this.connection;
  }

  /** Commits (or fails) everything queued, then closes the connection. The queue must have stopped accepting. */
  async close(): Promise<void> {
    this.closing = true;
    this.coordination.ownJobsArrived(); // a wait for others' posts ends now
    await this.mutex.runExclusive(async () => {
      await this.drainLoop();
      this.closed = true;
      this.coordination.close();
      const connection = this.connection ?? (await this.connecting?.catch(() => undefined));
      if (connection !== undefined) {
        const trace = tracePhases('close');
        await connection.close();
        trace.mark('close');
      }
    });
  }

  private open(): Promise<Connection> {
    return Connection.open(this.options, this.coordination.holding);
  }

  private jobsAdded(queuedRows: number): void {
    this.coordination.ownJobsArrived();
    if (
      queuedRows >= this.options.maxBatchRows &&
      queuedRows >= this.inlineRetryAt &&
      !this.mutex.isLocked() &&
      !this.committingInline &&
      !this.closed
    ) {
      this.commitFullBatchNow(queuedRows);
    }
    this.scheduleDrain();
  }

  /**
   * A full batch is committed at once, inside the call that filled it, when the lock is free: a
   * caller issuing thousands of inserts in one synchronous loop then keeps at most one batch of rows
   * alive instead of all of them. Never waits: if the lock is taken (or the file cannot be opened at
   * once), the drain loop takes over. Only while the mutex is free, so it never interleaves with
   * the drain loop. Its callers' promises settle on the next turn of the event loop.
   */
  private commitFullBatchNow(queuedRows: number): void {
    let connection = this.connection;
    if (connection === undefined) {
      // A loop of inserts pays for a connection, once; a small `maxBatchRows` does not make one-row
      // writers open the file.
      if (this.triedOpenInCall || this.connecting !== undefined || queuedRows <= openInCallAboveRows) return;
      this.triedOpenInCall = true;
      try {
        connection = this.connectedNow();
      } catch {
        return; // The drain loop opens it on timers, and reports what stays wrong to the callers.
      }
    }
    this.committingInline = true;
    try {
      let began: boolean;
      try {
        began = connection.tryBegin();
      } catch {
        return; // The drain loop meets the same error and reports it to the callers.
      }
      if (began) this.commitNextBatch(connection, true);
      else this.inlineRetryAt = queuedRows + this.options.maxBatchRows;
    } finally {
      this.committingInline = false;
    }
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
          if (this.queue.hasJobs && !this.closed) this.scheduleDrain();
        });
    });
  }

  private async drainLoop(): Promise<void> {
    const backoff = new Backoff();
    let attempts = 0;
    let serveAgain = false;
    let trace = tracePhases('write');
    try {
      while ((this.queue.hasJobs || serveAgain) && !this.closed) {
        const step = await this.coordination.beforeAttempt(this.queue, this.connection !== undefined);
        if (step !== 'attempt') continue;
        const connection = this.connection ?? (await this.connectOrFail());
        if (connection === undefined) return;
        attempts += 1;
        let began: boolean;
        try {
          began = connection.tryBegin();
        } catch (error) {
          // Not a lock conflict (I/O error, file replaced...): the next batch's callers hear about it.
          this.queue.fail(this.queue.takeBatch(), toDatabaseError(error));
          serveAgain = false;
          continue;
        }
        if (!began) {
          this.queue.expireOverdue(Date.now(), waitedForLock);
          if (!this.queue.hasJobs && !serveAgain) continue;
          if (!this.coordination.refused()) continue; // queued for the turn, at the next attempt
          await sleep(
            backoff.next({
              // The turn's holder is the only one polling: SQLite's schedule, never the long delays for crowds.
              wal: this.coordination.holding ? undefined : walSignature(connection.path),
              deadline: this.queue.nextDeadline,
              queuedRows: this.queue.pendingRows,
            }),
          );
          continue;
        }
        trace.mark('lock-wait', { attempts });
        attempts = 0;
        backoff.reset();
        this.commitNextBatch(connection, false, trace);
        serveAgain = await this.coordination.afterTransaction(this.queue.hasJobs, this.closing);
        trace.mark('settle');
        // Between transactions, timers and I/O of the host process run, and other connections get a chance at the lock.
        if (this.queue.hasJobs || serveAgain) {
          await yieldToEventLoop();
          trace = tracePhases('write');
        }
      }
    } finally {
      this.coordination.release();
    }
  }

  /** Opens the file for a transaction; if it cannot be opened, everything queued fails with that error. */
  private async connectOrFail(): Promise<Connection | undefined> {
    try {
      return await this.connected();
    } catch (error) {
      this.coordination.release();
      this.queue.fail(this.queue.takeBatch(Number.POSITIVE_INFINITY), toDatabaseError(error));
      return undefined;
    }
  }

  /**
   * Inside BEGIN IMMEDIATE: commits the next batch, with the jobs other processes posted when this
   * writer holds the turn, then settles each caller and answers the others. Synchronous. `trace`
   * hears `lock-held` when the transaction ends (the write lock is released).
   */
  private commitNextBatch(connection: Connection, inline: boolean, trace?: PhaseTrace): void {
    const mail = this.coordination.takeMail(connection.identity);
    const batch = this.queue.takeBatch();
    const jobs = mail.length === 0 ? batch : [...batch, ...mail.map((entry) => entry.job)];
    let outcomes: ReturnType<Connection['commit']>;
    try {
      outcomes = connection.commit(jobs);
    } catch (error) {
      trace?.mark('lock-held');
      // Nothing was committed: a lost lock sends the batch back to the front of the queue, in order.
      if (isBusyError(error)) {
        this.queue.putBack(batch);
        this.coordination.answerMail(mail, 'not-committed');
      } else {
        const failure = toDatabaseError(error);
        this.queue.fail(batch, failure, inline);
        this.coordination.answerMail(
          mail,
          mail.map(() => failure),
        );
      }
      return;
    }
    trace?.mark('lock-held');
    this.inlineRetryAt = 0;
    this.queue.settle(batch, outcomes.slice(0, batch.length), inline);
    this.coordination.answerMail(mail, outcomes.slice(batch.length));
    connection.checkpointer.afterCommit();
  }
}
