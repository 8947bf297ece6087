import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, renameSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { migrationsFolder } from '@repo/db';
import { launch } from '@repo/launcher';
import BetterSqlite3 from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { DatabaseError, LockTimeoutError, type MetricsRepo, OpenDatabaseError, openMetricsRepo } from '../src/index.ts';
import type { InsertWorkerInput, InsertWorkerResult } from './fixtures/insert-worker.ts';
import { elsewhere, settleAll, storedRows, useTempDatabase } from './helpers.ts';

const insertWorker = join(import.meta.dirname, 'fixtures', 'insert-worker.ts');

function storedIds(path: string): Set<number> {
  const sqlite = new BetterSqlite3(path, { readonly: true });
  try {
    return new Set(sqlite.prepare('SELECT id FROM metrics').pluck().all() as number[]);
  } finally {
    sqlite.close();
  }
}

function integrityCheck(path: string): unknown {
  const sqlite = new BetterSqlite3(path);
  try {
    return sqlite.pragma('integrity_check', { simple: true });
  } finally {
    sqlite.close();
  }
}

function collectUnhandledRejections(): unknown[] {
  const seen: unknown[] = [];
  const listener = (reason: unknown) => seen.push(reason);
  process.on('unhandledRejection', listener);
  afterEach(() => {
    process.off('unhandledRejection', listener);
  });
  return seen;
}

