import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import type { DropReason } from './connections.ts';
import type { MetricsStore } from './store.ts';

/** Prefix of the service's own metric names. */
export const metricPrefix = 'metrics_service_';

/**
 * The service's own metrics, for `GET /prometheus`: one registry per service
 * (a process may run several, as the tests do), measured from the service's
 * side of the store, plus prom-client's default process metrics.
 */
export class ServiceMetrics {
  readonly registry = new Registry();
  readonly rowsStored: Counter;
  readonly commitSeconds: Histogram;
  readonly batchRows: Histogram;
  readonly rejected: Counter<'code'>;
  readonly droppedConnections: Counter<'reason'>;

  constructor(queuedRows: () => number) {
    const registers = [this.registry];
    this.rowsStored = new Counter({
      name: `${metricPrefix}rows_stored_total`,
      help: 'Rows committed by this service (each answered 201, unless its client had gone).',
      registers,
    });
    this.commitSeconds = new Histogram({
      name: `${metricPrefix}commit_duration_seconds`,
      help: 'From an insert call to the store until its rows are committed, as the service waits for it (queue and lock waits included).',
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    });
    this.batchRows = new Histogram({
      name: `${metricPrefix}batch_rows`,
      help: 'Rows per insert call the service submits to the store (one per request: 1 for a single metric, the array length for a batch).',
      buckets: [1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10_000],
      registers,
    });
    new Gauge({
      name: `${metricPrefix}queued_rows`,
      help: 'Rows accepted by the store and not yet committed or failed, when scraped.',
      registers,
      collect() {
        this.set(queuedRows());
      },
    });
    this.rejected = new Counter({
      name: `${metricPrefix}rejected_requests_total`,
      help: 'Requests answered with an error, by the error code of the body (UNAUTHORIZED, RATE_LIMITED, LOCK_TIMEOUT...).',
      labelNames: ['code'],
      registers,
    });
    this.droppedConnections = new Counter({
      name: `${metricPrefix}dropped_connections_total`,
      help: 'Connections closed as soon as accepted, over a connection cap.',
      labelNames: ['reason'],
      registers,
    });
    collectDefaultMetrics({ register: this.registry });
  }

  dropped(reason: DropReason): void {
    this.droppedConnections.inc({ reason });
  }

  /**
   * `store`, measured: every insert call's rows (batch size, as submitted),
   * the time until it settles (commit latency, on success), the rows committed.
   */
  instrument(store: MetricsStore): MetricsStore {
    const measure = <T>(rows: number, call: () => Promise<T>): Promise<T> => {
      if (rows === 0) return call();
      this.batchRows.observe(rows);
      const stop = this.commitSeconds.startTimer();
      return call().then((stored) => {
        stop();
        this.rowsStored.inc(rows);
        return stored;
      });
    };
    const { summarize, export: exportRows } = store;
    return {
      insert: (metric) => measure(1, () => store.insert(metric)),
      insertMany: (metrics) => measure(metrics.length, () => store.insertMany(metrics)),
      count: (filter) => store.count(filter),
      // Reads pass through unmeasured (only writes are the service's histograms).
      ...(summarize === undefined ? {} : { summarize: summarize.bind(store) }),
      ...(exportRows === undefined ? {} : { export: exportRows.bind(store) }),
      close: () => store.close(),
      get pendingRows() {
        return store.pendingRows;
      },
    };
  }
}
