import { openDatabase } from '@repo/db';
import BetterSqlite3 from 'better-sqlite3';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { Backoff, backoffPolicy, walSignature } from '../src/sqlite/lock.ts';
import { useTempDatabase } from './helpers.ts';

const { jitter, maxDelayMs, busyMaxDelayMs } = backoffPolicy;
const delays = (backoff: Backoff, count: number, othersCommitted: boolean) =>
  Array.from({ length: count }, () => backoff.next(othersCommitted));

describe('Backoff: how long a writer sleeps between attempts at the lock', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('while one holder keeps the lock (nothing committed): SQLite’s own schedule, never more than 100 ms (±20%)', () => {
    vi.useFakeTimers();
    const backoff = new Backoff();
    const first = delays(backoff, backoffPolicy.delaysMs.length, false);
    first.forEach((delay, i) => {
      const scheduled = backoffPolicy.delaysMs[i] as number;
      expect(delay).toBeGreaterThanOrEqual(scheduled * (1 - jitter));
      expect(delay).toBeLessThanOrEqual(scheduled * (1 + jitter));
    });
    // A minute later, still polling at 100 ms: a lock freed by its one holder is taken within ~100 ms.
    vi.advanceTimersByTime(60_000);
    for (const delay of delays(backoff, 50, false)) {
      expect(delay).toBeGreaterThanOrEqual(maxDelayMs * (1 - jitter));
      expect(delay).toBeLessThanOrEqual(maxDelayMs * (1 + jitter));
    }
  });

  it('while others commit (many wait): past 1 s, the time already waited, up to 2 s, so a long wait costs few wake-ups', () => {
    vi.useFakeTimers();
    const backoff = new Backoff();
    vi.advanceTimersByTime(700);
    // Under a second of waiting: still SQLite's schedule (a short wait keeps a short tail).
    expect(backoff.next(true)).toBeLessThanOrEqual((backoffPolicy.delaysMs[0] as number) * (1 + jitter));
    vi.advanceTimersByTime(800);
    const afterSomeWait = backoff.next(true);
    expect(afterSomeWait).toBeGreaterThanOrEqual(1500 * (1 - jitter));
    expect(afterSomeWait).toBeLessThanOrEqual(1500 * (1 + jitter));
    // The same wait with no commit seen: the lock has one holder, poll at SQLite's pace.
    expect(backoff.next(false)).toBeLessThanOrEqual((backoffPolicy.delaysMs[2] as number) * (1 + jitter));
    vi.advanceTimersByTime(20_000);
    const afterLongWait = backoff.next(true);
    expect(afterLongWait).toBeGreaterThanOrEqual(busyMaxDelayMs * (1 - jitter));
    expect(afterLongWait).toBeLessThanOrEqual(busyMaxDelayMs * (1 + jitter));
    // Acquiring the lock starts the next wait afresh.
    backoff.reset();
    expect(backoff.next(true)).toBeLessThanOrEqual((backoffPolicy.delaysMs[0] as number) * (1 + jitter));
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
