import { LockTimeoutError, RepoClosedError } from '../errors.ts';
import { nextChunk, prunePolicy, sleep } from '../reads.ts';
import { toDatabaseError } from './connection.ts';
import { Backoff, tryBeginImmediate, walSignature } from './lock.ts';
import type { SqliteSide } from './reads.ts';

/**
 * Deletes every row recorded before `before`, in short transactions on the
 * reads connection. Each one takes the write lock (`BEGIN IMMEDIATE`, retried on
 * timers while another connection holds it, up to `lockTimeoutMs`), deletes a
 * chunk of rows found through the `recorded_at` index, and commits, all in one
 * synchronous step: nothing awaits while the lock is held. The chunk is sized to
 * take about `prunePolicy.targetMs`; between chunks prune sleeps at least twice
 * as long as the chunk took, so writers waiting for the lock get it.
 */
export async function pruneSqlite(side: SqliteSide, before: number, signal: AbortSignal | undefined): Promise<number> {
  let deleted = 0;
  let chunk = prunePolicy.initialRows;
  const sql = 'DELETE FROM metrics WHERE id IN (SELECT id FROM metrics WHERE recorded_at < ? LIMIT ?)';
  for (;;) {
    signal?.throwIfAborted();
    if (side.isClosed) throw new RepoClosedError();
    let outcome: { changes: number; deleteMs: number; elapsedMs: number };
    try {
      outcome = await side.exclusive(async (sqlite) => {
        const statement = sqlite.prepare(sql);
        const backoff = new Backoff();
        const startedAt = Date.now();
        const deadline = startedAt + side.options.lockTimeoutMs;
        for (;;) {
          side.verify();
          if (tryBeginImmediate(sqlite)) break;
          if (Date.now() >= deadline) {
            throw new LockTimeoutError(side.path, Date.now() - startedAt, 'the write lock, held by another connection');
          }
          await sleep(backoff.next({ wal: walSignature(side.path), deadline }));
          signal?.throwIfAborted();
          if (side.isClosed) throw new RepoClosedError();
        }
        const t0 = performance.now();
        try {
          const { changes } = statement.run(before, chunk);
          const deletedAt = performance.now();
          // COMMIT releases the lock; a checkpoint due then (wal_autocheckpoint) runs after, without it.
          sqlite.exec('COMMIT');
          return { changes, deleteMs: deletedAt - t0, elapsedMs: performance.now() - t0 };
        } catch (error) {
          if (sqlite.inTransaction) sqlite.exec('ROLLBACK');
          throw error;
        }
      });
    } catch (error) {
      if (error instanceof RepoClosedError || error instanceof LockTimeoutError || signal?.aborted) throw error;
      throw toDatabaseError(error);
    }
    deleted += outcome.changes;
    if (outcome.changes < chunk) return deleted;
    chunk = nextChunk(chunk, outcome.deleteMs);
    await sleep(Math.max(prunePolicy.minPauseMs, outcome.elapsedMs * prunePolicy.pauseRatio));
  }
}
