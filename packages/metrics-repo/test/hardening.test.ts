import { execFile } from 'node:child_process';
import { readdirSync, readFileSync, renameSync, statSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { runInNewContext } from 'node:vm';
import { launch } from '@repo/launcher';
import BetterSqlite3 from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import {
  DatabaseError,
  InvalidFilterError,
  InvalidOptionError,
  LockTimeoutError,
  OpenDatabaseError,
  openMetricsRepo,
  QueueFullError,
} from '../src/index.ts';
import type { DamagedFileResult } from './fixtures/damaged-file-worker.ts';
import { startForeign } from './foreign.ts';
import { elsewhere, holdWriteLock, settleAll, storedRows, useTempDatabase } from './helpers.ts';

// One section per class of fault found by trying the public API as a hostile user would (issue 14).

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Samples the event loop's delay while `work` runs; returns the longest stall in ms. */
async function longestStall(work: () => Promise<void>): Promise<number> {
  const histogram = monitorEventLoopDelay({ resolution: 1 });
  histogram.enable();
  await sleep(20);
  try {
    await work();
    // A stall that ended just now is recorded by the histogram's next tick: let it come.
    await sleep(20);
  } finally {
    histogram.disable();
  }
  return histogram.max / 1e6;
}

describe('hardening', () => {
  const tempDatabase = useTempDatabase();

  describe('damaged file', () => {
    it('a file truncated under an open repository: count() and inserts fail with DatabaseError, the process lives, nothing is acknowledged', async () => {
      const path = tempDatabase();
      const fleet = await launch<{ path: string }, DamagedFileResult>({
        entry: join(import.meta.dirname, 'fixtures', 'damaged-file-worker.ts'),
        kind: 'process',
        count: 1,
        input: () => ({ path }),
      });
      expect(fleet.setupFailures).toEqual([]);
      elsewhere.truncate(path, 0);
      const [outcome] = await fleet.run({ timeoutMs: 30_000 });
      // With memory-mapped reads the first read past the new end of file raised SIGBUS (exit 135).
      if (!outcome?.ok) throw new Error(`the repository's process died: ${outcome?.error.message}`);
      const { count, inserts } = outcome.result;
      if (!count.ok) expect(count.code).toBe('DATABASE_ERROR');
      expect(inserts).toEqual(Array(5).fill('DATABASE_ERROR:SQLITE_CORRUPT'));
    });
  });

  describe('long reader, then checkpoint', () => {
    it('after a reader held its snapshot for 4 s, the backlog is checkpointed off the event loop and the WAL shrinks back', async () => {
      const path = tempDatabase();
      const repo = await openMetricsRepo({ path });
      await repo.insert({ name: 'first', value: 1 });
      const reader = startForeign('hold-read', path, 4000);
      await reader.ready;
      const rows = Array.from({ length: 1000 }, (_, i) => ({
        name: 'bulk',
        value: i,
        labels: { host: 'h'.repeat(100) },
      }));
      // Writes pile up in the WAL while the reader holds its snapshot: nothing after it can be copied back yet.
      // The stall is measured from before the reader lets go until well after.
      let readerDone = false;
      let backlogBytes = 0;
      void reader.done.then(() => {
        readerDone = true;
      });
      // Each loop yields by itself, so this test isolates the checkpoint from the awaited-batches item below.
      const nextTurn = () => new Promise((resolve) => setImmediate(resolve));
      await sleep(1500);
      const stall = await longestStall(async () => {
        while (!readerDone) {
          await repo.insertMany(rows);
          backlogBytes = Math.max(backlogBytes, statSync(`${path}-wal`).size);
          await nextTurn();
        }
        const until = Date.now() + 1500;
        while (Date.now() < until) {
          await repo.insertMany(rows);
          await nextTurn();
        }
      });
      expect(backlogBytes).toBeGreaterThan(20e6);
      // SQLite's own automatic checkpoint copied the whole backlog inside a commit: a ~1 s freeze here.
      // Not 100 ms: one 1,000-row commit alone took 149 ms while other test files loaded both cores.
      expect(stall).toBeLessThan(400);
      // And once the reader let go, the WAL is cut back (bounded), without anyone closing.
      const deadline = Date.now() + 10_000;
      while (statSync(`${path}-wal`).size > 8e6 && Date.now() < deadline) {
        await repo.insert({ name: 'tick', value: 1 });
        await sleep(100);
      }
      expect(statSync(`${path}-wal`).size).toBeLessThanOrEqual(8e6);
      await repo.close();
      expect(new BetterSqlite3(path).pragma('integrity_check', { simple: true })).toBe('ok');
    });

    /** Runs fixtures/close-after-checkpoint.ts on `path` in a plain child process, with `flags` for Node. */
    const closeAfterCheckpoint = (path: string, flags: string[], env: NodeJS.ProcessEnv = process.env) =>
      new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve, reject) => {
        const fixture = join(import.meta.dirname, 'fixtures', 'close-after-checkpoint.ts');
        execFile(
          process.execPath,
          [...flags, '--import', 'tsx', fixture, path],
          { cwd: join(import.meta.dirname, '..'), timeout: 60_000, env },
          (error, stdout, stderr) => {
            if (error !== null && typeof error.code !== 'number') reject(error);
            else resolve({ code: error === null ? 0 : (error.code as number), stdout, stderr: stderr.slice(0, 2000) });
          },
        );
      });

    it('close() resolves in a process with nothing else to do once the checkpoint thread runs (it used to exit with close() pending)', async () => {
      const path = tempDatabase();
      // A plain child process: a test runner's own handles would keep the event loop alive and hide it.
      expect(await closeAfterCheckpoint(path, [])).toEqual({ code: 0, stdout: 'closed\n', stderr: '' });
      expect(storedRows(path)).toBe(8000);
    });

    it("the checkpoint thread runs none of the host's preloads (--require, tsx's --import)", async () => {
      const path = tempDatabase();
      const marks = `${path}-marks`;
      const preload = join(import.meta.dirname, 'fixtures', 'mark-preload.cjs');
      const run = await closeAfterCheckpoint(path, ['--require', preload], { ...process.env, PRELOAD_MARKS: marks });
      expect(run).toEqual({ code: 0, stdout: 'closed\n', stderr: '' });
      // fd-safe: the preload's marks, never a database.
      const lines = readFileSync(marks, 'utf8').split('\n').filter(Boolean);
      const started = lines.filter((line) => line.startsWith('started ')).map((line) => line.slice(8));
      const loadedIn = lines.filter((line) => line.startsWith('loaded in ')).map((line) => line.slice(10));
      // Node's own module-hooks thread (tsx's --import starts it) inherits the flags and runs the preload;
      // the checkpoint thread, started too, must not. Without execArgv: [] every started thread ran it.
      expect(lines[0]).toBe('main');
      expect(started.filter((id) => !loadedIn.includes(id))).toHaveLength(1);
    });
  });

  describe('foreign exclusive lock at open', () => {
    it('opening waits on timers (event loop free) and keeps its deadline', async () => {
      const path = tempDatabase();
      await (await openMetricsRepo({ path })).close();
      const holder = startForeign('hold-exclusive', path, 3000);
      await holder.ready;
      let rejection: unknown;
      let waitedMs = 0;
      const stall = await longestStall(async () => {
        const started = Date.now();
        rejection = await openMetricsRepo({ path, lockTimeoutMs: 1500 }).then(
          (repo) => repo.close(),
          (error: unknown) => error,
        );
        waitedMs = Date.now() - started;
      });
      expect(rejection).toBeInstanceOf(OpenDatabaseError);
      expect(rejection).toMatchObject({ code: 'BUSY' });
      expect(waitedMs).toBeGreaterThanOrEqual(1400);
      // At its deadline, not one busy timeout (5 s) later; slack for a machine busy with other work.
      expect(waitedMs).toBeLessThan(4500);
      // A busy timeout inside the open froze the loop for ~5 s per attempt (at least the 1.5 s deadline here).
      expect(stall).toBeLessThan(1000);
      // With a longer deadline the open succeeds once the other program lets go.
      const repo = await openMetricsRepo({ path, lockTimeoutMs: 10_000 });
      await expect(repo.insert({ name: 'after', value: 1 })).resolves.toMatchObject({ name: 'after' });
      await repo.close();
      await holder.done;
    });
  });

  describe('schema drift', () => {
    it('a table changed by hand: OpenDatabaseError SCHEMA_MISMATCH every time, no descriptor leaked, the file unchanged', async () => {
      const path = tempDatabase();
      await (await openMetricsRepo({ path })).close();
      const sqlite = new BetterSqlite3(path);
      sqlite.exec('ALTER TABLE metrics RENAME COLUMN labels TO tags');
      sqlite.pragma('journal_mode = DELETE');
      sqlite.close();
      const descriptors = () => readdirSync('/proc/self/fd').length;
      const attempt = () =>
        openMetricsRepo({ path }).then(
          () => {
            throw new Error('opened a drifted file');
          },
          (error: unknown) => error,
        );
      expect(await attempt()).toMatchObject({ name: 'OpenDatabaseError', code: 'SCHEMA_MISMATCH' });
      const before = descriptors();
      for (let i = 0; i < 300; i++) expect(await attempt()).toBeInstanceOf(OpenDatabaseError);
      // A leak would add one per attempt (300); descriptors other tests left closing may go meanwhile.
      expect(descriptors()).toBeLessThanOrEqual(before);
      // Refused before anything changed it: still in rollback-journal mode.
      expect(elsewhere.readHead(path, 20).subarray(18, 20)).toEqual(Buffer.from([1, 1]));
    });
  });

  describe('queue-full scaling', () => {
    it('200,000 callers waiting for room are admitted in order, each in O(1) (was 31.6 s, quadratic)', async () => {
      const path = tempDatabase();
      const repo = await openMetricsRepo({ path, maxQueuedRows: 1000, onQueueFull: 'wait' });
      const released = holdWriteLock(path, 300);
      const calls = Array.from({ length: 200_000 }, (_, i) => repo.insert({ name: 'wave', value: i }));
      const rows = await Promise.all(calls);
      await released;
      // Admitted in call order: ids grow with the call's position.
      expect(rows.every((row, i) => row.value === i && (i === 0 || row.id > (rows[i - 1]?.id ?? 0)))).toBe(true);
      await repo.close();
      expect(storedRows(path)).toBe(200_000);
    }, 20_000);

    it('the wait for room is bounded by the caller deadline, like the wait for the lock', async () => {
      const path = tempDatabase();
      const repo = await openMetricsRepo({ path, lockTimeoutMs: 500, maxQueuedRows: 100 });
      const released = holdWriteLock(path, 3000);
      const started = Date.now();
      const outcomes = await Promise.allSettled(
        Array.from({ length: 1000 }, (_, i) =>
          repo.insert({ name: 'late', value: i }).finally(() => {
            settledAfter.push(Date.now() - started);
          }),
        ),
      );
      const errors = outcomes.map((outcome) => (outcome.status === 'rejected' ? outcome.reason : undefined));
      expect(errors.slice(0, 100).every((error) => error instanceof LockTimeoutError)).toBe(true);
      // A caller still waiting for room at its deadline gets QueueFullError; one that got room just
      // before (when the first deadlines freed it) then waited for the lock, and gets LockTimeoutError.
      expect(
        errors.slice(100).every((error) => error instanceof QueueFullError || error instanceof LockTimeoutError),
      ).toBe(true);
      expect(errors.some((error) => error instanceof QueueFullError)).toBe(true);
      for (const error of errors) expect(error).toMatchObject({ waitedMs: expect.any(Number) });
      // The last one was rejected after 5.9 s before the fix.
      expect(Math.max(...settledAfter)).toBeLessThan(1500);
      await released;
      await repo.close();
    });
    const settledAfter: number[] = [];
  });

  describe('hostile label keys', () => {
    it('a "__proto__" label (as JSON.parse makes it) is stored and returned, not dropped', async () => {
      const path = tempDatabase();
      const repo = await openMetricsRepo({ path });
      const metric = JSON.parse(
        '{"name":"x","value":1,"labels":{"__proto__":"admin","env":"prod","constructor":"c","toString":"t"}}',
      );
      const row = await repo.insert(metric);
      expect(Object.keys(row.labels ?? {})).toEqual(['__proto__', 'env', 'constructor', 'toString']);
      expect(Object.getPrototypeOf(row.labels)).toBe(Object.prototype);
      await repo.close();
      const stored = new BetterSqlite3(path, { readonly: true }).prepare('SELECT labels FROM metrics').pluck().get();
      expect(JSON.parse(stored as string)).toEqual(
        JSON.parse('{"__proto__":"admin","env":"prod","constructor":"c","toString":"t"}'),
      );
    });

    it('"__proto__" as an option or a filter key is refused like any unknown key', async () => {
      const path = tempDatabase();
      await expect(
        openMetricsRepo(JSON.parse(`{"path":${JSON.stringify(path)},"__proto__":{"lockTimeoutMs":1}}`)),
      ).rejects.toMatchObject({
        code: 'INVALID_OPTION',
        option: '__proto__',
      });
      const repo = await openMetricsRepo({ path });
      await expect(repo.count(JSON.parse('{"__proto__":{"name":"x"}}'))).rejects.toBeInstanceOf(InvalidFilterError);
      await repo.close();
    });
  });

  describe('loops of awaited batches', () => {
    it('`for (;;) await repo.insertMany(1000 rows)` lets timers run between batches', async () => {
      const path = tempDatabase();
      const repo = await openMetricsRepo({ path });
      const rows = Array.from({ length: 1000 }, (_, i) => ({ name: 'import', value: i }));
      let ticks = 0;
      const timer = setInterval(() => {
        ticks += 1;
      }, 5);
      const until = Date.now() + 1000;
      let batches = 0;
      while (Date.now() < until) {
        await repo.insertMany(rows);
        batches += 1;
      }
      clearInterval(timer);
      expect(batches).toBeGreaterThan(10);
      // Before: 424 batches in 3 s and not one tick.
      expect(ticks).toBeGreaterThan(50);
      await repo.close();
    });
  });

  describe('smaller ones', () => {
    it('value -0 is returned as it is stored: 0', async () => {
      const path = tempDatabase();
      const repo = await openMetricsRepo({ path });
      const row = await repo.insert({ name: 'zero', value: -0 });
      expect(Object.is(row.value, 0)).toBe(true);
      await repo.close();
      const stored = new BetterSqlite3(path, { readonly: true }).prepare('SELECT value FROM metrics').pluck().get();
      expect(Object.is(stored, 0)).toBe(true);
    });

    it('a renamed file is reported as renamed, with its new name', async () => {
      const path = tempDatabase();
      const repo = await openMetricsRepo({ path });
      await repo.insert({ name: 'before', value: 1 });
      renameSync(path, `${path}.moved`);
      const error = await repo.insert({ name: 'after', value: 1 }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(DatabaseError);
      expect((error as Error).message).toContain(`renamed to ${JSON.stringify(`${path}.moved`)}`);
      await repo.close();
    });

    it('deleted and recreated under the repository: count() fails like insert(), instead of reading the old file', async () => {
      const path = tempDatabase();
      const repo = await openMetricsRepo({ path });
      await repo.insert({ name: 'before', value: 1 });
      unlinkSync(path);
      await (await openMetricsRepo({ path })).close();
      const { errors } = await settleAll<unknown>([repo.insert({ name: 'after', value: 1 }), repo.count()]);
      expect(errors).toHaveLength(2);
      for (const error of errors)
        expect(error).toMatchObject({ code: 'DATABASE_ERROR', sqliteCode: 'SQLITE_READONLY_DBMOVED' });
      await repo.close();
    });

    it('Dates and plain objects from another realm (vm) are accepted', async () => {
      const path = tempDatabase();
      const repo = await openMetricsRepo({ path });
      const foreign = runInNewContext('({ recordedAt: new Date(1700000000000), labels: { env: "vm" } })') as {
        recordedAt: Date;
        labels: Record<string, string>;
      };
      const row = await repo.insert({ name: 'realm', value: 1, ...foreign });
      expect(row.recordedAt.getTime()).toBe(1_700_000_000_000);
      expect(row.labels).toEqual({ env: 'vm' });
      await repo.close();
    });

    it('options are checked like inputs: unknown keys with a suggestion, types named, a typed error', async () => {
      const path = tempDatabase();
      await expect(openMetricsRepo({ path, lockTimeout: 10 } as never)).rejects.toThrow(
        /options\.lockTimeout is not an option; did you mean "lockTimeoutMs"\?/,
      );
      const wrongType = await openMetricsRepo({ path, lockTimeoutMs: '5000' as never }).catch((e: unknown) => e);
      expect(wrongType).toBeInstanceOf(InvalidOptionError);
      expect(wrongType).toMatchObject({ code: 'INVALID_OPTION', option: 'lockTimeoutMs' });
      expect((wrongType as Error).message).toContain('got the string "5000"');
      await expect(openMetricsRepo(undefined as never)).rejects.toMatchObject({
        code: 'INVALID_OPTION',
        option: 'options',
      });
      await expect(openMetricsRepo({} as never)).rejects.toMatchObject({ code: 'INVALID_OPTION', option: 'path' });
      // A directory is named as such.
      await expect(openMetricsRepo({ path: join(path, '..') })).rejects.toMatchObject({
        code: 'NOT_A_FILE',
        message: expect.stringContaining('is a directory'),
      });
    });
  });
});
