import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { openDatabase } from '@repo/db';
import { launch, type WorkerKind } from '@repo/launcher';
import BetterSqlite3 from 'better-sqlite3';
import { endedChildrenCpuMs, endedChildrenCpuResolutionMs } from '../machine.ts';
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
  /**
   * Failed writers by error code (the first word of the message: `LOCK_TIMEOUT`, `SQLITE_BUSY`,
   * `WorkerExited`...), and how many of them have their row in the file all the same: an error
   * for a stored row is only honest when it says the outcome is unknown.
   */
  errors: { code: string; writers: number; storedAnyway: number }[];
  /** Per writer: from the release to its row's acknowledgement. */
  latenciesMs: number[];
  /** Per writer: from the release to the end of its close(), what a job runner waiting for the process waits for. */
  toCloseMs: number[];
  /** CPU of every writer from the release to the end of its close (threads: the whole process's, from the release until every thread has exited). */
  cpuMs: number;
  /**
   * From the release until every writer has ended (its process closed, its thread exited): the
   * wall time, and the CPU spent meanwhile, per writer. `writersCpuMs`: processes, each writer's
   * own from the release to its exit (its report and its exit too, which `cpuMs` leaves out but
   * which share the cores with the writers still writing), from the ended children's CPU;
   * undefined for threads (their CPU is in `launcherCpuMs`) and off Linux. `launcherCpuMs`: this
   * process's (with every writer thread's, in thread mode). `writersCpuResolutionMs`: how far
   * `writersCpuMs` may be off (the kernel counts the children's CPU in 10 ms ticks, summed over
   * every writer): 10 ms at one writer, where the figure means nothing.
   */
  burst: { wallMs: number; writersCpuMs: number | undefined; writersCpuResolutionMs: number; launcherCpuMs: number };
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
  {
    file,
    execArgv = [],
    settleMs = 0,
    tracePhases = false,
    repoOptions = {},
  }: {
    /** The file to use (created here); by default one in a temporary directory, removed afterwards. */
    file?: string;
    /** Node's (and V8's) flags for each writer process; threads share the launching process's. */
    execArgv?: string[];
    /**
     * Idle time between the last writer's readiness and the release (default 0). V8 collects an
     * isolate's start-up garbage about 8 s after its start, once it is idle (its memory reducer):
     * without a pause, the writers that started last pay for it inside the measured window, the
     * first time they await, and only the repository awaits. 10 s puts every writer process past
     * it (see docs/decisions/0011-measuring-short-lived-writers.md). Not 500 threads of one process:
     * their collections queue behind each other, and many are unfinished long after the last one is ready.
     */
    settleMs?: number;
    /**
     * Collect each writer's phases into `results[].phases` (default false). Every phase then reads
     * the clocks, which costs CPU on both sides (see docs/decisions/0011-measuring-short-lived-writers.md).
     * Off, the CPU is what a user's process spends.
     */
    tracePhases?: boolean;
    /** Options of the repository's writers beside `path` (e.g. `{ threadSlices: true }`). */
    repoOptions?: OneshotInput['repoOptions'];
  } = {},
): Promise<OneshotRun> {
  const dir = file === undefined ? mkdtempSync(join(tmpdir(), 'oneshot-')) : undefined;
  const path = file ?? join(dir as string, 'metrics.db');
  try {
    openDatabase(path).close();
    const childrenCpuBefore = endedChildrenCpuMs();
    const fleet = await launch<OneshotInput, OneshotResult>({
      entry: writerEntry,
      kind: mode,
      count: writers,
      input: (index) => ({ path, target, index, tracePhases, repoOptions }),
      // Threads start faster many at a time; processes only thrash two cores that way.
      startConcurrency: mode === 'thread' ? 32 : 8,
      // Starting slows as the ready processes fill memory: at 1,000 writers 180 s was not enough
      // (see docs/decisions/0010-overloaded-machine.md).
      readyTimeoutMs: Math.max(180_000, writers * 600),
      execArgv,
    });
    if (fleet.setupFailures.length > 0) {
      await fleet.terminate();
      throw new Error(`oneshot: ${fleet.setupFailures.length} writers failed to start`);
    }
    // Before the CPU count starts: in thread mode it is this whole process's, and V8 collects meanwhile.
    if (settleMs > 0) await new Promise((settled) => setTimeout(settled, settleMs));
    const parentCpu = process.cpuUsage();
    const releasedAt = performance.now();
    const outcomes = await fleet.run({ timeoutMs: 300_000 });
    // Until every writer has exited. A thread's isolate is torn down after its result arrives;
    // counting to the last result counted the teardowns of whichever threads ended before it: nearly
    // all of a repository run's (its holder answers last), not naive code's (see
    // docs/decisions/0011-measuring-short-lived-writers.md). A process's report and exit count in `burst`.
    if (!(await fleet.exited({ timeoutMs: 60_000 })))
      throw new Error(
        `oneshot: writer ${mode === 'thread' ? 'threads' : 'processes'} still alive 60 s after their results`,
      );
    const burstWallMs = performance.now() - releasedAt;
    const launcherUsed = process.cpuUsage(parentCpu);
    const launcherCpuMs = (launcherUsed.user + launcherUsed.system) / 1000;
    const childrenCpuAfter = endedChildrenCpuMs();
    const results: OneshotResult[] = [];
    let firstError: string | undefined;
    const failures: { index: number; message: string }[] = [];
    for (const outcome of outcomes) {
      if (!outcome.ok) {
        firstError ??= outcome.error.message;
        failures.push({ index: outcome.index, message: `${outcome.error.name}: ${outcome.error.message}` });
        continue;
      }
      results.push(outcome.result);
      if (outcome.result.error !== undefined) failures.push({ index: outcome.index, message: outcome.result.error });
    }
    // Every child's CPU, less what each had spent by the release (start-up, and V8's collections while it
    // waited). Only the writers end meanwhile: the launcher's other child, esbuild's service, lives on.
    const writersCpuMs =
      mode === 'process' &&
      childrenCpuBefore !== undefined &&
      childrenCpuAfter !== undefined &&
      results.length === writers
        ? childrenCpuAfter - childrenCpuBefore - results.reduce((sum, result) => sum + result.cpuAtReleaseMs, 0)
        : undefined;
    const acknowledged = results.filter((result) => result.error === undefined);
    firstError ??= results.find((result) => result.error !== undefined)?.error;
    const sqlite = new BetterSqlite3(path, { readonly: true });
    // Each writer's row carries its index as its value (see writer.ts).
    const storedRows = sqlite.prepare("SELECT value FROM metrics WHERE name = 'oneshot'").pluck().all() as number[];
    const storedValues = new Set(storedRows);
    sqlite.close();
    const errors = new Map<string, { code: string; writers: number; storedAnyway: number }>();
    for (const { index, message } of failures) {
      // A DatabaseError's message starts with its SQLite code: `DATABASE_ERROR: OUTCOME_UNKNOWN: ...`.
      const [first = message, second = ''] = message.split(': ');
      const code = first === 'DATABASE_ERROR' ? `${first} ${second}` : first;
      const entry = errors.get(code) ?? { code, writers: 0, storedAnyway: 0 };
      entry.writers += 1;
      if (storedValues.has(index)) entry.storedAnyway += 1;
      errors.set(code, entry);
    }
    return {
      target,
      mode,
      writers,
      acked: acknowledged.length,
      stored: storedRows.length,
      failed: writers - acknowledged.length,
      firstError,
      errors: [...errors.values()],
      latenciesMs: acknowledged.map((result) => result.latencyMs),
      toCloseMs: acknowledged.map((result) => result.totalMs),
      cpuMs: mode === 'thread' ? launcherCpuMs : results.reduce((sum, result) => sum + result.cpuMs, 0),
      burst: {
        wallMs: burstWallMs,
        writersCpuMs: writersCpuMs === undefined ? undefined : writersCpuMs / writers,
        writersCpuResolutionMs: endedChildrenCpuResolutionMs / writers,
        launcherCpuMs: launcherCpuMs / writers,
      },
      results,
    };
  } finally {
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  }
}
