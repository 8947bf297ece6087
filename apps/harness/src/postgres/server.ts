import { type PostgresServer, startPostgres } from '@repo/testkit/postgres';
import pg from 'pg';

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
  const client = new pg.Client({ connectionString: server.url });
  let version = '?';
  try {
    await client.connect();
    const { rows } = await client.query<{ v: string }>("SELECT current_setting('server_version') AS v");
    version = rows[0]?.v.split(' ')[0] ?? '?';
  } finally {
    await client.end();
  }
  return {
    server,
    description: `PostgreSQL ${version} (${external ? 'DATABASE_URL' : 'local server started for this run, fsync on'})`,
  };
}
