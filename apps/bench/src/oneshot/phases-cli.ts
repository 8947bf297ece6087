import { percentile } from '@repo/harness/stats';
import type { WorkerKind } from '@repo/launcher';
import { sortedCopy } from '../stats.ts';
import { type OneshotRun, runOneshot } from './run.ts';
import type { OneshotResult } from './writer.ts';

/**
 * `pnpm --filter @repo/bench run phases [--writers 1,50,500] [--mode process|thread] [--settle-ms 10000] [--sketch relay] [--timeline 5] [--node-flags "--no-memory-reducer"]`
 *
 * Where one short-lived writer's time and CPU go, phase by phase, naive code and
 * the repository side by side, at each number of writers released at once:
 * starting, each step of opening, waiting for the write lock, committing, closing.
 * `--settle-ms` (default 10 000) is the idle time between the last writer's readiness and the
 * release: V8 collects each writer's start-up garbage about 8 s after its start, once it is idle,
 * and without that pause the writers that started last pay for it inside the measured window, if
 * they await there (see docs/decisions/0011-measuring-short-lived-writers.md). `--settle-ms 0` shows that.
 * `--sketch relay` adds a third run: the measurement sketch of a leader design
 * (oneshot/relay-sketch.ts, not the library), against the same baseline.
 * `--timeline N` then prints, for each side, the N writers slowest to the end of close() and every
 * writer that opened the file, each phase at the time it ended: who made the p99, and what it waited for.
 * `--node-flags` starts every writer process with those flags (space-separated), on both sides;
 * threads share this process's, so for them give the flags to node itself (see
 * docs/decisions/0011-measuring-short-lived-writers.md).
 */
const usage =
  'usage: phases [--writers 1,50,500] [--mode process|thread] [--settle-ms 10000] [--sketch relay] [--timeline N] [--node-flags "FLAGS" (processes only)] [--repo-options JSON (e.g. {"threadSlices":true})]\n';
// `pnpm run phases -- --writers 50` hands the separator on: it means nothing here.
const args = process.argv.slice(process.argv[2] === '--' ? 3 : 2);
if (args.includes('--help') || args.includes('-h')) {
  process.stdout.write(usage);
  process.exit(0);
}
// Hand-parsed, not node:util's parseArgs: a value may start with dashes (`--node-flags --no-memory-reducer`).
const known = new Set([
  '--writers',
  '--mode',
  '--settle-ms',
  '--sketch',
  '--timeline',
  '--node-flags',
  '--repo-options',
]);
const given = new Map<string, string>();
for (let at = 0; at < args.length; at += 2) {
  const name = args[at] ?? '';
  const value = args[at + 1];
  // An unknown or value-less option is a typo: never minutes of the default run instead.
  const problem = !known.has(name) ? `unknown option ${name}` : value === undefined ? `${name} needs a value` : '';
  if (problem !== '') {
    process.stderr.write(`phases: ${problem}\n${usage}`);
    process.exit(2);
  }
  given.set(name, value as string);
}
const option = (name: string, fallback: string) => given.get(`--${name}`) ?? fallback;
const writerCounts = option('writers', '1,50,500').split(',').map(Number);
const mode = option('mode', 'process') as WorkerKind;
const sketch = option('sketch', 'none');
const settleMs = Number(option('settle-ms', '10000'));
const timeline = Number(option('timeline', '0'));
let repoOptions: { threadSlices?: boolean } | undefined;
try {
  repoOptions = JSON.parse(option('repo-options', '{}'));
} catch {
  repoOptions = undefined;
}
const nodeFlags = option('node-flags', '')
  .split(' ')
  .filter((flag) => flag !== '');
if (
  writerCounts.some((n) => !Number.isInteger(n) || n < 1) ||
  (mode !== 'process' && mode !== 'thread') ||
  (sketch !== 'none' && sketch !== 'relay') ||
  !Number.isInteger(settleMs) ||
  settleMs < 0 ||
  !Number.isInteger(timeline) ||
  timeline < 0 ||
  (nodeFlags.length > 0 && mode !== 'process') ||
  typeof repoOptions !== 'object' ||
  repoOptions === null
) {
  process.stderr.write(usage);
  process.exit(2);
}

