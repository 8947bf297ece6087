import { cpus, platform, release, totalmem } from 'node:os';
import { sqliteWritePath } from '@repo/metrics-repo';
import BetterSqlite3 from 'better-sqlite3';

/** Where and when the results were measured: numbers mean little without it. */
export interface RunInfo {
  command: string;
  date: string;
  machine: string;
  sqliteVersion: string;
  /** Which write path the repository's SQLite writers take: the turn and its mailbox, or the portable one. */
  writePath: string;
}

export function describeRun(argv: readonly string[], date = new Date()): RunInfo {
  return {
    command: ['pnpm harness', ...argv].join(' '),
    date: date.toISOString(),
    machine: `${cpus().length} cores, ${Math.round(totalmem() / 2 ** 30)} GiB RAM, ${platform()} ${release()}, Node ${process.version}`,
    sqliteVersion: sqliteVersion(),
    writePath: describeWritePath(),
  };
}

function describeWritePath(): string {
  const { path, why } = sqliteWritePath();
  return `repository write path: ${path} (${why})`;
}

/** The SQLite that better-sqlite3 bundles (not the system's). */
function sqliteVersion(): string {
  const sqlite = new BetterSqlite3(':memory:');
  try {
    return sqlite.prepare('SELECT sqlite_version()').pluck().get() as string;
  } finally {
    sqlite.close();
  }
}
