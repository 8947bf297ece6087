// `pnpm pg:start`: a throwaway PostgreSQL server for the tests, the harness and the bench.
import { startPostgres } from './postgres.ts';

if (process.env.DATABASE_URL) {
  process.stderr.write('pg:start: DATABASE_URL is already set; unset it to start a local server.\n');
  process.exit(2);
}
const server = await startPostgres({ noFsync: false, maxConnections: 600 });
process.stdout.write(
  `PostgreSQL is running. In another terminal:\n\n  export DATABASE_URL='${server.url}'\n  pnpm test   # or pnpm harness --backend postgres, pnpm bench\n\nCtrl-C stops it and removes its data.\n`,
);
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    void server.stop().then(() => process.exit(0));
  });
}
// Keep the process alive until a signal arrives.
setInterval(() => {}, 1 << 30);
