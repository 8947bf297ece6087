import type { Metric } from '@repo/db';
import { LockTimeoutError, type MetricsRepoError, QueueFullError, RepoClosedError, ValidationError } from './errors.ts';
import type { ResolvedCommonOptions } from './options.ts';
import type { ValidRow } from './validate.ts';

/**
 * The write queue every backend shares: it accepts callers' writes, holds them
 * until a backend commits them in batches (group commit), applies backpressure
 * (`maxQueuedRows`, `onQueueFull`) and every caller's deadline, and settles each
 * caller's promise with its own outcome. It runs no SQL: the backend's writer
 * takes batches from it, commits them its own way, and hands the outcomes back.
 */

/** One caller's write: a single `insert` or a whole, all-or-nothing `insertMany`. */
export interface Job {
  /** One row (`insert`: no array allocated per call) or the rows of an `insertMany`. */
  rows: ValidRow | ValidRow[];
  size: number;
  /** `Date.now()` at the call; the deadline is this plus `lockTimeoutMs`. */
  calledAt: number;
  /**
   * Set once the job was posted in the mailbox, where a holder may have taken it: whoever writes
   * it records this receipt, and nobody writes a job whose receipt is already recorded.
   */
  receipt?: Receipt;
  // biome-ignore lint/suspicious/noExplicitAny: resolves with Metric (single) or Metric[] (many)
  resolve(value: any): void;
  reject(error: MetricsRepoError): void;
}

/** A posted job's key in the database's receipts (see sqlite/mailbox.ts): when it was posted, and a random number. */
export interface Receipt {
  postedAt: number;
  nonce: number;
}

/** What a committed job produced: its stored row(s), or the error for its caller alone. */
export type JobOutcome = Metric | Metric[] | MetricsRepoError;

/** A caller waiting for room in a full queue (`onQueueFull: 'wait'`). */
interface Waiter {
  rows: ValidRow | ValidRow[];
  size: number;
  calledAt: number;
  resolve: Job['resolve'];
  reject: Job['reject'];
}

/** What the queue asks of the backend's writer. */
export interface QueueListener {
  /** Jobs were added: make sure a drain is scheduled. */
  jobsAdded(queuedRows: number): void;
}

export class WriteQueue {
  // Arrays with a head index: taking from the front is O(1); the consumed prefix is dropped in bulk.
  private jobs: Job[] = [];
  private jobsHead = 0;
  private waiters: Waiter[] = [];
  private waitersHead = 0;
  private queuedRows = 0;
  private accepting = true;
  private listener: QueueListener | undefined;
  /**
   * Outcomes of jobs committed inside a caller's own call, settled on the next turn of the event
   * loop. Only the settlers are kept, not the jobs: the validated rows of a synchronous loop's
   * earlier batches are garbage at once instead of living (and being copied by the garbage
   * collector) until the loop ends.
   */
  private deferredSettlers: ((outcome: JobOutcome) => void)[] = [];
  private deferredOutcomes: JobOutcome[] = [];

  constructor(
    private readonly options: ResolvedCommonOptions,
    /** Names the database in LockTimeoutError: the file's path, or the URL without its password. */
    private readonly database: string,
  ) {}

  /** Set once by the backend's writer. */
  listen(listener: QueueListener): void {
    this.listener = listener;
  }

  /** Rows accepted and not yet committed or failed. */
  get pendingRows(): number {
    return this.queuedRows;
  }

  get hasJobs(): boolean {
    return this.jobsHead < this.jobs.length;
  }

  /** When the oldest queued or waiting call passes its deadline (a `Date.now()` value); Infinity when none waits. */
  get nextDeadline(): number {
    const job = this.jobs[this.jobsHead];
    const waiter = this.waiters[this.waitersHead];
    const calledAt = Math.min(job?.calledAt ?? Infinity, waiter?.calledAt ?? Infinity);
    return calledAt + this.options.lockTimeoutMs;
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
    const calledAt = Date.now();
    const promise = new Promise<Metric | Metric[]>(captureSettlers);
    if (this.waitersHead === this.waiters.length && this.queuedRows + size <= maxQueuedRows) {
      this.enqueue({ rows, size, calledAt, resolve: capturedResolve, reject: capturedReject });
    } else if (onQueueFull === 'reject') {
      capturedReject(new QueueFullError(maxQueuedRows));
    } else {
      this.waiters.push({ rows, size, calledAt, resolve: capturedResolve, reject: capturedReject });
    }
    return promise;
  }

  /** Jobs from the front of the queue, up to `maxRows` rows (at least one job). */
  takeBatch(maxRows = this.options.maxBatchRows): Job[] {
    const batch: Job[] = [];
    let rows = 0;
    while (this.jobsHead < this.jobs.length) {
      const job = this.jobs[this.jobsHead] as Job;
      if (batch.length > 0 && rows + job.size > maxRows) break;
      batch.push(job);
      rows += job.size;
      this.jobsHead += 1;
    }
    this.compactJobs();
    return batch;
  }

  /** A batch that was not committed (the lock was lost) goes back to the front, in order. */
  putBack(batch: Job[]): void {
    if (batch.length === 0) return;
    this.jobs = [...batch, ...this.jobs.slice(this.jobsHead)];
    this.jobsHead = 0;
  }

