import { resolve } from 'node:path';
import {
  type CountFilter,
  type ExportFilter,
  type Metric,
  type MetricInput,
  type MetricSummary,
  openMetricsRepo,
  type SummaryFilter,
} from '@repo/metrics-repo';

/**
 * What the service records through. `@repo/metrics-repo`'s repository is one;
 * the harness passes another (a naive synchronous insert) to show what the
 * repository spares a server. The service owns the store it is given: it
 * closes it on shutdown.
 */
export interface MetricsStore {
  /** Resolves with the stored row once it is committed. */
  insert(metric: MetricInput): Promise<Metric>;
  /** All rows stored, in order, or none. */
  insertMany(metrics: readonly MetricInput[]): Promise<Metric[]>;
  count(filter?: CountFilter): Promise<number>;
  /** For `GET /metrics/summary` (a store without it answers 501 NOT_SUPPORTED). */
  summarize?(filter?: SummaryFilter): Promise<MetricSummary[]>;
  /** For `GET /metrics/export`: the stored rows in id order (a store without it answers 501 NOT_SUPPORTED). */
  export?(filter?: ExportFilter): AsyncIterable<Metric>;
  /** Commits everything already accepted, then closes. */
  close(): Promise<void>;
  /** Rows accepted and not yet committed (the repository has it; a store without it reads as 0). */
  readonly pendingRows?: number;
}

/** Where the metrics go: a SQLite file, or a PostgreSQL database. A new backend is one more variant and one more branch below. */
export type StorageConfig = { kind: 'sqlite'; path: string } | { kind: 'postgres'; url: string };

/** Repository settings the service chooses for a request/response workload (see `serviceDefaults`). */
export interface StoreTuning {
  /** How long a write may wait for the database's write lock before its request gets 503 LOCK_TIMEOUT. */
  lockTimeoutMs: number;
  /** Rows accepted and not yet committed, past which requests get 503 QUEUE_FULL. */
  maxQueuedRows: number;
}

/** The one place that turns a storage choice into an open store. */
export async function openStore(storage: StorageConfig, tuning: StoreTuning): Promise<MetricsStore> {
  // 'reject': a full queue answers 503 at once; a request parked behind it would only hold a connection.
  const common = {
    lockTimeoutMs: tuning.lockTimeoutMs,
    maxQueuedRows: tuning.maxQueuedRows,
    onQueueFull: 'reject',
  } as const;
  switch (storage.kind) {
    case 'sqlite':
      return openMetricsRepo({ path: storage.path, ...common });
    case 'postgres':
      return openMetricsRepo({ url: storage.url, ...common });
  }
}

/**
 * The storage named by the environment: `DATABASE_URL` (PostgreSQL) when set,
 * otherwise `METRICS_DB`, a SQLite file, default `metrics.db`. A relative path
 * means the directory the command was typed in (`pnpm service` runs the script
 * in apps/service but keeps that in `INIT_CWD`).
 */
export function storageFromEnv(env: NodeJS.ProcessEnv): StorageConfig {
  const url = env.DATABASE_URL?.trim();
  if (url) return { kind: 'postgres', url };
  const path = env.METRICS_DB?.trim() || 'metrics.db';
  return { kind: 'sqlite', path: resolve(env.INIT_CWD ?? process.cwd(), path) };
}

/** The storage for logs and errors: never a password. */
export function describeStorage(storage: StorageConfig): string {
  if (storage.kind === 'sqlite') return `SQLite file ${storage.path}`;
  try {
    const url = new URL(storage.url);
    url.password = '';
    return `PostgreSQL ${url.href}`;
  } catch {
    return 'PostgreSQL (an unparsable DATABASE_URL, not shown)';
  }
}
