import type { MetricInput, MetricSummary } from '../src/index.ts';

/** A summary filter with epoch-ms times (what the tests use). */
export interface ReferenceFilter {
  name?: string;
  since?: number;
  until?: number;
  bucketMs?: number;
  labels?: Record<string, string>;
}

/** The summaries computed the slow, obvious way: what `summarize` must give. */
export function referenceSummaries(rows: readonly MetricInput[], filter: ReferenceFilter): MetricSummary[] {
  const groups = new Map<string, { name: string; bucket: number; values: number[]; earliest: number }>();
  for (const row of rows) {
    const at = row.recordedAt instanceof Date ? row.recordedAt.getTime() : (row.recordedAt as number);
    if (filter.name !== undefined && row.name !== filter.name) continue;
    if (filter.since !== undefined && at < filter.since) continue;
    if (filter.until !== undefined && at >= filter.until) continue;
    if (filter.labels && !Object.entries(filter.labels).every(([k, v]) => row.labels?.[k] === v)) continue;
    const bucket = filter.bucketMs === undefined ? 0 : Math.floor(at / filter.bucketMs) * filter.bucketMs;
    const key = JSON.stringify([row.name, bucket]);
    const group = groups.get(key) ?? { name: row.name, bucket, values: [], earliest: at };
    group.values.push(row.value === 0 ? 0 : row.value);
    group.earliest = Math.min(group.earliest, at);
    groups.set(key, group);
  }
  const bytes = (s: string) => Buffer.from(s, 'utf8');
  return [...groups.values()]
    .sort((a, b) => Buffer.compare(bytes(a.name), bytes(b.name)) || a.bucket - b.bucket)
    .map(({ name, bucket, values, earliest }) => {
      values.sort((a, b) => a - b);
      const n = values.length;
      const sum = values.reduce((s, v) => s + v, 0);
      // Nearest rank, by its definition: the smallest value with at least p% of the values at or below it.
      const pct = (p: number) => values.find((v) => values.filter((w) => w <= v).length * 100 >= p * n) as number;
      const start = filter.bucketMs !== undefined ? bucket : (filter.since ?? earliest);
      return {
        name,
        bucketStart: new Date(start),
        count: n,
        sum,
        min: values[0] as number,
        max: values[n - 1] as number,
        avg: sum / n,
        p50: pct(50),
        p95: pct(95),
        p99: pct(99),
      };
    });
}

/** A deterministic, awkward data set: ties, negatives, fractions, labels with dots and quotes, times before 1970. */
export function sampleRows(count: number, seed = 7): MetricInput[] {
  let state = seed;
  const random = () => {
    state = (state * 1_103_515_245 + 12_345) % 2_147_483_648;
    return state / 2_147_483_648;
  };
  const names = ['job.ms', 'Job.ms', 'zeta', 'émoji.😀', 'a'];
  const rows: MetricInput[] = [];
  for (let i = 0; i < count; i++) {
    const value = random() < 0.2 ? Math.round(random() * 5) : (random() - 0.3) * 1000 * random();
    rows.push({
      name: names[Math.floor(random() * names.length)] as string,
      value,
      recordedAt: -3_600_000 + Math.floor(random() * 4 * 3_600_000),
      labels: random() < 0.8 ? { host: `h${Math.floor(random() * 3)}`, 'a.b': 'x', 'q"uote': String(i % 2) } : null,
    });
  }
  return rows;
}
