import { percentile } from '@repo/harness/stats';
import type { WorkerKind } from '@repo/launcher';
import { sortedCopy } from '../stats.ts';
import { type OneshotRun, runOneshot } from './run.ts';

/**
 * `pnpm --filter @repo/bench run phases [--writers 1,50,500] [--mode process|thread]`
 *
 * Where one short-lived writer's time and CPU go, phase by phase, naive code and
 * the repository side by side, at each number of writers released at once:
 * starting, each step of opening, waiting for the write lock, committing, closing.
 */
const args = process.argv.slice(2);
const option = (name: string, fallback: string) => {
  const at = args.indexOf(`--${name}`);
  return at === -1 ? fallback : (args[at + 1] ?? fallback);
};
const writerCounts = option('writers', '1,50,500').split(',').map(Number);
const mode = option('mode', 'process') as WorkerKind;
if (writerCounts.some((n) => !Number.isInteger(n) || n < 1) || (mode !== 'process' && mode !== 'thread')) {
  process.stderr.write('usage: phases [--writers 1,50,500] [--mode process|thread]\n');
  process.exit(2);
}

const fixed = (value: number) => (Number.isNaN(value) ? '-' : value >= 100 ? value.toFixed(0) : value.toFixed(2));

interface Row {
  label: string;
  wall: number[];
  cpu: number[];
}

/** Rows of the table for one run: start-up, then each published phase (summed per writer), then totals. */
function rowsOf(run: OneshotRun): Row[] {
  const rows = new Map<string, Row>();
  const add = (label: string, writer: number, wall: number, cpu: number) => {
    let row = rows.get(label);
    if (row === undefined) {
      row = { label, wall: new Array(run.results.length).fill(0), cpu: new Array(run.results.length).fill(0) };
      rows.set(label, row);
    }
    row.wall[writer] = (row.wall[writer] ?? 0) + wall;
    row.cpu[writer] = (row.cpu[writer] ?? 0) + cpu;
  };
  run.results.forEach((result, writer) => {
    add('start to ready (before the barrier)', writer, result.startupMs, result.startupCpuMs);
    for (const phase of result.phases) add(`${phase.scope}: ${phase.phase}`, writer, phase.wallMs, phase.cpuMs);
    add('release to acknowledgement', writer, result.latencyMs, Number.NaN);
    add('release to closed (total)', writer, result.totalMs, result.cpuMs);
  });
  return [...rows.values()];
}

const p = (values: number[], q: number) => percentile(sortedCopy(values.filter((v) => !Number.isNaN(v))), q);
const mean = (values: number[]) => {
  const real = values.filter((v) => !Number.isNaN(v));
  return real.length === 0 ? Number.NaN : real.reduce((a, b) => a + b, 0) / real.length;
};

for (const writers of writerCounts) {
  const runs: OneshotRun[] = [];
  for (const target of ['raw', 'repo'] as const) runs.push(await runOneshot(target, mode, writers));
  process.stdout.write(
    `\n${writers} ${mode === 'thread' ? 'threads' : 'processes'}, one row each, WAL, released at once\n`,
  );
  const header = ['phase', 'target', 'wall p50', 'wall p99', 'cpu mean'];
  const lines: string[][] = [];
  for (const run of runs) {
    for (const row of rowsOf(run)) {
      lines.push([row.label, run.target, fixed(p(row.wall, 50)), fixed(p(row.wall, 99)), fixed(mean(row.cpu))]);
    }
  }
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((line) => (line[i] ?? '').length)));
  const format = (cells: string[]) =>
    cells.map((cell, i) => (i < 2 ? cell.padEnd(widths[i] ?? 0) : cell.padStart(widths[i] ?? 0))).join('  ');
  process.stdout.write(`${format(header)}\n${widths.map((w) => '-'.repeat(w)).join('  ')}\n`);
  for (const line of lines) process.stdout.write(`${format(line)}\n`);
  for (const run of runs) {
    process.stdout.write(
      `${run.target}: acked ${run.acked}/${run.writers}, stored ${run.stored}, latency p99 ${fixed(p(run.latenciesMs, 99))} ms, CPU per row ${fixed(run.cpuMs / run.writers)} ms${run.firstError ? `, first error: ${run.firstError}` : ''}\n`,
    );
  }
  const [raw, repo] = runs as [OneshotRun, OneshotRun];
  process.stdout.write(
    `repo/raw: p99 ${(p(repo.latenciesMs, 99) / p(raw.latenciesMs, 99)).toFixed(2)}x, CPU per row ${(repo.cpuMs / raw.cpuMs).toFixed(2)}x\n`,
  );
}
