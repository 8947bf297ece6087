import { afterAll, beforeAll } from 'vitest';
import { type PostgresServer, type StartPostgresOptions, startPostgres } from './postgres.ts';

/**
 * Call at the top of a test file: one PostgreSQL server for the file (started
 * before its first test, stopped after its last; `DATABASE_URL`'s server when
 * set). Returns a getter; give each test its own database with
 * `server().createDatabase()`.
 */
export function usePostgres(options?: StartPostgresOptions): () => PostgresServer {
  let server: PostgresServer | undefined;
  beforeAll(async () => {
    server = await startPostgres(options);
  }, 120_000);
  afterAll(async () => {
    await server?.stop();
  });
  return () => {
    if (server === undefined) throw new Error('usePostgres: the server is not started yet (use it inside a test)');
    return server;
  };
}
