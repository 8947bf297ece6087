import { join } from 'node:path';
import { percentile } from '@repo/harness/stats';
import type { BenchSizes } from './config.ts';
import { countStoredRows, makeRunDirectory } from './files.ts';
import { describeMachine, describeRevision, type Machine } from './machine.ts';
import { type MaintenanceBench, runMaintenanceBench } from './maintenance.ts';
import { prepareBenchPostgres } from './postgres.ts';
import { limit } from './scenarios/limit.ts';
import { lockWaitRaw, lockWaitRepo } from './scenarios/lock-wait.ts';
import { naive, naiveDefaults } from './scenarios/naive.ts';
import { rawOneshot, repoOneshot } from './scenarios/oneshot.ts';
import { pgLimit, pgNaive, pgRepoAsync } from './scenarios/postgres.ts';
import { repoAsync } from './scenarios/repo-async.ts';
import { repoMany } from './scenarios/repo-many.ts';
import { repoProcesses } from './scenarios/repo-processes.ts';
import type { Measurement, Scenario } from './scenarios/scenario.ts';
import { sortedCopy } from './stats.ts';

/** Every scenario, in the order each round runs them. */
export const scenarios: readonly Scenario[] = [
  limit,
  naive,
  naiveDefaults,
  repoAsync,
  repoMany,
  repoProcesses,
  rawOneshot,
  repoOneshot,
  lockWaitRepo,
  lockWaitRaw,
  pgLimit,
  pgNaive,
  pgRepoAsync,
];

/** The figures of one run of one scenario. Times in ms. */
export interface RunFigures {
  /** Rows acknowledged as committed. */
  rows: number;
  /** Rows whose write was refused. */
  failedRows: number;
  /** Rows counted in the file afterwards: must equal `rows`. */
  stored: number;
  wallMs: number;
  rowsPerSec: number;
  /** Per-row latency, from issuing the write to its acknowledgement. */
  p50Ms: number;
  p99Ms: number;
  /** Event-loop delay of the inserting thread (the worst process for repo-processes). */
  maxEventLoopDelayMs: number;
  p99EventLoopDelayMs: number;
  timeWeightedP99EventLoopDelayMs: number;
  /** CPU per acknowledged row, where the scenario measures CPU (the one-shot ones). */
  cpuMsPerRow?: number;
  /** One-shot scenarios: p99 from the release to the end of close(), what a job runner waits for. */
  p99ToCloseMs?: number;
}

/** A scenario's figures: those of its median run, and every run for the record. */
export interface ScenarioResult extends RunFigures {
  name: string;
  description: string;
  runs: RunFigures[];
  firstError?: string;
}

export interface TargetCheck {
  /** The ratio or figure the target is about. */
  figure: string;
  value: number;
  target: string;
  met: boolean;
  /** For a throughput ratio: in how many rounds the ratio of that round alone met the target. */
  roundsMet?: string;
  stretch?: { target: string; met: boolean };
}

export interface BenchReport {
  date: string;
  args: string[];
  /** The git commit of the code measured ("+changes" when packages/ or apps/ had uncommitted changes). */
  revision: string;
  machine: Machine;
  sizes: BenchSizes;
  results: ScenarioResult[];
  /** The ratios of the table's rows (each scenario's median run). */
  ratios: Record<string, number>;
  /** The throughput ratios of each round alone (run i of one scenario over run i of the other): their spread. */
  ratiosPerRound: Record<string, number[]>;
  targets: TargetCheck[];
  /** Lines about the run's setting: the PostgreSQL server used, or why its scenarios were skipped. */
  notes: string[];
  /** Reading back and retention against naive code (maintenance.ts); absent when `--only` leaves it out. */
  maintenance?: MaintenanceBench;
  /** Every run of every scenario stored exactly the rows it acknowledged, and no write was refused. */
  correct: boolean;
  problems: string[];
  totalMs: number;
}

export interface BenchOptions {
  sizes: BenchSizes;
  /** Only these scenarios (ratios and targets that need another scenario are left out). */
  only?: readonly string[];
  args?: string[];
  /** One line per finished run, for a progress display. */
  onProgress?: (line: string) => void;
}

/**
 * Runs every scenario `sizes.runs` times, interleaved (round 1 runs all of
 * them, then round 2...) so that drift on a shared machine hits all alike, each
 * run on a fresh file; then counts every file's rows and computes the ratios
 * from the figures of this run alone.
 */
