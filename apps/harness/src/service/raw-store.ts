import { metrics, openDatabase } from '@repo/db';
import type { MetricInput } from '@repo/metrics-repo';
import type { MetricsStore } from '@repo/service';
import { and, count, eq, gte, lt, type SQL } from 'drizzle-orm';

/**
 * What a service records through when nobody has met contention yet: one
 * connection opened by `@repo/db` with SQLite's busy timeout, and a synchronous
 * Drizzle insert right in the request handler. While another connection holds
 * the write lock, SQLite sleeps and polls inside that call: the whole process,
 * every other request and /healthz included, waits with it.
 * The service validates before calling it; this store only converts.
 */
export function openRawStore(path: string, busyTimeoutMs: number): MetricsStore {
  const { db, close } = openDatabase(path, { busyTimeoutMs });
  const toRow = (metric: MetricInput) => ({
    name: metric.name,
    value: metric.value,
    recordedAt: new Date(metric.recordedAt ?? Date.now()),
    labels: metric.labels ?? null,
    eventId: metric.eventId ?? null,
  });
  return {
    insert: async (metric) => db.insert(metrics).values(toRow(metric)).returning().get(),
    // Drizzle's default transaction: deferred, synchronous.
    insertMany: async (rows) =>
      db.transaction((tx) => rows.map((metric) => tx.insert(metrics).values(toRow(metric)).returning().get())),
    count: async (filter = {}) => {
      const conditions: SQL[] = [];
      if (filter.name !== undefined) conditions.push(eq(metrics.name, filter.name));
      if (filter.since !== undefined) conditions.push(gte(metrics.recordedAt, new Date(filter.since)));
      if (filter.until !== undefined) conditions.push(lt(metrics.recordedAt, new Date(filter.until)));
      const row = db
        .select({ n: count() })
        .from(metrics)
        .where(and(...conditions))
        .get();
      return row?.n ?? 0;
    },
    close: async () => close(),
  };
}
