import {
  isBusyError,
  type Metric,
  metrics,
  type PhaseTrace,
  sqliteCodeOf,
  tracePhases,
} from '@repo/db';
import { Mutex } from 'async-mutex';
import type BetterSqlite3 from 'better-sqlite3';
import { getTableName } from 'drizzle-orm';
import { DatabaseError, DuplicateEventError, type MetricsRepoError } from '../errors.ts';
import type { ResolvedSqliteOptions } from '../options.ts';
import type { Job, JobOutcome, WriteQueue } from '../queue.ts';
import { storedMetric, type ValidRow } from '../validate.ts';
import { Checkpointer } from './checkpoint.ts';
import { type FileIdentity, replacedFileError, verifyFile } from './file-identity.ts';
import { Backoff, sleep, tryBeginImmediate, walSignature, yieldToEventLoop } from './lock.ts';
import { decodePosting, encodeAnswer, type MailJob, Receipts } from './mailbox.ts';
import { postAndWait, settleIfDecided } from './post.ts';
import { openTurn, queuesForTurn, TurnWait, type WriteTurn } from './turn.ts';

/** A contended writer with at most this many rows queued posts them in the mailbox (see takeTurn). */
const mailboxMaxRows = 16;

/** How long a holder whose own rows are committed keeps serving the mailbox (see keepServing). */
const holderServesForMs = 3000;
/**
 * On a machine that is not overloaded, a holder whose last transaction carried posted rows still
 * waits this long for the next post (asleep in the kernel: see postedSoon). Handing the turn on
 * makes the next poster open the file first, while the others' rows wait: in 100 worker threads
 * that open took 38 to 185 ms, two to four times a run (BENCHMARKS.md, "Worker threads: a crash").
 */
const holderLingersMs = 150;

// Column names come from the schema, so the statement cannot drift from the table.
const insertColumns = [metrics.name, metrics.value, metrics.recordedAt, metrics.labels, metrics.eventId];
export const insertSql = `INSERT INTO "${getTableName(metrics)}" (${insertColumns.map((column) => `"${column.name}"`).join(', ')}) VALUES (${insertColumns.map(() => '?').join(', ')})`;

/** What a write that timed out waited for (LockTimeoutError's message). */
const waitedForLock = "SQLite's write lock, held by another connection";
const waitedForTurn =
  'the write turn, held by another repository on this file (a process or thread that may be stopped)';

/**
 * Group commit on one SQLite connection. One drain loop at a time (guarded by an
 * async mutex) takes the file's write lock with `BEGIN IMMEDIATE`, writes as many
 * queued rows as one batch holds with a prepared statement, commits, and only
 * then settles the callers' promises. Rows that arrive while a transaction runs
 * or while the loop waits for the lock join the next batch.
 *
 * The transaction itself is synchronous and short: nothing awaits while it is
 * open, so no other code can interleave with it.
 */
export class SqliteWriter {
  private readonly mutex = new Mutex();
  private readonly insert: BetterSqlite3.Statement;
  private readonly pageCount: BetterSqlite3.Statement;
  private drainScheduled = false;
  private connectionOpen = true;
  private committingInline = false;
  /**
   * From the first refused BEGIN on, this writer waits for the file's write turn (@repo/write-turn)
   * in the kernel, and only the turn's holder polls SQLite. Until then, or without a turn (the
   * addon is missing, a worker thread), the wait is on timers alone.
   */
  private contended = false;
  private servingMailbox = false;
  /** Waiting for a post with the turn held (postedSoon): a job of this writer's own ends the wait. */
  private lingering = false;
  private bypassTurnOnce = false;
  private servingSince: number | undefined;
  /** The last transaction carried rows from the mailbox: other processes are posting. */
  private tookMail = false;
  /** The turn's file was deleted or replaced: it is replaced once released (see usableTurn). */
  private replaceTurn = false;
  private readonly receipts: Receipts;
  /** close() was called: this writer serves nobody else's rows from now on (see keepServing). */
  private closing = false;
  /**
   * After an inline attempt found the lock taken, the next one waits until another full batch is
   * queued: a synchronous loop of inserts would otherwise try (and be refused) once per insert.
   */
  private inlineRetryAt = 0;
  /** Checkpoints off the event loop (see checkpoint.ts). */
  readonly checkpointer: Checkpointer;