export async function runBench(options: BenchOptions): Promise<BenchReport> {
  const { sizes, onProgress = () => {} } = options;
  let selected = options.only === undefined ? scenarios : scenarios.filter((s) => options.only?.includes(s.name));
  const postgres = await prepareBenchPostgres(selected);
  const notes = postgres === undefined ? [] : [postgres.note];
  if (postgres !== undefined && postgres.server === undefined) {
    onProgress(postgres.note);
    selected = selected.filter((scenario) => !scenario.needsPostgres);
  }
  const machine = describeMachine();
  const revision = describeRevision();
  const date = new Date().toISOString();
  const started = performance.now();
  const runDirectory = makeRunDirectory();
  const runsOf = new Map<Scenario, RunFigures[]>(selected.map((scenario) => [scenario, []]));
  const firstErrors = new Map<Scenario, string>();
  let maintenance: MaintenanceBench | undefined;
  try {
    for (let round = 1; round <= sizes.runs; round++) {
      for (const scenario of selected) {
        const file = join(runDirectory.directory, `${scenario.name}-${round}.db`);
        const measurement = await scenario.run({ sizes, file, ...(postgres?.server && { postgres: postgres.server }) });
        const figures = figuresOf(measurement, measurement.stored ?? countStoredRows(file));
        runsOf.get(scenario)?.push(figures);
        if (measurement.firstError !== undefined && !firstErrors.has(scenario)) {
          firstErrors.set(scenario, measurement.firstError);
        }
        onProgress(
          `round ${round}/${sizes.runs} ${scenario.name}: ${figures.rows} rows in ${figures.wallMs} ms, ` +
            `${figures.rowsPerSec} rows/s, stored ${figures.stored}, max event-loop delay ${figures.maxEventLoopDelayMs} ms`,
        );
      }
    }
    if (options.only === undefined || options.only.includes('maintenance')) {
      maintenance = await runMaintenanceBench(sizes.maintenanceRows, runDirectory.directory, onProgress);
    }
  } finally {
    runDirectory.remove();
    await postgres?.server?.stop();
  }

  const results = selected.map((scenario): ScenarioResult => {
    const runs = runsOf.get(scenario) ?? [];
    const firstError = firstErrors.get(scenario);
    return {
      name: scenario.name,
      ...medianRun(runs, scenario.medianBy),
      description: scenario.describe(sizes),
      runs,
      ...(firstError === undefined ? {} : { firstError }),
    };
  });
  const problems = results.flatMap((result) =>
    result.runs.flatMap((run, index) => {
      const where = `${result.name} run ${index + 1}`;
      const found: string[] = [];
      if (run.stored !== run.rows) found.push(`${where}: acknowledged ${run.rows} rows but stored ${run.stored}`);
      if (run.failedRows > 0)
        found.push(`${where}: ${run.failedRows} rows refused (${result.firstError ?? 'no error'})`);
      return found;
    }),
  );
  problems.push(...(maintenance?.problems ?? []).map((problem) => `maintenance: ${problem}`));
  const ratios = computeRatios(results);
  for (const row of maintenance?.results ?? []) ratios[`${row.name} repo vs naive`] = row.ratio;
  const ratiosPerRound = computeRatiosPerRound(results);
  return {
    date,
    args: options.args ?? [],
    revision,
    machine,
    sizes,
    results,
    ratios,
    ratiosPerRound,
    targets: checkTargets(results, ratios, ratiosPerRound),
    notes,
    ...(maintenance === undefined ? {} : { maintenance }),
    correct: problems.length === 0,
    problems,
    totalMs: Math.round(performance.now() - started),
  };
}

function figuresOf(measurement: Measurement, stored: number): RunFigures {
  const sorted = sortedCopy(measurement.latenciesMs);
  return {
    rows: measurement.rows,
    failedRows: measurement.failedRows,
    stored,
    wallMs: round(measurement.wallMs, 1),
    rowsPerSec: Math.round((measurement.rows / measurement.wallMs) * 1000),
    // Nearest-rank percentiles, the harness's definition; 0 when every write failed.
    p50Ms: sorted.length === 0 ? 0 : round(percentile(sorted, 50), 3),
    p99Ms: sorted.length === 0 ? 0 : round(percentile(sorted, 99), 3),
    maxEventLoopDelayMs: round(measurement.maxEventLoopDelayMs, 2),
    p99EventLoopDelayMs: round(measurement.p99EventLoopDelayMs, 2),
    timeWeightedP99EventLoopDelayMs: round(measurement.timeWeightedP99EventLoopDelayMs, 2),
    ...(measurement.cpuMs === undefined ? {} : { cpuMsPerRow: round(measurement.cpuMs / measurement.rows, 3) }),
    ...(measurement.toCloseMs === undefined || measurement.toCloseMs.length === 0
      ? {}
      : { p99ToCloseMs: round(percentile(sortedCopy(measurement.toCloseMs), 99), 3) }),
  };
}

/**
 * The run in the middle by `key` (the lower middle for an even count). Kept
 * whole, rather than a median of each figure, so a row of the table is one real run.
 */
function medianRun(runs: RunFigures[], key: Scenario['medianBy']): RunFigures {
  const ordered = [...runs].sort((a, b) => a[key] - b[key]);
  const middle = ordered[Math.floor((ordered.length - 1) / 2)];
  if (middle === undefined) throw new Error('medianRun: no runs');
  return middle;
}

/** `a/b` is a's rows/s over b's. */
const throughputRatios: readonly [string, string][] = [
  ['repo-async', 'limit'],
  ['repo-async', 'naive'],
  ['repo-async', 'naive-defaults'],
  ['repo-many', 'limit'],
  ['repo-processes', 'limit'],
  ['naive', 'limit'],
  ['pg-repo-async', 'pg-limit'],
  ['pg-repo-async', 'pg-naive'],
  ['pg-naive', 'pg-limit'],
];

