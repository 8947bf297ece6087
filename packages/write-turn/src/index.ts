import { fileURLToPath } from 'node:url';
import { isMainThread } from 'node:worker_threads';

/**
 * A turn to write to one file, shared by every process and thread that opens the
 * same turn file: at most one holder at a time, and waiters sleep in the kernel
 * (a futex) until the holder hands it on, instead of waking up to poll.
 *
 * It orders cooperating writers; it locks nothing else. SQLite's own lock still
 * decides who writes: a writer that does not take the turn (another program) is
 * not held back, and a turn whose holder hangs can be bypassed by a timeout.
 * A holder that dies (SIGKILL, a terminated worker thread) hands the turn on.
 */
export interface WriteTurn {
  /** The turn file: the guarded file's path followed by `-turn`. */
  readonly path: string;
  /** Whether this open created the turn file (see {@link discard}). */
  readonly created: boolean;
  /** Takes the turn if it is free, without waiting. */
  tryAcquire(): boolean;
  /**
   * Waits off the JavaScript thread for the turn, at most `timeoutMs`: true once
   * held, false when the time ran out, the turn was closed or its file broke. The event
   * loop stays free meanwhile, and the pending wait keeps the process alive, as a timer would.
   */
  acquire(timeoutMs: number): Promise<boolean>;
  /** Hands the turn on to one waiter. Does nothing when not held. */
  release(): void;
  /** Whether this handle holds the turn. */
  readonly held: boolean;
  /**
   * `'usable'`; `'broken'` once its file was truncated or damaged under the mapping (every wait
   * then ends, and nothing more is posted or taken); `'stale'` once another file, or none, stands
   * at its path (deleted or replaced): open the turn again to meet the others.
   */
  state(): 'usable' | 'broken' | 'stale';
  /** Releases the turn, cancels a pending wait (it resolves false) and unmaps the file. Idempotent. */
  close(): void;
  /**
   * Closes, and removes the turn file if this handle created it and it is still the one at its
   * path: what an open that failed calls, so that it leaves nothing behind. True if removed.
   */
  discard(): boolean;

  // The mailbox: writers that have not opened the database post their rows for the holder.

  /**
   * Posts `payload` (at most {@link maxPayloadBytes}) for the turn's holder to take.
   * Returns its ticket, or undefined when it is too large, all 1,024 slots are in use or the file broke.
   */
  post(payload: Uint8Array): Ticket | undefined;
  /**
   * Sleeps off the JavaScript thread until the ticket is answered (`'answer'`, then
   * {@link collect} it), the turn is free (`'turn'`: now held by this handle), the holder
   * answered nobody for `quietMs` (`'quiet'`: it may hang; default: never; a release, and a
   * follower taking the turn, restart the count), the file broke (`'broken'`), or `timeoutMs`
   * passed (`'timeout'`). A holder that died is noticed within a second.
   */
  awaitAnswer(
    ticket: Ticket,
    timeoutMs: number,
    quietMs?: number,
  ): Promise<'answer' | 'turn' | 'quiet' | 'timeout' | 'broken'>;
  /**
   * The ticket's final answer, freeing its slot; null until there is one. An empty buffer when
   * the answer's length in the file was past its field (a damaged file): no answer can be trusted.
   */
  collect(ticket: Ticket): Buffer | null;
  /** Takes a posted ticket back: true if no holder had taken it, false once one has. */
  withdraw(ticket: Ticket): boolean;
  /**
   * Holder only: takes every posted payload. `takenBefore`: a holder that is gone had taken it,
   * and may have stored it; the caller must find out (`@repo/metrics-repo` keeps a receipt per
   * job in the database). `payload` is null when its length in the file is past the slot (a
   * damaged file): answer it with an error. Slots of processes that no longer exist are freed.
   */
  take(): Posted[];
  /**
   * Holder only: writes the answer to a taken ticket (at most {@link maxAnswerBytes}, cut beyond);
   * `final` makes it collectable and wakes the poster. False when the ticket is no longer taken.
   */
  answer(ticket: Ticket, answer: Uint8Array, final: boolean): boolean;
  /**
   * Holder only: makes the answers written (not final) to these taken tickets final, every one
   * before the first poster is woken, then wakes the posters and counts the round as
   * {@link announce} does. Tickets no longer taken, without an answer or repeated are passed over;
   * returns how many were finished.
   */
  finish(tickets: Ticket[]): number;
  /** Holder only: a taken ticket waits for a holder again (its transaction did not commit). */
  untake(ticket: Ticket): void;
  /** How many posted payloads wait for a holder (a scan of 4 KiB). */
  posted(): number;
  /**
   * Holder only: sleeps off the JavaScript thread until a payload is posted (true; then
   * {@link take} it), `timeoutMs` passed, or this handle released or closed the turn meanwhile (false).
   */
  awaitPost(timeoutMs: number): Promise<boolean>;
  /** Ends a pending {@link awaitPost} at once (it settles false). No-op without one. */
  stopAwaitingPost(): void;
  /** Counts an answer round: every poster's `quietMs` restarts (a final answer itself wakes its poster). */
  announce(): void;
}

