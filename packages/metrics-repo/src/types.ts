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
