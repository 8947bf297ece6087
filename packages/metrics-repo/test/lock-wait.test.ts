import { monitorEventLoopDelay } from 'node:perf_hooks';
import { describe, expect, it } from 'vitest';
import { LockTimeoutError, openMetricsRepo } from '../src/index.ts';
import { holdWriteLock, settleAll, storedRows, useTempDatabase } from './helpers.ts';

const holdMs = 2000;

describe('waiting for a lock held by another connection', () => {
  const tempDatabase = useTempDatabase();

  it('inserts issued during a 2 s foreign lock all succeed after it is released, without freezing the event loop', async () => {
    const path = tempDatabase();
    const repo = await openMetricsRepo({ path });
    const histogram = monitorEventLoopDelay({ resolution: 1 });
    histogram.enable();
    // The histogram ignores the time before its first tick: let it start sampling first.
    await new Promise((resolve) => setTimeout(resolve, 50));
    const released = holdWriteLock(path, holdMs).then(() => Date.now());
    const inserts = Array.from({ length: 500 }, (_, i) => repo.insert({ name: 'during.lock', value: i }));
    // Nothing can commit while the lock is held.
    await new Promise((resolve) => setTimeout(resolve, holdMs / 2));
    expect(await repo.count()).toBe(0);
    const rows = await Promise.all(inserts);
    histogram.disable();
    const releasedAt = await released;

    expect(rows).toHaveLength(500);
    expect(storedRows(path)).toBe(500);
    // A busy-timeout wait would have blocked the loop for the whole hold; timers keep it near the backoff's 20 ms.
    const maxDelayMs = histogram.max / 1e6;
    expect(maxDelayMs).toBeLessThan(holdMs / 10);
    // And the loop kept ticking through the hold (about every millisecond).
    expect(histogram.count).toBeGreaterThan(100);
    expect(Date.now()).toBeGreaterThanOrEqual(releasedAt);
    await repo.close();
  });

  it('with a deadline shorter than the hold, callers get LockTimeoutError and nothing is stored; later inserts succeed', async () => {
    const path = tempDatabase();
    const repo = await openMetricsRepo({ path, lockTimeoutMs: 300 });
    const released = holdWriteLock(path, 1200);
    const started = Date.now();
    const { values, errors } = await settleAll(
      Array.from({ length: 50 }, (_, i) => repo.insert({ name: 'too.late', value: i })),
    );
    const waited = Date.now() - started;
    expect(values).toEqual([]);
    expect(errors).toHaveLength(50);
    for (const error of errors) {
      expect(error).toBeInstanceOf(LockTimeoutError);
      expect(error).toMatchObject({ code: 'LOCK_TIMEOUT', path: repo.path });
    }
    // Failed at the deadline, not after the hold.
    expect(waited).toBeLessThan(1200);
    await released;
    expect(storedRows(path)).toBe(0);
    await expect(repo.insert({ name: 'after', value: 1 })).resolves.toMatchObject({ id: 1 });
    await repo.close();
  });
});
