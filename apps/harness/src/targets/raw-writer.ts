import { metrics, type OpenedDatabase, openDatabase } from '@repo/db';
import type { WriterTally } from './tally.ts';
import { rowFor, type WriterInput } from './writer-input.ts';

/** A naive writer's connection, or why it could not be opened. */
export type RawConnection = { opened: OpenedDatabase } | { openError: unknown };

/**
 * Opens a connection the way code that has never met contention does: its own
 * connection, SQLite's busy timeout, nothing else. Never throws: an open that
 * fails (a short busy timeout often does) fails that writer's rows.
 */
export function openRawConnection(input: WriterInput): RawConnection {
  try {
    return { opened: openDatabase(input.path, { busyTimeoutMs: input.busyTimeoutMs, journalMode: input.journal }) };
  } catch (openError) {
    return { openError };
  }
}

/**
 * Inserts the writer's rows one autocommit statement at a time with Drizzle's
 * query builder, then closes. With `reopenEachRow`, each row after the first
 * gets a connection of its own (open, insert, close), as a script run once per
 * event would.
 */
export async function writeRawRows(
  first: RawConnection,
  input: WriterInput,
  writer: number,
  tally: WriterTally,
): Promise<void> {
  let connection: RawConnection | undefined = first;
  try {
    for (let row = 0; row < input.rows; row++) {
      // Async tasks interleave here, as awaiting callers would; in a process this costs microseconds.
      await nextTurn();
      const values = rowFor(input, writer, row);
      const started = performance.now();
      connection ??= openRawConnection(input);
      if ('openError' in connection) {
        // A connection that could not be opened fails its rows without trying them.
        tally.fail(connection.openError, input.reopenEachRow ? performance.now() - started : undefined);
      } else {
        try {
          // Synchronous: with a busy timeout, SQLite sleeps and polls inside this call, blocking the thread.
          connection.opened.db.insert(metrics).values(values).run();
          tally.ack(values.eventId, performance.now() - started);
        } catch (error) {
          tally.fail(error, performance.now() - started);
        }
      }
      if (input.reopenEachRow) {
        closeRaw(connection);
        connection = undefined;
      }
    }
  } finally {
    if (connection !== undefined) closeRaw(connection);
  }
}

function closeRaw(connection: RawConnection): void {
  if ('opened' in connection) connection.opened.close();
}

export const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));
