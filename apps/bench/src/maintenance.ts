import { type ChildProcess, fork } from 'node:child_process';
import { join } from 'node:path';
import { metrics, openDatabase } from '@repo/db';
import { percentile } from '@repo/harness/stats';
import { type MetricSummary, nearestRank, openMetricsRepo } from '@repo/metrics-repo';
import { and, asc, gte, lt } from 'drizzle-orm';

/**
 * Reading back and retention, each against the same operation done naively in
 * the same run (issue: "Reading the metrics back, and keeping the file small"):
 *
 * - summarize: `repo.summarize()` of a 1-hour window by minute over `rows` stored rows (spread
 *   over one day), against one Drizzle SELECT of the window and the same figures computed in
 *   JavaScript. Both must give the same summaries.
 * - export: `repo.export()` of every row while a writer process records, against one Drizzle
 *   SELECT of the whole table: rows/s, the largest -wal file seen, the heap it took.
 * - prune: `repo.prune()` of every row while a writer process records, against one `DELETE`:
 *   rows/s, and the writer's p99 during each (and alone, before).
 */
export interface MaintenanceRow {
  name: string;
  /** The repository's figure and the naive one, in `unit`. */
  repo: number;
  naive: number;
  unit: string;
  /** How many times better the repository is (for times: naive / repo; for rates: repo / naive). */
  ratio: number;
  notes: string;
}

export interface MaintenanceBench {
  rows: number;
  results: MaintenanceRow[];
  problems: string[];
}

const day = 86_400_000;
/** How long the writer records alone before a prune or DELETE starts: its p99 alone. */
const baselineMs = 3000;
const steadyWriter = join(import.meta.dirname, 'workers', 'steady-writer.ts');

