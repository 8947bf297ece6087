import { execFileSync } from 'node:child_process';
import {
  chmodSync,
  existsSync,
  linkSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { useTempDir } from '@repo/testkit';
import { afterEach, describe, expect, it } from 'vitest';
import { OpenDatabaseError, openDatabase, resolveDatabasePath } from '../src/index.ts';

function openError(path: string): OpenDatabaseError {
  try {
    openDatabase(path).close();
  } catch (error) {
    expect(error).toBeInstanceOf(OpenDatabaseError);
    return error as OpenDatabaseError;
  }
  throw new Error(`expected openDatabase(${path}) to fail`);
}

function sidecarsOf(path: string): string[] {
  return ['-wal', '-shm', '-journal'].map((suffix) => path + suffix).filter((file) => existsSync(file));
}

describe('openDatabase with bad files', () => {
  const tempDir = useTempDir();
  const immutable: string[] = [];
  afterEach(() => {
    for (const file of immutable.splice(0)) execFileSync('chattr', ['-i', file]);
  });

  it('one file, one name: a symlink to the file or its directory, and a relative path, all resolve to the real path', () => {
    const root = tempDir();
    mkdirSync(join(root, 'real'));
    const path = join(root, 'real', 'metrics.db');
    openDatabase(path).close();
    symlinkSync(path, join(root, 'link.db'));
    symlinkSync(join(root, 'real'), join(root, 'dir-link'));
    const names = [join(root, 'link.db'), join(root, 'dir-link', 'metrics.db'), join(root, 'real', '.', 'metrics.db')];
    for (const name of names) expect(resolveDatabasePath(name)).toBe(path);
    const opened = openDatabase(join(root, 'link.db'));
    try {
      expect(opened.path).toBe(path);
      opened.sqlite.exec("INSERT INTO metrics (name, value, recorded_at) VALUES ('x', 1, 0)");
      // SQLite put its -wal beside the target, where the real path says.
      expect(existsSync(`${path}-wal`)).toBe(true);
      expect(existsSync(join(root, 'link.db-wal'))).toBe(false);
    } finally {
      opened.close();
    }
    // Not created yet, in a linked directory: the directory's real path and the name.
    expect(resolveDatabasePath(join(root, 'dir-link', 'new.db'))).toBe(join(root, 'real', 'new.db'));
  });

  it('refuses a file with two names (hard links): SQLite would keep a -wal per name', () => {
    const path = join(tempDir(), 'metrics.db');
    openDatabase(path).close();
    linkSync(path, `${path}.other-name`);
    const error = openError(path);
    expect(error.code).toBe('HARD_LINKED');
    expect(error.message).toMatch(/2 names \(hard links\)/);
    expect(openError(`${path}.other-name`).code).toBe('HARD_LINKED');
  });

  it('refuses a symbolic link to nothing, and creates nothing at its target', () => {
    const root = tempDir();
    symlinkSync(join(root, 'missing.db'), join(root, 'dangling.db'));
    expect(openError(join(root, 'dangling.db')).code).toBe('NOT_A_FILE');
    expect(existsSync(join(root, 'missing.db'))).toBe(false);
  });

  it('names the path when the directory cannot be created', () => {
    const blocker = join(tempDir(), 'a-file');
    // fd-safe: a plain file in the way of a directory, never opened by SQLite
    writeFileSync(blocker, 'not a directory');
    const path = join(blocker, 'sub', 'metrics.db');
    const error = openError(path);
    expect(error.code).toBe('DIRECTORY_NOT_CREATABLE');
    expect(error.path).toBe(path);
    expect(error.message).toContain(path);
    expect(error.message).toContain('ENOTDIR');
    // fd-safe: no connection is open: openDatabase failed
    expect(readFileSync(blocker, 'utf8')).toBe('not a directory');
  });

  it('refuses a file that is not a SQLite database and leaves it untouched', () => {
    const path = join(tempDir(), 'notes.db');
    const content = 'these are my notes, not a database\n'.repeat(200);
    // fd-safe: written before any connection opens it
    writeFileSync(path, content);
    const error = openError(path);
    expect(error.code).toBe('NOT_A_DATABASE');
    expect(error.sqliteCode).toBe('SQLITE_NOTADB');
    expect(error.message).toContain(path);
    // fd-safe: no connection is open: openDatabase failed
    expect(readFileSync(path, 'utf8')).toBe(content);
    expect(sidecarsOf(path)).toEqual([]);
  });

  it('refuses a read-only file and leaves it untouched', (context) => {
    const path = join(tempDir(), 'metrics.db');
    openDatabase(path).close();
    // fd-safe: read before any connection opens it
    const before = readFileSync(path);
    if (process.getuid?.() === 0) {
      // root ignores permission bits; the immutable attribute binds root too.
      try {
        execFileSync('chattr', ['+i', path], { stdio: 'pipe' });
      } catch (error) {
        context.skip(`running as root and chattr +i is not available (${(error as Error).message.split('\n')[0]})`);
        return;
      }
      immutable.push(path);
    } else {
      chmodSync(path, 0o444);
    }
    const error = openError(path);
    expect(error.code).toBe('READ_ONLY');
    expect(error.message).toContain(path);
    // fd-safe: no connection is open: openDatabase failed
    expect(readFileSync(path).equals(before)).toBe(true);
  });

  it('refuses a database whose schema is newer than the code, without changing it', () => {
    const path = join(tempDir(), 'metrics.db');
    const opened = openDatabase(path);
    const future = Date.now() + 365 * 24 * 3600 * 1000;
    // What `drizzle-kit migrate` from newer code does: a schema change and its bookkeeping row.
    opened.sqlite.exec('BEGIN');
    opened.sqlite.exec('ALTER TABLE metrics ADD COLUMN unit text');
    opened.sqlite
      .prepare('INSERT INTO __drizzle_migrations (hash, created_at) VALUES (?, ?)')
      .run('from-the-future', future);
    opened.sqlite.exec('COMMIT');
    opened.sqlite.pragma('wal_checkpoint(TRUNCATE)');
    opened.close();
    // fd-safe: read before any connection opens it
    const before = readFileSync(path);
    const error = openError(path);
    expect(error.code).toBe('SCHEMA_TOO_NEW');
    expect(error.message).toContain(path);
    expect(error.message).toContain('newer than this code');
    // fd-safe: no connection is open: openDatabase failed
    expect(readFileSync(path).equals(before)).toBe(true);
  });

  describe('a table changed by hand while the journal says it is up to date', () => {
    function driftedFile(journalMode: 'wal' | 'delete'): string {
      const path = join(tempDir(), 'metrics.db');
      const opened = openDatabase(path, { journalMode });
      opened.sqlite.exec('ALTER TABLE metrics RENAME COLUMN labels TO tags');
      if (journalMode === 'wal') opened.sqlite.pragma('wal_checkpoint(TRUNCATE)');
      opened.close();
      return path;
    }

    it('is refused with SCHEMA_MISMATCH naming the missing column, the file untouched (not even switched to WAL)', () => {
      const path = driftedFile('delete');
      // fd-safe: read while no connection is open
      const before = readFileSync(path);
      const error = openError(path);
      expect(error.code).toBe('SCHEMA_MISMATCH');
      expect(error.message).toContain('"labels"');
      expect(error.message).toContain(path);
      // fd-safe: no connection is open: openDatabase failed
      expect(readFileSync(path).equals(before)).toBe(true);
      expect(sidecarsOf(path)).toEqual([]);
    });

    it('closes its connection every time: 300 refused opens leave no descriptor behind', () => {
      const path = driftedFile('wal');
      const descriptors = () => readdirSync('/proc/self/fd').length;
      openError(path);
      const before = descriptors();
      for (let i = 0; i < 300; i++) openError(path);
      expect(descriptors()).toBe(before);
    });
  });
});
