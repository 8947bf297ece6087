import { defineWorker } from '@repo/launcher/worker';
import { type MetricInput, type MetricsRepo, openMetricsRepo } from '@repo/metrics-repo';
import { type BurstOutcome, measureInsertBurst } from '../concurrent.ts';
import { collectSetupGarbage, type EventLoopDelay } from '../measure.ts';
import { metricRows } from '../workload.ts';

export interface RepoProcessInput {
  path: string;
  rows: number;
  /** Where this process's rows start in the shared sequence, so processes store distinct rows. */
  offset: number;
}

export type RepoProcessResult = BurstOutcome & EventLoopDelay;

/** One process of repo-processes: opens the repository before the barrier, then issues all its inserts at once. */
defineWorker<RepoProcessInput, { repo: MetricsRepo; rows: MetricInput[] }, RepoProcessResult>({
  async setup(input) {
    const state = { repo: await openMetricsRepo({ path: input.path }), rows: metricRows(input.rows, input.offset) };
    // Here, before the barrier: after it, this collection would compete with the other processes' writes.
    collectSetupGarbage();
    return state;
  },
  async run({ repo, rows }) {
    try {
      return await measureInsertBurst(repo, rows, { collectGarbage: false });
    } finally {
      await repo.close();
    }
  },
});
