import { type Metric, metrics, pgCodeOf } from '@repo/db/pg';
import { getTableName } from 'drizzle-orm';
import type { Pool, PoolClient } from 'pg';
import { DatabaseError, DuplicateEventError, type MetricsRepoError } from '../errors.ts';
import type { Job, JobOutcome, WriteQueue } from '../queue.ts';
import { storedMetric, type ValidRow } from '../validate.ts';
import { pgJobProblem, timestampLiteral } from './rows.ts';

// One statement per batch, whatever its size: five arrays, unnested into rows. Column names come
// from the schema, so the statement cannot drift from the table. ON CONFLICT: a duplicate eventId
// is skipped instead of aborting the statement; it is the row missing from RETURNING.
const insertColumns = [metrics.name, metrics.value, metrics.recordedAt, metrics.labels, metrics.eventId];
const arrayTypes = ['text[]', 'float8[]', 'timestamptz[]', 'jsonb[]', 'text[]'] as const;
const insertHead = `INSERT INTO "${getTableName(metrics)}" (${insertColumns.map((column) => `"${column.name}"`).join(', ')}) SELECT * FROM unnest(`;
const insertTail = `) ON CONFLICT ("${metrics.eventId.name}") DO NOTHING RETURNING "${metrics.id.name}" AS id, "${metrics.eventId.name}" AS event_id`;

/** SQLSTATEs after which the whole batch is simply tried again: nothing was written. */
const retryableCodes = new Set(['40P01', '40001']); // deadlock (two batches with the same eventIds), serialization
const lockTimeoutCode = '55P03';

/**
 * Group commit on PostgreSQL. One drain loop at a time takes the queued jobs
 * (up to `maxBatchRows` rows), writes them with one INSERT statement in one
 * transaction on one pooled connection, commits, and only then settles the
 * callers' promises. Rows that arrive while a batch is in flight join the next.
 *
 * Per transaction, `lock_timeout` is the time left before the earliest caller's
 * deadline (`lockTimeoutMs` from its call), so waiting for another session's
 * lock ends with SQLSTATE 55P03 in time: the overdue callers get
 * LockTimeoutError, the others are tried again.
 */
export class PgWriter {
  private drainScheduled = false;
  private draining: Promise<void> | undefined;

  constructor(
    private readonly pool: Pool,
    private readonly queue: WriteQueue,
    private readonly lockTimeoutMs: number,
  ) {
    queue.listen({ jobsAdded: () => this.scheduleDrain() });
  }

  /** Commits (or fails) everything queued. The queue must have stopped accepting. */
  async close(): Promise<void> {
    while (this.draining !== undefined || this.queue.hasJobs) {
      await (this.draining ?? this.drain());
    }
  }

  private scheduleDrain(): void {
    // While a drain runs, its loop takes the new jobs (or its end schedules another drain).
    if (this.drainScheduled || this.draining !== undefined) return;
    this.drainScheduled = true;
    // setImmediate rather than a microtask: writes issued by other callbacks of this turn join the batch.
    setImmediate(() => {
      this.drainScheduled = false;
      if (this.draining === undefined) void this.drain();
    });
  }

  private drain(): Promise<void> {
    this.draining = this.drainLoop().finally(() => {
      this.draining = undefined;
      // Jobs added after the loop's last look, while this promise settled.
      if (this.queue.hasJobs) this.scheduleDrain();
    });
    return this.draining;
  }

  private async drainLoop(): Promise<void> {
    while (this.queue.hasJobs) {
      this.queue.expireOverdue(Date.now());
      if (!this.queue.hasJobs) break;
      await this.commitBatch(this.queue.takeBatch());
    }
  }

