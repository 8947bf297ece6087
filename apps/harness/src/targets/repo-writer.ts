import { type MetricsRepo, openMetricsRepo } from '@repo/metrics-repo';
import { isPostgresTarget } from './pg-raw-writer.ts';
import type { WriterTally } from './tally.ts';
import { rowFor, type WriterInput } from './writer-input.ts';

/** A writer's repository, or why it could not be opened. */
export type RepoHandle = { repo: Pick<MetricsRepo, 'insert' | 'close'> } | { openError: unknown };

/** Opens the repository with its defaults but the lock timeout. Never throws: a failed open fails that writer's rows. */
export async function openRepo(input: WriterInput): Promise<RepoHandle> {
  try {
    const { path, lockTimeoutMs } = input;
    // On PostgreSQL `path` holds the database's URL.
    const repo = isPostgresTarget(input)
      ? await openMetricsRepo({ url: path, lockTimeoutMs })
      : await openMetricsRepo({ path, lockTimeoutMs });
    return { repo };
  } catch (openError) {
    return { openError };
  }
}

/**
 * Inserts the writer's rows through the repository. Normally every row is
 * issued at once, as callers that do not wait for each other would (the
 * repository batches them); with `oneAtATime` (or `reportEachRow`) one after
 * the other, one transaction each, so a kill or another connection's close can
 * land between any two commits. Does not close the repository.
 */
export async function writeRepoRows(
  handle: RepoHandle,
  input: WriterInput,
  writer: number,
  tally: WriterTally,
): Promise<void> {
  if ('openError' in handle) {
    for (let row = 0; row < input.rows; row++) tally.fail(handle.openError, undefined);
    return;
  }
  const insertOne = async (row: number) => {
    const values = rowFor(input, writer, row);
    const started = performance.now();
    try {
      await handle.repo.insert(values);
      tally.ack(values.eventId, performance.now() - started);
    } catch (error) {
      tally.fail(error, performance.now() - started);
    }
  };
  if (input.oneAtATime || input.reportEachRow) {
    for (let row = 0; row < input.rows; row++) await insertOne(row);
  } else {
    await Promise.all(Array.from({ length: input.rows }, (_, row) => insertOne(row)));
  }
}

/** Closes the repository: it commits what it accepted first. */
export async function closeRepo(handle: RepoHandle): Promise<void> {
  if ('repo' in handle) await handle.repo.close();
}
