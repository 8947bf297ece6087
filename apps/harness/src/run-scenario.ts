import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chooseVictims } from './chaos-kill.ts';
import { type FileInspection, inspectDatabaseFile } from './inspect-file.ts';
import { startMemorySampler } from './memory.ts';
import { inspectPgDatabase, preparePgDatabase } from './postgres/store.ts';
import { prepareDatabaseFile } from './prepare-file.ts';
import { summarizeScenario } from './summarize.ts';
import type { WriterInput } from './targets/writer-input.ts';
import type { ReadersSummary, RunSettings, ScenarioResult, ScenarioSpec, Target } from './types.ts';
import { runAsyncWriters } from './writers/run-async.ts';
import { runFleetWriters } from './writers/run-fleet.ts';
import { startReaders } from './writers/run-readers.ts';
import type { WritersHooks, WritersRun } from './writers/writers-run.ts';

/**
 * Runs one scenario end to end: prepares the file, runs the writers (and the
 * readers, if any) behind a start barrier, then counts what the file holds
 * with a connection of its own. One result per kind of writer: one for an
 * `insert` scenario, two (repo, then raw) for a `mixed` one.
 */
export async function runScenario(
  spec: ScenarioSpec,
  settings: RunSettings,
  hooks: WritersHooks = {},
): Promise<ScenarioResult[]> {
  const file = scenarioFile(settings);
  try {
    const { postgres } = settings;
    // On PostgreSQL the writers' `path` is a fresh database's URL.
    const database = postgres === undefined ? file.path : await preparePgDatabase(postgres, spec.prefill);
    if (postgres === undefined) prepareDatabaseFile(file.path, spec.journal, spec.prefill);
    // A tag per scenario: its rows are counted apart from prefill rows and from other scenarios sharing --db.
    const tag = `harness.${Date.now().toString(36)}.${randomBytes(3).toString('hex')}`;
    // Mixed: repo and raw writers alternate (so both kinds start throughout), each kind under its own name.
    const kinds: Target[] = spec.scenario === 'mixed' ? ['repo', 'raw'] : [spec.target];
    const kindOf = (index: number) => kinds[index % kinds.length] as Target;
    const rowNameOf = (kind: Target) => (kinds.length === 1 ? tag : `${tag}.${kind}`);
    // Writers still waiting for their release after this give up on their own (see WriterInput).
    const releaseDeadline = Date.now() + settings.scenarioTimeoutMs + 10_000;
    const input = (index: number): WriterInput => ({
      target: kindOf(index),
      path: database,
      journal: spec.journal,
      busyTimeoutMs: settings.busyTimeoutMs,
      lockTimeoutMs: settings.lockTimeoutMs,
      rows: spec.rowsPerWriter,
      rowName: rowNameOf(kindOf(index)),
      eventPrefix: rowNameOf(kindOf(index)),
      // Mixed: one transaction per row, and raw connections that open, insert and close for each row,
      // so other clients' connections open and close between any two of the repository's commits.
      oneAtATime: spec.scenario === 'mixed',
      reopenEachRow: spec.scenario === 'mixed',
      reportEachRow: spec.chaos === 'kill',
      releaseDeadline,
    });
    const count = spec.writers * kinds.length;
    const readers =
      spec.readers > 0
        ? await startReaders({
            kind: spec.mode === 'thread' ? 'thread' : 'process',
            count: spec.readers,
            path: file.path,
            busyTimeoutMs: settings.busyTimeoutMs,
            timeoutMs: settings.scenarioTimeoutMs,
          })
        : undefined;
    const writerHooks: WritersHooks = {
      ...hooks,
      onReleased() {
        readers?.release();
        hooks.onReleased?.();
      },
    };
    const memory = startMemorySampler();
    let run: WritersRun;
    let reads: ReadersSummary | undefined;
    try {
      run =
        spec.mode === 'async'
          ? await runAsyncWriters({ count, input, timeoutMs: settings.scenarioTimeoutMs, hooks: writerHooks })
          : await runFleetWriters({
              kind: spec.mode,
              count,
              input,
              timeoutMs: settings.scenarioTimeoutMs,
              hooks: writerHooks,
              ...(spec.chaos === 'kill' ? { killAfterRows: chooseVictims(count, spec.rowsPerWriter) } : {}),
            });
    } finally {
      // Readers stop whatever happened to the writers.
      reads = await readers?.stop();
    }
    const harnessGrowthKb = memory.stop();
    /** What the database holds, seen by a connection of its own; one that cannot even be read lost everything acknowledged. */
    const inspect = async (rowName: string, ackedEventIds: readonly string[] | undefined): Promise<FileInspection> => {
      try {
        return postgres === undefined
          ? inspectDatabaseFile(file.path, rowName, ackedEventIds)
          : await inspectPgDatabase(database, rowName, ackedEventIds);
      } catch (error) {
        const message = error instanceof Error ? error.message : String(error);
        return { stored: 0, journalMode: 'unreadable', integrity: `unreadable: ${message}`, missingAcked: undefined };
      }
    };
    const results: ScenarioResult[] = [];
    for (const kind of kinds) {
      const rowName = rowNameOf(kind);
      const part: WritersRun = {
        ...run,
        writers: run.writers.filter((_, index) => kindOf(index) === kind),
        ackedEventIds: run.ackedEventIds?.filter((id) => id.startsWith(`${rowName}.`)),
      };
      results.push(
        summarizeScenario({ ...spec, target: kind }, part, await inspect(rowName, part.ackedEventIds), {
          busyTimeoutMs: settings.busyTimeoutMs,
          lockTimeoutMs: settings.lockTimeoutMs,
          harnessGrowthKb,
          dbPath: file.kept ? file.path : undefined,
          reads,
        }),
      );
    }
    return results;
  } finally {
    file.cleanUp();
  }
}

/** Temporary directories of the scenarios running now, to remove if the harness is interrupted. */
const temporaryDirectories = new Set<string>();

/** Removes the temporary files of the scenarios still running (on Ctrl-C), unless they are to be kept. */
export function removeTemporaryFiles(): void {
  for (const directory of temporaryDirectories) rmSync(directory, { recursive: true, force: true });
  temporaryDirectories.clear();
}

/** The scenario's database file: `--db`, or a fresh temporary file removed afterwards unless `--keep`. */
function scenarioFile(settings: RunSettings): { path: string; kept: boolean; cleanUp(): void } {
  if (settings.dbPath !== undefined) return { path: settings.dbPath, kept: true, cleanUp: () => {} };
  const directory = mkdtempSync(join(tmpdir(), 'harness-'));
  if (!settings.keep) temporaryDirectories.add(directory);
  return {
    path: join(directory, 'metrics.db'),
    kept: settings.keep,
    cleanUp: () => {
      if (settings.keep) return;
      temporaryDirectories.delete(directory);
      rmSync(directory, { recursive: true, force: true });
    },
  };
}