  /** Never rejects: every job of the batch is settled, or put back to be tried again. */
  private async commitBatch(batch: Job[]): Promise<void> {
    // Jobs PostgreSQL cannot store fail alone, before the statement.
    const pending = { jobs: batch };
    const refused: Job[] = [];
    const refusals: MetricsRepoError[] = [];
    for (const job of batch) {
      const problem = pgJobProblem(job);
      if (problem === undefined) continue;
      refused.push(job);
      refusals.push(problem);
    }
    if (refused.length > 0) {
      this.queue.settle(refused, refusals);
      pending.jobs = batch.filter((job) => !refused.includes(job));
      if (pending.jobs.length === 0) return;
    }

    let client: PoolClient;
    try {
      client = await this.pool.connect();
    } catch (error) {
      this.queue.fail(pending.jobs, toDatabaseError(error));
      return;
    }
    // Checked out, the client has no listener of the pool's: a connection dying between two
    // statements would be an uncaught 'error' event. The statement in flight rejects instead.
    client.on('error', ignoreClientError);
    let healthy = true;
    try {
      await this.writeJobs(client, pending);
    } catch (error) {
      healthy = await rollback(client);
      const code = pgCodeOf(error);
      if (code === lockTimeoutCode || retryableCodes.has(code)) {
        // Nothing was written. Callers past their deadline get LockTimeoutError; the rest are tried again.
        this.queue.putBack(pending.jobs);
        this.queue.expireOverdue(Date.now());
      } else {
        this.queue.fail(pending.jobs, toDatabaseError(error));
      }
    } finally {
      client.removeListener('error', ignoreClientError);
      // A connection in an unknown state is closed rather than handed to the next caller.
      client.release(healthy ? undefined : true);
    }
  }

  /**
   * Writes the jobs in one transaction and settles them after COMMIT.
   *
   * The batch travels as one simple-protocol query, `BEGIN; SET LOCAL lock_timeout;
   * INSERT ... RETURNING; COMMIT`, with the rows as array literals: one round trip
   * per batch (bound parameters would need one per statement: three, which with
   * one row per process cost more than the insert).
   *
   * A duplicate eventId skipped inside an `insertMany` job would leave that job
   * half-written, so a batch holding an `insertMany` with eventIds commits only
   * after looking at RETURNING: if such a job lost a row, the transaction is
   * rolled back, that job fails, and the others are written again without it (rare:
   * only when such a job meets a stored eventId).
   * `pending.jobs` always holds the jobs not settled yet, for the caller to fail if this throws.
   */
  private async writeJobs(client: PoolClient, pending: { jobs: Job[] }): Promise<void> {
    for (;;) {
      const jobs = pending.jobs;
      const earliestCall = jobs.reduce((min, job) => Math.min(min, job.calledAt), Number.POSITIVE_INFINITY);
      // Never 0: for PostgreSQL that means "wait forever". Each attempt waits at least 1 ms.
      const lockTimeout = Math.max(1, Math.ceil(earliestCall + this.lockTimeoutMs - Date.now()));
      const insert = buildInsert(jobs);
      const mayHalfWrite = jobs.some((job) => Array.isArray(job.rows) && job.rows.some((row) => row.eventId !== null));
      const begin = `BEGIN; SET LOCAL lock_timeout = ${lockTimeout}; `;
      if (!mayHalfWrite) {
        const results = await client.query(`${begin}${insert.sql}; COMMIT`);
        const outcomes = insert.outcomes(insertResultOf(results));
        pending.jobs = [];
        this.queue.settle(jobs, outcomes);
        return;
      }
      const outcomes = insert.outcomes(insertResultOf(await client.query(`${begin}${insert.sql}`)));
      const halfWritten = jobs.filter(
        (job, i) => Array.isArray(job.rows) && outcomes[i] instanceof DuplicateEventError,
      );
      if (halfWritten.length === 0) {
        await client.query('COMMIT');
        pending.jobs = [];
        this.queue.settle(jobs, outcomes);
        return;
      }
      await client.query('ROLLBACK');
      this.queue.settle(
        halfWritten,
        halfWritten.map((job) => outcomes[jobs.indexOf(job)] as JobOutcome),
      );
      pending.jobs = jobs.filter((job) => !halfWritten.includes(job));
      if (pending.jobs.length === 0) return;
    }
  }
}

interface ReturnedRow {
  id: string;
  event_id: string | null;
}

/** The INSERT's result among those of a multi-statement query (BEGIN, SET, INSERT[, COMMIT]). */
function insertResultOf(results: unknown): ReturnedRow[] {
  const insert = (results as { command: string; rows: ReturnedRow[] }[]).find((result) => result.command === 'INSERT');
  if (insert === undefined) throw new DatabaseError('NO_INSERT_RESULT', 'the batch query returned no INSERT result');
  return insert.rows;
}

/**
 * The INSERT for every row of `jobs`, and how to turn its RETURNING rows into
 * each job's outcome (its rows, or DuplicateEventError). An eventId repeated
 * across jobs of the batch stays with the first job; the later ones are
 * duplicates and are not sent.
 */
