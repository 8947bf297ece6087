import { index, integer, primaryKey, real, sqliteTable, text } from 'drizzle-orm/sqlite-core';

/** Flat string-to-string labels attached to a metric, stored as JSON text. */
export type MetricLabels = Record<string, string>;

/**
 * One recorded metric value. Rows are append-only: processes record them when
 * their work finishes, and readers count or aggregate them by name and time.
 */
export const metrics = sqliteTable(
  'metrics',
  {
    // AUTOINCREMENT: ids are never reused, even after the newest rows are deleted.
    id: integer('id').primaryKey({ autoIncrement: true }),
    name: text('name').notNull(),
    value: real('value').notNull(),
    // Epoch milliseconds; Drizzle maps it to a Date.
    recordedAt: integer('recorded_at', { mode: 'timestamp_ms' }).notNull(),
    labels: text('labels', { mode: 'json' }).$type<MetricLabels>(),
    // Caller-chosen idempotency key: recording the same event twice is refused.
    eventId: text('event_id').unique(),
  },
  (table) => [
    index('metrics_name_recorded_at_idx').on(table.name, table.recordedAt),
    // Time windows across every name (summaries, exports by time) and retention (`prune`).
    index('metrics_recorded_at_idx').on(table.recordedAt),
  ],
);

/** A stored metric row. */
export type Metric = typeof metrics.$inferSelect;
/** A row as Drizzle inserts it (id optional). */
export type NewMetric = typeof metrics.$inferInsert;

/**
 * What makes a job handed between processes stored exactly once (@repo/metrics-repo's mailbox):
 * the transaction that stores a posted job's rows records its key here, and a job whose key is
 * found is answered from it instead of being written again, by whichever process holds it then.
 * Keys are kept for an hour (pruned by the writers), longer than any job waits for its answer.
 */
export const metricsMailboxReceipts = sqliteTable(
  'metrics_mailbox_receipts',
  {
    // When the job was posted (epoch ms), and a random number chosen by its poster.
    postedAt: integer('posted_at').notNull(),
    nonce: integer('nonce').notNull(),
    // The id of its first row; the others follow it.
    firstId: integer('first_id').notNull(),
  },
  (table) => [primaryKey({ columns: [table.postedAt, table.nonce] })],
);
