import { accessSync, constants, lstatSync, mkdirSync, realpathSync, type Stats, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { basename, dirname, join, resolve } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { type BetterSQLite3Database, drizzle } from 'drizzle-orm/better-sqlite3';
import { sleepThread, sqliteBusyDelaysMs, sqliteBusyMaxDelayMs } from './busy-wait.ts';
import { isBusyError, OpenDatabaseError, sqliteCodeOf } from './errors.ts';
import {
  applyMigrations,
  assertSchemaMatches,
  type MigrationResult,
  migrationState,
  migrationsFolder,
} from './migrator.ts';
import * as schema from './schema.ts';
import { tracePhases } from './trace.ts';

export { migrationsFolder };

export type JournalMode = 'wal' | 'delete';
export type Synchronous = 'normal' | 'full';

export interface OpenDatabaseOptions {
  /**
   * How long a statement waits for another connection's lock, in ms, by SQLite's
   * own sleep-and-poll inside the synchronous call (it blocks the thread).
   * Default 5000, the driver's default.
   */
  busyTimeoutMs?: number;
  /**
   * `'wal'` (default): readers never block the writer. `'delete'`: SQLite's
   * rollback journal, the driver's default, kept for comparisons.
   */
  journalMode?: JournalMode;
  /**
   * `'normal'` (default): in WAL, a killed process never loses a committed
   * transaction; the last commits can be lost on power loss or an OS crash.
   * `'full'`: also survives those, at one fsync per commit.
   */
  synchronous?: Synchronous;
  /** Apply pending migrations (default true). */
  migrate?: boolean;
  /** Where the migrations are (default: this package's `drizzle/` folder). */
  migrationsFolder?: string;
}

/** The typed Drizzle database; `$client` is its better-sqlite3 connection. */
export type MetricsDatabase = BetterSQLite3Database<typeof schema> & { $client: BetterSqlite3.Database };

export interface OpenedDatabase {
  /** The typed Drizzle database (built on first use). */
  readonly db: MetricsDatabase;
  /** The underlying better-sqlite3 connection, for prepared statements and PRAGMAs. */
  sqlite: BetterSqlite3.Database;
  /** The absolute path of the file. */
  path: string;
  /** What this open applied. */
  migrations: MigrationResult;
  /** The journal mode in effect. */
  journalMode: JournalMode;
  close(): void;
}

/**
 * Opens (creating if needed) the metrics database at `path` the one correct way:
 * busy timeout first, then the journal mode and the production PRAGMAs, then
 * the pending migrations, applied once even when many processes open a new file
 * at the same moment.
 *
 * The file is named by its real path (see {@link resolveDatabasePath}): a symbolic link is
 * followed, as SQLite itself does, and a file with several hard links is refused.
 *
 * Throws {@link OpenDatabaseError} naming the path and the cause. A failed open
 * creates no file and changes no existing one.
 */
export function openDatabase(path: string, options: OpenDatabaseOptions = {}): OpenedDatabase {
  const { path: absolutePath, stats } = resolveDatabaseFile(path);
  const {
    busyTimeoutMs = 5000,
    journalMode = 'wal',
    synchronous = 'normal',
    migrate = true,
    migrationsFolder: folder = migrationsFolder,
  } = options;
  if (!Number.isInteger(busyTimeoutMs) || busyTimeoutMs < 0) {
    throw new RangeError(`busyTimeoutMs must be a non-negative integer, got ${String(busyTimeoutMs)}`);
  }

  const trace = tracePhases('open');
  ensureWritableLocation(absolutePath, stats);
  trace.mark('location');

  let sqlite: BetterSqlite3.Database;
  try {
    sqlite = new BetterSqlite3(absolutePath, { timeout: busyTimeoutMs, nativeBinding: nativeBinding() });
  } catch (error) {
    throw classify(error, absolutePath);
  }
  trace.mark('connection');
  try {
    // Reading the header first: a file that is not a database fails here, before any write.
    sqlite.pragma('schema_version', { simple: true });
    trace.mark('header');
    // Read-only checks come before anything that changes the file (switching it to
    // WAL, migrating it): a file this code cannot use is left exactly as it was.
    const state = migrate ? migrationState(sqlite, absolutePath, folder) : 'current';
    trace.mark('migration-check');
    // A file stamped by our migrator with an unchanged schema cookie was verified when it was stamped.
    if (state === 'up-to-date') assertSchemaMatches(sqlite, absolutePath);
    trace.mark('schema-check');

    // Setting WAL takes an exclusive lock when the file is switched, so the busy timeout
    // (set by the constructor, before this) must already be in force. WAL persists in the file.
    // Only switch when needed: reading the mode takes no lock, while every switch attempt needs
    // the exclusive lock, and hundreds of processes attempting it at once starve each other.
    const current = String(sqlite.pragma('journal_mode', { simple: true })).toLowerCase();
    const mode = current === journalMode ? current : switchJournalMode(sqlite, journalMode, busyTimeoutMs);
    if (mode !== journalMode) {
      throw new OpenDatabaseError('JOURNAL_MODE', absolutePath, `journal_mode stayed ${mode}, expected ${journalMode}`);
    }
    trace.mark('journal-mode');
    sqlite.pragma(`synchronous = ${synchronous}`);
    // Checkpoints truncate the -wal file back to this size, so it cannot grow without bound.
    sqlite.pragma('journal_size_limit = 67108864');
    // No memory mapping (mmap_size stays 0): if another program truncates the file, a read
    // through the map raises SIGBUS and kills the whole process; read() returns an error
    // instead. What it costs: see docs/decisions/0004-a-lean-open-without-mmap.md.
    // 2000 pages of page cache per connection (~8 MiB with 4 KiB pages).
    sqlite.pragma('cache_size = 2000');
    sqlite.pragma('foreign_keys = ON');
    // Sorts and temporary indexes of count queries stay off the disk.
    sqlite.pragma('temp_store = MEMORY');
    trace.mark('pragmas');

    let migrations: MigrationResult = { applied: 0 };
    if (migrate && state === 'pending') {
      migrations = applyMigrations(sqlite, absolutePath, folder);
      assertSchemaMatches(sqlite, absolutePath);
    }
    trace.mark('migrations');
    // Built on first use: writers that only run prepared statements never pay for it
    // (see docs/decisions/0004-a-lean-open-without-mmap.md).
    let db: MetricsDatabase | undefined;
    return {
      get db() {
        db ??= drizzle({ client: sqlite, schema });
        return db;
      },
      sqlite,
      path: absolutePath,
      migrations,
      journalMode,
      close: () => sqlite.close(),
    };
  } catch (error) {
    sqlite.close();
    throw error instanceof OpenDatabaseError ? error : classify(error, absolutePath);
  }
}

/**
 * The one name of the database at `path`: absolute, every symbolic link resolved (of the file,
 * or, for a file not created yet, of its directory). SQLite follows a link to the database and
 * puts its -wal and -shm beside the target; everything that looks at those files, or keys
 * anything by the database, must use this name, or two names of one file meet nothing in common.
 *
 * Throws OpenDatabaseError `HARD_LINKED` for a file with several names (SQLite keeps a -wal per
 * name: two writers through two names corrupt it; sqlite.org, "How To Corrupt An SQLite Database
 * File", 2.5) and `NOT_A_FILE` for a symbolic link to nothing. Only `stat`, `lstat` and
 * `realpath`: no descriptor of our own (see ensureWritableLocation).
 */
export function resolveDatabasePath(path: string): string {
  return resolveDatabaseFile(path).path;
}

/** The database's one name (see {@link resolveDatabasePath}) and what stands there now: its stats, or undefined. */
export interface ResolvedDatabaseFile {
  path: string;
  stats: Stats | undefined;
}

/** {@link resolveDatabasePath}, with the stats it read: callers look at the file without a second `stat`. */
export function resolveDatabaseFile(path: string): ResolvedDatabaseFile {
  const absolute = resolve(path);
  let real: string;
  try {
    real = realpathSync(absolute);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code !== 'ENOENT' && code !== 'ENOTDIR') {
      throw new OpenDatabaseError('OPEN_FAILED', absolute, `the path cannot be resolved (${errnoOf(error)})`, {
        cause: error,
      });
    }
    let link: Stats | undefined;
    try {
      link = lstatSync(absolute);
    } catch {
      link = undefined;
    }
    if (link?.isSymbolicLink()) {
      throw new OpenDatabaseError('NOT_A_FILE', absolute, 'the path is a symbolic link to a file that does not exist');
    }
    try {
      real = join(realpathSync(dirname(absolute)), basename(absolute));
    } catch {
      real = absolute; // No directory yet: created as named (see ensureWritableLocation).
    }
  }
  const stats = statOrUndefined(real);
  if (stats?.isFile() && stats.nlink > 1) throw hardLinked(real, stats.nlink);
  return { path: real, stats };
}