  constructor(
    private readonly sqlite: BetterSqlite3.Database,
    private readonly path: string,
    private readonly identity: FileIdentity,
    private readonly queue: WriteQueue,
    private readonly options: ResolvedSqliteOptions,
    /** The file's turn, with its mailbox; held already when a follower became this writer. */
    private turn: WriteTurn | undefined,
  ) {
    if (turn?.held) {
      // Held since the open (see driver.ts) or by a follower that became this writer.
      this.contended = queuesForTurn;
      this.releaseTurnIfIdle();
    }
    this.insert = sqlite.prepare(insertSql);
    this.receipts = new Receipts(sqlite);
    this.pageCount = sqlite.prepare('PRAGMA page_count').pluck();
    this.checkpointer = new Checkpointer(sqlite, path);
    queue.listen({ jobsAdded: (queuedRows) => this.jobsAdded(queuedRows) });
  }

  /** Commits (or fails) everything queued, then closes the connection. The queue must have stopped accepting. */
  async close(): Promise<void> {
    this.closing = true;
    if (this.lingering) this.turn?.stopAwaitingPost();
    await this.mutex.runExclusive(async () => {
      await this.drainLoop();
      if (this.connectionOpen) {
        const trace = tracePhases('close');
        this.connectionOpen = false;
        await this.checkpointer.close();
        this.turn?.close();
        this.sqlite.close();
        trace.mark('close');
      }
    });
  }

  /**
   * The turn taken at open is kept for the first transaction, which serves the mailbox too, and
   * then handed on. A repository opened and left idle hands it on after two turns of the event
   * loop: time enough for the caller's first insert to schedule its drain.
   */
  private releaseTurnIfIdle(): void {
    setImmediate(() =>
      setImmediate(() => {
        if (this.turn?.held && !this.drainScheduled && !this.mutex.isLocked()) this.turn.release();
      }),
    );
  }

  /** A follower became this writer: it drains what is queued (see follower.ts). */
  start(holderSeemsHung: boolean): void {
    // A follower that gave up on a silent holder makes its first attempt without the turn.
    this.bypassTurnOnce = holderSeemsHung;
    this.scheduleDrain();
  }

  private jobsAdded(queuedRows: number): void {
    if (this.lingering) this.turn?.stopAwaitingPost();
    if (
      queuedRows >= this.options.maxBatchRows &&
      queuedRows >= this.inlineRetryAt &&
      !this.mutex.isLocked() &&
      !this.committingInline
    ) {
      this.commitFullBatchNow(queuedRows);
    }
    this.scheduleDrain();
  }