/** How many times longer the raw driver froze the event loop than the repository, during the same foreign lock. */
const eventLoopRatios = ['maxEventLoopDelayMs', 'p99EventLoopDelayMs', 'timeWeightedP99EventLoopDelayMs'] as const;

function computeRatios(results: ScenarioResult[]): Record<string, number> {
  const byName = new Map(results.map((result) => [result.name, result]));
  const ratios: Record<string, number> = {};
  for (const [a, b] of throughputRatios) {
    const numerator = byName.get(a);
    const denominator = byName.get(b);
    if (numerator && denominator) ratios[`${a}/${b}`] = round3(numerator.rowsPerSec / denominator.rowsPerSec);
  }
  const raw = byName.get('lock-wait-raw');
  const repo = byName.get('lock-wait-repo');
  if (raw && repo) {
    for (const figure of eventLoopRatios) {
      ratios[`lock-wait-raw/lock-wait-repo ${figure}`] = round(raw[figure] / repo[figure], 1);
    }
  }
  // Lower is better: the repository's p99 and CPU per row over naive code's, short-lived processes.
  const rawOnce = byName.get('raw-oneshot');
  const repoOnce = byName.get('repo-oneshot');
  if (rawOnce && repoOnce) {
    ratios['repo-oneshot/raw-oneshot p99'] = round3(repoOnce.p99Ms / rawOnce.p99Ms);
    if (repoOnce.p99ToCloseMs !== undefined && rawOnce.p99ToCloseMs !== undefined) {
      ratios['repo-oneshot/raw-oneshot p99 to close'] = round3(repoOnce.p99ToCloseMs / rawOnce.p99ToCloseMs);
    }
    if (repoOnce.cpuMsPerRow !== undefined && rawOnce.cpuMsPerRow !== undefined) {
      ratios['repo-oneshot/raw-oneshot cpu per row'] = round3(repoOnce.cpuMsPerRow / rawOnce.cpuMsPerRow);
    }
  }
  return ratios;
}

function computeRatiosPerRound(results: ScenarioResult[]): Record<string, number[]> {
  const byName = new Map(results.map((result) => [result.name, result]));
  const perRound: Record<string, number[]> = {};
  for (const [a, b] of throughputRatios) {
    const numerator = byName.get(a);
    const denominator = byName.get(b);
    if (!numerator || !denominator) continue;
    perRound[`${a}/${b}`] = numerator.runs.map((run, round) =>
      round3(run.rowsPerSec / (denominator.runs[round]?.rowsPerSec ?? Number.NaN)),
    );
  }
  return perRound;
}

/** The targets of issue 5, for the figures this run measured. */
function checkTargets(
  results: ScenarioResult[],
  ratios: Record<string, number>,
  ratiosPerRound: Record<string, number[]>,
): TargetCheck[] {
  const checks: TargetCheck[] = [];
  const atLeast = (figure: string, target: number, stretch?: number) => {
    const value = ratios[figure];
    if (value === undefined) return;
    const rounds = ratiosPerRound[figure] ?? [];
    checks.push({
      figure,
      value,
      target: `>= ${target}`,
      met: value >= target,
      roundsMet: `${rounds.filter((ratio) => ratio >= target).length} of ${rounds.length}`,
      ...(stretch === undefined ? {} : { stretch: { target: `>= ${stretch}`, met: value >= stretch } }),
    });
  };
  atLeast('repo-async/limit', 0.5, 0.8);
  atLeast('repo-async/naive', 10);
  atLeast('repo-processes/limit', 0.3, 0.5);
  for (const [figure, stretch] of [
    ['repo-oneshot/raw-oneshot p99', 0.5],
    ['repo-oneshot/raw-oneshot p99 to close', undefined],
    ['repo-oneshot/raw-oneshot cpu per row', undefined],
  ] as const) {
    const value = ratios[figure];
    if (value === undefined) continue;
    checks.push({
      figure,
      value,
      target: '<= 1',
      met: value <= 1,
      ...(stretch === undefined ? {} : { stretch: { target: `<= ${stretch}`, met: value <= stretch } }),
    });
  }
  // Issue 12: the repository on PostgreSQL.
  atLeast('pg-repo-async/pg-naive', 10);
  atLeast('pg-repo-async/pg-limit', 0.3);
  const lockWait = results.find((result) => result.name === 'lock-wait-repo');
  if (lockWait) {
    // The p99, by either definition (per tick, and over time).
    for (const field of ['p99EventLoopDelayMs', 'timeWeightedP99EventLoopDelayMs'] as const) {
      const value = lockWait[field];
      checks.push({ figure: `lock-wait-repo ${field}`, value, target: '<= 20', met: value <= 20 });
    }
  }
  return checks;
}

const round3 = (value: number) => round(value, 3);

function round(value: number, digits: number): number {
  const scale = 10 ** digits;
  return Math.round(value * scale) / scale;
}
