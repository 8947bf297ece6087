import { openMetricsRepo } from '@repo/metrics-repo';
import { measureInsertBurst } from '../concurrent.ts';
import { metricRows } from '../workload.ts';
import type { Scenario } from './scenario.ts';

/** The repository's main use: many callers each recording one row at the same moment, in one process. */
export const repoAsync: Scenario = {
  name: 'repo-async',
  describe: () => 'repo.insert, every call issued at once in one process (group commit)',
  medianBy: 'rowsPerSec',
  async run({ sizes, file }) {
    const rows = metricRows(sizes.rows);
    const repo = await openMetricsRepo({ path: file });
    try {
      return await measureInsertBurst(repo, rows);
    } finally {
      await repo.close();
    }
  },
};
