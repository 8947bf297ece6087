import { closeSync, openSync, readSync, statSync } from 'node:fs';
import { DatabaseError } from './errors.ts';

/** Which file a connection has open: the inode at the path when it was opened. */
export interface FileIdentity {
  dev: number;
  ino: number;
}

const sqliteMagic = Buffer.from('SQLite format 3\u0000', 'latin1');

export function captureIdentity(path: string): FileIdentity {
  const { dev, ino } = statSync(path);
  return { dev, ino };
}

/**
 * Throws unless `path` is still the file the connection has open and still looks
 * like a SQLite database.
 *
 * In WAL mode SQLite keeps writing through its open descriptors when the file
 * is deleted or replaced behind its back: every commit "succeeds" into an
 * inode nobody will read again. Checking once per transaction (a stat and a
 * 16-byte read, a few microseconds) turns that silent loss into an error for
 * the callers whose rows would have gone there.
 */
export function verifyIdentity(path: string, identity: FileIdentity): void {
  let current: FileIdentity;
  try {
    current = statSync(path);
  } catch (error) {
    throw new DatabaseError(
      'SQLITE_READONLY_DBMOVED',
      `the database file ${JSON.stringify(path)} was deleted since it was opened; reopen the repository`,
      {
        cause: error,
      },
    );
  }
  if (current.ino !== identity.ino || current.dev !== identity.dev) {
    throw new DatabaseError(
      'SQLITE_READONLY_DBMOVED',
      `the database file ${JSON.stringify(path)} was replaced by another file since it was opened; reopen the repository`,
    );
  }
  const header = Buffer.alloc(sqliteMagic.length);
  const fd = openSync(path, 'r');
  let bytes: number;
  try {
    bytes = readSync(fd, header, 0, header.length, 0);
  } finally {
    closeSync(fd);
  }
  // A WAL database whose first pages were never checkpointed is still empty on disk: that is fine.
  if (bytes > 0 && !header.subarray(0, bytes).equals(sqliteMagic.subarray(0, bytes))) {
    throw new DatabaseError(
      'SQLITE_NOTADB',
      `the database file ${JSON.stringify(path)} was overwritten with something that is not a SQLite database`,
    );
  }
}
