import { isMainThread } from 'node:worker_threads';
import { openWriteTurn, setThreadSlice, type WriteTurn } from '@repo/write-turn';

export type { WriteTurn };

/** The turn file beside the database (never a file SQLite opens), or none where the addon is unavailable. */
// biome-ignore format: the parentheses make V8 compile it when its module loads (metrics-repo README, "Compiled when loaded")
export const openTurn = (function openTurn(databasePath: string): WriteTurn | undefined {
  try {
    return openWriteTurn(`${databasePath}-turn`);
  } catch {
    return undefined; // Waiting falls back to timers alone (see lock.ts), and there is no mailbox.
  }
});

/**
 * CPU slices asked for on this thread (setThreadSlice; Linux 6.12 and later) by its repositories:
 * a holder's open, a follower's wait. The thread runs on the latest slice still asked for, and gets
 * the one it had back when none is. One place keeps the thread's own slice, so that two requests
 * that end out of order (two repositories on two files) never leave it on one of theirs.
 */
const sliceRequests = new Map<number, number>();
let nextSliceRequest = 0;
let sliceBeforeRequests: number | undefined;

/** Runs this thread on `ns` until {@link dropThreadSlice} with the returned request. */
// biome-ignore format: the parentheses make V8 compile it when its module loads (metrics-repo README, "Compiled when loaded")
export const askThreadSlice = (function askThreadSlice(ns: number): number {
  const request = nextSliceRequest++;
  const before = setThreadSlice(ns);
  if (sliceRequests.size === 0) sliceBeforeRequests = before;
  sliceRequests.set(request, ns);
  return request;
});

/** Ends a request: the thread goes back to the latest one still asked for, or to its own slice. */
// biome-ignore format: the parentheses make V8 compile it when its module loads (metrics-repo README, "Compiled when loaded")
export const dropThreadSlice = (function dropThreadSlice(request: number): void {
  if (!sliceRequests.delete(request)) return;
  if (sliceRequests.size > 0) setThreadSlice([...sliceRequests.values()].at(-1) as number);
  else if (sliceBeforeRequests !== undefined) setThreadSlice(sliceBeforeRequests);
});

/**
 * Whether a writer that found the lock taken queues for the turn (and sleeps in the kernel) rather
 * than polling on timers. Not in worker threads: there a timer's wake-up is a thread's in a process
 * already running, cheaper than the turn's hand-over through its own waiting thread (`pnpm harness
 * --mode thread --writers 20,100`, five rounds alternated: CPU 1.9× and 2.5× raw's with the turn,
 * 1.5× and 1.9× without). Threads still use the turn's mailbox.
 */
export const queuesForTurn = isMainThread;

/**
 * How long to wait for the turn before one attempt at SQLite's lock without it: a holder
 * that hangs (stopped, its event loop blocked) must not stall the others for good. Grows
 * with the time already waited: a working holder hands the turn on long before.
 */
export class TurnWait {
  bypass = false;
  private startedAt = Date.now();

  next(): number {
    return Math.min(4000, Math.max(500, Date.now() - this.startedAt));
  }

  reset(): void {
    this.startedAt = Date.now();
    this.bypass = false;
  }
}
