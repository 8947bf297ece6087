import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { openDatabase } from '@repo/db';
import { launch, type WorkerKind } from '@repo/launcher';
import BetterSqlite3 from 'better-sqlite3';
import type { OneshotInput, OneshotResult } from './writer.ts';

const writerEntry = fileURLToPath(new URL('./writer.ts', import.meta.url));

export interface OneshotRun {
  target: OneshotInput['target'];
  mode: WorkerKind;
  writers: number;
  /** Rows acknowledged, and counted in the file afterwards by another connection. */
  acked: number;
  stored: number;
  failed: number;
  firstError: string | undefined;
  /** Per writer: from the release to its row's acknowledgement. */
  latenciesMs: number[];
  /** CPU of every writer from the release to the end of its close (threads: the whole process's, over the run). */
  cpuMs: number;
  results: OneshotResult[];
}

/**
 * `writers` processes or threads, each ready at a barrier (started, nothing
 * opened), released at once: each opens the file, records one row, closes.
 * The file is created and migrated beforehand, in WAL mode, as a deployed file would be.
 */
export async function runOneshot(
  target: OneshotInput['target'],
  mode: WorkerKind,
  writers: number,
  /** The file to use (created here); by default one in a temporary directory, removed afterwards. */
  file?: string,
): Promise<OneshotRun> {
  const dir = file === undefined ? mkdtempSync(join(tmpdir(), 'oneshot-')) : undefined;
  const path = file ?? join(dir as string, 'metrics.db');
  try {
    openDatabase(path).close();
    const fleet = await launch<OneshotInput, OneshotResult>({
      entry: writerEntry,
      kind: mode,
      count: writers,
      input: (index) => ({ path, target, index }),
      // Threads start faster many at a time; processes only thrash two cores that way.
      startConcurrency: mode === 'thread' ? 32 : 8,
    });
    if (fleet.setupFailures.length > 0) {
      await fleet.terminate();
      throw new Error(`oneshot: ${fleet.setupFailures.length} writers failed to start`);
    }
    const parentCpu = process.cpuUsage();
    const outcomes = await fleet.run({ timeoutMs: 300_000 });
    const parentUsed = process.cpuUsage(parentCpu);
    const results: OneshotResult[] = [];
    let firstError: string | undefined;
    for (const outcome of outcomes) {
      if (outcome.ok) results.push(outcome.result);
      else firstError ??= outcome.error.message;
    }
    const acknowledged = results.filter((result) => result.error === undefined);
    firstError ??= results.find((result) => result.error !== undefined)?.error;
    const sqlite = new BetterSqlite3(path, { readonly: true });
    const stored = sqlite.prepare("SELECT count(*) FROM metrics WHERE name = 'oneshot'").pluck().get() as number;
    sqlite.close();
    return {
      target,
      mode,
      writers,
      acked: acknowledged.length,
      stored,
      failed: writers - acknowledged.length,
      firstError,
      latenciesMs: acknowledged.map((result) => result.latencyMs),
      cpuMs:
        mode === 'thread'
          ? (parentUsed.user + parentUsed.system) / 1000
          : results.reduce((sum, result) => sum + result.cpuMs, 0),
      results,
    };
  } finally {
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  }
}
