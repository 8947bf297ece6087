import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { launch } from '@repo/launcher';
import { usePostgres } from '@repo/testkit';
import { afterEach, describe, expect, it } from 'vitest';
import { DatabaseError, LockTimeoutError, openMetricsRepo, ValidationError } from '../../src/index.ts';
import type { PgWriterInput, PgWriterResult } from './fixtures/pg-writer.ts';
import { holdTableLock, missingIds, storedRows, withSession } from './helpers.ts';

const pgWriter = join(import.meta.dirname, 'fixtures', 'pg-writer.ts');
const server = usePostgres();

function collectUnhandled(): unknown[] {
  const seen: unknown[] = [];
  const listener = (reason: unknown) => seen.push(reason);
  process.on('unhandledRejection', listener);
  process.on('uncaughtException', listener);
  afterEach(() => {
    process.off('unhandledRejection', listener);
    process.off('uncaughtException', listener);
  });
  return seen;
}

describe('PostgreSQL: group commit', () => {
  it('bad rows and duplicate eventIds inside one batch fail only their own callers, with the same codes as on SQLite', async () => {
    const url = await server().createDatabase();
    const repo = await openMetricsRepo({ url });
    await repo.insert({ name: 'seed', value: 0, eventId: 'taken' });
    // Another session holds the table: every call below waits in the same batch.
    const { released } = await holdTableLock(url, 200);
    const calls = Array.from({ length: 200 }, (_, i) => {
      if (i === 50) return repo.insert({ name: 'bad', value: Number.NaN });
      if (i === 60) return repo.insert({ name: 'bad', value: 1, labels: { k: '\u0000' } });
      if (i === 100) return repo.insert({ name: 'dup', value: 1, eventId: 'taken' });
      if (i === 120) return repo.insert({ name: 'dup-in-batch', value: 1, eventId: 'fresh' });
      if (i === 121) return repo.insert({ name: 'dup-in-batch', value: 2, eventId: 'fresh' });
      if (i === 150)
        return repo.insertMany([
          { name: 'many', value: 1 },
          { name: 'many', value: 2, eventId: 'taken' },
        ]);
      if (i === 160)
        return repo.insertMany([
          { name: 'many-ok', value: 1, eventId: 'ok-1' },
          { name: 'many-ok', value: 2 },
        ]);
      return repo.insert({ name: 'good', value: i });
    });
    const settled = Promise.allSettled(calls);
    await released;
    const outcomes = await settled;
    const rejected = outcomes.flatMap((outcome, i) => (outcome.status === 'rejected' ? [[i, outcome.reason]] : []));
    expect(rejected.map(([i]) => i)).toEqual([50, 60, 100, 121, 150]);
    expect(rejected[0]?.[1]).toBeInstanceOf(ValidationError);
    expect(rejected[1]?.[1]).toMatchObject({ code: 'INVALID_METRIC', field: 'labels.k' });
    expect(rejected[2]?.[1]).toMatchObject({ code: 'DUPLICATE_EVENT', eventId: 'taken' });
    expect(rejected[3]?.[1]).toMatchObject({ code: 'DUPLICATE_EVENT', eventId: 'fresh' });
    expect(rejected[4]?.[1]).toMatchObject({ code: 'DUPLICATE_EVENT', eventId: 'taken' });
    // 1 seed + 193 good + the first 'fresh' + the two rows of 'many-ok'; nothing of 'many'.
    expect(await storedRows(url)).toBe(1 + 193 + 1 + 2);
    expect(await storedRows(url, `name = 'many'`)).toBe(0);
    // Ids handed back are the stored ones, row for row.
    const good = outcomes.flatMap((outcome, i) =>
      outcome.status === 'fulfilled' && !Array.isArray(outcome.value) && outcome.value.name === 'good'
        ? [[i, outcome.value.id]]
        : [],
    );
    const byId = await withSession(url, async (client) => {
      const { rows } = await client.query<{ id: string; value: number }>(
        `SELECT id, value FROM metrics WHERE name = 'good'`,
      );
      return new Map(rows.map((row) => [Number(row.id), row.value]));
    });
    for (const [i, id] of good) expect(byId.get(id as number)).toBe(i);
    await repo.close();
  });
});

