import type { Metric, MetricLabels, NewMetric } from '@repo/db';

export type { Metric, MetricLabels };

/** What `insert` accepts: the schema's insert type, without the id, with friendlier timestamps. */
export interface MetricInput {
  name: NewMetric['name'];
  value: NewMetric['value'];
  /** Date or epoch milliseconds (an integer). Default: the time of the call. */
  recordedAt?: Date | number;
  labels?: MetricLabels | null;
  /** Idempotency key: a second row with the same eventId is refused with DuplicateEventError. */
  eventId?: string | null;
}

/** Which rows `count` counts: `since <= recordedAt < until`, every field optional. */
export interface CountFilter {
  name?: string;
  since?: Date | number;
  until?: Date | number;
}

/** Which rows `summarize` aggregates, and how: `since <= recordedAt < until`, every field optional. */
export interface SummaryFilter {
  name?: string;
  since?: Date | number;
  until?: Date | number;
  /**
   * Width of a time bucket in ms (an integer from 1 to `limits.maxBucketMs`). Buckets are aligned to
   * the epoch: a row falls in the bucket starting at `floor(recordedAt / bucketMs) * bucketMs`.
   * Absent: one bucket per name for the whole range.
   */
  bucketMs?: number;
  /** Only rows whose labels have every one of these keys with exactly this value. */
  labels?: MetricLabels;
}

/** One name in one time bucket. Percentiles are by nearest rank: the smallest value with at least p% of the bucket's values at or below it. */
export interface MetricSummary {
  name: string;
  /**
   * Start of the bucket: `floor(recordedAt / bucketMs) * bucketMs`. Without `bucketMs`: the filter's
   * `since` when given, else the earliest `recordedAt` of the name's rows.
   */
  bucketStart: Date;
  count: number;
  /** Summed in ascending order of value, so every backend gives the same number. */
  sum: number;
  min: number;
  max: number;
  avg: number;
  p50: number;
  p95: number;
  p99: number;
}

/** Which rows `export` yields: `since <= recordedAt < until`, every field optional. */
export interface ExportFilter {
  name?: string;
  since?: Date | number;
  until?: Date | number;
}

/** What `prune` deletes: every row recorded before `before` (a Date or epoch ms). */
export interface PruneOptions {
  before: Date | number;
  /** Stops the prune between two transactions; the promise then rejects with the signal's reason. */
  signal?: AbortSignal;
}
