import { rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { prepareDatabaseFile } from '../src/prepare-file.ts';
import { runScenario } from '../src/run-scenario.ts';
import type { Mode, ScenarioResult, Target } from '../src/types.ts';
import { settings, spec, useTempDir } from './helpers.ts';

/** An insert scenario: exactly one result. */
async function runInsert(...args: Parameters<typeof runScenario>): Promise<ScenarioResult> {
  const results = await runScenario(...args);
  expect(results).toHaveLength(1);
  return results[0] as ScenarioResult;
}

const countRows = (path: string, where = '1 = 1') => {
  const sqlite = new BetterSqlite3(path, { readonly: true });
  try {
    return sqlite.prepare(`SELECT count(*) FROM metrics WHERE ${where}`).pluck().get() as number;
  } finally {
    sqlite.close();
  }
};

describe('one small scenario of each mode, both targets, real files', () => {
  const tempDir = useTempDir();
  const cases: [Mode, Target][] = [
    ['process', 'raw'],
    ['process', 'repo'],
    ['thread', 'raw'],
    ['thread', 'repo'],
    ['async', 'raw'],
    ['async', 'repo'],
  ];
  it.each(cases)('%s %s: every row acknowledged and stored, counted independently', async (mode, target) => {
    const dbPath = join(tempDir(), 'kept.db');
    const result = await runInsert(
      spec({ target, mode, writers: 3, rowsPerWriter: 4, prefill: 25 }),
      settings({ dbPath }),
    );
    expect(result).toMatchObject({
      target,
      mode,
      journal: 'wal',
      writers: 3,
      rowsPerWriter: 4,
      attempted: 12,
      acked: 12,
      failed: 0,
      errors: {},
      stored: 12,
      lost: 0,
      journalAfter: 'wal',
      integrity: 'ok',
      killed: 0,
      dbPath,
    });
    expect(result.note).toBeUndefined();
    expect(result.p50Ms).toBeGreaterThan(0);
    expect(result.maxMs).toBeGreaterThanOrEqual(result.p99Ms as number);
    expect(result.peakMemoryMb).toBeGreaterThanOrEqual(0);
    // Our own count of the kept file agrees: the 25 prefill rows are not the scenario's.
    expect(countRows(dbPath)).toBe(12 + 25);
    expect(countRows(dbPath, "name = 'harness.prefill'")).toBe(25);
    // Every row of the scenario has a distinct event id.
    expect(countRows(dbPath, 'event_id IS NOT NULL')).toBe(12);
  });

  it('a temporary file is removed afterwards unless --keep', async () => {
    const removed = await runInsert(spec({ target: 'repo', writers: 2, rowsPerWriter: 1 }), settings());
    expect(removed.dbPath).toBeUndefined();
    const kept = await runInsert(spec({ target: 'repo', writers: 2, rowsPerWriter: 1 }), settings({ keep: true }));
    expect(kept.dbPath).toMatch(/metrics\.db$/);
    expect(countRows(kept.dbPath as string)).toBe(2);
    rmSync(dirname(kept.dbPath as string), { recursive: true, force: true });
  });
});

describe('accounting from real runs', () => {
  const tempDir = useTempDir();

  /** Another program takes the file's write lock as the writers are released and holds it for `ms`. */
  const holdLockAtRelease = (path: string, ms: number) => ({
    onReleased() {
      const holder = new BetterSqlite3(path);
      holder.exec('BEGIN EXCLUSIVE');
      setTimeout(() => {
        holder.exec('COMMIT');
        holder.close();
      }, ms);
    },
  });

  it.each<Mode>(['process', 'async'])(
    'raw, busy timeout 0, %s: every insert fails with SQLITE_BUSY while the lock is held; nothing acked, nothing stored',
    async (mode) => {
      const dbPath = join(tempDir(), 'locked.db');
      const result = await runInsert(
        spec({ target: 'raw', mode, writers: 3, rowsPerWriter: 2 }),
        settings({ dbPath, busyTimeoutMs: 0 }),
        holdLockAtRelease(dbPath, 1500),
      );
      expect(result).toMatchObject({ attempted: 6, acked: 0, failed: 6, stored: 0, lost: 0, busyTimeoutMs: 0 });
      expect(result.errors).toEqual({ SQLITE_BUSY: 6 });
      expect(result.errorExamples.SQLITE_BUSY).toMatch(/locked/);
    },
  );

  it('repo under the same lock: waits for it, then stores every row', async () => {
    const dbPath = join(tempDir(), 'locked.db');
    const result = await runInsert(
      spec({ target: 'repo', mode: 'process', writers: 3, rowsPerWriter: 2 }),
      settings({ dbPath }),
      holdLockAtRelease(dbPath, 500),
    );
    expect(result).toMatchObject({ attempted: 6, acked: 6, failed: 0, stored: 6, lost: 0 });
    // Each insert waited for the lock.
    expect(result.p50Ms).toBeGreaterThan(300);
  });

  it('a scenario that overruns its timeout is stopped: its writers are killed and their rows counted as TIMEOUT', async () => {
    const dbPath = join(tempDir(), 'locked.db');
    const result = await runInsert(
      spec({ target: 'raw', mode: 'process', writers: 2, rowsPerWriter: 1 }),
      settings({ dbPath, busyTimeoutMs: 60_000, scenarioTimeoutMs: 4000 }),
      holdLockAtRelease(dbPath, 7000),
    );
    expect(result).toMatchObject({ acked: 0, failed: 2, errors: { TIMEOUT: 2 }, stored: 0, lost: 0 });
    expect(result.note).toMatch(/timed out after 4000 ms/);
  });

  it('rollback journal: raw leaves the file in delete mode, the repository switches it to WAL', async () => {
    const raw = await runInsert(spec({ target: 'raw', journal: 'delete' }), settings());
    const repo = await runInsert(spec({ target: 'repo', journal: 'delete' }), settings());
    expect([raw.journalAfter, raw.stored, raw.lost]).toEqual(['delete', 6, 0]);
    expect([repo.journalAfter, repo.stored, repo.lost]).toEqual(['wal', 6, 0]);
  });

  it('--chaos kill: writers die mid-way, readers read all along; every acknowledged row is in the file, which passes integrity_check', async () => {
    const result = await runInsert(
      spec({ target: 'repo', mode: 'process', writers: 4, rowsPerWriter: 80, chaos: 'kill', readers: 2 }),
      settings(),
    );
    expect(result.reads?.reads).toBeGreaterThan(0);
    expect(result.reads).toMatchObject({ failed: 0, errors: {} });
    expect(result.killed).toBeGreaterThanOrEqual(1);
    expect(result.acked).toBeLessThan(result.attempted);
    expect(result).toMatchObject({ failed: 0, lost: 0, integrity: 'ok' });
    // A writer can commit and die before its acknowledgement reaches the parent: stored >= acked.
    expect(result.stored).toBeGreaterThanOrEqual(result.acked);
  });

  it('the file is prepared once, before the writers, in the requested journal mode', () => {
    const path = join(tempDir(), 'prepared.db');
    prepareDatabaseFile(path, 'delete', 2500);
    const sqlite = new BetterSqlite3(path, { readonly: true });
    expect(sqlite.pragma('journal_mode', { simple: true })).toBe('delete');
    expect(sqlite.prepare('SELECT count(*) FROM metrics').pluck().get()).toBe(2500);
    sqlite.close();
  });
});

describe('the mixed scenario: repository writers, raw writers and readers on one file at once', () => {
  const useTempDirOnce = useTempDir();
  it.each<Mode>(['process', 'thread'])(
    '%s: each kind of writer counted apart, acknowledged = stored, no error, integrity ok, readers read',
    async (mode) => {
      const results = await runScenario(
        spec({ scenario: 'mixed', target: 'repo', mode, writers: 3, rowsPerWriter: 15, readers: 2 }),
        settings(),
      );
      expect(results.map((r) => r.target)).toEqual(['repo', 'raw']);
      for (const result of results) {
        expect(result).toMatchObject({
          scenario: 'mixed',
          mode,
          writers: 3,
          attempted: 45,
          acked: 45,
          failed: 0,
          errors: {},
          stored: 45,
          lost: 0,
          integrity: 'ok',
          readers: 2,
        });
        expect(result.note).toBeUndefined();
      }
      // One set of readers for the whole file, shared by both results.
      const reads = results[0]?.reads;
      expect(reads?.reads).toBeGreaterThan(0);
      expect(reads).toMatchObject({ failed: 0, errors: {} });
      expect(results[1]?.reads).toEqual(reads);
    },
  );

  it('each kind has its own name in the file: a kept file holds exactly each kind’s acknowledged rows under it', async () => {
    const dbPath = join(useTempDirOnce(), 'mixed.db');
    const [repo, raw] = await runScenario(
      spec({ scenario: 'mixed', target: 'repo', mode: 'process', writers: 2, rowsPerWriter: 5, readers: 1 }),
      settings({ dbPath }),
    );
    expect(countRows(dbPath, "name LIKE 'harness.%.repo'")).toBe(repo?.acked);
    expect(countRows(dbPath, "name LIKE 'harness.%.raw'")).toBe(raw?.acked);
    expect(countRows(dbPath)).toBe(20);
  });
});
