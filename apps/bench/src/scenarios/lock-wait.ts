import { fileURLToPath } from 'node:url';
import { openDatabase } from '@repo/db';
import { launch } from '@repo/launcher';
import { type MetricInput, openMetricsRepo } from '@repo/metrics-repo';
import { measureInsertBurst } from '../concurrent.ts';
import { runMeasured } from '../measure.ts';
import type { LockHolderInput, LockHolderProgress, LockHolderResult } from '../workers/lock-holder.ts';
import { metricRows, rawInsertSql, rawValues } from '../workload.ts';
import { describeError, type Measurement, type Scenario } from './scenario.ts';

const holderEntry = fileURLToPath(new URL('../workers/lock-holder.ts', import.meta.url));

/**
 * Starts another process that takes the file's write lock and holds it for
 * `holdMs`; runs `measure` as soon as the lock is taken. The file must already
 * exist and be migrated.
 */
async function whileForeignLockHeld(
  file: string,
  holdMs: number,
  measure: () => Promise<Measurement>,
): Promise<Measurement> {
  let lockTaken!: () => void;
  const locked = new Promise<void>((resolve) => {
    lockTaken = resolve;
  });
  const fleet = await launch<LockHolderInput, LockHolderResult, LockHolderProgress>({
    entry: holderEntry,
    kind: 'process',
    count: 1,
    input: () => ({ path: file, holdMs }),
    onProgress: () => lockTaken(),
  });
  if (fleet.setupFailures.length > 0) throw new Error('lock-wait: the lock holder failed to start');
  const holding = fleet.run();
  // If the holder fails before taking the lock, its outcome settles first: do not wait forever.
  const first = await Promise.race([locked.then(() => 'locked' as const), holding]);
  if (first !== 'locked') throw new Error(`lock-wait: the lock holder ended without taking the lock`);
  const measurement = await measure();
  const [outcome] = await holding;
  if (!outcome?.ok) throw new Error(`lock-wait: the lock holder failed: ${outcome?.error.message}`);
  // The figures only mean something if the lock was held while the inserts waited.
  // Timers may fire a millisecond early by the monotonic clock.
  if (outcome.result.heldMs < holdMs - 5)
    throw new Error(`lock-wait: the lock was held only ${outcome.result.heldMs} ms`);
  // ...and if no insert got through before it was released (they were issued a few ms after it was
  // taken; on a loaded machine, well into the hold, as fresh-clone CI runs showed: an insert let
  // through a held lock would be acknowledged within milliseconds, not half a hold later).
  const earliestMs = Math.min(...measurement.latenciesMs);
  if (earliestMs < holdMs * 0.5) {
    throw new Error(`lock-wait: an insert was acknowledged after ${earliestMs} ms, while the lock was still held`);
  }
  return measurement;
}

/** The repository waits for the lock on timers: its event loop keeps running. */
export const lockWaitRepo: Scenario = {
  name: 'lock-wait-repo',
  describe: (sizes) =>
    `${sizes.lockWaitRows} repo.insert calls issued at once while another process holds the write lock for ${sizes.lockHoldMs} ms`,
  medianBy: 'p99EventLoopDelayMs',
  async run({ sizes, file }) {
    const rows = metricRows(sizes.lockWaitRows);
    const repo = await openMetricsRepo({ path: file });
    try {
      return await whileForeignLockHeld(file, sizes.lockHoldMs, () => measureInsertBurst(repo, rows));
    } finally {
      await repo.close();
    }
  },
};

/**
 * The raw driver with its default busy timeout (5 s): SQLite sleeps and polls
 * inside the synchronous call, so the thread stops until the lock is free.
 * The inserts run in the measured thread, one per event-loop turn (the kindest
 * schedule for the driver: the loop gets every chance to run between them).
 */
export const lockWaitRaw: Scenario = {
  name: 'lock-wait-raw',
  describe: (sizes) =>
    `${sizes.lockWaitRows} raw better-sqlite3 autocommit inserts (busy timeout 5 s), same lock, one per event-loop turn`,
  medianBy: 'maxEventLoopDelayMs',
  async run({ sizes, file }) {
    const rows = metricRows(sizes.lockWaitRows);
    const { sqlite, close } = openDatabase(file, { busyTimeoutMs: 5000 });
    try {
      const insert = sqlite.prepare(rawInsertSql);
      return await whileForeignLockHeld(file, sizes.lockHoldMs, async () => {
        const latenciesMs = new Float64Array(rows.length);
        let acknowledged = 0;
        let firstError: string | undefined;
        const { value: wallMs, ...eventLoop } = await runMeasured(async () => {
          // Every write is wanted now, as in lock-wait-repo; each is timed from here.
          const start = performance.now();
          await new Promise<void>((resolve) => {
            let next = 0;
            const insertOne = () => {
              try {
                insert.run(rawValues(rows[next] as MetricInput));
                latenciesMs[acknowledged++] = performance.now() - start;
              } catch (error) {
                firstError ??= describeError(error);
              }
              next += 1;
              if (next < rows.length) setImmediate(insertOne);
              else resolve();
            };
            setImmediate(insertOne);
          });
          return performance.now() - start;
        });
        return {
          rows: acknowledged,
          failedRows: rows.length - acknowledged,
          wallMs,
          latenciesMs: latenciesMs.subarray(0, acknowledged),
          ...eventLoop,
          ...(firstError === undefined ? {} : { firstError }),
        };
      });
    } finally {
      close();
    }
  },
};
