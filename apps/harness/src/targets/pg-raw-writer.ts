import type pg from 'pg';
import type { WriterTally } from './tally.ts';
import { rowFor, type WriterInput } from './writer-input.ts';

/** A naive PostgreSQL writer's connection, or why it could not be opened. */
export type PgRawConnection = { client: pg.Client } | { openError: unknown };

/** `input.path` holds a `postgres://` URL when the run is on PostgreSQL. */
export function isPostgresTarget(input: WriterInput): boolean {
  return /^postgres(ql)?:\/\//.test(input.path);
}

/** Opens one connection with `pg`, as naive code does. Never throws: a failed open fails that writer's rows. */
export async function openPgRawConnection(input: WriterInput): Promise<PgRawConnection> {
  // Loaded here, not at the top: writers of a SQLite run never load `pg`.
  const { default: driver } = await import('pg');
  const client = new driver.Client({ connectionString: input.path });
  // A connection dying while idle emits 'error': without a listener the writer would crash instead of counting it.
  client.on('error', () => {});
  try {
    await client.connect();
    return { client };
  } catch (openError) {
    return { openError };
  }
}

/** Inserts the writer's rows one autocommit INSERT at a time, each awaited, then closes. */
export async function writePgRawRows(
  connection: PgRawConnection,
  input: WriterInput,
  writer: number,
  tally: WriterTally,
): Promise<void> {
  if ('openError' in connection) {
    for (let row = 0; row < input.rows; row++) tally.fail(connection.openError, undefined);
    return;
  }
  const { client } = connection;
  try {
    for (let row = 0; row < input.rows; row++) {
      const values = rowFor(input, writer, row);
      const started = performance.now();
      try {
        await client.query(
          'INSERT INTO metrics (name, value, recorded_at, labels, event_id) VALUES ($1, $2, $3, $4, $5)',
          [values.name, values.value, values.recordedAt, JSON.stringify(values.labels), values.eventId],
        );
        tally.ack(values.eventId, performance.now() - started);
      } catch (error) {
        tally.fail(error, performance.now() - started);
      }
    }
  } finally {
    await client.end().catch(() => {});
  }
}
