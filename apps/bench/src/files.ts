import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';

/** A fresh directory in the OS temp directory for one benchmark run's files. */
export function makeRunDirectory(): { directory: string; remove(): void } {
  const directory = mkdtempSync(join(tmpdir(), 'repo-bench-'));
  return { directory, remove: () => rmSync(directory, { recursive: true, force: true }) };
}

/** Rows actually stored in a file, counted by a new connection after every writer closed. */
export function countStoredRows(file: string): number {
  const connection = new BetterSqlite3(file, { readonly: true, fileMustExist: true });
  try {
    return (connection.prepare('SELECT count(*) AS n FROM metrics').get() as { n: number }).n;
  } finally {
    connection.close();
  }
}
