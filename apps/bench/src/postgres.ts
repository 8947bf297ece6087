import { findPostgresBinaries, type PostgresServer, startPostgres, withPgClient } from '@repo/testkit/postgres';
import type { Scenario } from './scenarios/scenario.ts';

/**
 * The PostgreSQL server of one bench run: `DATABASE_URL`'s when set (a fresh
 * database per scenario run, dropped at the end), otherwise a local one started
 * for the run (Debian's binaries, in a temp directory, on a free port) and
 * removed at the end. The local one keeps PostgreSQL's durability defaults
 * (fsync on, synchronous_commit on), as a real server has: a naive per-row
 * commit pays a WAL flush, as it would in production.
 */
export interface BenchPostgres {
  server: PostgresServer | undefined;
  /** `PostgreSQL 15.18, local server` / `..., DATABASE_URL`; or why the PostgreSQL scenarios were skipped. */
  note: string;
}

export async function prepareBenchPostgres(selected: readonly Scenario[]): Promise<BenchPostgres | undefined> {
  if (!selected.some((scenario) => scenario.needsPostgres)) return undefined;
  const external = process.env.DATABASE_URL !== undefined && process.env.DATABASE_URL !== '';
  if (!external && findPostgresBinaries() === undefined) {
    return {
      server: undefined,
      note: 'PostgreSQL scenarios skipped: no PostgreSQL binaries (initdb, pg_ctl) on this machine and DATABASE_URL is not set (Debian: apt-get install -y postgresql)',
    };
  }
  const server = await startPostgres({ noFsync: false });
  const version = await withPgClient(server.url, async (client) => {
    const { rows } = await client.query<{ v: string }>("SELECT current_setting('server_version') AS v");
    return rows[0]?.v ?? '?';
  });
  return {
    server,
    note: `PostgreSQL ${version.split(' ')[0]}, ${external ? 'the DATABASE_URL server' : 'a local server started for this run (fsync on)'}`,
  };
}

/** Rows stored in a database, counted by a new session after every writer finished. */
export function countStoredPgRows(url: string): Promise<number> {
  return withPgClient(url, async (client) => {
    const { rows } = await client.query<{ n: string }>('SELECT count(*) AS n FROM metrics');
    return Number(rows[0]?.n);
  });
}