/** The error for a database file with `names` hard links (see resolveDatabasePath). */
export function hardLinked(path: string, names: number): OpenDatabaseError {
  return new OpenDatabaseError(
    'HARD_LINKED',
    path,
    `the file has ${names} names (hard links): SQLite keeps a -wal beside each name, and writes through two of them corrupt the database; remove the other names, or copy the file`,
  );
}

/**
 * Switches the journal mode, waiting for the write lock up to the busy timeout. The switch opens
 * a read transaction and then upgrades it to write the header, and SQLite refuses that upgrade at
 * once, without its busy handler, while another connection holds the write lock (its rule against
 * deadlocks). So with many processes opening a new file at once, most switches failed with
 * SQLITE_BUSY within milliseconds whatever the timeout (`concurrent-open.test.ts`, 35 of 50 in a
 * loaded CI run). Each refusal is retried here, as the busy handler would: the thread sleeps, as
 * it does inside SQLite's busy wait, and a file another process switched meanwhile is done.
 */
function switchJournalMode(sqlite: BetterSqlite3.Database, journalMode: string, busyTimeoutMs: number): string {
  const deadline = Date.now() + busyTimeoutMs;
  for (let attempt = 0; ; attempt++) {
    try {
      return String(sqlite.pragma(`journal_mode = ${journalMode}`, { simple: true })).toLowerCase();
    } catch (error) {
      const left = deadline - Date.now();
      if (!isBusyError(error) || left <= 0) throw error;
      const current = String(sqlite.pragma('journal_mode', { simple: true })).toLowerCase();
      if (current === journalMode) return current;
      sleepThread(Math.min(left, sqliteBusyDelaysMs[attempt] ?? sqliteBusyMaxDelayMs));
    }
  }
}

