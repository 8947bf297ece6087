import { resolve } from 'node:path';
import {
  type MetricsDatabase,
  metrics,
  OpenDatabaseError,
  type OpenedDatabase,
  openDatabase,
  tracePhases,
} from '@repo/db';
import { fileIdentity } from '@repo/write-turn';
import { and, count, eq, gte, lt, type SQL } from 'drizzle-orm';
import type { ResolvedSqliteOptions } from '../options.ts';
import { WriteQueue } from '../queue.ts';
import type { Backend } from '../repo.ts';
import type { ValidFilter } from '../validate.ts';
import { captureIdentity, type FileIdentity, verifyFile } from './file-identity.ts';
import { Follower } from './follower.ts';
import { retryWhileBusy } from './lock.ts';
import type { FileKey } from './mailbox.ts';
import { askThreadSlice, dropThreadSlice, openTurn, type WriteTurn } from './turn.ts';
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
// biome-ignore format: the parentheses make V8 compile it when its module loads (metrics-repo README, "Compiled when loaded")
export const openSqliteBackend = (async function openSqliteBackend(
  options: ResolvedSqliteOptions,
): Promise<Backend<MetricsDatabase>> {
  const path = resolve(options.path);
  const turn = openTurn(path);
  const file = turn === undefined ? undefined : busyFile(path, turn);
  if (turn === undefined || file === undefined) {
    let connection: Connection;
    try {
      connection = await connect(options, turn);
    } catch (error) {
      turn?.close();
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
    };
  }

  const trace = tracePhases('open');
  const queue = new WriteQueue(options, path);
  let connection: Connection | undefined;
  let connecting: Promise<Connection> | undefined;
  const connected = (): Promise<Connection> => {
    connecting ??= connect(options, turn, queue).then(
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
    connection ??= connectNow(options, turn, queue);
    connecting ??= Promise.resolve(connection);
    return connection;
  };
  const follower = new Follower(
    turn,
    file,
    options.synchronous,
    queue,
    options.lockTimeoutMs,
    options.maxBatchRows,
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
    close: async () => {
      await follower.close();
      const opened = connecting === undefined ? undefined : await connecting.catch(() => undefined);
      if (opened !== undefined) await opened.writer.close();
      else turn.close();
    },
  };
});

/**
 * The file at `path` when another repository holds its turn (it is opening the file, or
 * writing to it): this one can leave the file to it. Otherwise undefined, and this one holds
 * the turn now if it was free.
 */
// biome-ignore format: the parentheses make V8 compile it when its module loads (metrics-repo README, "Compiled when loaded")
const busyFile = (function busyFile(path: string, turn: WriteTurn): FileKey | undefined {
  // The addon's stat, not node:fs's: a follower would compile Node's Stats code for this alone.
  const identity = fileIdentity(path);
  if (turn.tryAcquire() || identity === undefined) return undefined;
  return identity;
});

interface Connection {
  opened: OpenedDatabase;
  queue: WriteQueue;
  writer: SqliteWriter;
  count(filter: ValidFilter): Promise<number>;
}

/**
 * The CPU slice of a thread that opens the file while it holds the turn (see askThreadSlice): its
 * followers wait for that open, about 10 ms of CPU in a new process, which on two cores shared by
 * 250 processes took many turns of 1.4 ms (the default here), each after a wait for all the
 * others. With 30 ms it runs in one or two: `phases --writers 250`, interleaved, p99 0.88× to
 * 1.11× naive code's against 1.22× to 1.32× (BENCHMARKS.md, "The holder's open in one slice").
 * Its share of the CPU is the same; it is only preempted less often, for that open alone.
 */
const holderOpenSliceNs = 30_000_000;

// biome-ignore format: the parentheses make V8 compile it when its module loads (metrics-repo README, "Compiled when loaded")
const connect = (async function connect(
  options: ResolvedSqliteOptions,
  turn: WriteTurn | undefined,
  queue?: WriteQueue,
): Promise<Connection> {
  const slice = turn?.held ? askThreadSlice(holderOpenSliceNs) : undefined;
  try {
    const opened = await retryWhileBusy(() => openOnce(options), Date.now() + options.lockTimeoutMs);
    return withWriter(opened, options, turn, queue);
  } finally {
    if (slice !== undefined) dropThreadSlice(slice);
  }
});

/** One attempt, for a synchronous first read through `db` (no wait: it throws if a lock is in the way). */
function connectNow(options: ResolvedSqliteOptions, turn: WriteTurn | undefined, queue: WriteQueue): Connection {
  return withWriter(openOnce(options), options, turn, queue);
}

/** The connection never sleeps inside a call: a lock in the way fails at once (see openSqliteBackend). */
// biome-ignore format: the parentheses make V8 compile it when its module loads (metrics-repo README, "Compiled when loaded")
const openOnce = (function openOnce(options: ResolvedSqliteOptions): OpenedDatabase {
  return openDatabase(options.path, { busyTimeoutMs: 0, synchronous: options.synchronous });
});

// biome-ignore format: the parentheses make V8 compile it when its module loads (metrics-repo README, "Compiled when loaded")
const withWriter = (function withWriter(
  opened: OpenedDatabase,
  options: ResolvedSqliteOptions,
  turn: WriteTurn | undefined,
  existingQueue: WriteQueue | undefined,
): Connection {
  const trace = tracePhases('open');
  try {
    const identity = captureIdentity(opened.path, opened.sqlite.pragma('page_size', { simple: true }) as number);
    const queue = existingQueue ?? new WriteQueue(options, opened.path);
    const writer = new SqliteWriter(
      opened.sqlite,
      opened.path,
      identity,
      queue,
      options.maxBatchRows,
      options.synchronous,
      turn,
    );
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
});

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
