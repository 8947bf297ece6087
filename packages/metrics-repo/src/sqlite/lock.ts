import { isBusyError } from '@repo/db';
import type BetterSqlite3 from 'better-sqlite3';

/**
 * Waiting for another connection's lock without freezing the event loop.
 *
 * SQLite's busy timeout sleeps and polls *inside* the synchronous call, so the
 * whole Node thread stops for as long as another process holds the lock. The
 * repository runs with `busy_timeout = 0` instead: an attempt that finds the
 * lock taken fails at once with SQLITE_BUSY, and the next attempt is scheduled
 * on a timer. Between attempts the event loop is free.
 */

/**
 * Delays between attempts start at 1 ms and double, with jitter so that waiting
 * processes do not poll in step. Past the first few, a delay is a tenth of the
 * time already waited (at most 250 ms): a waiter is late by about 10% of how long
 * the lock was held, and hundreds of waiting processes do not burn two cores by
 * waking up for nothing (every wake-up of a Node process costs tens of
 * microseconds of CPU, and only one waiter can win each release).
 */
export const backoffPolicy = { firstDelayMs: 1, waitedFraction: 0.1, maxDelayMs: 250 } as const;

export class Backoff {
  private delay: number = backoffPolicy.firstDelayMs;
  private waitingSince: number | undefined;

  /** The next delay, in ms: between half and all of the current step. */
  next(): number {
    const now = Date.now();
    this.waitingSince ??= now;
    const step = Math.min(
      Math.max(this.delay, (now - this.waitingSince) * backoffPolicy.waitedFraction),
      backoffPolicy.maxDelayMs,
    );
    this.delay = Math.min(this.delay * 2, backoffPolicy.maxDelayMs);
    return step * (0.5 + Math.random() * 0.5);
  }

  reset(): void {
    this.delay = backoffPolicy.firstDelayMs;
    this.waitingSince = undefined;
  }
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Lets timers and I/O callbacks run before the next synchronous step. */
export const yieldToEventLoop = () => new Promise<void>((resolve) => setImmediate(resolve));

/**
 * Takes the file's write lock up front (`BEGIN IMMEDIATE`): once it succeeds, no
 * statement of the transaction can fail with SQLITE_BUSY in WAL mode. Returns
 * false, without waiting, when another connection holds the lock.
 */
export function tryBeginImmediate(sqlite: BetterSqlite3.Database): boolean {
  // A refused attempt throws; capturing a stack trace is most of its cost, and a
  // process polling for the lock throws many times a second. Restored before returning.
  const stackTraceLimit = Error.stackTraceLimit;
  Error.stackTraceLimit = 0;
  try {
    sqlite.exec('BEGIN IMMEDIATE');
    return true;
  } catch (error) {
    if (isBusyError(error)) return false;
    throw error;
  } finally {
    Error.stackTraceLimit = stackTraceLimit;
  }
}

/**
 * Runs a synchronous step, retrying it on a timer while it fails with a busy
 * error, until `deadline` (a `Date.now()` value). Then the last busy error is thrown.
 */
export async function retryWhileBusy<T>(step: () => T, deadline: number): Promise<T> {
  const backoff = new Backoff();
  for (;;) {
    try {
      return step();
    } catch (error) {
      if (!isBusyError(error) || Date.now() >= deadline) throw error;
    }
    await sleep(Math.min(backoff.next(), Math.max(0, deadline - Date.now())));
  }
}