/**
 * Creates the parent directory and checks, before SQLite touches anything, that the
 * file and its directory can be written (SQLite would otherwise fall back to read-only
 * without a word). `statsAtPath`: what resolveDatabaseFile found at `path`.
 *
 * Only `stat` and `access`: they take no file descriptor. Opening and closing a
 * descriptor of our own on a database file would release every POSIX lock this
 * process holds on it, including those of SQLite connections already open on it
 * (another repository, a raw connection): the next connection elsewhere to close
 * then deletes the -wal and -shm files under them, and acknowledged rows vanish
 * (sqlite.org, "How To Corrupt An SQLite Database File", 2.2).
 */
function ensureWritableLocation(path: string, statsAtPath: Stats | undefined): void {
  const directory = dirname(path);
  let stats = statsAtPath;
  if (stats === undefined && statOrUndefined(directory) === undefined) {
    try {
      mkdirSync(directory, { recursive: true });
    } catch (error) {
      throw new OpenDatabaseError(
        'DIRECTORY_NOT_CREATABLE',
        path,
        `its directory ${JSON.stringify(directory)} cannot be created (${errnoOf(error)})`,
        { cause: error },
      );
    }
    stats = statOrUndefined(path);
  }
  if (stats !== undefined && !stats.isFile()) {
    const what = stats.isDirectory() ? 'a directory' : 'not a regular file';
    throw new OpenDatabaseError('NOT_A_FILE', path, `the path is ${what}, not a database file`);
  }
  // The directory must be writable too: WAL mode creates the -wal and -shm files next to the database.
  for (const [target, what] of [
    [path, 'the file'],
    [directory, 'its directory'],
  ] as const) {
    try {
      accessSync(target, constants.W_OK);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' && target === path) continue;
      if (code === 'EACCES' || code === 'EPERM' || code === 'EROFS') {
        throw new OpenDatabaseError('READ_ONLY', path, `${what} is not writable (${code})`, { cause: error });
      }
      throw new OpenDatabaseError('OPEN_FAILED', path, `${what} cannot be checked (${errnoOf(error)})`, {
        cause: error,
      });
    }
  }
}

/** The file's stats, or undefined when nothing is there; other failures surface as OPEN_FAILED. */
function statOrUndefined(path: string): Stats | undefined {
  try {
    return statSync(path);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    // ENOTDIR: a file stands where a directory of the path should be; mkdir says so, naming it.
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    throw new OpenDatabaseError('OPEN_FAILED', path, `the path cannot be examined (${errnoOf(error)})`, {
      cause: error,
    });
  }
}

let nativeBindingPath: string | undefined;

/**
 * The driver's compiled addon, by absolute path: without it better-sqlite3 finds it
 * with the `bindings` package, which searches a dozen places on every first open
 * of a process, most of a short-lived writer's open (see docs/decisions/0004-a-lean-open-without-mmap.md).
 */
function nativeBinding(): string {
  nativeBindingPath ??= createRequire(import.meta.url).resolve('better-sqlite3/build/Release/better_sqlite3.node');
  return nativeBindingPath;
}

function errnoOf(error: unknown): string {
  return (error as NodeJS.ErrnoException).code ?? String(error);
}

function classify(error: unknown, path: string): OpenDatabaseError {
  if (error instanceof OpenDatabaseError) return error;
  const code = sqliteCodeOf(error);
  const detail = error instanceof Error ? error.message : String(error);
  if (code === 'SQLITE_NOTADB' || code === 'SQLITE_CORRUPT') {
    return new OpenDatabaseError('NOT_A_DATABASE', path, `the file is not a SQLite database (${code}: ${detail})`, {
      cause: error,
    });
  }
  if (code?.startsWith('SQLITE_READONLY') || code === 'SQLITE_CANTOPEN') {
    return new OpenDatabaseError('READ_ONLY', path, `the file cannot be written (${code}: ${detail})`, {
      cause: error,
    });
  }
  if (isBusyError(error)) {
    return new OpenDatabaseError('BUSY', path, `another connection held the lock past the busy timeout (${code})`, {
      cause: error,
    });
  }
  return new OpenDatabaseError('OPEN_FAILED', path, `${code ?? 'error'}: ${detail}`, { cause: error });
}
