import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openDatabase } from '@repo/db';
import { defaultOptions, type MetricsRepo, openMetricsRepo } from '@repo/metrics-repo';
import BetterSqlite3 from 'better-sqlite3';
import { percentile, round2 } from '../stats.ts';
import { errorCodeOf } from '../targets/tally.ts';
import type { WriterInput } from '../targets/writer-input.ts';
import { runFleetWriters } from '../writers/run-fleet.ts';

/** What `--scenario maintenance` runs (`pnpm harness --scenario maintenance`). */
export interface MaintenanceSettings {
  /** Rows recorded two days ago before the writers start: what the prune deletes. */
  prefillRows: number;
  /** One-row writer processes per wave. */
  processWriters: number;
  /** One-row async writers per wave, on the repository that runs the maintenance. */
  asyncWriters: number;
  /** Waves without maintenance (the baseline); with maintenance, waves run until the prune is done (at least this many). */
  waves: number;
  /** Pause between waves. */
  wavePauseMs: number;
  /** Writers' p99 with maintenance may be at most this many times the baseline's. */
  maxP99Ratio: number;
  /** Pause between two summaries (a dashboard's refresh); exports run back to back. */
  summaryEveryMs: number;
}

export const maintenanceDefaults: MaintenanceSettings = {
  prefillRows: 1_000_000,
  processWriters: 50,
  asyncWriters: 500,
  waves: 3,
  wavePauseMs: 200,
  maxP99Ratio: 2,
  summaryEveryMs: 1000,
};

export interface PhaseFigures {
  waves: number;
  /** Each wave's p99, ms, in order: one slow wave (a burst of other load) stands out. */
  waveP99sMs: number[];
  acked: number;
  failed: number;
  errors: Record<string, number>;
  /** Writers' latency, from release (processes) or call (async) to the acknowledgement, ms. */
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
}

export interface MaintenanceResult {
  prefillRows: number;
  baseline: PhaseFigures;
  withMaintenance: PhaseFigures;
  /** Rows acknowledged but not in the file afterwards (every phase). */
  lost: number;
  prune: { deleted: number; ms: number; rowsPerSec: number; error?: string };
  summarize: { runs: number; p50Ms: number; maxMs: number; errors: number };
  export: { runs: number; rows: number; rowsPerSec: number; errors: number };
  /** The largest -wal file seen while the maintenance ran (sampled every 100 ms), bytes. */
  maxWalBytes: number;
  /** Prefilled rows still in the file afterwards (0: the prune deleted them all). */
  prefillLeft: number;
  integrity: string;
  p99Ratio: number;
}

const day = 86_400_000;
const writerName = 'maintenance.writer';

/**
 * Writers against summarize, export and prune at once, on one SQLite file: a baseline of waves
 * of one-row writer processes and async writers alone, then the same waves while the harness's
 * repository prunes the prefilled rows and loops summarize and export. Compares what the
 * writers were told with what the file holds afterwards, and their p99 in both phases.
 */
