import { cpuMsSince } from '../memory.ts';
import { type AnyRawConnection, openAnyRawConnection, writeAnyRawRows } from '../targets/raw-connection.ts';
import { nextTurn } from '../targets/raw-writer.ts';
import { closeRepo, openRepo, writeRepoRows } from '../targets/repo-writer.ts';
import { WriterTally } from '../targets/tally.ts';
import type { WriterInput } from '../targets/writer-input.ts';
import type { WriterResult } from '../types.ts';
import { missingWriterResult, type WritersHooks, type WritersRun } from './writers-run.ts';

export interface AsyncOptions {
  count: number;
  input: (index: number) => WriterInput;
  /** Tasks still running by then are abandoned and their rows counted as failed (TIMEOUT). */
  timeoutMs: number;
  hooks?: WritersHooks;
}

/**
 * Runs the writers as concurrent async tasks in this process. `raw`: each task
 * has its own connection, as naive code would; all are opened before the
 * release, like the processes'. `repo`: one repository shared by every task,
 * as an application would hold it.
 *
 * better-sqlite3 is synchronous: a raw task that meets a lock held elsewhere
 * busy-waits inside its call and freezes every other task meanwhile.
 */
export async function runAsyncWriters(options: AsyncOptions): Promise<WritersRun> {
  const { count, input, timeoutMs, hooks = {} } = options;
  const inputs = Array.from({ length: count }, (_, index) => input(index));
  const first = inputs[0] as WriterInput;
  const startedAt = performance.now();
  let task: (index: number, tally: WriterTally) => Promise<void>;
  let finish: () => Promise<void> = async () => {};
  if (first.target === 'raw') {
    const connections: AnyRawConnection[] = [];
    for (const writerInput of inputs) {
      connections.push(await openAnyRawConnection(writerInput));
      hooks.onReady?.();
    }
    task = (index, tally) =>
      writeAnyRawRows(connections[index] as AnyRawConnection, inputs[index] as WriterInput, index, tally);
  } else {
    const handle = await openRepo(first);
    for (let i = 0; i < count; i++) hooks.onReady?.();
    task = (index, tally) => writeRepoRows(handle, inputs[index] as WriterInput, index, tally);
    finish = () => closeRepo(handle);
  }
  const readyMs = performance.now() - startedAt;

  const releasedAt = performance.now();
  const cpuAtRelease = process.cpuUsage();
  hooks.onReleased?.();
  const results: (WriterResult | undefined)[] = Array.from({ length: count }, () => undefined);
  const everyTask = Promise.all(
    inputs.map(async (_, index) => {
      // Every task starts in the same turn, then they interleave at each await.
      await nextTurn();
      const tally = new WriterTally();
      await task(index, tally);
      results[index] = tally.result();
      hooks.onFinished?.();
    }),
  ).then(finish);
  let timer: NodeJS.Timeout | undefined;
  const timedOut = await Promise.race([
    everyTask.then(() => false),
    new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(true), timeoutMs);
    }),
  ]);
  clearTimeout(timer);
  const wallMs = performance.now() - releasedAt;
  return {
    writers: results.map(
      (result, index) =>
        result ??
        missingWriterResult((inputs[index] as WriterInput).rows, 'TIMEOUT', `still running after ${timeoutMs} ms`),
    ),
    readyMs,
    wallMs,
    harnessCpuMs: cpuMsSince(cpuAtRelease),
    killed: 0,
    ackedEventIds: undefined,
    note: timedOut ? `timed out after ${timeoutMs} ms; tasks still running were abandoned` : undefined,
  };
}