/** A posted payload's ticket (a slot and its use), a safe integer. */
export type Ticket = number;

/** A payload taken by the holder. */
export interface Posted {
  ticket: Ticket;
  payload: Buffer | null;
  takenBefore: boolean;
}

/** Why a turn file was not opened: `code` says which (see {@link openWriteTurn}). */
export class WriteTurnError extends Error {
  override readonly name = 'WriteTurnError';
  constructor(
    /**
     * `NOT_A_TURN_FILE`: something else stands at the turn's path (left alone); `UNTRUSTED`: a turn
     * file that someone who cannot write the guarded file could have written (another owner, a wider
     * mode); `UNAVAILABLE`: the addon is not built or not for this platform; `SYSTEM`: the file
     * system said no (see the message).
     */
    readonly code: 'NOT_A_TURN_FILE' | 'UNTRUSTED' | 'UNAVAILABLE' | 'SYSTEM',
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** Largest payload a slot holds. */
export const maxPayloadBytes = 1024 - 256 - 16;
/** Largest answer a slot holds. */
export const maxAnswerBytes = 256;

interface Native {
  /** The handle, and whether this open created the file. */
  open(path: string, guarded: string): [object, boolean];
  identity(path: string): [number, number] | null;
  tryAcquire(handle: object): boolean;
  acquire(handle: object, timeoutMs: number): Promise<boolean>;
  awaitPost(handle: object, timeoutMs: number): Promise<boolean>;
  stopAwaitingPost(handle: object): void;
  release(handle: object): void;
  close(handle: object): void;
  discard(handle: object): boolean;
  state(handle: object): 0 | 1 | 2;
  await(handle: object, ticket: number, timeoutMs: number, quietMs: number): Promise<0 | 1 | 2 | 3 | 5>;
  post(handle: object, payload: Uint8Array): number;
  withdraw(handle: object, ticket: number): boolean;
  collect(handle: object, ticket: number): Buffer | null;
  take(handle: object): [number, Buffer | null, boolean][];
  answer(handle: object, ticket: number, answer: Uint8Array, final: boolean): boolean;
  finish(handle: object, tickets: number[]): number;
  untake(handle: object, ticket: number): void;
  announce(handle: object): void;
  posted(handle: object): number;
  setSlice(ns: number): number;
}

const awaited = ['timeout', 'turn', 'answer', 'quiet', 'timeout', 'broken'] as const;
const states = ['usable', 'broken', 'stale'] as const;

let native: Native | undefined;
let loadError: Error | undefined;

/** The compiled addon, or why it could not be loaded (not built, another platform). */
export function loadWriteTurn(): { ok: true } | { ok: false; error: Error } {
  if (native === undefined && loadError === undefined) {
    try {
      // process.dlopen rather than require: no module loader (nor its hooks) runs for it, half the time.
      const addon = { exports: {} as Native };
      process.dlopen(addon, fileURLToPath(new URL('../build/Release/write_turn.node', import.meta.url)));
      native = addon.exports;
    } catch (error) {
      loadError = error instanceof Error ? error : new Error(String(error));
    }
  }
  return native !== undefined ? { ok: true } : { ok: false, error: loadError as Error };
}

// In a worker thread, the addon is loaded when this module is imported, not at the first open.
// Node loads every addon of a process under one lock (DLOpen's `dlib_load_mutex`), held through
// the addon's initialisation: 500 threads released at once that each loaded it at their first
// write queued there, before the turn's holder could load SQLite behind them (see
// docs/decisions/0012-addon-loaded-at-import-in-threads.md). A process's main thread
// keeps the lazy load: no such lock stands between processes, and one that never writes pays nothing.
if (!isMainThread) loadWriteTurn();

/** The addon, loaded now if it was not; throws why it cannot be (see `loadWriteTurn`). */
function loadedAddon(): Native {
  const loaded = loadWriteTurn();
  if (!loaded.ok) throw loaded.error;
  return native as Native;
}

/**
 * Sets the calling thread's CPU slice under Linux's fair scheduler (EEVDF, 6.12 and later: a
 * normal thread may ask for 0.1 to 100 ms without privileges, and the kernel clamps to that; 0
 * is the kernel's default). Returns the slice the thread had, in ns, to restore it with (0 when
 * it had the default, so that restoring leaves it following the system's default rather than
 * pinned to its current number), or undefined where it cannot be set (the addon missing, another
 * platform, a real-time thread, a filtered system call). Keeps the thread's policy, nice value
 * and SCHED_RESET_ON_FORK. A kernel before 6.12 accepts the value and ignores it.
 */
export function setThreadSlice(ns: number): number | undefined {
  if (!Number.isFinite(ns) || ns < 0) throw new RangeError(`setThreadSlice needs a number of ns >= 0, got ${ns}`);
  if (!loadWriteTurn().ok) return undefined;
  try {
    const before = (native as Native).setSlice(ns);
    return before < 0 ? undefined : before;
  } catch {
    return undefined; // Another platform: the addon refuses.
  }
}

/** A file's device and inode numbers: which file a path named when it was looked at. */
export interface FileIdentity {
  dev: number;
  ino: number;
}

/**
 * The device and inode numbers of the file at `path`, the same as `fs.statSync`'s, or undefined
 * when there is no such file. The mailbox's postings name their database by them. One `stat`
 * call, without Node's `Stats` object, whose code a one-row process would otherwise compile for
 * this alone. Throws when the addon is not available (see `loadWriteTurn`) or `stat` fails otherwise.
 */
export function fileIdentity(path: string): FileIdentity | undefined {
  const found = loadedAddon().identity(path);
  return found === null ? undefined : { dev: found[0], ino: found[1] };
}

/**
 * Opens the turn of the file at `guarded` (which must exist): the turn file `<guarded>-turn`,
 * created if missing, a 1 MiB file (allocated whole, so that a full file system fails here, not
 * later) that only this module reads and writes. It is created with the guarded file's permission
 * bits (and, for root, its owner), as SQLite creates its `-shm`. An existing one is adopted only
 * when it is a turn file (regular, one name, the right size and header, not a symbolic link) that
 * nobody who cannot write the guarded file could have written (owned by this process's user or
 * the guarded file's owner, no permission bit the guarded file lacks); anything else is left as
 * it is and refused with a {@link WriteTurnError}.
 */
export function openWriteTurn(guarded: string): WriteTurn {
  const loaded = loadWriteTurn();
  if (!loaded.ok) throw new WriteTurnError('UNAVAILABLE', loaded.error.message, { cause: loaded.error });
  const addon = native as Native;
  const path = `${guarded}-turn`;
  let handle: object;
  let created: boolean;
  try {
    [handle, created] = addon.open(path, guarded);
  } catch (error) {
    const code = (error as { code?: unknown }).code;
    const known = code === 'NOT_A_TURN_FILE' || code === 'UNTRUSTED' || code === 'UNSUPPORTED' ? code : 'SYSTEM';
    throw new WriteTurnError(
      known === 'UNSUPPORTED' ? 'UNAVAILABLE' : known,
      error instanceof Error ? error.message : String(error),
      { cause: error },
    );
  }
  let held = false;
  let closed = false;
  return {
    path,
    created,
    tryAcquire() {
      held = addon.tryAcquire(handle);
      return held;
    },
    async acquire(timeoutMs) {
      held = await addon.acquire(handle, Math.max(0, timeoutMs));
      return held;
    },
    release() {
      if (closed) return;
      addon.release(handle);
      held = false;
    },
    get held() {
      return held && !closed;
    },
    state: () => (closed ? 'usable' : states[addon.state(handle)]),
    close() {
      if (closed) return;
      closed = true;
      held = false;
      addon.close(handle);
    },
    discard() {
      if (closed) return false;
      closed = true;
      held = false;
      return addon.discard(handle);
    },
    post(payload) {
      const ticket = addon.post(handle, payload);
      return ticket < 0 ? undefined : ticket;
    },
    async awaitAnswer(ticket, timeoutMs, quietMs = Number.POSITIVE_INFINITY) {
      const outcome = awaited[await addon.await(handle, ticket, Math.max(0, timeoutMs), Math.max(0, quietMs))];
      held = outcome === 'turn';
      return outcome;
    },
    collect: (ticket) => addon.collect(handle, ticket),
    withdraw: (ticket) => addon.withdraw(handle, ticket),
    take: () => addon.take(handle).map(([ticket, payload, takenBefore]) => ({ ticket, payload, takenBefore })),
    answer: (ticket, answer, final) => addon.answer(handle, ticket, answer, final),
    finish: (tickets) => addon.finish(handle, tickets),
    untake: (ticket) => addon.untake(handle, ticket),
    announce: () => addon.announce(handle),
    posted: () => addon.posted(handle),
    awaitPost: (timeoutMs) => addon.awaitPost(handle, Math.max(0, timeoutMs)),
    stopAwaitingPost: () => addon.stopAwaitingPost(handle),
  };
}
