/** How much work each scenario does. `full` is what `pnpm bench` runs; `quick` is a smoke run for tests. */
export interface BenchSizes {
  /** Rows of `limit`, `repo-async` and `repo-many`. */
  rows: number;
  /** Rows of `naive` (WAL + NORMAL): sequential autocommit inserts are slow, so a bounded sample. */
  naiveRows: number;
  /** Rows of `naive-defaults` (rollback journal + FULL): slower still. */
  naiveDefaultsRows: number;
  /** Rows per `insertMany` call in `repo-many`. */
  manyBatchRows: number;
  /** Processes of `repo-processes`, and concurrent inserts in each. */
  processes: number;
  rowsPerProcess: number;
  /** Processes of `raw-oneshot` and `repo-oneshot`, each recording one row. */
  oneshotWriters: number;
  /** Idle time between the oneshot writers' readiness and their release (see runOneshot). */
  oneshotSettleMs: number;
  /** How long the foreign connection holds the write lock in `lock-wait`, and the inserts issued meanwhile. */
  lockHoldMs: number;
  lockWaitRows: number;
  /** Rows of `pg-limit` and `pg-repo-async`. */
  pgRows: number;
  /** Rows of `pg-naive`: one round trip and one commit per row, so a bounded sample. */
  pgNaiveRows: number;
  /** Every scenario runs this many times, interleaved; the table shows each scenario's median run. */
  runs: number;
  /** Rows stored before summarize, export and prune are measured (see maintenance.ts). */
  maintenanceRows: number;
}

export const fullSizes: BenchSizes = {
  rows: 100_000,
  naiveRows: 5_000,
  naiveDefaultsRows: 1_000,
  manyBatchRows: 1_000,
  processes: 8,
  rowsPerProcess: 12_500,
  oneshotWriters: 100,
  oneshotSettleMs: 10_000,
  lockHoldMs: 2_000,
  lockWaitRows: 1_000,
  pgRows: 100_000,
  pgNaiveRows: 3_000,
  runs: 5,
  maintenanceRows: 1_000_000,
};

export const quickSizes: BenchSizes = {
  rows: 2_000,
  naiveRows: 200,
  naiveDefaultsRows: 100,
  manyBatchRows: 500,
  processes: 2,
  rowsPerProcess: 500,
  oneshotWriters: 4,
  oneshotSettleMs: 0,
  lockHoldMs: 300,
  lockWaitRows: 100,
  pgRows: 2_000,
  pgNaiveRows: 100,
  runs: 1,
  maintenanceRows: 5_000,
};
