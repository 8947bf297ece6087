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
 * A follower's thread waits for its answer on the shortest CPU slice a normal thread may ask for
 * (setThreadSlice; Linux 6.12 and later), from its post until the answer is in. The fair scheduler
 * (EEVDF) runs first the runnable thread whose slice ends soonest, and a thread that went to sleep
 * having run past its share wakes up behind the others; a short slice does neither. Among hundreds
 * of one-row processes on two cores, woken followers then take their answers ahead of the ones
 * already answered and exiting: `phases --writers 500`, p99 0.43× to 0.79× naive code's with it,
 * 1.01× to 1.41× without, CPU per row 0.4 ms more (BENCHMARKS.md, "Compiled when loaded; answers
 * taken first"). Its share of the CPU is the same.
 */
const waitingSliceNs = 100_000;
let waitingPosts = 0;
let sliceBeforeWaiting: number | undefined;

/** A post's wait begins: the thread takes the short slice (nested waits share it). */
// biome-ignore format: the parentheses make V8 compile it when its module loads (metrics-repo README, "Compiled when loaded")
export const beginWaitingSlice = (function beginWaitingSlice(): void {
  waitingPosts += 1;
  if (waitingPosts === 1) sliceBeforeWaiting = setThreadSlice(waitingSliceNs);
});

/** A post's wait ended: the last one gives the thread back the slice it had. */
// biome-ignore format: the parentheses make V8 compile it when its module loads (metrics-repo README, "Compiled when loaded")
export const endWaitingSlice = (function endWaitingSlice(): void {
  waitingPosts -= 1;
  if (waitingPosts === 0 && sliceBeforeWaiting !== undefined) setThreadSlice(sliceBeforeWaiting);
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
