import { fileURLToPath } from 'node:url';
import { openDatabase } from '@repo/db';
import { launch } from '@repo/launcher';
import { concatSamples } from '../stats.ts';
import type { RepoProcessInput, RepoProcessResult } from '../workers/repo-process.ts';
import type { Measurement, Scenario } from './scenario.ts';

const workerEntry = fileURLToPath(new URL('../workers/repo-process.ts', import.meta.url));

/**
 * Several real processes, each with its own repository on the same file, each
 * issuing all its inserts at once, released together by the launcher's barrier.
 * They compete for the one write lock: this is what the repository is for.
 */
export const repoProcesses: Scenario = {
  name: 'repo-processes',
  describe: (sizes) =>
    `${sizes.processes} processes x ${sizes.rowsPerProcess} repo.insert calls issued at once in each, one file`,
  medianBy: 'rowsPerSec',
  async run({ sizes, file }): Promise<Measurement> {
    // Create and migrate the file first, so the measured run does not include the first open's migration.
    openDatabase(file).close();
    const fleet = await launch<RepoProcessInput, RepoProcessResult>({
      entry: workerEntry,
      kind: 'process',
      count: sizes.processes,
      input: (index) => ({ path: file, rows: sizes.rowsPerProcess, offset: index * sizes.rowsPerProcess }),
      // So each process collects its setup garbage before the barrier (workers/repo-process.ts).
      execArgv: ['--expose-gc'],
    });
    if (fleet.setupFailures.length > 0) {
      await fleet.terminate();
      const failure = fleet.setupFailures[0];
      throw new Error(`repo-processes: a process failed to start: ${failure?.ok ? '' : failure?.error.message}`);
    }
    const releasedAt = performance.now();
    const outcomes = await fleet.run();
    const sinceRelease = performance.now() - releasedAt;

    let rows = 0;
    let failedRows = 0;
    let firstError: string | undefined;
    const latencies: Float64Array[] = [];
    let maxEventLoopDelayMs = 0;
    let p99EventLoopDelayMs = 0;
    let timeWeightedP99EventLoopDelayMs = 0;
    // From the first insert issued in any process to the last acknowledged in any process, as the
    // other scenarios count (on the clock every process shares): each process's close, and the
    // messages that carry the results back, are not part of it, as limit's close is not.
    let startedAtMs = Infinity;
    let endedAtMs = -Infinity;
    for (const outcome of outcomes) {
      if (!outcome.ok) {
        // A process that died took its acknowledgements with it: count its rows as failed, never as stored.
        failedRows += sizes.rowsPerProcess;
        firstError ??= `process ${outcome.index}: ${outcome.error.message}`;
        continue;
      }
      const result = outcome.result;
      rows += result.rows;
      failedRows += result.failedRows;
      if (result.firstError !== undefined) firstError ??= `process ${outcome.index}: ${result.firstError}`;
      latencies.push(result.latenciesMs);
      startedAtMs = Math.min(startedAtMs, result.startedAtMs);
      endedAtMs = Math.max(endedAtMs, result.endedAtMs);
      // The worst process: each process has its own event loop.
      maxEventLoopDelayMs = Math.max(maxEventLoopDelayMs, result.maxEventLoopDelayMs);
      p99EventLoopDelayMs = Math.max(p99EventLoopDelayMs, result.p99EventLoopDelayMs);
      timeWeightedP99EventLoopDelayMs = Math.max(
        timeWeightedP99EventLoopDelayMs,
        result.timeWeightedP99EventLoopDelayMs,
      );
    }
    return {
      rows,
      failedRows,
      // No process reported (all died): the time from the release, so that rows/s reads 0.
      wallMs: endedAtMs > startedAtMs ? endedAtMs - startedAtMs : sinceRelease,
      latenciesMs: concatSamples(latencies),
      maxEventLoopDelayMs,
      p99EventLoopDelayMs,
      timeWeightedP99EventLoopDelayMs,
      ...(firstError === undefined ? {} : { firstError }),
    };
  },
};
