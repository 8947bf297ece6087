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
      // So each process can collect its setup garbage before the barrier (see runMeasured).
      execArgv: ['--expose-gc'],
    });
    if (fleet.setupFailures.length > 0) {
      await fleet.terminate();
      const failure = fleet.setupFailures[0];
      throw new Error(`repo-processes: a process failed to start: ${failure?.ok ? '' : failure?.error.message}`);
    }
    // From the release of every process to the last result: includes the barrier's and the results' messages (a few ms).
    const start = performance.now();
    const outcomes = await fleet.run();
    const wallMs = performance.now() - start;

    let rows = 0;
    let failedRows = 0;
    let firstError: string | undefined;
    const latencies: Float64Array[] = [];
    let maxEventLoopDelayMs = 0;
    let p99EventLoopDelayMs = 0;
    let timeWeightedP99EventLoopDelayMs = 0;
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
      wallMs,
      latenciesMs: concatSamples(latencies),
      maxEventLoopDelayMs,
      p99EventLoopDelayMs,
      timeWeightedP99EventLoopDelayMs,
      ...(firstError === undefined ? {} : { firstError }),
    };
  },
};
