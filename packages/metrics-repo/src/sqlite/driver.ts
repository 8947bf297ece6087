import { type Stats, statSync } from 'node:fs';
import {
  type MetricsDatabase,
  metrics,
  OpenDatabaseError,
  type OpenedDatabase,
  openDatabase,
  resolveDatabasePath,
  tracePhases,
} from '@repo/db';
import { and, count, eq, gte, lt, type SQL } from 'drizzle-orm';
import type { ResolvedSqliteOptions } from '../options.ts';
import { WriteQueue } from '../queue.ts';
import type { Backend } from '../repo.ts';
import type { ValidFilter } from '../validate.ts';
import { captureIdentity, type FileIdentity, verifyFile } from './file-identity.ts';
import { Follower } from './follower.ts';
import { retryWhileBusy } from './lock.ts';
import type { FileKey } from './mailbox.ts';
import { sqliteReads } from './reads.ts';
import { askThreadSlice, dropThreadSlice, holderOpenSliceNs, openTurn, type WriteTurn } from './turn.ts';
import { SqliteWriter, toDatabaseError } from './writer.ts';

/**
 * Opens the SQLite backend: the file (created and migrated if needed, through
 * `@repo/db`), its write queue and its writer.
 *
 * The connection never sleeps inside a call (`busy_timeout = 0`), opening
 * included: every step that finds a lock taken (another process switching the
 * file to WAL, migrating it, holding it in exclusive locking mode) fails at once
 * and the whole open is tried again on a timer, until `lockTimeoutMs`. The event
 * loop stays free while opening waits, and the deadline holds. A failed attempt
 * closes its connection and leaves the file as it found it.
 *
 * Opening takes the file's write turn when it is free, and keeps it while it
 * opens and checks the file and until its first transaction (or the next turns
 * of the event loop): repositories opened on the same file meanwhile find the
 * turn held, and do not open the file at all. Their writes go through the
 * turn's mailbox (see follower.ts) to whoever holds it, and a read opens the
 * file then. A file not found is opened (and created) the usual way.
 */
export async function openSqliteBackend(options: ResolvedSqliteOptions): Promise<Backend<MetricsDatabase>> {
  // One name for the file whatever the caller called it: every name meets in one turn file.
  const path = resolveDatabasePath(options.path);
  const resolved = { ...options, path };
  // A file not created yet gets its turn once the open has made it (see connect).
  const turn = fileStats(path) !== undefined ? openTurn(path) : undefined;
  const file = turn === undefined ? undefined : busyFile(path, turn);
  if (turn === undefined || file === undefined) {
    let connection: Connection;
    try {
      connection = await connect(resolved, turn ?? 'after-open');
    } catch (error) {
      // A failed open leaves nothing behind: not the turn file it created either.
      if (turn?.created) turn.discard();
      else turn?.close();
      throw error;
    }
    return {
      get db() {
        return connection.opened.db;
      },
      queue: connection.queue,
      location: connection.opened.path,
      count: (filter) => connection.count(filter),
      close: () => connection.writer.close(),
      ...sqliteReads(connection.opened.path, resolved),
    };
  }

  const trace = tracePhases('open');
  const queue = new WriteQueue(resolved, path);
  let connection: Connection | undefined;
  let connecting: Promise<Connection> | undefined;
  const connected = (): Promise<Connection> => {
    connecting ??= connect(resolved, turn, queue).then(
      (opened) => {
        connection = opened;
        return opened;
      },
      (error: unknown) => {
        // A failed open (a lock held past the deadline, a damaged file) is tried afresh next time.
        connecting = undefined;
        throw error;
      },
    );
    return connecting;
  };
  /** One attempt, without waiting (it throws if a lock is in the way), for synchronous callers. */
  const connectedNow = (): Connection => {
    connection ??= connectNow(resolved, turn, queue);
    connecting ??= Promise.resolve(connection);
    return connection;
  };
  const follower = new Follower(
    turn,
    file,
    resolved,
    queue,
    async () => (await connected()).writer,
    // Not while an open on timers is under way: that one becomes the writer.
    () => (connecting === undefined ? connectedNow().writer : undefined),
  );
  trace.mark('follower');
  return {
    get db() {
      // Drizzle's database is synchronous: the first read through it opens the file the same way.
      return connectedNow().opened.db;
    },
    queue,
    location: path,
    count: async (filter) => (await connected()).count(filter),
    ...sqliteReads(path, resolved),
    close: async () => {
      await follower.close();
      const opened = connecting === undefined ? undefined : await connecting.catch(() => undefined);
      if (opened !== undefined) await opened.writer.close();
      else turn.close();
    },
  };
}

