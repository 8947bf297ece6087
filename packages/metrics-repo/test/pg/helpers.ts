import { withPgClient as withSession } from '@repo/testkit';
import pg from 'pg';

export { withSession };

/** Rows stored, counted by another session. */
export function storedRows(url: string, where = 'true', params: unknown[] = []): Promise<number> {
  return withSession(url, async (client) => {
    const { rows } = await client.query<{ n: string }>(`SELECT count(*) AS n FROM metrics WHERE ${where}`, params);
    return Number(rows[0]?.n);
  });
}

/**
 * Another session takes `LOCK TABLE metrics IN EXCLUSIVE MODE` (inserts wait, reads
 * do not) and keeps it for `ms`. Resolves once the lock is held, with a promise
 * of its release.
 */
export async function holdTableLock(url: string, ms: number): Promise<{ released: Promise<void> }> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  await client.query('BEGIN');
  await client.query('LOCK TABLE metrics IN EXCLUSIVE MODE');
  const released = new Promise<void>((resolve, reject) => {
    setTimeout(() => {
      client
        .query('COMMIT')
        .then(() => client.end())
        .then(resolve, reject);
    }, ms);
  });
  return { released };
}

/** How many of `ids` are not in the table (acknowledged rows that were lost). */
export function missingIds(url: string, ids: Iterable<number>): Promise<number> {
  return withSession(url, async (client) => {
    const { rows } = await client.query<{ n: string }>(
      'SELECT count(*) AS n FROM unnest($1::bigint[]) AS acked(id) WHERE NOT EXISTS (SELECT 1 FROM metrics m WHERE m.id = acked.id)',
      [[...ids]],
    );
    return Number(rows[0]?.n);
  });
}
