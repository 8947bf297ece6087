import { type JournalMode, metrics, openDatabase, type Synchronous } from '@repo/db';
import type { BenchSizes } from '../config.ts';
import { runMeasured } from '../measure.ts';
import { metricRows } from '../workload.ts';
import { describeError, type Measurement, type Scenario } from './scenario.ts';

/**
 * What most code does: Drizzle's query builder, one autocommit insert per row,
 * awaited one after the other. Each row is its own transaction, so each pays a
 * commit. Slow, so it inserts a bounded sample and reports rows/s.
 */
function naiveScenario(
  name: string,
  describe: (sizes: BenchSizes) => string,
  pragmas: { journalMode: JournalMode; synchronous: Synchronous },
  rowCount: (sizes: BenchSizes) => number,
): Scenario {
  return {
    name,
    describe,
    medianBy: 'rowsPerSec',
    async run({ sizes, file }): Promise<Measurement> {
      const rows = metricRows(rowCount(sizes));
      const { db, close } = openDatabase(file, pragmas);
      try {
        const latenciesMs = new Float64Array(rows.length);
        let acknowledged = 0;
        let firstError: string | undefined;
        const { value: wallMs, ...eventLoop } = await runMeasured(async () => {
          const start = performance.now();
          for (const row of rows) {
            const issuedAt = performance.now();
            try {
              await db.insert(metrics).values({
                name: row.name,
                value: row.value,
                recordedAt: new Date(row.recordedAt ?? Date.now()),
                labels: row.labels ?? null,
              });
              latenciesMs[acknowledged++] = performance.now() - issuedAt;
            } catch (error) {
              firstError ??= describeError(error);
            }
          }
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
      } finally {
        close();
      }
    },
  };
}

/** Same PRAGMAs as the repository (WAL, synchronous NORMAL): the fair comparison. */
export const naive = naiveScenario(
  'naive',
  (sizes) =>
    `Drizzle query builder, one awaited autocommit insert per row (WAL, NORMAL); bounded sample of ${sizes.naiveRows} rows`,
  { journalMode: 'wal', synchronous: 'normal' },
  (sizes) => sizes.naiveRows,
);

/** The driver's defaults (rollback journal, synchronous FULL): what code gets without tuning, for context. */
export const naiveDefaults = naiveScenario(
  'naive-defaults',
  (sizes) =>
    `as naive, with the driver's defaults (rollback journal, FULL); bounded sample of ${sizes.naiveDefaultsRows} rows`,
  { journalMode: 'delete', synchronous: 'full' },
  (sizes) => sizes.naiveDefaultsRows,
);