const fixed = (value: number) => (Number.isNaN(value) ? '-' : value >= 100 ? value.toFixed(0) : value.toFixed(2));

interface Row {
  label: string;
  wall: number[];
  cpu: number[];
  preempted: number[];
}

/** Rows of the table for one run: start-up, then each published phase (summed per writer), then totals. */
function rowsOf(run: OneshotRun): Row[] {
  const rows = new Map<string, Row>();
  const add = (label: string, writer: number, wall: number, cpu: number, preempted = Number.NaN) => {
    let row = rows.get(label);
    if (row === undefined) {
      const zeros = () => new Array<number>(run.results.length).fill(0);
      row = { label, wall: zeros(), cpu: zeros(), preempted: zeros() };
      rows.set(label, row);
    }
    row.wall[writer] = (row.wall[writer] ?? 0) + wall;
    row.cpu[writer] = (row.cpu[writer] ?? 0) + cpu;
    row.preempted[writer] = (row.preempted[writer] ?? 0) + preempted;
  };
  run.results.forEach((result, writer) => {
    add('start to ready (before the barrier)', writer, result.startupMs, result.startupCpuMs);
    for (const phase of result.phases) {
      add(`${phase.scope}: ${phase.phase}`, writer, phase.wallMs, phase.cpuMs, phase.preempted);
    }
    add('release to acknowledgement', writer, result.latencyMs, Number.NaN);
    add('release to closed (total)', writer, result.totalMs, result.cpuMs);
  });
  return [...rows.values()];
}

/** Whether this writer opened the file itself (the others' rows went through the mailbox). */
const openedTheFile = (result: OneshotResult) =>
  result.phases.some((phase) => phase.scope === 'open' && phase.phase === 'connection');

/**
 * The `slowest` writers to the end of close(), and every writer of the repository that opened the
 * file, one line each: when the release reached it after it reached the first writer, its
 * acknowledgement and close, then each phase at the time it ended (ms after its release) with its CPU.
 */
function timelineLines(run: OneshotRun, slowest: number): string[] {
  const firstRelease = Math.min(...run.results.map((result) => result.releasedAtMs));
  const opened = new Set(run.target === 'repo' ? run.results.filter(openedTheFile) : []);
  const bySlowness = [...run.results].sort((a, b) => b.totalMs - a.totalMs);
  const chosen = new Set([...bySlowness.slice(0, slowest), ...opened]);
  return bySlowness
    .filter((result) => chosen.has(result))
    .map((result) => {
      const role = run.target !== 'repo' ? '' : opened.has(result) ? 'opened  ' : 'posted  ';
      const steps = result.phases.map(
        (phase) => `${phase.scope}:${phase.phase} ${fixed(phase.endedMs)} (${fixed(phase.cpuMs)})`,
      );
      return `  ${role}+${fixed(result.releasedAtMs - firstRelease)}  ack ${fixed(result.latencyMs)}  closed ${fixed(result.totalMs)}${result.error === undefined ? '' : `  error ${result.error}`}  |  ${steps.join(', ')}`;
    });
}

const p = (values: number[], q: number) => percentile(sortedCopy(values.filter((v) => !Number.isNaN(v))), q);
const mean = (values: number[]) => {
  const real = values.filter((v) => !Number.isNaN(v));
  return real.length === 0 ? Number.NaN : real.reduce((a, b) => a + b, 0) / real.length;
};

