import { type PostgresServer, startPostgres, withPgClient } from '@repo/testkit/postgres';

/** The PostgreSQL server of one `--backend postgres` run, and a line saying which it is. */
export interface HarnessPostgres {
  server: PostgresServer;
  description: string;
}

/**
 * `DATABASE_URL`'s server (a fresh database per scenario, dropped at the end of
 * the run), or a local one started for the run from this machine's PostgreSQL
 * binaries and removed at the end. The local one keeps PostgreSQL's durability
 * defaults (fsync on) and allows enough connections for every writer at once
 * (each writer holds one).
 */
export async function startHarnessPostgres(maxWriters: number): Promise<HarnessPostgres> {
  const external = Boolean(process.env.DATABASE_URL);
  const server = await startPostgres({ noFsync: false, maxConnections: Math.max(200, maxWriters + 50) });
  const version = await withPgClient(server.url, async (client) => {
    const { rows } = await client.query<{ v: string }>("SELECT current_setting('server_version') AS v");
    return rows[0]?.v.split(' ')[0] ?? '?';
  });
  return {
    server,
    description: `PostgreSQL ${version} (${external ? 'DATABASE_URL' : 'local server started for this run, fsync on'})`,
  };
}
