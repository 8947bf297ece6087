import { bigint, doublePrecision, index, jsonb, pgTable, text, timestamp } from 'drizzle-orm/pg-core';
import type { MetricLabels } from '../schema.ts';

export type { MetricLabels };

/**
 * The `metrics` table on PostgreSQL: the same columns, constraints and index as
 * the SQLite schema (`../schema.ts`), and the same `Metric` row type, so code
 * written against one backend reads rows of the other unchanged.
 */
export const metrics = pgTable(
  'metrics',
  {
    // bigint: a metrics table can outgrow 2^31 rows. mode 'number': the same `id: number` as on SQLite
    // (exact up to 2^53). An identity column never reuses ids, like SQLite's AUTOINCREMENT.
    id: bigint('id', { mode: 'number' }).primaryKey().generatedAlwaysAsIdentity(),
    name: text('name').notNull(),
    value: doublePrecision('value').notNull(),
    // Milliseconds, like the SQLite column (epoch ms) and a JavaScript Date.
    recordedAt: timestamp('recorded_at', { withTimezone: true, precision: 3, mode: 'date' }).notNull(),
    labels: jsonb('labels').$type<MetricLabels>(),
    // Caller-chosen idempotency key: recording the same event twice is refused.
    eventId: text('event_id').unique(),
  },
  (table) => [
    index('metrics_name_recorded_at_idx').on(table.name, table.recordedAt),
    // Time windows across every name (summaries, exports by time) and retention (`prune`).
    index('metrics_recorded_at_idx').on(table.recordedAt),
  ],
);

/** A stored metric row: the same shape as the SQLite schema's `Metric`. */
export type Metric = typeof metrics.$inferSelect;
/** A row as Drizzle inserts it (id generated). */
export type NewMetric = typeof metrics.$inferInsert;
