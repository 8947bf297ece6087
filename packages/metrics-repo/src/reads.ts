import type { Metric } from '@repo/db';
import type { ValidSummaryFilter } from './read-validate.ts';
import type { MetricSummary } from './types.ts';
import type { ValidFilter } from './validate.ts';

/**
 * What a backend adds to `Backend` for reading rows back and for retention
 * (see docs/reading-and-retention.md). Validation is the repository's.
 */
export interface ReadsBackend {
  /** Summaries sorted by name then bucket start, computed by `SummaryBuilder` on every backend. */
  summarize(filter: ValidSummaryFilter): Promise<MetricSummary[]>;
  /** The stored rows matching `filter`, in id order, fetched a page at a time (keyset on `id`). */
  exportRows(filter: ValidFilter): AsyncGenerator<Metric, void, undefined>;
  /** Deletes every row recorded before `before` (epoch ms) in short transactions; resolves with how many. */
  prune(before: number, signal: AbortSignal | undefined): Promise<number>;
  /** Stops reads and prunes (the one under way ends after its current statement) and releases their connection. */
  closeReads(): Promise<void>;
}

export const exportPolicy = {
  /** Rows per page: one short read each (about 2 to 5 ms on SQLite here). */
  pageRows: 1000,
  /** Most ids one page's statement walks: bounds a page's read when few rows match the filter. */
  scanWindowRows: 50_000,
};

/**
 * How prune shares the write lock with writers: each transaction deletes a chunk
 * sized to take about `targetMs`, then prune pauses `pauseRatio` times as long as
 * the transaction took (at least `minPauseMs`), so writers can have the lock three
 * quarters of the time. Measured with a writer recording a row every 2 ms
 * (`pnpm bench --only maintenance`, docs/decisions/0019-reading-and-retention.md):
 * 10 ms chunks and a pause of 2x doubled to quintupled its p99; 3 ms and 3x kept it
 * under 2x, at 114k rows/s.
 */
export const prunePolicy = {
  targetMs: 3,
  initialRows: 500,
  minRows: 50,
  maxRows: 20_000,
  pauseRatio: 3,
  minPauseMs: 2,
};

/** The next chunk size: scaled toward `targetMs`, at most doubled per step. */
export function nextChunk(rows: number, elapsedMs: number): number {
  const scaled = rows * (prunePolicy.targetMs / Math.max(elapsedMs, 0.05));
  return Math.round(Math.min(prunePolicy.maxRows, Math.max(prunePolicy.minRows, Math.min(rows * 2, scaled))));
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
