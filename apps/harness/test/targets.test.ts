import { join } from 'node:path';
import { OpenDatabaseError, openDatabase } from '@repo/db';
import { DatabaseError, LockTimeoutError } from '@repo/metrics-repo';
import BetterSqlite3 from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { chooseVictims } from '../src/chaos-kill.ts';
import { openRawConnection, writeRawRows } from '../src/targets/raw-writer.ts';
import { errorCodeOf, WriterTally } from '../src/targets/tally.ts';
import type { WriterInput } from '../src/targets/writer-input.ts';
import { useTempDir } from './helpers.ts';

const input = (path: string, overrides: Partial<WriterInput> = {}): WriterInput => ({
  target: 'raw',
  path,
  journal: 'delete',
  busyTimeoutMs: 0,
  lockTimeoutMs: 30_000,
  rows: 3,
  rowName: 'test.row',
  eventPrefix: 'test',
  oneAtATime: false,
  reopenEachRow: false,
  reportEachRow: false,
  releaseDeadline: Date.now() + 60_000,
  ...overrides,
});

describe('raw writer', () => {
  const tempDir = useTempDir();

  it('an open that fails (lock held, busy timeout 0) fails that writer’s rows with OPEN_BUSY, and does not throw', async () => {
    const path = join(tempDir(), 'm.db');
    openDatabase(path, { journalMode: 'delete' }).close();
    // In rollback-journal mode an exclusive lock keeps even readers out, so opening cannot read the schema.
    const holder = new BetterSqlite3(path);
    holder.exec('BEGIN EXCLUSIVE');
    try {
      const connection = openRawConnection(input(path));
      expect('openError' in connection && connection.openError).toBeInstanceOf(OpenDatabaseError);
      const tally = new WriterTally();
      await writeRawRows(connection, input(path), 0, tally);
      expect(tally.result(undefined)).toMatchObject({ acked: 0, failed: 3, errors: { OPEN_BUSY: 3 }, latenciesMs: [] });
    } finally {
      holder.exec('ROLLBACK');
      holder.close();
    }
  });

  it('reports each row as it happens when asked (for --chaos kill)', async () => {
    const path = join(tempDir(), 'm.db');
    openDatabase(path).close();
    const events: unknown[] = [];
    const tally = new WriterTally((event) => events.push(event));
    await writeRawRows(openRawConnection(input(path, { journal: 'wal' })), input(path, { journal: 'wal' }), 7, tally);
    expect(events).toEqual([0, 1, 2].map((row) => expect.objectContaining({ ok: true, eventId: `test.7.${row}` })));
  });
});

describe('errorCodeOf', () => {
  it('names every failure by a stable code', () => {
    expect(errorCodeOf(Object.assign(new Error('database is locked'), { code: 'SQLITE_BUSY' }))).toBe('SQLITE_BUSY');
    expect(errorCodeOf(new OpenDatabaseError('BUSY', '/x.db', 'locked'))).toBe('OPEN_BUSY');
    expect(errorCodeOf(new LockTimeoutError('/x.db', 30_000))).toBe('LOCK_TIMEOUT');
    expect(errorCodeOf(new DatabaseError('SQLITE_FULL', 'database or disk is full'))).toBe(
      'DATABASE_ERROR(SQLITE_FULL)',
    );
    expect(errorCodeOf(new TypeError('x'))).toBe('TypeError');
    expect(errorCodeOf('a string')).toBe('UNKNOWN');
  });
});

describe('chooseVictims', () => {
  it('half of the writers (at least one), each killed after 1 to half of its rows', () => {
    let seed = 1;
    const random = () => {
      seed = (seed * 16807) % 2147483647;
      return seed / 2147483647;
    };
    const victims = chooseVictims(10, 50, random);
    expect(victims.size).toBe(5);
    for (const [index, after] of victims) {
      expect(index).toBeGreaterThanOrEqual(0);
      expect(index).toBeLessThan(10);
      expect(after).toBeGreaterThanOrEqual(1);
      expect(after).toBeLessThanOrEqual(25);
    }
    expect(chooseVictims(1, 2).size).toBe(1);
    expect([...chooseVictims(1, 2).values()]).toEqual([1]);
  });
});
