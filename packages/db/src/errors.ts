/** Why a database file could not be opened. Stable: safe to switch on. */
export type OpenDatabaseErrorCode =
  /** The parent directory does not exist and cannot be created. */
  | 'DIRECTORY_NOT_CREATABLE'
  /** The path is a directory, another kind of non-regular file, or a symbolic link to nothing. */
  | 'NOT_A_FILE'
  /**
   * The file has more than one name (hard links): SQLite keeps a -wal beside each name, and
   * connections through two names write to two logs, which corrupts the database.
   */
  | 'HARD_LINKED'
  /** The file exists but is not a SQLite database (or is encrypted or damaged). */
  | 'NOT_A_DATABASE'
  /** The file, its directory or its filesystem does not allow writing. */
  | 'READ_ONLY'
  /** The file holds migrations this code does not know: it was written by a newer version. */
  | 'SCHEMA_TOO_NEW'
  /** The file's table lacks columns of the schema although its migrations say it is up to date (changed by hand). */
  | 'SCHEMA_MISMATCH'
  /** The requested journal mode could not be set. */
  | 'JOURNAL_MODE'
  /** Another connection held the file's lock longer than the busy timeout. */
  | 'BUSY'
  /** Anything else SQLite or the filesystem reported; see `cause`. */
  | 'OPEN_FAILED';

/** Opening or migrating a database file failed. Names the file and the cause. */
export class OpenDatabaseError extends Error {
  override readonly name = 'OpenDatabaseError';
  readonly code: OpenDatabaseErrorCode;
  /** The database file the error is about. */
  readonly path: string;
  /** SQLite's extended result code (e.g. `SQLITE_NOTADB`) when SQLite raised it. */
  readonly sqliteCode: string | undefined;

  constructor(code: OpenDatabaseErrorCode, path: string, reason: string, options?: { cause?: unknown }) {
    super(`cannot open database ${JSON.stringify(path)}: ${reason}`, options);
    this.code = code;
    this.path = path;
    this.sqliteCode = sqliteCodeOf(options?.cause);
  }
}

/** SQLite's result code of an error thrown by better-sqlite3 (`SQLITE_BUSY`, ...), if any. */
export function sqliteCodeOf(error: unknown): string | undefined {
  if (typeof error !== 'object' || error === null) return undefined;
  const code = (error as { code?: unknown }).code;
  return typeof code === 'string' && code.startsWith('SQLITE_') ? code : undefined;
}

/** Whether an error is SQLite's "someone else holds the lock" (any SQLITE_BUSY* variant, or SQLITE_PROTOCOL under heavy contention): retryable. */
export function isBusyError(error: unknown): boolean {
  // An open that lost the race for the lock is as retryable as the statement that did.
  if (error instanceof OpenDatabaseError) return error.code === 'BUSY';
  const code = sqliteCodeOf(error);
  return code !== undefined && (code.startsWith('SQLITE_BUSY') || code === 'SQLITE_PROTOCOL');
}
