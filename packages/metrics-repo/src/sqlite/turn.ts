import { channel } from 'node:diagnostics_channel';
import { isMainThread } from 'node:worker_threads';
import { loadWriteTurn, openWriteTurn, setThreadSlice, type WriteTurn, WriteTurnError } from '@repo/write-turn';

export type { WriteTurn };

/**
 * Where the repository says why a file has no turn (a refused turn file: see openTurn), for
 * whoever listens (`diagnostics_channel.subscribe('metrics-repo:turn', ...)`); nothing is printed.
 */
export const turnChannel = channel('metrics-repo:turn');

/** The portable path: `METRICS_REPO_NATIVE=off` runs every repository without the addon and its turn file. */
export const nativeEnabled = (): boolean => process.env.METRICS_REPO_NATIVE !== 'off';

/**
 * Which path SQLite repositories of this process take: `native` (the write turn and its mailbox,
 * @repo/write-turn) or `portable` (every writer waits for SQLite's lock on timers), and why.
 */
export function sqliteWritePath(): { path: 'native' | 'portable'; why: string } {
  if (!nativeEnabled()) return { path: 'portable', why: 'METRICS_REPO_NATIVE=off' };
  const loaded = loadWriteTurn();
  if (!loaded.ok) return { path: 'portable', why: `the addon is unavailable: ${loaded.error.message}` };
  return { path: 'native', why: 'the write turn and its mailbox (@repo/write-turn)' };
}

/**
 * The turn of the database at `databasePath` (its real path: every name of the file meets in one
 * turn file, `<real path>-turn`), or none: the addon is unavailable or turned off, the database
 * does not exist yet, or the turn file was refused (something else at its path, or a file someone
 * who cannot write the database could have planted: see @repo/write-turn). Without a turn,
 * writers wait for SQLite's lock on timers (see lock.ts) and there is no mailbox.
 */
export function openTurn(databasePath: string): WriteTurn | undefined {
  if (!nativeEnabled()) return undefined;
  try {
    return openWriteTurn(databasePath);
  } catch (error) {
    if (turnChannel.hasSubscribers) {
      const { code, message } = error instanceof WriteTurnError ? error : { code: 'SYSTEM', message: String(error) };
      turnChannel.publish({ event: 'no-turn', path: databasePath, code, message });
    }
    return undefined;
  }
}

/**
 * CPU slices asked for on this thread by its repositories, with `threadSlices: true` only: a
 * holder's open, a follower's wait. The thread runs on the latest slice still asked for, and gets
 * the one it had back when none is: two requests that end out of order (two repositories on two
 * files) never leave it on one of theirs. See docs/decisions/0015-cpu-slices.md.
 */
const sliceRequests = new Map<number, number>();
let nextSliceRequest = 0;
let sliceBeforeRequests: number | undefined;

/** Runs this thread on `ns` until {@link dropThreadSlice} with the returned request. */
export function askThreadSlice(ns: number): number {
  const request = nextSliceRequest++;
  const before = setThreadSlice(ns);
  if (sliceRequests.size === 0) sliceBeforeRequests = before;
  sliceRequests.set(request, ns);
  return request;
}

/** Ends a request: the thread goes back to the latest one still asked for, or to its own slice. */
export function dropThreadSlice(request: number | undefined): void {
  if (request === undefined || !sliceRequests.delete(request)) return;
  if (sliceRequests.size > 0) setThreadSlice([...sliceRequests.values()].at(-1) as number);
  else if (sliceBeforeRequests !== undefined) setThreadSlice(sliceBeforeRequests);
}

/** The slice of a thread that opens the file while its followers wait for that open. */
export const holderOpenSliceNs = 30_000_000;
/** The slice of a thread waiting for its answer in the mailbox: the shortest a normal thread may ask for. */
export const waitingSliceNs = 100_000;

/**
 * Whether a writer that found the lock taken queues for the turn (and sleeps in the kernel) rather
 * than polling on timers. Not in worker threads: there a timer's wake-up is a thread's in a process
 * already running, cheaper than the turn's hand-over through its own waiting thread (see
 * docs/decisions/0008-write-turn-in-the-kernel.md). Threads still use the turn's mailbox.
 */
export const queuesForTurn = isMainThread;

/**
 * How long to wait for the turn before one attempt at SQLite's lock without it: a holder
 * that hangs (stopped, its event loop blocked) must not stall the others for good. Grows
 * with the time already waited: a working holder hands the turn on long before.
 */
export class TurnWait {
  private startedAt = Date.now();

  next(): number {
    return Math.min(4000, Math.max(500, Date.now() - this.startedAt));
  }

  reset(): void {
    this.startedAt = Date.now();
  }
}
