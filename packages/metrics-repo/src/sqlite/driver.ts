import { type MetricsDatabase, resolveDatabaseFile, tracePhases } from '@repo/db';
import type { Backend } from '../backend.ts';
import type { ResolvedSqliteOptions } from '../options.ts';
import { WriteQueue } from '../queue.ts';
import { Connection } from './connection.ts';
import { type Coordination, noCoordination, TurnCoordination } from './coordination.ts';
import { sqliteReads } from './reads.ts';
import { openTurn } from './turn.ts';
import { SqliteWriter } from './writer.ts';

/**
 * Opens the SQLite backend: the file (created and migrated if needed, through `@repo/db`), its
 * write queue, its coordination with the file's other writers, and its writer.
 *
 * The connection never sleeps inside a call (`busy_timeout = 0`), opening included: every step
 * that finds a lock taken (another process switching the file to WAL, migrating it, holding it in
 * exclusive locking mode) fails at once and the whole open is tried again on a timer, until
 * `lockTimeoutMs`. A failed open closes its connection and leaves nothing behind.
 *
 * With the file's write turn (an existing file, the addon available): opening takes the turn when
 * it is free and keeps it until the first transaction, so that repositories opened meanwhile find
 * it held and do not open the file at all: their writes go to the holder through the mailbox, and
 * they open the file only when they must. A file that does not exist yet is created first, and
 * gets its turn after.
 */
export async function openSqliteBackend(options: ResolvedSqliteOptions): Promise<Backend<MetricsDatabase>> {
  // One name for the file whatever the caller called it: every name meets in one turn file.
  const { path, stats } = resolveDatabaseFile(options.path);
  const resolved = { ...options, path };
  const trace = tracePhases('open');
  const existing = stats?.isFile() ? stats : undefined;
  let coordination: Coordination = noCoordination;
  let connection: Connection | undefined;
  if (existing === undefined) {
    // Created by this open, then given its turn: a failed open leaves no turn file behind.
    connection = await Connection.open(resolved);
    const turn = openTurn(path);
    if (turn !== undefined) coordination = new TurnCoordination(turn, path, resolved, connection.identity);
  } else {
    const turn = openTurn(path);
    const withTurn =
      turn === undefined
        ? undefined
        : new TurnCoordination(turn, path, resolved, { dev: existing.dev, ino: existing.ino });
    if (withTurn !== undefined) coordination = withTurn;
    // Without a turn, or holding it: this repository opens the file now (the others wait for it).
    if (withTurn === undefined || withTurn.tryHold()) {
      try {
        connection = await Connection.open(resolved, withTurn !== undefined);
      } catch (error) {
        withTurn?.discard(); // a failed open leaves no turn file behind either
        throw error;
      }
    } else trace.mark('follower');
  }
  const writer = new SqliteWriter(new WriteQueue(resolved, path), resolved, coordination, connection);
  return {
    get db() {
      // Drizzle's database is synchronous: the first read through it opens the file in one attempt.
      return writer.connectedNow().opened.db;
    },
    queue: writer.queue,
    location: path,
    count: async (filter) => (await writer.connected()).count(filter),
    ...sqliteReads(path, resolved),
    close: () => writer.close(),
  };
}