export async function runMaintenanceBench(
  rows: number,
  directory: string,
  onProgress: (line: string) => void = () => {},
): Promise<MaintenanceBench> {
  const problems: string[] = [];
  const results: MaintenanceRow[] = [];
  const start = Date.now() - 2 * day;
  const fileA = join(directory, 'maintenance-a.db');
  onProgress(`maintenance: prefilling ${rows} rows`);
  prefill(fileA, rows, start);

  // summarize: the repository's against one SELECT + JavaScript.
  const window = { since: start + day / 2, until: start + day / 2 + 3_600_000, bucketMs: 60_000 };
  const repo = await openMetricsRepo({ path: fileA });
  const naiveDb = openDatabase(fileA);
  try {
    await repo.summarize(window); // opens its connection
    const repoTimes: number[] = [];
    const naiveTimes: number[] = [];
    let repoSummary: MetricSummary[] = [];
    let naiveSummary: MetricSummary[] = [];
    for (let run = 0; run < 5; run++) {
      let t0 = performance.now();
      repoSummary = await repo.summarize(window);
      repoTimes.push(performance.now() - t0);
      t0 = performance.now();
      naiveSummary = naiveSummarize(naiveDb.db, window);
      naiveTimes.push(performance.now() - t0);
    }
    if (JSON.stringify(repoSummary) !== JSON.stringify(naiveSummary)) {
      problems.push('summarize: the repository and the naive computation disagree');
    }
    const repoMs = median(repoTimes);
    const naiveMs = median(naiveTimes);
    const windowRows = repoSummary.reduce((sum, s) => sum + s.count, 0);
    results.push({
      name: 'summarize-1h',
      repo: round(repoMs, 1),
      naive: round(naiveMs, 1),
      unit: 'ms',
      ratio: round(naiveMs / repoMs, 2),
      notes: `1 h by minute, ${windowRows} of ${rows} rows; median of 5; target <= 100 ms: ${repoMs <= 100 ? 'met' : 'MISSED'}`,
    });
    onProgress(`maintenance: summarize ${round(repoMs, 1)} ms, naive ${round(naiveMs, 1)} ms`);

    // export while a writer records.
    let writer = await startWriter(fileA);
    await sleep(500);
    const heapBefore = heapUsed();
    const repoExportStart = Date.now();
    let t0 = performance.now();
    let exported = 0;
    let heapPeak = heapBefore;
    for await (const _ of repo.export()) {
      if (++exported % 10_000 === 0) heapPeak = Math.max(heapPeak, heapUsed());
    }
    const repoExportMs = performance.now() - t0;
    const repoExportEnd = Date.now();
    const repoHeap = heapPeak - heapBefore;
    await sleep(500);
    const naiveExportStart = Date.now();
    t0 = performance.now();
    const all = naiveDb.db.select().from(metrics).orderBy(asc(metrics.id)).all();
    const naiveExportMs = performance.now() - t0;
    const naiveExportEnd = Date.now();
    const naiveHeap = heapUsed() - heapBefore;
    const naiveCount = all.length;
    all.length = 0;
    await sleep(300);
    let writes = await stopWriter(writer);
    // The -wal file while each export ran (and just after: a pinned WAL is cut back only then).
    const repoWal = maxBetween(writes.wal, repoExportStart, repoExportEnd + 200);
    const naiveWal = maxBetween(writes.wal, naiveExportStart, naiveExportEnd + 200);
    if (writes.failed > 0) problems.push(`export: the writer had ${writes.failed} failed rows`);
    if (exported < rows || naiveCount < rows) problems.push(`export: ${exported} / ${naiveCount} rows of ${rows}`);
    const repoRate = exported / (repoExportMs / 1000);
    const naiveRate = naiveCount / (naiveExportMs / 1000);
    results.push({
      name: 'export',
      repo: Math.round(repoRate),
      naive: Math.round(naiveRate),
      unit: 'rows/s',
      ratio: round(repoRate / naiveRate, 2),
      notes: `${exported} rows, a writer recording; largest -wal ${mib(repoWal)} vs ${mib(naiveWal)} MiB; heap +${mib(repoHeap)} vs +${mib(naiveHeap)} MiB`,
    });
    onProgress(`maintenance: export ${Math.round(repoRate)} rows/s, naive ${Math.round(naiveRate)} rows/s`);

    // prune while a writer records: the repository on file A, one DELETE on file B.
    writer = await startWriter(fileA);
    await sleep(baselineMs);
    const pruneStart = Date.now();
    t0 = performance.now();
    const deleted = await repo.prune({ before: start + day + 1 });
    const repoPruneMs = performance.now() - t0;
    const pruneEnd = Date.now();
    await sleep(200);
    writes = await stopWriter(writer);
    const alone = p99Between(writes.samples, 0, pruneStart);
    const duringRepo = p99Between(writes.samples, pruneStart, pruneEnd);
    if (deleted !== rows) problems.push(`prune: deleted ${deleted} of ${rows}`);
    if (writes.failed > 0)
      problems.push(`prune: the writer had ${writes.failed} failed rows (${JSON.stringify(writes.errors)})`);

    const fileB = join(directory, 'maintenance-b.db');
    onProgress(`maintenance: prefilling ${rows} rows again for the naive DELETE`);
    prefill(fileB, rows, start);
    const naiveB = openDatabase(fileB);
    writer = await startWriter(fileB);
    await sleep(baselineMs);
    const deleteStart = Date.now();
    t0 = performance.now();
    const naiveDeleted = naiveB.sqlite
      .prepare('DELETE FROM metrics WHERE recorded_at < ?')
      .run(start + day + 1).changes;
    const naivePruneMs = performance.now() - t0;
    const deleteEnd = Date.now();
    await sleep(200);
    const naiveWrites = await stopWriter(writer);
    naiveB.close();
    const aloneB = p99Between(naiveWrites.samples, 0, deleteStart);
    // The writes issued while the DELETE held the lock, and those just after (they waited for it).
    const duringNaive = p99Between(naiveWrites.samples, deleteStart, deleteEnd + 1);
    const repoPruneRate = deleted / (repoPruneMs / 1000);
    const naivePruneRate = naiveDeleted / (naivePruneMs / 1000);
    results.push({
      name: 'prune (writer running)',
      repo: Math.round(repoPruneRate),
      naive: Math.round(naivePruneRate),
      unit: 'rows/s',
      ratio: round(repoPruneRate / naivePruneRate, 2),
      notes: `${deleted} rows; writer p99 ${alone} ms alone, ${duringRepo} ms during prune (${round(duringRepo / Math.max(alone, 0.001), 1)}x); naive: ${aloneB} ms alone, ${duringNaive} ms during the DELETE (${round(duringNaive / Math.max(aloneB, 0.001), 1)}x)`,
    });
    results.push({
      name: "prune: writer's p99 during",
      repo: duringRepo,
      naive: duringNaive,
      unit: 'ms',
      ratio: round(duringNaive / Math.max(duringRepo, 0.001), 1),
      notes: `the writer records one row every 2 ms; its p99 alone: ${alone} ms (repo run), ${aloneB} ms (naive run)`,
    });
    onProgress(`maintenance: prune ${Math.round(repoPruneRate)} rows/s, naive ${Math.round(naivePruneRate)} rows/s`);
  } finally {
    naiveDb.close();
    await repo.close();
  }
  return { rows, results, problems };
}

