import { openDatabase } from '@repo/db';
import type { MetricInput } from '@repo/metrics-repo';
import { runMeasured } from '../measure.ts';
import { metricRows, rawInsertSql, rawValues } from '../workload.ts';
import type { Scenario } from './scenario.ts';

/**
 * The machine's ceiling for this table: better-sqlite3 directly, one prepared
 * INSERT, every row in one transaction, on a file opened with the repository's
 * PRAGMAs (WAL, synchronous NORMAL). Nothing is cheaper per row.
 */
export const limit: Scenario = {
  name: 'limit',
  describe: () => 'raw better-sqlite3, one prepared INSERT, all rows in one transaction (WAL, NORMAL)',
  medianBy: 'rowsPerSec',
  async run({ sizes, file }) {
    const rows = metricRows(sizes.rows);
    const { sqlite, close } = openDatabase(file);
    try {
      const insert = sqlite.prepare(rawInsertSql);
      const insertAll = sqlite.transaction((batch: MetricInput[]) => {
        for (const row of batch) insert.run(rawValues(row));
      });
      const { value: wallMs, ...eventLoop } = await runMeasured(async () => {
        const start = performance.now();
        insertAll.immediate(rows);
        return performance.now() - start;
      });
      // Every row was issued when the transaction began and acknowledged by its COMMIT.
      return {
        rows: rows.length,
        failedRows: 0,
        wallMs,
        latenciesMs: new Float64Array(rows.length).fill(wallMs),
        ...eventLoop,
      };
    } finally {
      close();
    }
  },
};
