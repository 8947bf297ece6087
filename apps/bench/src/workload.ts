import type { MetricInput } from '@repo/metrics-repo';

/** A fixed base time, so every scenario stores identical rows and no run depends on the clock. */
const baseTime = Date.UTC(2025, 0, 1);
const names = ['job.duration_ms', 'job.rows_written', 'job.retries', 'job.queue_wait_ms'];

/**
 * The rows every scenario inserts: what a finished job records. Small labels and
 * no eventId, the common case; `offset` keeps the rows of different processes distinct.
 */
export function metricRows(count: number, offset = 0): MetricInput[] {
  const rows: MetricInput[] = new Array(count);
  for (let i = 0; i < count; i++) {
    const n = offset + i;
    rows[i] = {
      name: names[n % names.length] as string,
      value: (n % 1000) / 8,
      recordedAt: baseTime + n,
      labels: { host: `host-${n % 16}`, job: `job-${n % 97}` },
    };
  }
  return rows;
}

/** The values the INSERT binds for a row, as a caller of the raw driver would build them. */
export function rawValues(row: MetricInput): [string, number, number, string | null, string | null] {
  const recordedAt = row.recordedAt instanceof Date ? row.recordedAt.getTime() : (row.recordedAt ?? Date.now());
  return [row.name, row.value, recordedAt, row.labels == null ? null : JSON.stringify(row.labels), row.eventId ?? null];
}

/** The raw INSERT of the metrics table, the same statement the repository prepares. */
export const rawInsertSql =
  'INSERT INTO "metrics" ("name", "value", "recorded_at", "labels", "event_id") VALUES (?, ?, ?, ?, ?)';
