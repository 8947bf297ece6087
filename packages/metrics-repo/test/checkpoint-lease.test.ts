import { existsSync, utimesSync } from 'node:fs';
import { openDatabase } from '@repo/db';
import BetterSqlite3 from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { Checkpointer, checkpointPolicy } from '../src/sqlite/checkpoint.ts';
import { useTempDatabase } from './helpers.ts';

/** Commits about `megabytes` MB of rows through `sqlite`, in one transaction. */
function write(sqlite: BetterSqlite3.Database, megabytes: number): void {
  const insert = sqlite.prepare('INSERT INTO metrics (name, value, recorded_at, labels) VALUES (?, ?, ?, ?)');
  const labels = JSON.stringify({ pad: 'p'.repeat(1000) });
  sqlite.transaction(() => {
    for (let i = 0; i < megabytes * 1000; i++) insert.run('bulk', i, Date.now(), labels);
  })();
}

describe('one checkpoint thread per file', () => {
  const tempDatabase = useTempDatabase();

  it('a second writer of the file starts no thread while the first one’s lease is fresh, and takes over once it is stale or gone', async () => {
    const path = tempDatabase();
    openDatabase(path).close();
    const lease = `${path}-checkpointer`;
    // A reader holding a snapshot keeps the WAL large (nothing after it can be copied back or truncated),
    // so that each step below sees a WAL past the threshold whatever the threads do meanwhile.
    const reader = new BetterSqlite3(path, { readonly: true });
    reader.exec('BEGIN');
    reader.prepare('SELECT count(*) FROM metrics').get();
    const first = new BetterSqlite3(path, { timeout: 5000 });
    const second = new BetterSqlite3(path, { timeout: 5000 });
    const firstCheckpointer = new Checkpointer(first, path);
    const secondCheckpointer = new Checkpointer(second, path);
    try {
      write(first, (checkpointPolicy.walBytes / 1e6) * 1.5);
      firstCheckpointer.afterCommit();
      firstCheckpointer.afterCommit();
      expect(firstCheckpointer.threadStarted).toBe(true);
      expect(existsSync(lease)).toBe(true);

      write(second, 1);
      secondCheckpointer.afterCommit();
      secondCheckpointer.afterCommit();
      expect(secondCheckpointer.threadStarted).toBe(false);

      // The first writer stopped committing (or was killed) long enough ago: its lease is stale.
      const stale = new Date(Date.now() - checkpointPolicy.leaseMs - 1000);
      utimesSync(lease, stale, stale);
      secondCheckpointer.afterCommit();
      expect(secondCheckpointer.threadStarted).toBe(true);
    } finally {
      await firstCheckpointer.close();
      await secondCheckpointer.close();
      reader.exec('COMMIT');
      for (const connection of [reader, first, second]) connection.close();
    }
    // Closing removes the lease: whoever writes next takes over at once.
    expect(existsSync(lease)).toBe(false);
  });

  it('a lease left by a writer that closed is not in the way: the next one starts its thread at once', async () => {
    const path = tempDatabase();
    openDatabase(path).close();
    const reader = new BetterSqlite3(path, { readonly: true });
    reader.exec('BEGIN');
    reader.prepare('SELECT count(*) FROM metrics').get();
    const writers = [0, 1].map(() => new BetterSqlite3(path, { timeout: 5000 }));
    try {
      for (const connection of writers) {
        const checkpointer = new Checkpointer(connection, path);
        write(connection, (checkpointPolicy.walBytes / 1e6) * 1.5);
        checkpointer.afterCommit();
        checkpointer.afterCommit();
        expect(checkpointer.threadStarted).toBe(true);
        await checkpointer.close();
      }
    } finally {
      reader.exec('COMMIT');
      for (const connection of [reader, ...writers]) connection.close();
    }
  });
});