  /**
   * A full batch is committed at once, inside the call that filled it, when the
   * lock is free: a caller issuing thousands of inserts in one synchronous loop
   * then keeps at most one batch of rows alive instead of all of them (with
   * 100,000 calls in flight, keeping every row until the loop ends costs more in
   * garbage collection than the inserts themselves). Never waits: if the lock is
   * taken, the drain loop takes over. Only runs while the mutex is free, so it
   * never interleaves with the drain loop, and it awaits nothing. Its callers'
   * promises settle on the next turn of the event loop (see WriteQueue.settle).
   */
  private commitFullBatchNow(queuedRows: number): void {
    if (!this.connectionOpen) return;
    this.committingInline = true;
    try {
      let began: boolean;
      try {
        began = tryBeginImmediate(this.sqlite);
      } catch {
        return; // The drain loop meets the same error and reports it to the callers.
      }
      if (began) this.commitNextBatch(true);
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
          if (this.queue.hasJobs && this.connectionOpen) this.scheduleDrain();
        });
    });
  }

  private async drainLoop(): Promise<void> {
    const backoff = new Backoff();
    const turnWait = new TurnWait();
    turnWait.bypass = this.bypassTurnOnce;
    this.bypassTurnOnce = false;
    let attempts = 0;
    let trace = tracePhases('write');
    try {
      while ((this.queue.hasJobs || this.servingMailbox) && this.connectionOpen) {
        if (!(await this.takeTurn(turnWait))) continue;
        let began: boolean;
        attempts += 1;
        try {
          began = tryBeginImmediate(this.sqlite);
        } catch (error) {
          // Not a lock conflict (I/O error, file replaced...): the next batch's callers hear about it,
          // and the mailbox's followers find the turn free and try for themselves.
          this.queue.fail(this.queue.takeBatch(), toDatabaseError(error));
          this.servingMailbox = false;
          continue;
        }
        if (!began) {
          this.queue.expireOverdue(Date.now(), waitedForLock);
          if (!this.queue.hasJobs && !this.servingMailbox) continue;
          this.contended = queuesForTurn;
          // Contended: queue for the turn (takeTurn) instead of polling, unless this writer holds it.
          if (this.contended && this.turn !== undefined && !this.turn.held) continue;
          await sleep(
            backoff.next({
              // The turn's holder is the only one polling: SQLite's schedule, never the long delays for crowds.
              wal: this.turn?.held ? undefined : walSignature(this.path),
              deadline: this.queue.nextDeadline,
              queuedRows: this.queue.pendingRows,
            }),
          );
          continue;
        }
        trace.mark('lock-wait', { attempts });
        attempts = 0;
        backoff.reset();
        turnWait.reset();
        this.servingMailbox = false;
        this.commitNextBatch(false, trace);
        if (this.turn?.held && !(await this.keepServing())) this.turn.release();
        this.replaceStaleTurn();
        trace.mark('settle');
        // Between transactions, timers and I/O of the host process run, and other connections get a chance at the lock.
        if (this.queue.hasJobs || this.servingMailbox) {
          await yieldToEventLoop();
          trace = tracePhases('write');
        }
      }
    } finally {
      if (this.turn?.held) this.turn.release();
    }
  }

  /**
   * After a commit, the holder keeps the turn for another transaction while rows wait in the
   * mailbox: with its connection open, that costs a transaction, where handing the turn on makes
   * a follower open the file first. Bounded in time, so that a holder whose own work is done
   * can close: 3 s, or 30 s while the machine is overloaded, when that open takes seconds.
   */
  private async keepServing(): Promise<boolean> {
    const turn = this.turn as WriteTurn;
    // A closing writer's own rows are committed: others' are the next holder's (close() returns now).
    if (this.closing || (turn.posted() === 0 && !(await this.postedSoon()))) {
      this.servingSince = undefined;
      return false;
    }
    this.servingSince ??= Date.now();
    if (Date.now() - this.servingSince > holderServesForMs) {
      this.servingSince = undefined;
      return false;
    }
    this.servingMailbox = true;
    return true;
  }

  /**
   * Nothing posted: when the last transaction carried posted rows (others are posting), waits a
   * moment for a post rather than hand the turn on: 150 ms, or 1 s on an overloaded machine. In
   * the kernel (the turn's awaitPost), the event loop free: a poll on a 10 ms timer cost a one-row
   * holder 20 to 28 ms of CPU per second of waiting (BENCHMARKS.md, "A holder's linger, in the
   * kernel"). True when one came; false when the time is up, or at once when the writer has rows
   * of its own to commit (jobsAdded ends the wait; its drain loop goes on, holding the turn or not).
   */
  private async postedSoon(): Promise<boolean> {
    const turn = this.turn as WriteTurn;
    if (!this.tookMail || this.queue.hasJobs || this.closing) return false;
    this.lingering = true;
    try {
      return (await turn.awaitPost(holderLingersMs)) && !this.queue.hasJobs && !this.closing;
    } finally {
      this.lingering = false;
    }
  }

  /**
   * Before an attempt at SQLite's lock, once the file has been found contended: the turn (see
   * @repo/write-turn). False when the wait ran out of patience or a deadline passed; the caller loops.
   * Without a turn (never contended, or the addon is missing) there is nothing to take.
   */
  private async takeTurn(turnWait: TurnWait): Promise<boolean> {
    const turn = this.turn;
    if (turn === undefined || turn.held || turnWait.bypass) {
      turnWait.bypass = false;
      return true;
    }
    // Free: this writer holds it for its transaction, and serves the mailbox with it.
    if (turn.tryAcquire()) return true;
    const deadline = this.queue.nextDeadline;
    // Held elsewhere, and one small job here (a process's one row): hand it to the holder, whose
    // next transaction commits it with everyone else's, rather than a transaction of its own.
    const job = this.queue.pendingRows <= mailboxMaxRows ? this.queue.takeBatch(1)[0] : undefined;
    if (job !== undefined) {
      if (this.queue.hasJobs) this.queue.putBack([job]);
      else {
        const posted = await postAndWait(
          turn,
          job,
          this.identity,
          this.options.synchronous,
          deadline,
          this.options.threadSlices,
        );
        if (settleIfDecided(this.queue, job, posted)) return false;
        this.queue.putBack([job]);
        // The turn is this writer's now; or the holder seems hung: one attempt without it.
        if (posted.kind === 'turn') return true;
        if (posted.kind === 'quiet') {
          turnWait.bypass = true;
          return false;
        }
      }
    }
    // A backlog: its own transactions, at once while the file was never found contended.
    if (!this.contended) return true;
    const patience = turnWait.next();
    const wait = Math.min(patience, Math.max(0, deadline - Date.now()));
    if (await turn.acquire(wait)) return true;
    this.queue.expireOverdue(Date.now(), waitedForTurn);
    // Out of patience (the holder may hang): one attempt at SQLite's lock without the turn.
    if (wait >= patience) turnWait.bypass = true;
    return false;
  }

  /**
   * Called once BEGIN IMMEDIATE has succeeded: commits the next batch, with the rows other processes
   * posted in the turn's mailbox when this writer holds the turn, or fails it if the file is damaged.
   * Synchronous. `trace` hears `lock-held` when the transaction ends (the write lock is released).
   */
  private commitNextBatch(inline: boolean, trace?: PhaseTrace): void {
    const mail = this.takeMail();
    try {
      verifyFile(this.path, this.identity, this.pageCount.get() as number);
    } catch (error) {
      this.sqlite.exec('ROLLBACK');
      trace?.mark('lock-held');
      const failure = toDatabaseError(error);
      this.queue.fail(this.queue.takeBatch(), failure, inline);
      this.failMail(mail, failure);
      return;
    }
    this.commitBatch(this.queue.takeBatch(), mail, inline, trace);
  }

  /**
   * The holder's share of the mailbox: every job posted for this file, except those of followers
   * with another `synchronous` (handed back; they commit them themselves when they get the turn).
   * A damaged entry is answered with an error. Whether a job was stored already (by a holder that
   * died before answering) is for its receipt to say, inside the transaction (see writeJob).
   */
  private takeMail(): MailJob[] {
    this.tookMail = false;
    const turn = this.usableTurn();
    if (turn === undefined || !turn.held) return [];
    const mail: MailJob[] = [];
    for (const posted of turn.take()) {
      let job: MailJob;
      try {
        job = decodePosting(posted.ticket, posted.payload);
      } catch (error) {
        turn.answer(posted.ticket, encodeAnswer(toDatabaseError(error)), true);
        continue;
      }
      if (job.synchronous !== this.options.synchronous) {
        turn.untake(job.ticket);
      } else mail.push(job);
    }
    this.tookMail = mail.length > 0;
    return mail;
  }

  /**
   * The turn, if it can still be used. A broken one (its file truncated or damaged under the
   * mapping) is dropped: this writer waits on timers from now on. A stale one (deleted or replaced
   * at its path) is served once more by a holder, then replaced by the turn now at the path, so
   * that every writer of the file meets in one mailbox again.
   */
  private usableTurn(): WriteTurn | undefined {
    const turn = this.turn;
    if (turn === undefined) return undefined;
    const state = turn.state();
    if (state === 'usable') return turn;
    if (state === 'broken') {
      turn.close();
      this.turn = undefined;
      return undefined;
    }
    this.replaceTurn = true;
    return turn;
  }

  /** After a transaction on a stale turn: the turn now at the path takes its place. */
  private replaceStaleTurn(): void {
    if (!this.replaceTurn || this.turn?.held) return;
    this.replaceTurn = false;
    this.turn?.close();
    this.turn = openTurn(this.path);
  }

  /** Nothing was committed: every follower's final answer is `failure`, then they are woken. */
  private failMail(mail: MailJob[], failure: JobOutcome): void {
    if (mail.length === 0) return;
    const turn = this.turn as WriteTurn;
    const answer = encodeAnswer(failure);
    for (const entry of mail) turn.answer(entry.ticket, answer, true);
    turn.announce();
  }

  /**
   * Runs inside BEGIN IMMEDIATE; commits, or rolls back and reports. Synchronous from start to
   * end. The followers' answers are written after the commit, then made final all at once: a
   * holder that dies before leaves their jobs taken, and the next holder's receipts tell.
   */
  private commitBatch(batch: Job[], mail: MailJob[], inline: boolean, trace?: PhaseTrace): void {
    let outcomes: JobOutcome[];
    // Mail is only taken while holding the turn: wherever there is mail, there is a turn.
    const turn = this.turn as WriteTurn;
    // A follower's rows go where the follower meant: not into a file that replaced it at that path.
    const mailJobs: Job[] = [];
    const misplaced = new Map<MailJob, MetricsRepoError>();
    for (const entry of mail) {
      if (entry.file.dev === this.identity.dev && entry.file.ino === this.identity.ino) mailJobs.push(entry.job);
      else misplaced.set(entry, replacedFileError(this.path));
    }
    const all = mailJobs.length === 0 ? batch : [...batch, ...mailJobs];
    try {
      outcomes = all.length === 1 ? this.writeAlone(all[0] as Job) : this.writeBatch(all);
      if (this.sqlite.inTransaction) this.sqlite.exec('COMMIT');
      trace?.mark('lock-held');
    } catch (error) {
      if (this.sqlite.inTransaction) this.sqlite.exec('ROLLBACK');
      trace?.mark('lock-held');
      // Nothing was committed: a lost lock sends the batch back to the front of the queue, in order.
      if (isBusyError(error)) {
        this.queue.putBack(batch);
        for (const entry of mail) turn.untake(entry.ticket);
      } else {
        const failure = toDatabaseError(error);
        this.queue.fail(batch, failure, inline);
        this.failMail(mail, failure);
      }
      return;
    }
    this.inlineRetryAt = 0;
    this.queue.settle(batch, outcomes.slice(0, batch.length), inline);
    if (mail.length > 0) {
      let k = batch.length;
      for (const entry of mail) {
        const outcome = misplaced.get(entry) ?? (outcomes[k++] as JobOutcome);
        turn.answer(entry.ticket, encodeAnswer(outcome), false);
      }
      // Every answer is written before the first follower is woken.
      turn.finish(mail.map((entry) => entry.ticket));
    }
    this.checkpointer.afterCommit();
  }

  /**
   * A batch of one job (a lone process's single insert, typically) needs no
   * savepoint: if its row fails, the whole transaction is rolled back, and it
   * held nothing else.
   */
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
   * Fast path: every row of the batch under one savepoint. Only when a row fails
   * does the batch run again with one savepoint per job, so the failure reaches
   * that job's caller alone and the others still commit.
   */
  private writeBatch(batch: Job[]): JobOutcome[] {
    const fast = this.inSavepoint('batch', () => batch.map((job) => this.writeJob(job)));
    if ('value' in fast) return fast.value;
    return batch.map((job) => {
      const attempt = this.inSavepoint('job', () => this.writeJob(job));
      return 'value' in attempt ? attempt.value : rowError(attempt.failure);
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

  /**
   * Writes one job's rows. A job that went through the mailbox carries a receipt: if a transaction
   * stored it already (a holder that died before answering, two holders of one file), it is
   * answered from that receipt instead; otherwise its receipt is recorded with its rows, in this
   * transaction. So a posted job is stored exactly once, whoever holds it and whatever the turn
   * file says (docs/decisions/0018-mailbox-receipts.md).
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
    if (receipt !== undefined)
      this.receipts.record(receipt, (Array.isArray(stored) ? stored[0] : stored)?.id ?? 0, Date.now());
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
