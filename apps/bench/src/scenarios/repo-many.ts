import { openMetricsRepo } from '@repo/metrics-repo';
import { issueBurst } from '../concurrent.ts';
import { runMeasured } from '../measure.ts';
import { metricRows } from '../workload.ts';
import type { Scenario } from './scenario.ts';

/** The same rows as repo-async, already batched by the caller: the repository's cost without a promise per row. */
export const repoMany: Scenario = {
  name: 'repo-many',
  describe: (sizes) => `repo.insertMany in batches of ${sizes.manyBatchRows} rows, every call issued at once`,
  medianBy: 'rowsPerSec',
  async run({ sizes, file }) {
    const rows = metricRows(sizes.rows);
    const batchRows = sizes.manyBatchRows;
    const calls = Math.ceil(rows.length / batchRows);
    const batches = Array.from({ length: calls }, (_, call) => rows.slice(call * batchRows, (call + 1) * batchRows));
    const repo = await openMetricsRepo({ path: file });
    try {
      const { value, ...eventLoop } = await runMeasured(() =>
        issueBurst(
          calls,
          (call) => batches[call]?.length ?? 0,
          (call) => repo.insertMany(batches[call] ?? []),
        ),
      );
      return { ...value, ...eventLoop };
    } finally {
      await repo.close();
    }
  },
};