  /**
   * Settles a committed batch, each job with its own outcome. `deferToNextTurn`:
   * the batch was committed inside a caller's own call, so its promises settle on
   * the next turn of the event loop. Otherwise a loop that awaits full batches
   * (`for (;;) await repo.insertMany(rows)`) would continue in a microtask every
   * time and never let a timer or an I/O callback run.
   */
  settle(batch: Job[], outcomes: JobOutcome[], deferToNextTurn = false): void {
    for (let i = 0; i < batch.length; i++) {
      const job = batch[i] as Job;
      this.queuedRows -= job.size;
      const outcome = outcomes[i] as JobOutcome;
      if (deferToNextTurn) this.defer(job, outcome);
      else settleJob(job, outcome);
    }
    // Callers waiting for room are rare (a full queue): most settles never need the clock.
    if (this.waitersHead < this.waiters.length) this.admitWaiters(Date.now());
  }

  /** Fails every job of a batch with the same error (nothing of it was stored). */
  fail(batch: Job[], error: MetricsRepoError, deferToNextTurn = false): void {
    this.settle(
      batch,
      batch.map(() => error),
      deferToNextTurn,
    );
  }

  /**
   * Fails the jobs and waiters whose deadline has passed: jobs while the lock is
   * held elsewhere (LockTimeoutError), waiters that found no room (QueueFullError).
   * Deadlines grow along both queues, so only their fronts are looked at.
   */
  expireOverdue(now: number, waitedFor?: string): void {
    const calledBefore = now - this.options.lockTimeoutMs;
    while (this.jobsHead < this.jobs.length && (this.jobs[this.jobsHead] as Job).calledAt <= calledBefore) {
      const job = this.jobs[this.jobsHead] as Job;
      this.jobsHead += 1;
      this.queuedRows -= job.size;
      job.reject(new LockTimeoutError(this.database, now - job.calledAt, waitedFor));
    }
    this.compactJobs();
    while (
      this.waitersHead < this.waiters.length &&
      (this.waiters[this.waitersHead] as Waiter).calledAt <= calledBefore
    ) {
      const waiter = this.waiters[this.waitersHead] as Waiter;
      this.waitersHead += 1;
      waiter.reject(new QueueFullError(this.options.maxQueuedRows, now - waiter.calledAt));
    }
    this.compactWaiters();
    this.admitWaiters(now);
  }

  /** Stops accepting calls; callers still waiting for room were never accepted and are rejected. */
  stopAccepting(): void {
    this.accepting = false;
    const waiting = this.waiters.slice(this.waitersHead);
    this.waiters = [];
    this.waitersHead = 0;
    for (const waiter of waiting) waiter.reject(new RepoClosedError());
  }

  private enqueue(job: Job): void {
    this.jobs.push(job);
    this.queuedRows += job.size;
    this.listener?.jobsAdded(this.queuedRows);
  }

  private admitWaiters(now: number): void {
    const { maxQueuedRows, lockTimeoutMs } = this.options;
    while (this.waitersHead < this.waiters.length) {
      const waiter = this.waiters[this.waitersHead] as Waiter;
      if (this.queuedRows + waiter.size > maxQueuedRows) break;
      this.waitersHead += 1;
      if (waiter.calledAt + lockTimeoutMs <= now) {
        waiter.reject(new QueueFullError(maxQueuedRows, now - waiter.calledAt));
        continue;
      }
      this.enqueue(waiter);
    }
    this.compactWaiters();
  }

  private defer(job: Job, outcome: JobOutcome): void {
    if (this.deferredOutcomes.length === 0) setImmediate(() => this.flushDeferred());
    this.deferredSettlers.push(settlerOf(job, outcome));
    this.deferredOutcomes.push(outcome);
  }

  private flushDeferred(): void {
    const settlers = this.deferredSettlers;
    const outcomes = this.deferredOutcomes;
    this.deferredSettlers = [];
    this.deferredOutcomes = [];
    settlers.forEach((settle, i) => {
      settle(outcomes[i] as JobOutcome);
    });
  }

  private compactJobs(): void {
    if (this.jobsHead > 1024 && this.jobsHead * 2 > this.jobs.length) {
      this.jobs = this.jobs.slice(this.jobsHead);
      this.jobsHead = 0;
    }
  }

  private compactWaiters(): void {
    if (this.waitersHead > 1024 && this.waitersHead * 2 > this.waiters.length) {
      this.waiters = this.waiters.slice(this.waitersHead);
      this.waitersHead = 0;
    } else if (this.waitersHead === this.waiters.length && this.waitersHead > 0) {
      this.waiters = [];
      this.waitersHead = 0;
    }
  }
}

function settleJob(job: Job, outcome: JobOutcome): void {
  settlerOf(job, outcome)(outcome);
}

/** The job's reject for an error, its resolve otherwise. */
function settlerOf(job: Job, outcome: JobOutcome): (outcome: JobOutcome) => void {
  return outcome instanceof Error ? (job.reject as (outcome: JobOutcome) => void) : job.resolve;
}

// A module-level executor: `new Promise(captureSettlers)` allocates no closure per call, and with
// 100,000 calls in flight every allocation that lives until the commit costs garbage-collection time.
let capturedResolve: Job['resolve'];
let capturedReject: Job['reject'];
function captureSettlers(resolve: Job['resolve'], reject: Job['reject']): void {
  capturedResolve = resolve;
  capturedReject = reject;
}
