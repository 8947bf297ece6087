import { runOneshot } from '../oneshot/run.ts';
import type { Measurement, Scenario } from './scenario.ts';

/**
 * The scenario this project started from: many short-lived processes, released
 * at once, each opening the file, recording one row and closing. `raw-oneshot`
 * is naive code (better-sqlite3, the driver's 5 s busy timeout, a prepared
 * INSERT in autocommit); `repo-oneshot` is openMetricsRepo, insert, close.
 * Latency: from the release to the row's acknowledgement; CPU: every writer's,
 * from the release to the end of its close.
 */
function oneshot(target: 'raw' | 'repo'): Scenario {
  return {
    name: `${target}-oneshot`,
    describe: (sizes) =>
      `${sizes.oneshotWriters} processes released at once${sizes.oneshotSettleMs > 0 ? ` ${sizes.oneshotSettleMs / 1000} s after the last was ready` : ''}, each opens the file, records one row, closes (${target === 'raw' ? 'better-sqlite3, busy timeout 5 s' : 'openMetricsRepo'})`,
    medianBy: 'p99Ms',
    async run({ sizes, file }): Promise<Measurement> {
      const start = performance.now();
      const run = await runOneshot(target, 'process', sizes.oneshotWriters, {
        file,
        settleMs: sizes.oneshotSettleMs,
      });
      return {
        rows: run.acked,
        failedRows: run.failed,
        wallMs: performance.now() - start,
        latenciesMs: Float64Array.from(run.latenciesMs),
        toCloseMs: Float64Array.from(run.toCloseMs),
        cpuMs: run.cpuMs,
        // Each writer is its own process with its own event loop: not measured here.
        maxEventLoopDelayMs: 0,
        p99EventLoopDelayMs: 0,
        timeWeightedP99EventLoopDelayMs: 0,
        ...(run.firstError === undefined ? {} : { firstError: run.firstError }),
      };
    },
  };
}

export const rawOneshot = oneshot('raw');
export const repoOneshot = oneshot('repo');