export async function runMaintenanceComparison(
  settings: MaintenanceSettings,
  progress: (line: string) => void = () => {},
): Promise<MaintenanceResult> {
  const directory = mkdtempSync(join(tmpdir(), 'harness-maintenance-'));
  const path = join(directory, 'metrics.db');
  try {
    const startAt = Date.now() - 2 * day;
    progress(`maintenance: prefilling ${settings.prefillRows} rows`);
    prefill(path, settings.prefillRows, startAt);
    const repo = await openMetricsRepo({ path });
    try {
      progress('maintenance: baseline waves (writers alone)');
      const baseline = newPhase();
      for (let wave = 0; wave < settings.waves; wave++) {
        await runWave(repo, path, settings, `b${wave}`, baseline);
        await sleep(settings.wavePauseMs);
      }

      progress('maintenance: waves while prune, summarize and export run');
      let walMax = 0;
      const walTimer = setInterval(() => {
        walMax = Math.max(walMax, walBytes(path));
      }, 100);
      const pruneStarted = performance.now();
      const prune: MaintenanceResult['prune'] = { deleted: 0, ms: 0, rowsPerSec: 0 };
      let pruning = true;
      const pruned = repo.prune({ before: startAt + day }).then(
        (deleted) => {
          prune.deleted = deleted;
        },
        (error: unknown) => {
          prune.error = `${errorCodeOf(error)}: ${error instanceof Error ? error.message : String(error)}`;
        },
      );
      void pruned.finally(() => {
        pruning = false;
        prune.ms = performance.now() - pruneStarted;
      });
      const summaries = { runs: 0, times: [] as number[], errors: 0 };
      const exports = { runs: 0, rows: 0, ms: 0, errors: 0 };
      const loops = [
        (async () => {
          while (pruning) {
            const started = performance.now();
            // A dashboard's question: the last hour of the prefilled day, by minute.
            try {
              await repo.summarize({ since: startAt + day - 3_600_000, until: startAt + day, bucketMs: 60_000 });
              summaries.times.push(performance.now() - started);
            } catch {
              summaries.errors += 1;
            }
            summaries.runs += 1;
            // A dashboard refreshing every second.
            await sleep(settings.summaryEveryMs);
          }
        })(),
        (async () => {
          while (pruning) {
            const started = performance.now();
            try {
              // Every row, the prefilled ones being pruned included.
              for await (const _ of repo.export()) {
                exports.rows += 1;
                if (!pruning) break;
              }
            } catch {
              exports.errors += 1;
            }
            exports.ms += performance.now() - started;
            exports.runs += 1;
          }
        })(),
      ];
      const during = newPhase();
      for (let wave = 0; wave < settings.waves || pruning; wave++) {
        await runWave(repo, path, settings, `m${wave}`, during);
        await sleep(settings.wavePauseMs);
      }
      await pruned;
      await Promise.all(loops);
      clearInterval(walTimer);
      // The baseline again, after: drift of the machine's load over the run hits both phases alike.
      progress('maintenance: baseline waves again (writers alone)');
      for (let wave = 0; wave < settings.waves; wave++) {
        await runWave(repo, path, settings, `a${wave}`, baseline);
        await sleep(settings.wavePauseMs);
      }
      prune.rowsPerSec = Math.round(prune.deleted / (prune.ms / 1000));
      await repo.close();

      const sqlite = new BetterSqlite3(path, { readonly: true });
      let stored: number;
      let prefillLeft: number;
      let integrity: string;
      try {
        stored = sqlite.prepare('SELECT count(*) FROM metrics WHERE name = ?').pluck().get(writerName) as number;
        stored += sqlite
          .prepare('SELECT count(*) FROM metrics WHERE name = ?')
          .pluck()
          .get(`${writerName}.async`) as number;
        prefillLeft = sqlite
          .prepare("SELECT count(*) FROM metrics WHERE name LIKE 'prefill.%'")
          .pluck()
          .get() as number;
        integrity = sqlite.pragma('quick_check', { simple: true }) as string;
      } finally {
        sqlite.close();
      }
      const baselineFigures = figures(baseline);
      const duringFigures = figures(during);
      const sortedSummaries = Float64Array.from(summaries.times).sort();
      return {
        prefillRows: settings.prefillRows,
        baseline: baselineFigures,
        withMaintenance: duringFigures,
        lost: baselineFigures.acked + duringFigures.acked - stored,
        prune: { ...prune, ms: Math.round(prune.ms) },
        summarize: {
          runs: summaries.runs,
          p50Ms: sortedSummaries.length === 0 ? 0 : round2(percentile(sortedSummaries, 50)),
          maxMs: sortedSummaries.length === 0 ? 0 : round2(sortedSummaries[sortedSummaries.length - 1] as number),
          errors: summaries.errors,
        },
        export: {
          runs: exports.runs,
          rows: exports.rows,
          rowsPerSec: exports.ms === 0 ? 0 : Math.round(exports.rows / (exports.ms / 1000)),
          errors: exports.errors,
        },
        maxWalBytes: walMax,
        prefillLeft,
        integrity,
        p99Ratio: baselineFigures.p99Ms === 0 ? 0 : round2(duringFigures.p99Ms / baselineFigures.p99Ms),
      };
    } finally {
      await repo.close();
    }
  } finally {
    rmSync(directory, { recursive: true, force: true });
  }
}

