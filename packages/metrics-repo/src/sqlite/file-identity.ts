import { readdirSync, readlinkSync, statSync } from 'node:fs';
import { hardLinked } from '@repo/db';
import { DatabaseError } from '../errors.ts';

/**
 * Is the file at `path` still the database the connection opened, whole?
 *
 * In WAL mode SQLite keeps writing through its open descriptors when the file is
 * deleted, replaced or cut short behind its back: every commit "succeeds" into an
 * inode nobody will read again, or into a file `integrity_check` then rejects.
 * Checking before each transaction turns that silent loss into an error for the
 * callers whose rows would have gone there.
 *
 * Only `stat` (and, to explain a vanished file, `readlink` of /proc entries): never
 * a descriptor of our own. Closing any descriptor of a file releases every POSIX
 * lock this process holds on it, SQLite's included; another connection closing
 * later then deletes the -wal and -shm files under ours and acknowledged rows
 * vanish (sqlite.org, "How To Corrupt An SQLite Database File", 2.2).
 */
export interface FileIdentity {
  dev: number;
  ino: number;
  /** The database's page size: a healthy file is always a whole number of pages. */
  pageSize: number;
}

// Each WAL frame is a 24-byte header and one page, after the WAL's 32-byte header.
const walHeaderBytes = 32;
const walFrameHeaderBytes = 24;

export function captureIdentity(path: string, pageSize: number): FileIdentity {
  const { dev, ino } = statSync(path);
  return { dev, ino, pageSize };
}

/** Another file now stands at `path`: writes meant for the opened one must not go into it. */
export function replacedFileError(path: string): DatabaseError {
  return new DatabaseError(
    'SQLITE_READONLY_DBMOVED',
    `the database file ${JSON.stringify(path)} was replaced by another file since it was opened; reopen the repository`,
  );
}

/**
 * Throws a DatabaseError unless `path` is still the opened file. With `pageCount`
 * (the database's size in pages, read inside a transaction that holds the write
 * lock), also throws when pages of the database are in neither the file nor the
 * WAL: the file was truncated or overwritten.
 */
export function verifyFile(path: string, identity: FileIdentity, pageCount?: number): void {
  let size: number;
  try {
    const current = statSync(path);
    if (current.ino !== identity.ino || current.dev !== identity.dev) {
      throw replacedFileError(path);
    }
    // A second name made since the open: another -wal would follow writes through it (see @repo/db).
    if (current.nlink > 1) throw new DatabaseError('HARD_LINKED', hardLinked(path, current.nlink).message);
    size = current.size;
  } catch (error) {
    if (error instanceof DatabaseError) throw error;
    throw new DatabaseError('SQLITE_READONLY_DBMOVED', `the database file ${vanished(path, identity)}`, {
      cause: error,
    });
  }
  if (size % identity.pageSize !== 0) {
    throw new DatabaseError(
      'SQLITE_NOTADB',
      `the database file ${JSON.stringify(path)} was overwritten (its size, ${size} bytes, is not a whole number of ${identity.pageSize}-byte pages)`,
    );
  }
  if (pageCount === undefined) return;
  // Pages past the end of the file must be in the WAL, waiting to be checkpointed;
  // a page in neither place was cut off by someone else. (Stale frames of an older
  // WAL generation only make this estimate generous.)
  const walFrames = Math.max(
    0,
    Math.floor((walSize(path) - walHeaderBytes) / (identity.pageSize + walFrameHeaderBytes)),
  );
  if (size / identity.pageSize + walFrames < pageCount) {
    throw new DatabaseError(
      'SQLITE_CORRUPT',
      `the database file ${JSON.stringify(path)} was truncated by another program (${size} bytes on disk, ${pageCount} pages expected); restore it from a backup`,
    );
  }
}

/**
 * The database's -wal file now: its size and modification time, or undefined when
 * there is none (or it cannot be examined). Only `stat`, like everything here.
 * Shared by the file check, the lock's back-off and the checkpointer.
 */
export function walFile(path: string): { size: number; mtimeNs: bigint } | undefined {
  try {
    const stats = statSync(`${path}-wal`, { bigint: true, throwIfNoEntry: false });
    return stats === undefined ? undefined : { size: Number(stats.size), mtimeNs: stats.mtimeNs };
  } catch {
    return undefined;
  }
}

function walSize(path: string): number {
  return walFile(path)?.size ?? 0;
}

/** "was deleted" or "was renamed to ...": the open descriptor's /proc link says which (Linux); elsewhere, both. */
function vanished(path: string, identity: FileIdentity): string {
  const quoted = JSON.stringify(path);
  try {
    for (const fd of readdirSync('/proc/self/fd')) {
      const link = `/proc/self/fd/${fd}`;
      let target: { dev: number; ino: number };
      try {
        target = statSync(link);
      } catch {
        continue;
      }
      if (target.dev !== identity.dev || target.ino !== identity.ino) continue;
      const where = readlinkSync(link);
      if (where.endsWith(' (deleted)')) return `${quoted} was deleted since it was opened; reopen the repository`;
      return `${quoted} was renamed to ${JSON.stringify(where)} since it was opened; reopen the repository`;
    }
  } catch {
    // No /proc: say both.
  }
  return `${quoted} was deleted or renamed since it was opened; reopen the repository`;
}
