export { elsewhere } from './elsewhere.ts';
export {
  findPostgresBinaries,
  type PostgresServer,
  type StartPostgresOptions,
  startPostgres,
  withPgClient,
} from './postgres.ts';
export { useTempDatabase, useTempDir } from './temp.ts';
export { usePostgres } from './use-postgres.ts';