/** Rows recorded over one day from `startAt`, in five names, written by one raw connection in big transactions. */
function prefill(path: string, rows: number, startAt: number): void {
  const opened = openDatabase(path);
  try {
    const insert = opened.sqlite.prepare('INSERT INTO metrics (name, value, recorded_at, labels) VALUES (?, ?, ?, ?)');
    const step = day / Math.max(1, rows);
    const chunk = 50_000;
    for (let from = 0; from < rows; from += chunk) {
      opened.sqlite.transaction(() => {
        for (let i = from; i < Math.min(rows, from + chunk); i++) {
          insert.run(`prefill.${i % 5}`, (i * 7919) % 1000, Math.floor(startAt + i * step), `{"host":"h${i % 3}"}`);
        }
      })();
    }
    opened.sqlite.pragma('wal_checkpoint(TRUNCATE)');
  } finally {
    opened.close();
  }
}

interface Phase {
  waves: number;
  waveP99s: number[];
  acked: number;
  failed: number;
  errors: Record<string, number>;
  latencies: number[];
}

const newPhase = (): Phase => ({ waves: 0, waveP99s: [], acked: 0, failed: 0, errors: {}, latencies: [] });

function figures(phase: Phase): PhaseFigures {
  const sorted = Float64Array.from(phase.latencies).sort();
  const at = (p: number) => (sorted.length === 0 ? 0 : round2(percentile(sorted, p)));
  return {
    waves: phase.waves,
    waveP99sMs: phase.waveP99s,
    acked: phase.acked,
    failed: phase.failed,
    errors: phase.errors,
    p50Ms: at(50),
    p99Ms: at(99),
    maxMs: sorted.length === 0 ? 0 : round2(sorted[sorted.length - 1] as number),
  };
}

/** One wave: the writer processes (released together) and the async writers at the same moment. */
async function runWave(
  repo: MetricsRepo,
  path: string,
  settings: MaintenanceSettings,
  tag: string,
  phase: Phase,
): Promise<void> {
  const input = (): WriterInput => ({
    target: 'repo',
    path,
    journal: 'wal',
    busyTimeoutMs: 5000,
    lockTimeoutMs: defaultOptions.lockTimeoutMs,
    rows: 1,
    rowName: writerName,
    eventPrefix: tag,
    oneAtATime: false,
    reopenEachRow: false,
    reportEachRow: false,
    releaseDeadline: Date.now() + 120_000,
  });
  const firstOfWave = phase.latencies.length;
  let released = false;
  let releaseAsync: () => void = () => {};
  const asyncWave = new Promise<void>((resolve) => {
    // Issued when the processes are released, so that both kinds of writers meet.
    releaseAsync = () => {
      if (released) return;
      released = true;
      const inserts = Array.from({ length: settings.asyncWriters }, async (_, i) => {
        const started = performance.now();
        try {
          await repo.insert({ name: `${writerName}.async`, value: i, eventId: `${tag}.async.${i}` });
          phase.acked += 1;
          phase.latencies.push(performance.now() - started);
        } catch (error) {
          phase.failed += 1;
          const code = errorCodeOf(error);
          phase.errors[code] = (phase.errors[code] ?? 0) + 1;
        }
      });
      void Promise.all(inserts).then(() => resolve());
    };
  });
  const run = await runFleetWriters({
    kind: 'process',
    count: settings.processWriters,
    input,
    timeoutMs: 120_000,
    hooks: { onReleased: () => releaseAsync() },
  });
  releaseAsync(); // the processes never got ready (their rows count as failed): the async writers still run
  await asyncWave;
  phase.waves += 1;
  for (const writer of run.writers) {
    phase.acked += writer.acked;
    phase.failed += writer.failed;
    phase.latencies.push(...writer.latenciesMs);
    for (const [code, n] of Object.entries(writer.errors)) phase.errors[code] = (phase.errors[code] ?? 0) + n;
  }
  const wave = Float64Array.from(phase.latencies.slice(firstOfWave)).sort();
  phase.waveP99s.push(wave.length === 0 ? 0 : round2(percentile(wave, 99)));
}

/** The -wal file's size (a `stat`: no descriptor of our own on the database's files). */
function walBytes(path: string): number {
  return statSync(`${path}-wal`, { throwIfNoEntry: false })?.size ?? 0;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