describe('PostgreSQL: locks held by another session', () => {
  it('a table locked past lockTimeoutMs gives LOCK_TIMEOUT within the deadline plus slack, with the event loop turning; later inserts succeed', async () => {
    const url = await server().createDatabase();
    const lockTimeoutMs = 500;
    const repo = await openMetricsRepo({ url, lockTimeoutMs });
    const histogram = monitorEventLoopDelay({ resolution: 1 });
    histogram.enable();
    await new Promise((resolve) => setTimeout(resolve, 50));
    const { released } = await holdTableLock(url, 2000);
    const started = Date.now();
    const settledAt: number[] = [];
    const outcomes = await Promise.allSettled(
      Array.from({ length: 100 }, (_, i) =>
        repo.insert({ name: 'too.late', value: i }).finally(() => settledAt.push(Date.now() - started)),
      ),
    );
    histogram.disable();
    for (const outcome of outcomes) {
      expect(outcome.status).toBe('rejected');
      const reason = (outcome as PromiseRejectedResult).reason;
      expect(reason).toBeInstanceOf(LockTimeoutError);
      expect(reason).toMatchObject({ code: 'LOCK_TIMEOUT', path: repo.path });
    }
    // At the deadline, not at the end of the 2 s hold; never early.
    expect(Math.min(...settledAt)).toBeGreaterThanOrEqual(lockTimeoutMs - 5);
    expect(Math.max(...settledAt)).toBeLessThan(lockTimeoutMs + 1000);
    // The wait happens on the server: the event loop stays free.
    expect(histogram.max / 1e6).toBeLessThan(200);
    await released;
    expect(await storedRows(url)).toBe(0);
    await expect(repo.insert({ name: 'after', value: 1 })).resolves.toMatchObject({ name: 'after' });
    await repo.close();
  });

  it('inserts issued during a lock shorter than the deadline all succeed after it', async () => {
    const url = await server().createDatabase();
    const repo = await openMetricsRepo({ url });
    const { released } = await holdTableLock(url, 500);
    const inserts = Array.from({ length: 300 }, (_, i) => repo.insert({ name: 'during.lock', value: i }));
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(await repo.count()).toBe(0);
    expect(repo.pendingRows).toBe(300);
    await Promise.all(inserts);
    await released;
    expect(await storedRows(url)).toBe(300);
    await repo.close();
  });
});

describe('PostgreSQL: crashes and restarts', () => {
  const unhandled = collectUnhandled();

  it('writers killed with SIGKILL lose no acknowledged row; the others carry on without errors', async () => {
    const url = await server().createDatabase();
    await (await openMetricsRepo({ url })).close();
    const victims = 3;
    const acknowledged = new Set<number>();
    const fleet = await launch<PgWriterInput, PgWriterResult, number[]>({
      entry: pgWriter,
      kind: 'process',
      count: victims + 2,
      input: (index) =>
        index < victims
          ? { url, rows: 100, rounds: Number.POSITIVE_INFINITY, openAtStart: false, reportAcked: true }
          : { url, rows: 1000, rounds: 3, openAtStart: false, reportAcked: false },
      onProgress: (_, ids) => {
        for (const id of ids) acknowledged.add(id);
      },
    });
    const running = fleet.run({ timeoutMs: 60_000 });
    for (let victim = 0; victim < victims; victim++) setTimeout(() => fleet.kill(victim), 300 + Math.random() * 700);
    const outcomes = await running;
    for (const outcome of outcomes.slice(0, victims)) expect(outcome).toMatchObject({ ok: false, phase: 'run' });
    for (const outcome of outcomes.slice(victims)) {
      if (!outcome.ok) throw new Error(`survivor ${outcome.index} failed: ${outcome.error.message}`);
      expect(outcome.result.errors).toEqual({});
      expect(outcome.result.ids).toHaveLength(3000);
      for (const id of outcome.result.ids) acknowledged.add(id);
    }
    expect(acknowledged.size).toBeGreaterThan(6000);
    const missing = await missingIds(url, acknowledged);
    expect(missing).toBe(0);
  });

  it('a server restart under an open repository: calls in flight get DatabaseError with the driver code, later calls work again', async (context) => {
    if (server().kind !== 'local') context.skip(); // DATABASE_URL's server cannot be restarted from here
    const url = await server().createDatabase();
    const password = new URL(url).password;
    const repo = await openMetricsRepo({ url, lockTimeoutMs: 5000 });
    await repo.insert({ name: 'before', value: 1 });

    // Keep inserting while the server goes down and comes back.
    const acked: number[] = [];
    const failures: unknown[] = [];
    let writing = true;
    const writer = (async () => {
      for (let i = 0; writing; i++) {
        await Promise.allSettled(
          Array.from({ length: 20 }, () =>
            repo.insert({ name: 'during', value: i }).then(
              (row) => acked.push(row.id),
              (error) => failures.push(error),
            ),
          ),
        );
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
    })();
    await new Promise((resolve) => setTimeout(resolve, 200));
    await server().shutdown();
    await new Promise((resolve) => setTimeout(resolve, 300));
    await expect(repo.count()).rejects.toBeInstanceOf(DatabaseError);
    await server().start();
    await new Promise((resolve) => setTimeout(resolve, 300));
    writing = false;
    await writer;

    expect(failures.length).toBeGreaterThan(0);
    const codes = new Set<string>();
    for (const failure of failures) {
      expect(failure).toBeInstanceOf(DatabaseError);
      codes.add((failure as DatabaseError).sqliteCode);
      expect((failure as Error).message).not.toContain(password);
    }
    for (const code of codes) expect(code).toMatch(/^(57P0[123]|08\w{3}|E[A-Z]+|CONNECTION_LOST)$/);
    // Recovered without reopening: new calls commit, and everything acknowledged is stored.
    const after = await repo.insert({ name: 'after', value: 1 });
    expect(after.id).toBeGreaterThan(0);
    // A commit cut by the shutdown may have happened after all (its caller got an error): never fewer than acknowledged.
    const missing = await missingIds(url, acked);
    expect(missing).toBe(0);
    expect(await repo.count({ name: 'during' })).toBeGreaterThanOrEqual(acked.length);
    await repo.close();
    expect(unhandled).toEqual([]);
  });
});