/**
 * The file at `path` when another repository holds its turn (it is opening the file, or
 * writing to it): this one can leave the file to it. Otherwise undefined, and this one holds
 * the turn now if it was free.
 */
function busyFile(path: string, turn: WriteTurn): FileKey | undefined {
  if (turn.tryAcquire()) return undefined;
  const stats = fileStats(path);
  return stats === undefined ? undefined : { dev: stats.dev, ino: stats.ino };
}

/** The regular file at `path`, or undefined (only `stat`: no descriptor of our own). */
function fileStats(path: string): Stats | undefined {
  try {
    const stats = statSync(path, { throwIfNoEntry: false });
    return stats?.isFile() ? stats : undefined;
  } catch {
    return undefined; // ENOTDIR and the like: the open says what is wrong.
  }
}

interface Connection {
  opened: OpenedDatabase;
  queue: WriteQueue;
  writer: SqliteWriter;
  count(filter: ValidFilter): Promise<number>;
}

/**
 * Opens the file (retrying on timers while a lock is in the way) and sets up its writer. `turn`:
 * the file's turn, or `'after-open'` for a file that did not exist: its turn is opened once the
 * open has created it, so that an open that fails creates no turn file.
 */
async function connect(
  options: ResolvedSqliteOptions,
  turn: WriteTurn | undefined | 'after-open',
  queue?: WriteQueue,
): Promise<Connection> {
  // Followers wait for this open when the turn is held: with `threadSlices`, in one long slice.
  const slice =
    options.threadSlices && turn !== 'after-open' && turn?.held ? askThreadSlice(holderOpenSliceNs) : undefined;
  let opened: OpenedDatabase;
  try {
    opened = await retryWhileBusy(() => openOnce(options), Date.now() + options.lockTimeoutMs);
  } finally {
    dropThreadSlice(slice);
  }
  const ownTurn = turn === 'after-open' ? openTurn(opened.path) : undefined;
  try {
    return withWriter(opened, options, ownTurn ?? (turn === 'after-open' ? undefined : turn), queue);
  } catch (error) {
    if (ownTurn?.created) ownTurn.discard();
    else ownTurn?.close();
    throw error;
  }
}

/** One attempt, for a synchronous first read through `db` (no wait: it throws if a lock is in the way). */
function connectNow(options: ResolvedSqliteOptions, turn: WriteTurn | undefined, queue: WriteQueue): Connection {
  return withWriter(openOnce(options), options, turn, queue);
}

/** The connection never sleeps inside a call: a lock in the way fails at once (see openSqliteBackend). */
function openOnce(options: ResolvedSqliteOptions): OpenedDatabase {
  return openDatabase(options.path, { busyTimeoutMs: 0, synchronous: options.synchronous });
}

function withWriter(
  opened: OpenedDatabase,
  options: ResolvedSqliteOptions,
  turn: WriteTurn | undefined,
  existingQueue: WriteQueue | undefined,
): Connection {
  const trace = tracePhases('open');
  try {
    const identity = captureIdentity(opened.path, opened.sqlite.pragma('page_size', { simple: true }) as number);
    const queue = existingQueue ?? new WriteQueue(options, opened.path);
    const writer = new SqliteWriter(opened.sqlite, opened.path, identity, queue, options, turn);
    trace.mark('repo-setup');
    return {
      opened,
      queue,
      writer,
      count: (filter) => countRows(opened.db, opened.path, identity, filter, options.lockTimeoutMs),
    };
  } catch (error) {
    opened.close();
    throw new OpenDatabaseError('OPEN_FAILED', opened.path, `${error instanceof Error ? error.message : error}`, {
      cause: error,
    });
  }
}

async function countRows(
  db: MetricsDatabase,
  path: string,
  identity: FileIdentity,
  { name, since, until }: ValidFilter,
  lockTimeoutMs: number,
): Promise<number> {
  const conditions: SQL[] = [];
  if (name !== undefined) conditions.push(eq(metrics.name, name));
  if (since !== undefined) conditions.push(gte(metrics.recordedAt, new Date(since)));
  if (until !== undefined) conditions.push(lt(metrics.recordedAt, new Date(until)));
  const query = db
    .select({ n: count() })
    .from(metrics)
    .where(and(...conditions));
  try {
    // Reads and writes agree: a file deleted or replaced under the repository fails both the same way.
    verifyFile(path, identity);
    const row = await retryWhileBusy(() => query.get(), Date.now() + lockTimeoutMs);
    return row?.n ?? 0;
  } catch (error) {
    throw toDatabaseError(error);
  }
}
