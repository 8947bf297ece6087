import { isPostgresTarget, openPgRawConnection, type PgRawConnection, writePgRawRows } from './pg-raw-writer.ts';
import { openRawConnection, type RawConnection, writeRawRows } from './raw-writer.ts';
import type { WriterTally } from './tally.ts';
import type { WriterInput } from './writer-input.ts';

/** The raw target's connection on either backend: SQLite (better-sqlite3 via @repo/db) or PostgreSQL (`pg`). */
export type AnyRawConnection = { sqlite: RawConnection } | { postgres: PgRawConnection };

export async function openAnyRawConnection(input: WriterInput): Promise<AnyRawConnection> {
  return isPostgresTarget(input)
    ? { postgres: await openPgRawConnection(input) }
    : { sqlite: openRawConnection(input) };
}

export function writeAnyRawRows(
  connection: AnyRawConnection,
  input: WriterInput,
  writer: number,
  tally: WriterTally,
): Promise<void> {
  return 'postgres' in connection
    ? writePgRawRows(connection.postgres, input, writer, tally)
    : writeRawRows(connection.sqlite, input, writer, tally);
}
