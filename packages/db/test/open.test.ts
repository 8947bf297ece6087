import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { useTempDir } from '@repo/testkit';
import { describe, expect, it } from 'vitest';
import journal from '../drizzle/meta/_journal.json' with { type: 'json' };
import { metrics, migrationsFolder, openDatabase } from '../src/index.ts';

/** Every migration drizzle-kit generated: a fresh file gets them all. */
const migrationCount = journal.entries.length;

describe('openDatabase', () => {
  const tempDir = useTempDir();

  it('switches a new file to WAL once another process lets go of its write lock, within the busy timeout', async () => {
    const path = join(tempDir(), 'metrics.db');
    // Another process creates the file (rollback journal) and holds its write lock for 400 ms. The
    // switch to WAL must upgrade a read transaction, which SQLite refuses at once, busy timeout or not.
    const holder = spawn(
      process.execPath,
      [
        '-e',
        `const db = new (require('better-sqlite3'))(${JSON.stringify(path)});
         db.exec('BEGIN IMMEDIATE');
         console.log('held');
         setTimeout(() => { db.exec('COMMIT'); db.close(); }, 400);`,
      ],
      { cwd: join(import.meta.dirname, '..'), stdio: ['ignore', 'pipe', 'inherit'] },
    );
    const exited = new Promise((resolve) => holder.on('exit', resolve));
    await new Promise<void>((resolve) => holder.stdout.once('data', () => resolve()));
    const opened = openDatabase(path, { busyTimeoutMs: 5000 });
    try {
      expect(opened.sqlite.pragma('journal_mode', { simple: true })).toBe('wal');
      expect(opened.migrations.applied).toBe(migrationCount);
    } finally {
      opened.close();
    }
    expect(await exited).toBe(0);
  });

  it('creates missing parent directories, applies the schema and the production PRAGMAs', () => {
    const path = join(tempDir(), 'nested', 'deeper', 'metrics.db');
    const opened = openDatabase(path);
    try {
      expect(existsSync(path)).toBe(true);
      expect(opened.path).toBe(path);
      expect(opened.migrations.applied).toBe(migrationCount);
      const pragma = (name: string) => opened.sqlite.pragma(name, { simple: true });
      expect(pragma('journal_mode')).toBe('wal');
      expect(pragma('synchronous')).toBe(1); // NORMAL
      expect(pragma('busy_timeout')).toBe(5000);
      expect(pragma('journal_size_limit')).toBe(67_108_864);
      expect(pragma('foreign_keys')).toBe(1);
      expect(pragma('temp_store')).toBe(2); // MEMORY
      expect(pragma('cache_size')).toBe(2000);
      const indexes = opened.sqlite
        .prepare(`SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'metrics' ORDER BY name`)
        .pluck()
        .all();
      expect(indexes).toEqual(expect.arrayContaining(['metrics_event_id_unique', 'metrics_name_recorded_at_idx']));
    } finally {
      opened.close();
    }
  });

  it('returns a typed Drizzle database that round-trips a metric', () => {
    const opened = openDatabase(join(tempDir(), 'metrics.db'));
    try {
      const recordedAt = new Date('2026-01-02T03:04:05.678Z');
      const [row] = opened.db
        .insert(metrics)
        .values({ name: 'job.duration_ms', value: 12.5, recordedAt, labels: { host: 'a' }, eventId: 'e-1' })
        .returning()
        .all();
      expect(row).toEqual({
        id: 1,
        name: 'job.duration_ms',
        value: 12.5,
        recordedAt,
        labels: { host: 'a' },
        eventId: 'e-1',
      });
    } finally {
      opened.close();
    }
  });

  it('honours the synchronous, journal mode and busy timeout options', () => {
    const opened = openDatabase(join(tempDir(), 'metrics.db'), {
      synchronous: 'full',
      journalMode: 'delete',
      busyTimeoutMs: 250,
    });
    try {
      expect(opened.sqlite.pragma('synchronous', { simple: true })).toBe(2);
      expect(opened.sqlite.pragma('journal_mode', { simple: true })).toBe('delete');
      expect(opened.sqlite.pragma('busy_timeout', { simple: true })).toBe(250);
      expect(opened.journalMode).toBe('delete');
    } finally {
      opened.close();
    }
  });

  it('applies nothing when reopened, and keeps the rows', () => {
    const path = join(tempDir(), 'metrics.db');
    const first = openDatabase(path);
    first.db.insert(metrics).values({ name: 'a', value: 1, recordedAt: new Date() }).run();
    first.close();
    const second = openDatabase(path);
    try {
      expect(second.migrations.applied).toBe(0);
      expect(second.sqlite.prepare('SELECT count(*) FROM metrics').pluck().get()).toBe(1);
      expect(second.sqlite.prepare('SELECT count(*) FROM __drizzle_migrations').pluck().get()).toBe(migrationCount);
    } finally {
      second.close();
    }
  });

  it('rejects an invalid busy timeout before touching the disk', () => {
    const path = join(tempDir(), 'metrics.db');
    expect(() => openDatabase(path, { busyTimeoutMs: -1 })).toThrow(RangeError);
    expect(existsSync(path)).toBe(false);
  });

  it('exports the migrations folder', () => {
    expect(existsSync(join(migrationsFolder, 'meta', '_journal.json'))).toBe(true);
  });
});
