import { isMainThread } from 'node:worker_threads';
import { defineWorker } from '@repo/launcher/worker';
import { cpuMsSince, processPeakMemoryKb } from '../memory.ts';
import { type AnyRawConnection, openAnyRawConnection, writeAnyRawRows } from '../targets/raw-connection.ts';
import { closeRepo, openRepo, type RepoHandle, writeRepoRows } from '../targets/repo-writer.ts';
import { type RowEvent, WriterTally } from '../targets/tally.ts';
import type { WriterInput } from '../targets/writer-input.ts';
import type { WriterResult } from '../types.ts';

/**
 * What a writer process or thread reports while it runs. The result travels as a
 * progress message too: the launcher can see a process exit before its last IPC
 * message (see run-fleet.ts), and progress messages are never dropped.
 */
export type WriterProgress = { type: 'row'; event: RowEvent } | { type: 'result'; result: WriterResult };

type WriterState = ({ raw: AnyRawConnection } | { repo: RepoHandle }) & {
  input: WriterInput;
  watchdog: NodeJS.Timeout;
};

/**
 * One writer, as a process or a thread: opens its connection or repository
 * before the start barrier, inserts its rows when released, closes.
 */
defineWorker<WriterInput, WriterState, WriterResult, WriterProgress>({
  async setup(input) {
    const watchdog = abandonAt(input.releaseDeadline);
    if (input.target === 'raw') return { input, watchdog, raw: await openAnyRawConnection(input) };
    return { input, watchdog, repo: await openRepo(input) };
  },
  async run(state, { index, report }) {
    const cpuAtRelease = process.cpuUsage();
    clearTimeout(state.watchdog);
    process.off('disconnect', exitOrphaned);
    const tally = new WriterTally(state.input.reportEachRow ? (event) => report({ type: 'row', event }) : undefined);
    if ('raw' in state) {
      await writeAnyRawRows(state.raw, state.input, index, tally);
    } else {
      await writeRepoRows(state.repo, state.input, index, tally);
      await closeRepo(state.repo);
    }
    // Threads share the harness process: their memory is the harness's, measured there.
    const result = tally.result(
      isMainThread ? { memoryKb: processPeakMemoryKb(), cpuMs: cpuMsSince(cpuAtRelease) } : undefined,
    );
    report({ type: 'result', result });
    return result;
  },
});

/** A writer process whose harness died before releasing it: nothing will ever release it. */
const exitOrphaned = () => process.exit(4);

/**
 * Ends this writer (process, or thread) at `deadline` unless it is released
 * first, and a writer process at once if the harness goes away before that.
 */
function abandonAt(deadline: number): NodeJS.Timeout {
  if (isMainThread) process.once('disconnect', exitOrphaned);
  // Silently: the harness has already reported these writers as not ready.
  const abandon = () => process.exit(3);
  if (Date.now() >= deadline) abandon();
  return setTimeout(abandon, deadline - Date.now());
}
