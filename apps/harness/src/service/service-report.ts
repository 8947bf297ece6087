import type { ServiceRunResult, ServiceScenarioSettings } from './run-service.ts';

/** The repository's service must keep /healthz this fast through the foreign lock. */
export const healthzP99TargetMs = 20;

const integer = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });
const ms = (value: number | null) =>
  value === null ? '-' : value >= 100 ? integer.format(value) : value.toFixed(value >= 10 ? 1 : 2);
const triple = (a: number | null, b: number | null, c: number | null) => `${ms(a)} / ${ms(b)} / ${ms(c)}`;

type Row = [label: string, cell: (result: ServiceRunResult) => string];

const rows: Row[] = [
  ['POST /metrics requests/s', (r) => integer.format(r.post.perSec)],
  ['POST /metrics p50 / p99 / p99.9 ms', (r) => triple(r.post.p50Ms, r.post.p99Ms, r.post.p999Ms)],
  ['POST /metrics max ms', (r) => ms(r.post.maxMs)],
  ['POST /metrics non-2xx', (r) => describeNon2xx(r)],
  ['POST /metrics no response', (r) => integer.format(r.post.errors)],
  ['GET /healthz probes', (r) => integer.format(r.healthz.requests + r.healthz.failed)],
  ['GET /healthz p50 / p99 / p99.9 ms', (r) => triple(r.healthz.p50Ms, r.healthz.p99Ms, r.healthz.p999Ms)],
  ['GET /healthz max ms', (r) => ms(r.healthz.maxMs)],
  ['GET /healthz failed', (r) => integer.format(r.healthz.failed)],
  ['rows acknowledged (201)', (r) => integer.format(r.acked)],
  ['rows stored', (r) => integer.format(r.stored)],
  ['acknowledged rows missing from the file', (r) => integer.format(r.lost)],
  [
    'writer processes: acked / stored / failed',
    (r) => `${integer.format(r.writers.acked)} / ${integer.format(r.writers.stored)} / ${describeWriterFailures(r)}`,
  ],
  ['longest event-loop stall ms (in service)', (r) => ms(r.stall.maxMs)],
  ['event-loop stall p99 ms (in service)', (r) => ms(r.stall.p99Ms)],
  ['same, idle before the load: max / p99 ms', (r) => `${ms(r.idleStall.maxMs)} / ${ms(r.idleStall.p99Ms)}`],
  ['foreign lock held ms (taken at ms)', (r) => (r.lock ? `${r.lock.heldMs} (${r.lock.takenAtMs})` : '-')],
  ['shutdown (SIGTERM): exit code, ms', (r) => `${r.shutdown.exitCode ?? 'signal'}, ${r.shutdown.shutdownMs}`],
  ['integrity_check', (r) => r.integrity],
];

function describeNon2xx(result: ServiceRunResult): string {
  const other = Object.entries(result.post.statuses).filter(([status]) => !status.startsWith('2'));
  if (other.length === 0) return '0';
  return `${integer.format(result.post.non2xx)} (${other.map(([status, n]) => `${status}: ${n}`).join(', ')})`;
}

function describeWriterFailures(result: ServiceRunResult): string {
  const codes = Object.entries(result.writers.errors);
  return codes.length === 0
    ? '0'
    : `${result.writers.failed} (${codes.map(([code, n]) => `${code}: ${n}`).join(', ')})`;
}

const columnTitles: Record<ServiceRunResult['target'], string> = {
  raw: 'raw (sync Drizzle insert)',
  repo: 'repo (@repo/metrics-repo)',
};

