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
 * Delays between attempts follow SQLite's own busy handler (sqliteDefaultBusyCallback):
 * 1, 2, 5, 10, 15, 20, 25, 25, 25, 50, 50 ms, then 100 ms each, so a waiter is never
 * more than 100 ms late for a free lock. Measured here (`pnpm --filter @repo/bench
 * run phases`): a back-off growing with the time already waited (10% of it, up to
 * 250 ms) left the lock idle while writers slept, a median wait of 1.2 s at 250
 * one-row processes where naive code's median was under 1 ms. One failed attempt
 * costs about 70 µs of CPU (the refused BEGIN and the timer), so even 100 waiting
 * processes polling every 100 ms leave the lock holder most of the machine.
 * Each delay is jittered by up to ±20% so that waiting processes do not poll in step.
 */
export const backoffPolicy = {
  delaysMs: [1, 2, 5, 10, 15, 20, 25, 25, 25, 50, 50],
  maxDelayMs: 100,
  jitter: 0.2,
} as const;

export class Backoff {
  private attempt = 0;

  /** The next delay, in ms. */
  next(): number {
    const step = backoffPolicy.delaysMs[this.attempt] ?? backoffPolicy.maxDelayMs;
    this.attempt += 1;
    return step * (1 - backoffPolicy.jitter + Math.random() * 2 * backoffPolicy.jitter);
  }

  reset(): void {
    this.attempt = 0;
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
