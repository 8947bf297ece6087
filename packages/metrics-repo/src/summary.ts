import type { MetricSummary } from './types.ts';

/**
 * Builds summaries from rows sorted by name, then bucket, then value: the same
 * code for every backend, so the same rows give the same numbers everywhere
 * (SQL's own `sum()` adds in an order of its choosing, and floating-point
 * addition depends on it; `percentile_disc` rounds `p * n` in floating point).
 *
 * Memory: one bucket's values at a time.
 */
export class SummaryBuilder {
  private readonly out: MetricSummary[] = [];
  private name: string | undefined;
  private bucket = 0;
  private earliest = Number.POSITIVE_INFINITY;
  private values = new Float64Array(1024);
  private n = 0;

  /**
   * @param fixedStart the bucket start when there are no buckets (the filter's `since`); undefined:
   *   the earliest `recordedAt` of each name, given to `add` as `recordedAt`.
   */
  constructor(private readonly fixedStart?: number) {}

  /** One row, in order (name, bucket, value ascending). `bucket` is its bucket's start in epoch ms. */
  add(name: string, bucket: number, value: number, recordedAt = bucket): void {
    if (name !== this.name || bucket !== this.bucket) {
      this.flush();
      this.name = name;
      this.bucket = bucket;
      this.earliest = Number.POSITIVE_INFINITY;
    }
    if (this.n === this.values.length) {
      const grown = new Float64Array(this.values.length * 2);
      grown.set(this.values);
      this.values = grown;
    }
    this.values[this.n++] = value;
    if (recordedAt < this.earliest) this.earliest = recordedAt;
  }

  /** Every summary, sorted by name then bucket start. */
  finish(): MetricSummary[] {
    this.flush();
    return this.out;
  }

  private flush(): void {
    const n = this.n;
    if (n === 0 || this.name === undefined) return;
    const values = this.values;
    let sum = 0;
    for (let i = 0; i < n; i++) sum += values[i] as number;
    const start = this.fixedStart ?? (Number.isFinite(this.earliest) ? this.earliest : this.bucket);
    this.out.push({
      name: this.name,
      bucketStart: new Date(start),
      count: n,
      sum,
      min: values[0] as number,
      max: values[n - 1] as number,
      avg: sum / n,
      p50: values[nearestRank(50, n) - 1] as number,
      p95: values[nearestRank(95, n) - 1] as number,
      p99: values[nearestRank(99, n) - 1] as number,
    });
    this.n = 0;
  }
}

/** The 1-based rank of the p-th percentile of n sorted values by nearest rank: ceil(p/100 × n), in exact integer arithmetic. */
export function nearestRank(p: number, n: number): number {
  return Math.max(1, Math.floor((p * n + 99) / 100));
}

/** The start of the epoch-aligned bucket of `ms` (floor division, also before 1970). */
export function bucketOf(ms: number, bucketMs: number): number {
  return ms - (((ms % bucketMs) + bucketMs) % bucketMs);
}
