import { isBusyError, sqliteBusyDelaysMs, sqliteBusyMaxDelayMs } from '@repo/db';
import type BetterSqlite3 from 'better-sqlite3';
import { walFile } from './file-identity.ts';

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
 * Delays between attempts follow SQLite's own busy handler
 * (sqliteDefaultBusyCallback): 1, 2, 5, 10, 15, 20, 25, 25, 25, 50, 50 ms, then
 * 100 ms, so a waiter is never more than 100 ms late for a lock that one
 * holder keeps (a long transaction, a backup, another program).
 *
 * When other connections committed since the last attempt and the wait has
 * lasted a second, the lock is not idle but passing from writer to writer:
 * many wait. Then the delay is the time already waited (so it doubles), at
 * most `busyMaxDelayMs`. (Shorter waits keep SQLite's schedule: doubling from
 * the start made the slowest writers sleep while the lock was free.) Each
 * attempt wakes a sleeping process, and that costs CPU taken from the process
 * holding the lock, far more than the refused `BEGIN IMMEDIATE` itself: with
 * hundreds of one-row processes, 100 ms polls sent both cores to polling and
 * most writers to their deadline; this rule kept them all in time. Sleeping
 * longer while others commit leaves the lock idle for only a moment: one of the
 * many waiters comes by every few ms. A delay proportional to the wait from the
 * first attempt, whatever the lock did (an earlier version), left it idle when
 * few waited. (Figures: docs/decisions/0002-wait-on-timers-not-busy-timeout.md.)
 *
 * That long delay is for writers with one row or a few: it is divided by the
 * rows the writer has waiting (never below 100 ms), since an attempt costs the
 * same whether it would commit one row or a thousand: processes with large
 * batches otherwise slept seconds while their batches waited.
 *
 * Each delay is jittered by up to ±20% so that waiting processes do not poll
 * in step, and capped by the caller's deadline.
 */
export const backoffPolicy = {
  delaysMs: sqliteBusyDelaysMs,
  maxDelayMs: sqliteBusyMaxDelayMs,
  /** While other connections commit, and once the wait has lasted this long: the time already waited... */
  busyAfterMs: 1000,
  /** ...at most this. Shorter waits keep SQLite's schedule, and a short tail. */
  busyMaxDelayMs: 2000,
  jitter: 0.2,
} as const;

export interface NextDelay {
  /** The -wal file now (`walSignature`): a change since the previous attempt means others committed. */
  wal?: string;
  /**
   * The oldest caller's deadline (a `Date.now()` value). Nearer it, more attempts (an eighth of the time
   * left, down to `maxDelayMs`): long sleeps favour newcomers, who poll often at first. Never past it.
   */
  deadline?: number;
  /**
   * Rows this writer has waiting (default 1). An attempt costs the same whether it would commit one row
   * or a thousand, so the long delay of the busy rule is divided by them (never below `maxDelayMs`).
   */
  queuedRows?: number;
}

export class Backoff {
  private attempt = 0;
  private startedAt = Date.now();
  private walSeen: string | undefined;

  /** The next delay, in ms. */
  next({ wal, deadline = Infinity, queuedRows = 1 }: NextDelay = {}): number {
    let step: number = backoffPolicy.delaysMs[this.attempt] ?? backoffPolicy.maxDelayMs;
    this.attempt += 1;
    const now = Date.now();
    const othersCommitted = wal !== undefined && this.walSeen !== undefined && wal !== this.walSeen;
    this.walSeen = wal;
    const waited = now - this.startedAt;
    if (othersCommitted && waited >= backoffPolicy.busyAfterMs) {
      const busyMax = Math.max(backoffPolicy.maxDelayMs, backoffPolicy.busyMaxDelayMs / Math.max(1, queuedRows));
      step = Math.max(step, Math.min(busyMax, waited));
    }
    const delay = step * (1 - backoffPolicy.jitter + Math.random() * 2 * backoffPolicy.jitter);
    const left = Math.max(0, deadline - now);
    return Math.min(delay, Math.max(left / 8, Math.min(left, backoffPolicy.maxDelayMs)));
  }

  /** The lock was taken: the next wait starts afresh. */
  reset(): void {
    this.attempt = 0;
    this.startedAt = Date.now();
    this.walSeen = undefined;
  }
}

/**
 * What the -wal file looks like now (size and modification time): a change
 * between two attempts means another connection committed in between. Only
 * `stat`: no descriptor of our own on a file SQLite has open (see @repo/db).
 * An unreadable directory reads as no file: it is only a hint for the back-off.
 */
export function walSignature(databasePath: string): string {
  const wal = walFile(databasePath);
  return wal === undefined ? 'none' : `${wal.size}:${wal.mtimeNs}`;
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
    await sleep(backoff.next({ deadline }));
  }
}
