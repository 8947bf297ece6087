import { createRequire } from 'node:module';

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
  /** Takes the turn if it is free, without waiting. */
  tryAcquire(): boolean;
  /**
   * Waits off the JavaScript thread for the turn, at most `timeoutMs`: true once
   * held, false when the time ran out or the turn was closed. The event loop
   * stays free meanwhile, and the pending wait keeps the process alive, as a timer would.
   */
  acquire(timeoutMs: number): Promise<boolean>;
  /** Hands the turn on to one waiter. Does nothing when not held. */
  release(): void;
  /** Whether this handle holds the turn. */
  readonly held: boolean;
  /** Releases the turn, cancels a pending wait (it resolves false) and unmaps the file. Idempotent. */
  close(): void;
}

interface Native {
  open(path: string): object;
  tryAcquire(handle: object): boolean;
  acquire(handle: object, timeoutMs: number): Promise<boolean>;
  release(handle: object): void;
  close(handle: object): void;
}

let native: Native | undefined;
let loadError: Error | undefined;

/** The compiled addon, or why it could not be loaded (not built, another platform). */
export function loadWriteTurn(): { ok: true } | { ok: false; error: Error } {
  if (native === undefined && loadError === undefined) {
    try {
      native = createRequire(import.meta.url)('../build/Release/write_turn.node') as Native;
    } catch (error) {
      loadError = error instanceof Error ? error : new Error(String(error));
    }
  }
  return native !== undefined ? { ok: true } : { ok: false, error: loadError as Error };
}

/**
 * Opens (creating it if needed) the turn file at `path`: a 4 KiB file that only
 * this module reads and writes, never the database itself. Throws when the
 * addon is not available (see `loadWriteTurn`) or the file cannot be created.
 */
export function openWriteTurn(path: string): WriteTurn {
  const loaded = loadWriteTurn();
  if (!loaded.ok) throw loaded.error;
  const addon = native as Native;
  const handle = addon.open(path);
  let held = false;
  let closed = false;
  return {
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
    close() {
      if (closed) return;
      closed = true;
      held = false;
      addon.close(handle);
    },
  };
}