function buildInsert(jobs: Job[]): { sql: string; outcomes(returned: ReturnedRow[]): JobOutcome[] } {
  const repeats: (DuplicateEventError | undefined)[] = new Array(jobs.length);
  const seen = new Set<string>();
  const names: string[] = [];
  const values: string[] = [];
  const times: string[] = [];
  const labels: string[] = [];
  const eventIds: string[] = [];
  let sent = 0;
  for (let j = 0; j < jobs.length; j++) {
    const job = jobs[j] as Job;
    const rows = Array.isArray(job.rows) ? job.rows : [job.rows];
    const repeated = rows.find((row) => row.eventId !== null && seen.has(row.eventId));
    if (repeated !== undefined) {
      repeats[j] = new DuplicateEventError(repeated.eventId as string);
      continue;
    }
    for (const row of rows) {
      if (row.eventId !== null) seen.add(row.eventId);
      names.push(arrayElement(row.name));
      values.push(String(row.value));
      times.push(arrayElement(timestampLiteral(row.recordedAt)));
      labels.push(row.labelsJson === null ? 'NULL' : arrayElement(row.labelsJson));
      eventIds.push(row.eventId === null ? 'NULL' : arrayElement(row.eventId));
      sent += 1;
    }
  }
  const arrays = [names, values, times, labels, eventIds].map(
    (elements, i) => `${sqlLiteral(`{${elements.join(',')}}`)}::${arrayTypes[i]}`,
  );
  return {
    sql: `${insertHead}${arrays.join(', ')}${insertTail}`,
    outcomes(returned) {
      const outcomes: JobOutcome[] = new Array(jobs.length);
      // RETURNING lists the inserted rows in the order they were inserted; the skipped ones are missing.
      const insertedEventIds = returned.length === sent ? undefined : new Set(returned.map((row) => row.event_id));
      const wasSkipped = (row: ValidRow) =>
        insertedEventIds !== undefined && row.eventId !== null && !insertedEventIds.has(row.eventId);
      let next = 0;
      for (let j = 0; j < jobs.length; j++) {
        const repeat = repeats[j];
        if (repeat !== undefined) {
          outcomes[j] = repeat;
          continue;
        }
        const job = jobs[j] as Job;
        const rows = Array.isArray(job.rows) ? job.rows : [job.rows];
        const skipped = rows.find(wasSkipped);
        if (skipped !== undefined) {
          outcomes[j] = new DuplicateEventError(skipped.eventId as string);
          // Rows of this job that were inserted still have their RETURNING entries (rolled back later).
          next += rows.filter((row) => !wasSkipped(row)).length;
          continue;
        }
        outcomes[j] = Array.isArray(job.rows)
          ? job.rows.map((row) => stored(row, returned[next++]))
          : stored(job.rows, returned[next++]);
      }
      return outcomes;
    },
  };
}

/** One element of a PostgreSQL array literal: always quoted, `"` and `\` escaped. */
function arrayElement(text: string): string {
  return `"${text.replace(/["\\]/g, '\\$&')}"`;
}

/**
 * A string constant in E'' form: `'` and `\` doubled. Correct whatever the server's
 * standard_conforming_strings; the input never holds NUL (refused by validation).
 */
function sqlLiteral(text: string): string {
  return `E'${text.replace(/\\/g, '\\\\').replace(/'/g, "''")}'`;
}

function stored(row: ValidRow, returned: ReturnedRow | undefined): Metric {
  // Defensive: RETURNING and the rows must line up; a mismatch must never hand a caller another's id.
  if (returned === undefined || returned.event_id !== row.eventId) {
    throw new DatabaseError('RETURNING_MISMATCH', 'the rows returned by INSERT do not line up with the rows sent');
  }
  return storedMetric(row, Number(returned.id));
}

/** Ends a failed transaction. Resolves false when the connection is no longer usable. */
async function rollback(client: PoolClient): Promise<boolean> {
  try {
    await client.query('ROLLBACK');
    return true;
  } catch {
    return false;
  }
}

function ignoreClientError(): void {}

export function toDatabaseError(error: unknown): DatabaseError {
  if (error instanceof DatabaseError) return error;
  const message = error instanceof Error ? error.message : String(error);
  return new DatabaseError(pgCodeOf(error), message, { cause: error });
}
