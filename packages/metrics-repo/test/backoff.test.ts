import { openDatabase } from '@repo/db';
import BetterSqlite3 from 'better-sqlite3';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { Backoff, backoffPolicy, walSignature } from '../src/sqlite/lock.ts';
import { useTempDatabase } from './helpers.ts';

const { jitter, maxDelayMs, busyMaxDelayMs } = backoffPolicy;
const delays = (backoff: Backoff, count: number) => Array.from({ length: count }, () => backoff.next());

describe('Backoff: how long a writer sleeps between attempts at the lock', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('while one holder keeps the lock (nothing committed): SQLite’s own schedule, never more than 100 ms (±20%)', () => {
    vi.useFakeTimers();
    const backoff = new Backoff();
    const first = delays(backoff, backoffPolicy.delaysMs.length);
    first.forEach((delay, i) => {
      const scheduled = backoffPolicy.delaysMs[i] as number;
      expect(delay).toBeGreaterThanOrEqual(scheduled * (1 - jitter));
      expect(delay).toBeLessThanOrEqual(scheduled * (1 + jitter));
    });
    // A minute later, still polling at 100 ms: a lock freed by its one holder is taken within ~100 ms.
    vi.advanceTimersByTime(60_000);
    for (const delay of delays(backoff, 50)) {
      expect(delay).toBeGreaterThanOrEqual(maxDelayMs * (1 - jitter));
      expect(delay).toBeLessThanOrEqual(maxDelayMs * (1 + jitter));
    }
  });

  it('while others commit (many wait): past 1 s, the time already waited, up to 2 s, so a long wait costs few wake-ups', () => {
    vi.useFakeTimers();
    const backoff = new Backoff();
    // Each attempt reports what the -wal file looks like; a change since the previous one means others committed.
    let commits = 0;
    const committed = () => ({ wal: `wal after commit ${++commits}` });
    expect(backoff.next(committed())).toBeLessThanOrEqual((backoffPolicy.delaysMs[0] as number) * (1 + jitter));
    vi.advanceTimersByTime(700);
    // Under a second of waiting: still SQLite's schedule (a short wait keeps a short tail).
    expect(backoff.next(committed())).toBeLessThanOrEqual((backoffPolicy.delaysMs[1] as number) * (1 + jitter));
    vi.advanceTimersByTime(800);
    const afterSomeWait = backoff.next(committed());
    expect(afterSomeWait).toBeGreaterThanOrEqual(1500 * (1 - jitter));
    expect(afterSomeWait).toBeLessThanOrEqual(1500 * (1 + jitter));
    // The same wait with no commit seen since: the lock has one holder, poll at SQLite's pace.
    expect(backoff.next({ wal: `wal after commit ${commits}` })).toBeLessThanOrEqual(
      (backoffPolicy.delaysMs[3] as number) * (1 + jitter),
    );
    vi.advanceTimersByTime(20_000);
    const afterLongWait = backoff.next(committed());
    expect(afterLongWait).toBeGreaterThanOrEqual(busyMaxDelayMs * (1 - jitter));
    expect(afterLongWait).toBeLessThanOrEqual(busyMaxDelayMs * (1 + jitter));
    // Acquiring the lock starts the next wait afresh.
    backoff.reset();
    expect(backoff.next(committed())).toBeLessThanOrEqual((backoffPolicy.delaysMs[0] as number) * (1 + jitter));
  });

  it('a writer with many rows waiting keeps polling: the busy delay is divided by its queued rows, never below 100 ms', () => {
    vi.useFakeTimers();
    const wait = (queuedRows: number) => {
      const backoff = new Backoff();
      backoff.next({ wal: 'wal 1', queuedRows });
      vi.advanceTimersByTime(20_000);
      return backoff.next({ wal: 'wal 2', queuedRows });
    };
    // One row (a one-row process): the whole busy delay, 2 s.
    expect(wait(1)).toBeGreaterThanOrEqual(busyMaxDelayMs * (1 - jitter));
    // Four rows: a quarter of it.
    expect(wait(4)).toBeLessThanOrEqual((busyMaxDelayMs / 4) * (1 + jitter));
    expect(wait(4)).toBeGreaterThanOrEqual((busyMaxDelayMs / 4) * (1 - jitter));
    // A full batch waiting: SQLite's cap, as while one holder keeps the lock.
    expect(wait(1000)).toBeLessThanOrEqual(maxDelayMs * (1 + jitter));
  });

  it('never past the deadline, and nearer it more attempts: an eighth of the time left, down to 100 ms', () => {
    vi.useFakeTimers();
    const backoff = new Backoff();
    vi.advanceTimersByTime(25_000);
    const wal = (n: number) => ({ wal: `wal ${n}`, deadline: Date.now() + 8_000 });
    backoff.next(wal(1));
    // Others commit, 25 s waited: 2 s would be due, but 8 s are left: at most 1 s.
    expect(backoff.next(wal(2))).toBeLessThanOrEqual(1000);
    expect(backoff.next({ wal: 'wal 3', deadline: Date.now() + 400 })).toBeLessThanOrEqual(maxDelayMs);
    expect(backoff.next({ wal: 'wal 4', deadline: Date.now() + 30 })).toBeLessThanOrEqual(30);
    expect(backoff.next({ wal: 'wal 5', deadline: Date.now() - 5 })).toBe(0);
  });
});

describe('walSignature: did another connection commit since the last look?', () => {
  const tempDatabase = useTempDatabase();

  it('changes with each commit of another connection, stays the same otherwise, by stat alone', async () => {
    const path = tempDatabase();
    openDatabase(path).close();
    expect(walSignature(path)).toBe('none');
    const other = new BetterSqlite3(path);
    try {
      other.prepare("INSERT INTO metrics (name, value, recorded_at) VALUES ('a', 1, 0)").run();
      const afterFirst = walSignature(path);
      expect(afterFirst).not.toBe('none');
      expect(walSignature(path)).toBe(afterFirst);
      other.prepare("INSERT INTO metrics (name, value, recorded_at) VALUES ('b', 2, 0)").run();
      expect(walSignature(path)).not.toBe(afterFirst);
    } finally {
      other.close();
    }
  });
});