for (const writers of writerCounts) {
  const runs: OneshotRun[] = [];
  const targets = sketch === 'relay' ? (['raw', 'repo', 'relay-sketch'] as const) : (['raw', 'repo'] as const);
  for (const target of targets)
    runs.push(
      await runOneshot(target, mode, writers, { execArgv: nodeFlags, settleMs, tracePhases: true, repoOptions }),
    );
  process.stdout.write(
    `\n${writers} ${mode === 'thread' ? 'threads' : 'processes'}, one row each, WAL, released at once (${settleMs} ms after the last was ready)\n`,
  );
  const header = ['phase', 'target', 'wall p50', 'wall p99', 'cpu mean', 'preempted'];
  const lines: string[][] = [];
  for (const run of runs) {
    for (const row of rowsOf(run)) {
      lines.push([
        row.label,
        run.target,
        fixed(p(row.wall, 50)),
        fixed(p(row.wall, 99)),
        fixed(mean(row.cpu)),
        fixed(mean(row.preempted)),
      ]);
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
    for (const error of run.errors) {
      process.stdout.write(
        `${run.target}:   ${error.writers} × ${error.code}, of which ${error.storedAnyway} stored all the same\n`,
      );
    }
  }
  // What `CPU per row` leaves out, on the same cores: each writer's report and exit, and the launcher.
  for (const run of runs) {
    const { wallMs, writersCpuMs, writersCpuResolutionMs, launcherCpuMs } = run.burst;
    const writersPart =
      writersCpuMs === undefined
        ? ''
        : `each writer ${fixed(writersCpuMs)} ms ±${fixed(writersCpuResolutionMs)} (${fixed(run.cpuMs / run.writers)} of it until its close), `;
    const launcher = mode === 'thread' ? 'this process with its writer threads' : 'the launching process';
    process.stdout.write(
      `${run.target}: release to the last exit ${fixed(wallMs)} ms; CPU per writer meanwhile: ${writersPart}${launcher} ${fixed(launcherCpuMs)} ms\n`,
    );
  }
  const repoResults = runs.find((run) => run.target === 'repo')?.results ?? [];
  const attempts = repoResults.flatMap((result) =>
    result.phases.filter((phase) => phase.phase === 'lock-wait').map((phase) => phase.attempts ?? Number.NaN),
  );
  if (attempts.length > 0) {
    process.stdout.write(
      `repo: attempts at the write lock per transaction p50 ${p(attempts, 50)}, p99 ${p(attempts, 99)}, max ${Math.max(...attempts)}\n`,
    );
  }
  if (repoResults.length > 0) {
    // The figure that explains most of the repository's run-to-run spread: every writer that opens
    // the file pays SQLite's open, as naive code does (docs/decisions/0021-eager-compilation-from-a-build-step-not-kept.md).
    const opened = repoResults.filter(openedTheFile).length;
    const transactions = repoResults.reduce(
      (sum, result) => sum + result.phases.filter((phase) => phase.phase === 'lock-held').length,
      0,
    );
    process.stdout.write(
      `repo: ${opened} of ${repoResults.length} writers opened the file (the others' rows went through the mailbox), ${transactions} transaction(s)\n`,
    );
  }
  const sketchRun = runs.find((run) => run.target === 'relay-sketch');
  if (sketchRun !== undefined) {
    const roles = sketchRun.results.flatMap((result) => result.phases.filter((phase) => phase.scope === 'sketch'));
    const tries = roles.map((phase) => phase.attempts ?? Number.NaN);
    process.stdout.write(
      `relay-sketch: ${roles.filter((phase) => phase.phase === 'led').length} leader(s); tries to bind or reach one p50 ${p(tries, 50)}, p99 ${p(tries, 99)}\n`,
    );
  }
  if (timeline > 0) {
    for (const run of runs) {
      process.stdout.write(
        `${run.target}: timeline of the ${Math.min(timeline, run.results.length)} writer(s) slowest to the end of close()${run.target === 'repo' ? ' and of every writer that opened the file' : ''} (+ms after the release reached the first writer; then ms after its own release: acknowledged, closed, and each phase at its end with its CPU in ms)\n`,
      );
      for (const line of timelineLines(run, timeline)) process.stdout.write(`${line}\n`);
    }
  }
  const [raw, ...others] = runs as [OneshotRun, ...OneshotRun[]];
  for (const run of others) {
    process.stdout.write(
      `${run.target}/raw: p99 ${(p(run.latenciesMs, 99) / p(raw.latenciesMs, 99)).toFixed(2)}x to the acknowledgement, ${(p(run.toCloseMs, 99) / p(raw.toCloseMs, 99)).toFixed(2)}x to the end of close(), CPU per row ${(run.cpuMs / raw.cpuMs).toFixed(2)}x\n`,
    );
  }
}
