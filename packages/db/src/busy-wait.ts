/**
 * SQLite's own busy handler (sqliteDefaultBusyCallback): the delays between its attempts at a
 * lock, ms, then `sqliteBusyMaxDelayMs` for every later attempt. Code that waits for a lock
 * outside SQLite's handler (the journal-mode switch here, @repo/metrics-repo's timers) follows
 * the same schedule, so it is never later than SQLite itself for a lock one holder keeps.
 */
export const sqliteBusyDelaysMs: readonly number[] = [1, 2, 5, 10, 15, 20, 25, 25, 25, 50, 50];
export const sqliteBusyMaxDelayMs = 100;

const sleeper = new Int32Array(new SharedArrayBuffer(4));

/** Blocks the calling thread, as SQLite's busy handler does inside a call. */
export function sleepThread(ms: number): void {
  Atomics.wait(sleeper, 0, 0, ms);
}
