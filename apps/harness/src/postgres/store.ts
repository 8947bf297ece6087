import { openMetricsRepo } from '@repo/metrics-repo';
import { type PostgresServer, withPgClient } from '@repo/testkit/postgres';
import type { FileInspection } from '../inspect-file.ts';
import { prefillRowName } from '../prepare-file.ts';

/**
 * A scenario's database on PostgreSQL: a fresh database on the run's server,
 * migrated once before the writers start (by opening the repository, as the SQLite
 * file is), with `prefill` rows inserted in statements of 1000.
 */
export async function preparePgDatabase(server: PostgresServer, prefill: number): Promise<string> {
  const url = await server.createDatabase();
  await (await openMetricsRepo({ url })).close();
  if (prefill > 0) {
    await withPgClient(url, async (client) => {
      for (let from = 0; from < prefill; from += 1000) {
        const count = Math.min(prefill, from + 1000) - from;
        await client.query(
          'INSERT INTO metrics (name, value, recorded_at) SELECT $1, v, now() FROM generate_series($2::int, $3::int) AS v',
          [prefillRowName, from, from + count - 1],
        );
      }
    });
  }
  return url;
}

/**
 * Counts a scenario's rows with a session of its own, after every writer
 * finished. PostgreSQL has no `integrity_check`: `integrity` is `ok` when the
 * rows are readable and no event id is stored twice.
 */
export async function inspectPgDatabase(
  url: string,
  rowName: string,
  ackedEventIds?: readonly string[],
): Promise<FileInspection> {
  return withPgClient(url, async (client) => {
    const { rows } = await client.query<{ stored: string; distinct_events: string }>(
      'SELECT count(*) AS stored, count(DISTINCT event_id) AS distinct_events FROM metrics WHERE name = $1',
      [rowName],
    );
    const stored = Number(rows[0]?.stored);
    const duplicates = stored - Number(rows[0]?.distinct_events);
    let missingAcked: number | undefined;
    if (ackedEventIds !== undefined) {
      const missing = await client.query<{ n: string }>(
        'SELECT count(*) AS n FROM unnest($1::text[]) AS acked(id) WHERE NOT EXISTS (SELECT 1 FROM metrics m WHERE m.event_id = acked.id)',
        [ackedEventIds],
      );
      missingAcked = Number(missing.rows[0]?.n);
    }
    return {
      stored,
      journalMode: 'postgres',
      integrity: duplicates === 0 ? 'ok' : `${duplicates} event ids stored twice`,
      missingAcked,
    };
  });
}
