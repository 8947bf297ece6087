import { join } from 'node:path';
import { type Fleet, launch, type WorkerKind, type WorkerOutcome } from '@repo/launcher';
import { cpuMsSince } from '../memory.ts';
import { WriterTally } from '../targets/tally.ts';
import type { WriterInput } from '../targets/writer-input.ts';
import type { WriterResult } from '../types.ts';
import type { WriterProgress } from './writer-entry.ts';
import { missingWriterResult, type WritersHooks, type WritersRun } from './writers-run.ts';

export const writerEntry = join(import.meta.dirname, 'writer-entry.ts');

/** How long to wait for the result of a writer that exited cleanly before its result message was read. */
const lateResultGraceMs = 5000;
/** How long threads may take to exit after their results before the CPU count stops anyway. */
const exitGraceMs = 60_000;

export interface FleetOptions {
  kind: WorkerKind;
  count: number;
  input: (index: number) => WriterInput;
  /** Writers not ready by then, or still running by then after the release, are killed. */
  timeoutMs: number;
  /** `--chaos kill`: which writers die, each after how many of its rows had an outcome. */
  killAfterRows?: ReadonlyMap<number, number>;
  hooks?: WritersHooks;
}

/**
 * Runs writers as processes or threads through @repo/launcher: all start and
 * open their file, wait at the barrier, and are released together.
 *
 * Results travel as progress messages: the launcher settles a process on its
 * 'exit' event, which Node can deliver before the process's last IPC message
 * (its result), so a writer that finished normally can look like one that
 * died. Progress messages are delivered even then; a writer whose result has
 * not arrived yet is given a grace period.
 */
export async function runFleetWriters(options: FleetOptions): Promise<WritersRun> {
  const { kind, count, input, timeoutMs, killAfterRows, hooks = {} } = options;
  const chaos = killAfterRows !== undefined;
  const results: (WriterResult | undefined)[] = new Array(count);
  const resultArrived: (() => void)[] = [];
  // With kills, the parent keeps its own copy of each writer's outcomes, as they are reported.
  const tallies = chaos ? Array.from({ length: count }, () => new WriterTally()) : [];
  const ackedEventIds: string[] = [];
  const rowsSeen = new Array<number>(count).fill(0);
  const killed = new Set<number>();
  let fleet: Fleet<WriterResult> | undefined;

  const onProgress = (index: number, progress: WriterProgress) => {
    if (progress.type === 'result') {
      if (results[index] !== undefined) return;
      results[index] = progress.result;
      if (!killed.has(index)) hooks.onFinished?.();
      resultArrived[index]?.();
      return;
    }
    tallies[index]?.record(progress.event);
    if (progress.event.ok) ackedEventIds.push(progress.event.eventId);
    rowsSeen[index] = (rowsSeen[index] ?? 0) + 1;
    const killAt = killAfterRows?.get(index);
    if (killAt !== undefined && rowsSeen[index] >= killAt && !killed.has(index) && results[index] === undefined) {
      killed.add(index);
      fleet?.kill(index);
      hooks.onFinished?.();
    }
  };

  const startedAt = performance.now();
  try {
    fleet = await launch<WriterInput, WriterResult, WriterProgress>({
      entry: writerEntry,
      kind,
      count,
      input,
      readyTimeoutMs: timeoutMs,
      // Threads are ready much sooner started 32 at a time; for processes it made no difference, so they
      // keep the launcher's default (see docs/decisions/0011-measuring-short-lived-writers.md).
      ...(kind === 'thread' ? { startConcurrency: 32 } : {}),
      onReady: () => hooks.onReady?.(),
      onProgress,
    });
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    return {
      writers: Array.from({ length: count }, () => missingWriterResult(input(0).rows, 'NOT_READY', message)),
      readyMs: performance.now() - startedAt,
      wallMs: 0,
      harnessCpuMs: 0,
      killed: 0,
      ackedEventIds: undefined,
      note: `writers not ready in time: ${message}`,
    };
  }
  const readyMs = performance.now() - startedAt;

  const releasedAt = performance.now();
  const cpuAtRelease = process.cpuUsage();
  hooks.onReleased?.();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    // One by one: the launcher's terminate() would replace run()'s wait for each outcome with its own, and run() would never resolve.
    for (let index = 0; index < count; index++) if (results[index] === undefined) fleet?.kill(index);
  }, timeoutMs);
  let outcomes: WorkerOutcome<WriterResult>[];
  try {
    // The launcher's own deadline is a backstop; ours kills and keeps the outcomes.
    outcomes = await fleet.run({ timeoutMs: timeoutMs + 60_000 });
  } catch (error) {
    timedOut = true;
    const message = error instanceof Error ? error.message : String(error);
    outcomes = Array.from({ length: count }, (_, index) => ({
      index,
      ok: false,
      phase: 'run',
      error: { name: 'LauncherDeadline', message },
    }));
  } finally {
    clearTimeout(timer);
  }
  const wallMs = performance.now() - releasedAt;
  // Threads' CPU is this process's: counted until every thread has exited, since a thread's isolate is
  // torn down after its result arrives, and the last result comes from whichever writer ends last
  // (see docs/decisions/0011-measuring-short-lived-writers.md).
  const exitedInTime = kind === 'thread' ? await fleet.exited({ timeoutMs: exitGraceMs }) : true;
  const harnessCpuMs = cpuMsSince(cpuAtRelease);

  await Promise.all(
    outcomes.map((outcome) =>
      results[outcome.index] !== undefined || killed.has(outcome.index) || !exitedCleanly(outcome)
        ? undefined
        : new Promise<void>((resolve) => {
            const grace = setTimeout(resolve, lateResultGraceMs);
            resultArrived[outcome.index] = () => {
              clearTimeout(grace);
              resolve();
            };
          }),
    ),
  );

  const writers = outcomes.map((outcome) => {
    const result = results[outcome.index] ?? (outcome.ok ? outcome.result : undefined);
    if (chaos) return (tallies[outcome.index] as WriterTally).result(result);
    if (result !== undefined) return result;
    if (timedOut) return missingWriterResult(input(outcome.index).rows, 'TIMEOUT', `killed after ${timeoutMs} ms`);
    const { name, message } = outcome.ok ? { name: 'NO_RESULT', message: 'no result' } : outcome.error;
    const code = !outcome.ok && outcome.phase === 'setup' ? 'WRITER_SETUP_FAILED' : 'WRITER_DIED';
    return missingWriterResult(input(outcome.index).rows, code, `${name}: ${message}`);
  });
  return {
    writers,
    readyMs,
    wallMs,
    harnessCpuMs,
    killed: killed.size,
    ackedEventIds: chaos ? ackedEventIds : undefined,
    note: timedOut
      ? `timed out after ${timeoutMs} ms; writers still running were killed`
      : exitedInTime
        ? undefined
        : `threads still alive ${exitGraceMs} ms after their results; CPU counted until then`,
  };
}

function exitedCleanly(outcome: WorkerOutcome<WriterResult>): boolean {
  return !outcome.ok && outcome.error.name === 'WorkerExited' && /exited with code 0\b/.test(outcome.error.message);
}