/** A Markdown table of the rows, and their notes. */
export function formatMaintenance(bench: MaintenanceBench): string {
  const header = '| operation | repository | naive | unit | ratio (repository better when > 1) |';
  const rule = '|---|--:|--:|---|--:|';
  const lines = bench.results.map((r) => `| ${r.name} | ${r.repo} | ${r.naive} | ${r.unit} | ${r.ratio} |`);
  return [
    `Reading back and retention, over ${bench.rows} rows (naive: one SELECT, one DELETE):`,
    '',
    header,
    rule,
    ...lines,
    '',
    ...bench.results.map((r) => `- ${r.name}: ${r.notes}`),
    ...(bench.problems.length === 0 ? [] : ['PROBLEMS:', ...bench.problems.map((p) => `- ${p}`)]),
  ].join('\n');
}

function prefill(path: string, rows: number, start: number): void {
  const opened = openDatabase(path);
  try {
    const insert = opened.sqlite.prepare('INSERT INTO metrics (name, value, recorded_at, labels) VALUES (?, ?, ?, ?)');
    const step = day / Math.max(1, rows);
    for (let from = 0; from < rows; from += 50_000) {
      opened.sqlite.transaction(() => {
        for (let i = from; i < Math.min(rows, from + 50_000); i++) {
          insert.run(`job.${i % 5}`, (i * 7919) % 1000, Math.floor(start + i * step), `{"host":"h${i % 3}"}`);
        }
      })();
    }
    opened.sqlite.pragma('wal_checkpoint(TRUNCATE)');
  } finally {
    opened.close();
  }
}

/** What naive code does: one SELECT of the window through Drizzle, then the figures in JavaScript. */
function naiveSummarize(
  db: ReturnType<typeof openDatabase>['db'],
  window: { since: number; until: number; bucketMs: number },
): MetricSummary[] {
  const rows = db
    .select({ name: metrics.name, value: metrics.value, recordedAt: metrics.recordedAt })
    .from(metrics)
    .where(and(gte(metrics.recordedAt, new Date(window.since)), lt(metrics.recordedAt, new Date(window.until))))
    .all();
  const groups = new Map<string, { name: string; bucket: number; values: number[] }>();
  for (const row of rows) {
    const at = row.recordedAt.getTime();
    const bucket = at - (((at % window.bucketMs) + window.bucketMs) % window.bucketMs);
    const key = `${row.name}\u0000${bucket}`;
    let group = groups.get(key);
    if (group === undefined) {
      group = { name: row.name, bucket, values: [] };
      groups.set(key, group);
    }
    group.values.push(row.value);
  }
  return [...groups.values()]
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : a.bucket - b.bucket))
    .map(({ name, bucket, values }) => {
      values.sort((a, b) => a - b);
      const n = values.length;
      let sum = 0;
      for (const value of values) sum += value;
      return {
        name,
        bucketStart: new Date(bucket),
        count: n,
        sum,
        min: values[0] as number,
        max: values[n - 1] as number,
        avg: sum / n,
        p50: values[nearestRank(50, n) - 1] as number,
        p95: values[nearestRank(95, n) - 1] as number,
        p99: values[nearestRank(99, n) - 1] as number,
      };
    });
}

interface Writes {
  samples: [number, number][];
  /** The -wal file's size every 20 ms, `[epochMs, bytes]`. */
  wal: [number, number][];
  failed: number;
  errors: Record<string, number>;
}

function startWriter(path: string): Promise<ChildProcess> {
  const child = fork(steadyWriter, [path, '2'], { execArgv: ['--import', 'tsx'], stdio: 'inherit' });
  return new Promise((resolve, reject) => {
    child.once('message', () => resolve(child));
    child.once('exit', (code) => reject(new Error(`the steady writer exited (${code}) before it was ready`)));
  });
}

function stopWriter(child: ChildProcess): Promise<Writes> {
  return new Promise((resolve, reject) => {
    child.once('message', (message) => resolve(message as Writes));
    child.once('exit', (code) => reject(new Error(`the steady writer exited (${code}) without its figures`)));
    child.send('stop');
  });
}

function p99Between(samples: [number, number][], from: number, to: number): number {
  const latencies = Float64Array.from(
    samples.filter(([at]) => at >= from && at < to).map(([, latency]) => latency),
  ).sort();
  return latencies.length === 0 ? 0 : round(percentile(latencies, 99), 2);
}

/** The largest sample taken between `from` and `to` (epoch ms). */
function maxBetween(samples: [number, number][], from: number, to: number): number {
  let max = 0;
  for (const [at, value] of samples) if (at >= from && at <= to) max = Math.max(max, value);
  return max;
}

function heapUsed(): number {
  return process.memoryUsage().heapUsed;
}

const mib = (bytes: number) => (bytes / 2 ** 20).toFixed(1);
const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor((values.length - 1) / 2)] as number;
const round = (value: number, digits: number) => Math.round(value * 10 ** digits) / 10 ** digits;
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