/** What was run, the side-by-side table. */
export function formatServiceTable(results: readonly ServiceRunResult[], settings: ServiceScenarioSettings): string {
  const header = ['', ...results.map((result) => columnTitles[result.target])];
  const body = rows.map(([label, cell]) => [label, ...results.map(cell)]);
  const widths = header.map((_, i) => Math.max(...[header, ...body].map((row) => row[i]?.length ?? 0)));
  const line = (cells: string[]) =>
    cells.map((cell, i) => (i === 0 ? cell.padEnd(widths[i] ?? 0) : cell.padStart(widths[i] ?? 0))).join('  ');
  return [
    `service: one service process per target, on a fresh file; autocannon POST /metrics (${settings.connections} connections, ` +
      `${settings.durationMs / 1000} s), GET /healthz every ${settings.healthzIntervalMs} ms; ${settings.writers} writer processes ` +
      `on the same file; another process holds the write lock (BEGIN IMMEDIATE) ${settings.lockHoldMs} ms from ${settings.lockAtMs} ms; ` +
      `raw busy timeout ${settings.busyTimeoutMs} ms; each service idles ${settings.baselineMs} ms first (the machine's own stalls)`,
    '',
    line(header),
    line(widths.map((width) => '-'.repeat(width))),
    ...body.map(line),
  ].join('\n');
}

/** What must hold for both services (nothing acknowledged lost) and for the repository's (nothing failed); empty when it did. */
export function serviceProblems(results: readonly ServiceRunResult[], settings: ServiceScenarioSettings): string[] {
  const problems: string[] = [];
  for (const result of results) {
    const name = `${result.target} service`;
    // For both: a 201 that is not in the file would be the worst finding of all.
    if (result.lost !== 0) problems.push(`${name}: ${result.lost} acknowledged rows are not in the file`);
    if (result.writers.acked > result.writers.stored) {
      problems.push(`${name}: writer processes lost ${result.writers.acked - result.writers.stored} rows`);
    }
    if (result.integrity !== 'ok') problems.push(`${name}: integrity_check: ${result.integrity}`);
    if (result.lock === undefined || result.lock.heldMs < settings.lockHoldMs - 5) {
      problems.push(`${name}: the foreign lock was not held as planned: the figures do not show the lock`);
    }
    if (result.target !== 'repo') continue;
    const failed = result.post.non2xx + result.post.errors;
    if (failed > 0) problems.push(`${name}: ${failed} POST /metrics requests failed`);
    if (result.healthz.failed > 0) problems.push(`${name}: ${result.healthz.failed} /healthz probes failed`);
    if (result.writers.failed > 0) problems.push(`${name}: ${result.writers.failed} writer rows failed`);
    if (result.shutdown.exitCode !== 0) problems.push(`${name}: shutdown exit code ${result.shutdown.exitCode}`);
  }
  return problems;
}

/** The speed target: the repository's service keeps /healthz p99 within 20 ms through the foreign lock. Empty when met. */
export function serviceTargetMisses(results: readonly ServiceRunResult[]): string[] {
  return results
    .filter((result) => result.target === 'repo')
    .filter((result) => (result.healthz.p99Ms ?? Number.POSITIVE_INFINITY) > healthzP99TargetMs)
    .map(
      (result) => `repo service: /healthz p99 ${ms(result.healthz.p99Ms)} ms, over the ${healthzP99TargetMs} ms target`,
    );
}

/** One line: `service: repo 0 failed, /healthz p99 3 ms, longest stall 12 ms; raw /healthz p99 2,010 ms, ...`. */
export function serviceVerdict(results: readonly ServiceRunResult[]): string {
  const part = (result: ServiceRunResult) =>
    `${result.target} ${integer.format(result.post.non2xx + result.post.errors + result.healthz.failed)} failed, ` +
    `${integer.format(result.lost)} lost, /healthz p99 ${ms(result.healthz.p99Ms)} ms, ` +
    `longest stall ${ms(result.stall.maxMs)} ms`;
  const repo = results.find((result) => result.target === 'repo');
  const others = results.filter((result) => result !== repo);
  return `service: ${[repo, ...others]
    .filter((result) => result !== undefined)
    .map(part)
    .join('; ')}`;
}