describe('faults', () => {
  const tempDatabase = useTempDatabase();

  it('killed writers: every acknowledged row survives SIGKILL, the file is intact, the others carry on', async () => {
    const path = tempDatabase();
    await (await openMetricsRepo({ path })).close();
    const victims = 4;
    const acknowledged = new Set<number>();
    const fleet = await launch<InsertWorkerInput, InsertWorkerResult, number[]>({
      entry: insertWorker,
      kind: 'process',
      count: victims + 2,
      input: (index) =>
        index < victims
          ? { path, rows: 200, waves: Number.POSITIVE_INFINITY, reportEvery: 1 }
          : { path, rows: 2000, waves: 3 },
      onProgress: (_, ids) => {
        for (const id of ids) acknowledged.add(id);
      },
    });
    const running = fleet.run({ timeoutMs: 60_000 });
    for (let victim = 0; victim < victims; victim++) {
      setTimeout(() => fleet.kill(victim), 150 + Math.random() * 600);
    }
    const outcomes = await running;

    for (const outcome of outcomes.slice(0, victims)) {
      expect(outcome).toMatchObject({
        ok: false,
        phase: 'run',
        error: { message: expect.stringContaining('SIGKILL') },
      });
    }
    for (const outcome of outcomes.slice(victims)) {
      if (!outcome.ok) throw new Error(`survivor ${outcome.index} failed: ${outcome.error.message}`);
      expect(outcome.result).toMatchObject({ acked: 6000, failed: 0, errorCodes: {} });
      for (const id of outcome.result.ids) acknowledged.add(id);
    }
    expect(acknowledged.size).toBeGreaterThan(12_000);
    const stored = storedIds(path);
    const lost = [...acknowledged].filter((id) => !stored.has(id));
    expect(lost).toEqual([]);
    expect(integrityCheck(path)).toBe('ok');
    // A new writer opens the file (recovering its WAL) and writes.
    const after = await openMetricsRepo({ path });
    await expect(after.insert({ name: 'after.crash', value: 1 })).resolves.toBeDefined();
    await after.close();
  });

  it('a foreign program holding an exclusive lock past the deadline: timely LockTimeoutError, nothing half-written, then recovery', async () => {
    const path = tempDatabase();
    const repo = await openMetricsRepo({ path, lockTimeoutMs: 400 });
    const betterSqlite3 = createRequire(import.meta.url).resolve('better-sqlite3');
    // Another program, in its own process: it writes a row inside an exclusive transaction and never commits it.
    const holder = spawn(
      process.execPath,
      [
        '-e',
        [
          `const Database = require(${JSON.stringify(betterSqlite3)});`,
          `const db = new Database(${JSON.stringify(path)});`,
          `db.exec('BEGIN EXCLUSIVE'); db.prepare("INSERT INTO metrics (name, value, recorded_at) VALUES ('uncommitted', 1, 0)").run();`,
          `process.send('locked'); setTimeout(() => { db.exec('ROLLBACK'); db.close(); process.exit(0); }, 1500);`,
        ].join('\n'),
      ],
      { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] },
    );
    await new Promise<void>((resolve, reject) => {
      holder.once('message', () => resolve());
      holder.once('exit', (code) => reject(new Error(`lock holder exited early (${code})`)));
    });
    const started = Date.now();
    const { values, errors } = await settleAll<unknown>([
      repo.insert({ name: 'single', value: 1 }),
      repo.insertMany(Array.from({ length: 100 }, (_, i) => ({ name: 'many', value: i }))),
    ]);
    expect(Date.now() - started).toBeLessThan(1500);
    expect(values).toEqual([]);
    for (const error of errors) expect(error).toBeInstanceOf(LockTimeoutError);
    await new Promise((resolve) => holder.once('exit', resolve));
    expect(storedRows(path)).toBe(0);
    await expect(repo.insertMany([{ name: 'after', value: 1 }])).resolves.toHaveLength(1);
    await repo.close();
  });

  describe('disk full', () => {
    /** Inserts waves of large rows until SQLite reports a full disk; returns what was acknowledged. */
    async function fillUntilFull(repo: MetricsRepo): Promise<{ ackedIds: number[]; errors: unknown[] }> {
      const big = { a: 'x'.repeat(1000), b: 'y'.repeat(1000) };
      const ackedIds: number[] = [];
      for (let wave = 0; wave < 500; wave++) {
        const { values, errors } = await settleAll(
          Array.from({ length: 20 }, (_, i) => repo.insert({ name: 'fill', value: i, labels: big })),
        );
        ackedIds.push(...values.map((row) => row.id));
        if (errors.length > 0) return { ackedIds, errors };
      }
      throw new Error('the disk never filled up');
    }

    it('simulated with max_page_count: SQLITE_FULL for the affected callers, nothing acknowledged lost, recovery once space is back', async () => {
      const path = tempDatabase();
      const repo = await openMetricsRepo({ path });
      const sqlite = repo.db.$client;
      const pages = sqlite.pragma('page_count', { simple: true }) as number;
      sqlite.pragma(`max_page_count = ${pages + 40}`);
      const { ackedIds, errors } = await fillUntilFull(repo);
      for (const error of errors) expect(error).toMatchObject({ code: 'DATABASE_ERROR', sqliteCode: 'SQLITE_FULL' });
      expect(ackedIds.length).toBeGreaterThan(0);
      sqlite.pragma('max_page_count = 1073741823');
      await expect(repo.insert({ name: 'after', value: 1 })).resolves.toMatchObject({ name: 'after' });
      await repo.close();
      const stored = storedIds(path);
      expect(ackedIds.filter((id) => !stored.has(id))).toEqual([]);
      expect(stored.size).toBe(ackedIds.length + 1);
      expect(integrityCheck(path)).toBe('ok');
    });

    it('for real, on a small tmpfs: SQLITE_FULL, nothing acknowledged lost, recovery once space is freed', async (context) => {
      const dir = mkdtempSync(join(tmpdir(), 'metrics-repo-tmpfs-'));
      try {
        execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', dir], { stdio: 'pipe' });
      } catch (error) {
        rmSync(dir, { recursive: true, force: true });
        context.skip(`mounting a tmpfs is not permitted here (${(error as Error).message.split('\n')[0]})`);
        return;
      }
      try {
        const path = join(dir, 'metrics.db');
        const repo = await openMetricsRepo({ path });
        // fd-safe: a filler file beside the database, never opened by SQLite
        writeFileSync(join(dir, 'filler'), Buffer.alloc(400_000));
        const { ackedIds, errors } = await fillUntilFull(repo);
        for (const error of errors) expect(error).toMatchObject({ code: 'DATABASE_ERROR', sqliteCode: 'SQLITE_FULL' });
        unlinkSync(join(dir, 'filler'));
        await expect(repo.insert({ name: 'after', value: 1 })).resolves.toMatchObject({ name: 'after' });
        await repo.close();
        const stored = storedIds(path);
        expect(ackedIds.filter((id) => !stored.has(id))).toEqual([]);
        expect(integrityCheck(path)).toBe('ok');
      } finally {
        execFileSync('umount', [dir]);
        rmSync(dir, { recursive: true, force: true });
      }
    });
  });

  describe('file problems while open', () => {
    const unhandled = collectUnhandledRejections();

    it.each([
      ['deleted', (path: string) => unlinkSync(path), 'SQLITE_READONLY_DBMOVED'],
      [
        'replaced by garbage',
        (path: string) => {
          // fd-safe: a new file, not yet the database
          writeFileSync(`${path}.new`, 'not a database'.repeat(100));
          renameSync(`${path}.new`, path);
        },
        'SQLITE_READONLY_DBMOVED',
      ],
      [
        'overwritten with garbage in place',
        (path: string) => elsewhere.overwrite(path, 'garbage'.repeat(1000)),
        'SQLITE_NOTADB',
      ],
    ] as const)(
      'the file %s: writes fail with a clear DatabaseError, nothing is acknowledged into the void',
      async (_, damage, sqliteCode) => {
        const path = tempDatabase();
        const repo = await openMetricsRepo({ path });
        await repo.insert({ name: 'before', value: 1 });
        damage(path);
        const { values, errors } = await settleAll<unknown>([
          repo.insert({ name: 'after', value: 1 }),
          repo.insertMany([{ name: 'after', value: 2 }]),
        ]);
        expect(values).toEqual([]);
        for (const error of errors) {
          expect(error).toBeInstanceOf(DatabaseError);
          expect(error).toMatchObject({ sqliteCode });
          expect((error as Error).message).toContain(path);
        }
        await repo.close();
        expect(unhandled).toEqual([]);
      },
    );

    it('made read-only while open: every acknowledged row is in the file, failures are clear errors', async (context) => {
      const path = tempDatabase();
      const repo = await openMetricsRepo({ path });
      await repo.insert({ name: 'before', value: 1 });
      try {
        // The immutable attribute binds root too (permission bits do not).
        execFileSync('chattr', ['+i', path], { stdio: 'pipe' });
      } catch (error) {
        await repo.close();
        context.skip(`chattr +i is not available here (${(error as Error).message.split('\n')[0]})`);
        return;
      }
      try {
        const { values, errors } = await settleAll(
          Array.from({ length: 50 }, (_, i) => repo.insert({ name: 'ro', value: i })),
        );
        for (const error of errors) expect(error).toBeInstanceOf(DatabaseError);
        await repo.close().catch(() => undefined);
        const stored = storedIds(path);
        expect(values.filter((row) => !stored.has(row.id))).toEqual([]);
      } finally {
        execFileSync('chattr', ['-i', path]);
      }
      expect(unhandled).toEqual([]);
    });

    it('a missing directory is created at open; an impossible one is a clear OpenDatabaseError', async () => {
      const base = tempDatabase();
      const repo = await openMetricsRepo({ path: join(base, '..', 'new', 'dirs', 'metrics.db') });
      await expect(repo.insert({ name: 'a', value: 1 })).resolves.toBeDefined();
      await repo.close();
      // fd-safe: a plain file in the way of the directory, never a database
      writeFileSync(base, 'a file where a directory should be');
      const impossible = join(base, 'sub', 'metrics.db');
      const error = await openMetricsRepo({ path: impossible }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(OpenDatabaseError);
      expect(error).toMatchObject({ code: 'DIRECTORY_NOT_CREATABLE', path: impossible });
    });
  });

  it('many processes opening a fresh file at once while others are already inserting: no error, schema applied once', async () => {
    const path = tempDatabase();
    const early = await launch<InsertWorkerInput, InsertWorkerResult>({
      entry: insertWorker,
      kind: 'process',
      count: 4,
      input: () => ({ path, rows: 500, waves: 6, openInRun: true }),
    });
    const late = await launch<InsertWorkerInput, InsertWorkerResult>({
      entry: insertWorker,
      kind: 'process',
      count: 24,
      input: () => ({ path, rows: 100, openInRun: true }),
    });
    // Released together: 28 processes open the fresh file at once; 4 of them then insert in waves while the others finish.
    const earlyRun = early.run();
    const lateRun = late.run();
    const outcomes = [...(await earlyRun), ...(await lateRun)];
    const results = outcomes.map((outcome) => {
      if (!outcome.ok) throw new Error(`writer ${outcome.index} failed: ${outcome.error.message}`);
      return outcome.result;
    });
    expect(results.every((result) => result.failed === 0)).toBe(true);
    const acked = results.reduce((sum, result) => sum + result.acked, 0);
    expect(acked).toBe(4 * 500 * 6 + 24 * 100);
    expect(storedRows(path)).toBe(acked);
    const sqlite = new BetterSqlite3(path, { readonly: true });
    // Every migration, each applied once.
    expect(sqlite.prepare('SELECT count(*) FROM __drizzle_migrations').pluck().get()).toBe(
      readdirSync(migrationsFolder).filter((name) => name.endsWith('.sql')).length,
    );
    sqlite.close();
  });

  describe('shutdown', () => {
    it('close() during heavy load commits every accepted row', async () => {
      const path = tempDatabase();
      const repo = await openMetricsRepo({ path });
      const inserts = Array.from({ length: 30_000 }, (_, i) => repo.insert({ name: 'load', value: i }));
      await repo.close();
      const outcomes = await Promise.allSettled(inserts);
      expect(outcomes.every((outcome) => outcome.status === 'fulfilled')).toBe(true);
      expect(storedRows(path)).toBe(30_000);
    });

    it('SIGTERM: a process that closes the repository on SIGTERM commits everything it accepted before exiting', async () => {
      const path = tempDatabase();
      await (await openMetricsRepo({ path })).close();
      const acknowledged = new Set<number>();
      const fleet = await launch<InsertWorkerInput, InsertWorkerResult, number[]>({
        entry: insertWorker,
        kind: 'process',
        count: 3,
        input: () => ({ path, rows: 500, waves: Number.POSITIVE_INFINITY, reportEvery: 50, closeOnSigterm: true }),
        onProgress: (_, ids) => {
          for (const id of ids) acknowledged.add(id);
        },
      });
      const running = fleet.run({ timeoutMs: 60_000 });
      setTimeout(() => {
        for (let i = 0; i < 3; i++) fleet.kill(i, 'SIGTERM');
      }, 500);
      const outcomes = await running;
      let acked = 0;
      for (const outcome of outcomes) {
        if (!outcome.ok) throw new Error(`writer ${outcome.index} failed: ${outcome.error.message}`);
        expect(outcome.result.failed).toBe(0);
        acked += outcome.result.acked;
      }
      expect(acknowledged.size).toBe(acked);
      // Stored = acknowledged: nothing accepted was dropped at exit, nothing unacknowledged slipped in.
      expect(storedRows(path)).toBe(acked);
    });
  });
});
