import { type OpenedDatabase, openDatabase } from '@repo/db';
import { defineWorker } from '@repo/launcher/worker';

export interface LockHolderInput {
  path: string;
  holdMs: number;
}

export interface LockHolderResult {
  /** How long the write lock was actually held, ms. */
  heldMs: number;
}

/** Progress message: the lock is taken, the measurement can start. */
export type LockHolderProgress = 'locked';

/**
 * Another connection, in its own process, that takes the file's write lock
 * (BEGIN IMMEDIATE) and holds it for `holdMs`: a foreign writer in the middle of
 * a long transaction. Its own process, so its holding never blocks the measured loop.
 */
defineWorker<LockHolderInput, { opened: OpenedDatabase; holdMs: number }, LockHolderResult, LockHolderProgress>({
  setup(input) {
    return { opened: openDatabase(input.path), holdMs: input.holdMs };
  },
  async run({ opened, holdMs }, { report }) {
    opened.sqlite.exec('BEGIN IMMEDIATE');
    const lockedAt = performance.now();
    report('locked');
    await new Promise((resolve) => setTimeout(resolve, holdMs));
    opened.sqlite.exec('COMMIT');
    const heldMs = performance.now() - lockedAt;
    opened.close();
    return { heldMs };
  },
});
