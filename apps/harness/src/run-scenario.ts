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
import type { RunSettings, ScenarioResult, ScenarioSpec } from './types.ts';
import { runAsyncWriters } from './writers/run-async.ts';
import { runFleetWriters } from './writers/run-fleet.ts';
import type { WritersHooks } from './writers/writers-run.ts';

/**
 * Runs one scenario end to end: prepares the file, runs the writers behind a
 * start barrier, then counts what the file holds with a connection of its own.
 */
export async function runScenario(
  spec: ScenarioSpec,
  settings: RunSettings,
  hooks: WritersHooks = {},
): Promise<ScenarioResult> {
  const file = scenarioFile(settings);
  try {
    const { postgres } = settings;
    // On PostgreSQL the writers' `path` is a fresh database's URL.
    const database = postgres === undefined ? file.path : await preparePgDatabase(postgres, spec.prefill);
    if (postgres === undefined) prepareDatabaseFile(file.path, spec.journal, spec.prefill);
    // A tag per scenario: its rows are counted apart from prefill rows and from other scenarios sharing --db.
    const tag = `harness.${Date.now().toString(36)}.${randomBytes(3).toString('hex')}`;
    // Writers still waiting for their release after this give up on their own (see WriterInput).
    const releaseDeadline = Date.now() + settings.scenarioTimeoutMs + 10_000;
    const input = (): WriterInput => ({
      target: spec.target,
      path: database,
      journal: spec.journal,
      busyTimeoutMs: settings.busyTimeoutMs,
      lockTimeoutMs: settings.lockTimeoutMs,
      rows: spec.rowsPerWriter,
      rowName: tag,
      eventPrefix: tag,
      reportEachRow: spec.chaos === 'kill',
      releaseDeadline,
    });
    const memory = startMemorySampler();
    const run =
      spec.mode === 'async'
        ? await runAsyncWriters({ count: spec.writers, input, timeoutMs: settings.scenarioTimeoutMs, hooks })
        : await runFleetWriters({
            kind: spec.mode,
            count: spec.writers,
            input,
            timeoutMs: settings.scenarioTimeoutMs,
            hooks,
            ...(spec.chaos === 'kill' ? { killAfterRows: chooseVictims(spec.writers, spec.rowsPerWriter) } : {}),
          });
    const harnessGrowthKb = memory.stop();
    let inspection: FileInspection;
    try {
      inspection =
        postgres === undefined
          ? inspectDatabaseFile(file.path, tag, run.ackedEventIds)
          : await inspectPgDatabase(database, tag, run.ackedEventIds);
    } catch (error) {
      // A file that cannot even be read lost everything that was acknowledged.
      const message = error instanceof Error ? error.message : String(error);
      inspection = {
        stored: 0,
        journalMode: 'unreadable',
        integrity: `unreadable: ${message}`,
        missingAcked: undefined,
      };
    }
    return summarizeScenario(spec, run, inspection, {
      busyTimeoutMs: settings.busyTimeoutMs,
      lockTimeoutMs: settings.lockTimeoutMs,
      harnessGrowthKb,
      dbPath: file.kept ? file.path : undefined,
    });
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
