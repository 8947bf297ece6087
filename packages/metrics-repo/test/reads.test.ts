import { join } from 'node:path';
import { launch } from '@repo/launcher';
import BetterSqlite3 from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import {
  InvalidFilterError,
  InvalidOptionError,
  LockTimeoutError,
  type Metric,
  nearestRank,
  openMetricsRepo,
  RepoClosedError,
} from '../src/index.ts';
import type { InsertWorkerInput, InsertWorkerResult } from './fixtures/insert-worker.ts';
import { storedRows, useTempDatabase } from './helpers.ts';
import { type ReferenceFilter, referenceSummaries, sampleRows } from './read-fixtures.ts';

const insertWorker = join(import.meta.dirname, 'fixtures', 'insert-worker.ts');

describe('summarize', () => {
  const tempDatabase = useTempDatabase();

  it('nearest rank: ceil(p/100 × n), exact for every n', () => {
    expect([1, 2, 3, 10, 19, 20, 21, 100, 101].map((n) => nearestRank(95, n))).toEqual([
      1, 2, 3, 10, 19, 19, 20, 95, 96,
    ]);
    expect(nearestRank(50, 4)).toBe(2);
    expect(nearestRank(99, 1000)).toBe(990);
  });

  it('gives count, sum, min, max, avg and nearest-rank percentiles per name and epoch-aligned bucket, sorted', async () => {
    const repo = await openMetricsRepo({ path: tempDatabase() });
    const rows = sampleRows(3000);
    await repo.insertMany(rows);
    const filters: ReferenceFilter[] = [
      {},
      { bucketMs: 3_600_000 },
      { bucketMs: 7_000_000 },
      { bucketMs: 1 },
      { name: 'job.ms', bucketMs: 60_000 },
      { since: 0, until: 3_600_000 },
      { since: -1_800_000, until: 1_800_000, bucketMs: 600_000 },
      { labels: { host: 'h1' }, bucketMs: 3_600_000 },
      { labels: { 'a.b': 'x', 'q"uote': '1' } },
      { labels: { host: 'nope' } },
    ];
    for (const filter of filters) {
      const got = await repo.summarize(filter);
      expect(got, JSON.stringify(filter)).toEqual(referenceSummaries(rows, filter));
    }
    await repo.close();
  });

  it('a single value, and empty ranges', async () => {
    const repo = await openMetricsRepo({ path: tempDatabase() });
    expect(await repo.summarize()).toEqual([]);
    await repo.insert({ name: 'one', value: 4.5, recordedAt: 10_000 });
    expect(await repo.summarize({ bucketMs: 3000 })).toEqual([
      {
        name: 'one',
        bucketStart: new Date(9000),
        count: 1,
        sum: 4.5,
        min: 4.5,
        max: 4.5,
        avg: 4.5,
        p50: 4.5,
        p95: 4.5,
        p99: 4.5,
      },
    ]);
    expect(await repo.summarize({ since: 10_001 })).toEqual([]);
    await repo.close();
  });

  it('refuses a bad filter with InvalidFilterError naming the field, before any SQL', async () => {
    const repo = await openMetricsRepo({ path: tempDatabase() });
    const cases: [unknown, string][] = [
      [{ bucketMs: 0 }, 'filter.bucketMs'],
      [{ bucketMs: 1.5 }, 'filter.bucketMs'],
      [{ bucketMs: '60000' }, 'filter.bucketMs'],
      [{ bucketMs: 1e15 }, 'filter.bucketMs'],
      [{ labels: { host: 1 } }, 'filter.labels.host'],
      [{ labels: ['x'] }, 'filter.labels'],
      [{ since: 5, until: 4 }, 'filter.since'],
      [{ bucket: 5 }, 'filter.bucket'],
      ['x', 'filter'],
    ];
    for (const [filter, field] of cases) {
      const error = await repo.summarize(filter as never).catch((e: unknown) => e);
      expect(error, JSON.stringify(filter)).toBeInstanceOf(InvalidFilterError);
      expect((error as InvalidFilterError).field).toBe(field);
    }
    await repo.close();
    await expect(repo.summarize()).rejects.toBeInstanceOf(RepoClosedError);
  });
});

describe('export', () => {
  const tempDatabase = useTempDatabase();

  it('yields every stored row in id order, as insert resolved with it, page after page, with filters', async () => {
    const repo = await openMetricsRepo({ path: tempDatabase() });
    const rows = sampleRows(2600);
    const stored = await repo.insertMany(rows.map((row, i) => ({ ...row, eventId: i % 3 === 0 ? `e${i}` : null })));
    const all: Metric[] = [];
    for await (const row of repo.export()) all.push(row);
    expect(all).toEqual(stored);

    const since = 0;
    const until = 3_600_000;
    const some: Metric[] = [];
    for await (const row of repo.export({ name: 'zeta', since, until })) some.push(row);
    expect(some).toEqual(
      stored.filter((r) => r.name === 'zeta' && r.recordedAt.getTime() >= since && r.recordedAt.getTime() < until),
    );
    await repo.close();
  });

  it('holds no read transaction between pages: a TRUNCATE checkpoint completes mid-export', async () => {
    const path = tempDatabase();
    const repo = await openMetricsRepo({ path });
    await repo.insertMany(Array.from({ length: 3000 }, (_, i) => ({ name: 'x', value: i })));
    const other = new BetterSqlite3(path);
    try {
      const iterator = repo.export()[Symbol.asyncIterator]();
      await iterator.next(); // the first page is read; the consumer now waits
      other.prepare('INSERT INTO metrics (name, value, recorded_at) VALUES (?, ?, ?)').run('y', 1, Date.now());
      const [result] = other.pragma('wal_checkpoint(TRUNCATE)') as { busy: number; log: number }[];
      expect(result).toEqual({ busy: 0, log: 0, checkpointed: 0 });
      let rest = 1;
      for (let step = await iterator.next(); step.done !== true; step = await iterator.next()) rest += 1;
      // Rows stored after the export began are the next export's.
      expect(rest).toBe(3000);
    } finally {
      other.close();
      await repo.close();
    }
  });

  it('stops when the consumer stops; refuses a bad filter at the first next(); RepoClosedError after close', async () => {
    const repo = await openMetricsRepo({ path: tempDatabase() });
    await repo.insertMany(Array.from({ length: 2500 }, (_, i) => ({ name: 'x', value: i })));
    let seen = 0;
    for await (const _ of repo.export()) {
      if (++seen === 10) break;
    }
    expect(seen).toBe(10);
    const bad = repo.export({ since: 'yesterday' } as never);
    await expect(bad.next()).rejects.toMatchObject({ code: 'INVALID_FILTER', field: 'filter.since' });
    const open = repo.export()[Symbol.asyncIterator]();
    await open.next();
    await repo.close();
    const after = await (async () => {
      for (;;) {
        const step = await open.next();
        if (step.done) return 'done';
      }
    })().catch((error: unknown) => error);
    expect(after).toBeInstanceOf(RepoClosedError);
  });
});

describe('prune', () => {
  const tempDatabase = useTempDatabase();
  const old = (i: number) => ({ name: 'old', value: i, recordedAt: 1_000 + (i % 1000), labels: { i: String(i) } });

  it('deletes exactly the rows recorded before the cut-off, in many transactions, and says how many', async () => {
    const repo = await openMetricsRepo({ path: tempDatabase() });
    await repo.insertMany(Array.from({ length: 12_000 }, (_, i) => old(i)));
    await repo.insertMany([
      { name: 'edge', value: 1, recordedAt: 2_000 },
      { name: 'new', value: 2, recordedAt: new Date(5_000) },
    ]);
    expect(await repo.prune({ before: new Date(2_000) })).toBe(12_000);
    expect(await repo.count()).toBe(2);
    expect(await repo.prune({ before: 2_000 })).toBe(0);
    await repo.close();
  });

  it('reuses the freed pages: the file does not grow when as many rows come back', async () => {
    const path = tempDatabase();
    const repo = await openMetricsRepo({ path });
    const pages = () => {
      const sqlite = new BetterSqlite3(path, { readonly: true });
      try {
        return sqlite.pragma('page_count', { simple: true }) as number;
      } finally {
        sqlite.close();
      }
    };
    await repo.insertMany(Array.from({ length: 10_000 }, (_, i) => old(i)));
    const before = pages();
    // Three rounds of retention: without reuse the file would be four times as large.
    for (let round = 1; round <= 3; round++) {
      expect(await repo.prune({ before: Date.now() })).toBe(10_000);
      await repo.insertMany(Array.from({ length: 10_000 }, (_, i) => old(i + round * 10_000)));
    }
    // B-tree pages fill a little differently the second time: a few percent, not another file's worth.
    expect(pages()).toBeLessThanOrEqual(Math.ceil(before * 1.1));
    await repo.close();
  });

  it('while writer processes insert, deletes every old row; stored = acknowledged, no errors', async () => {
    const path = tempDatabase();
    const repo = await openMetricsRepo({ path });
    await repo.insertMany(Array.from({ length: 40_000 }, (_, i) => old(i)));
    const writers = await launch<InsertWorkerInput, InsertWorkerResult>({
      entry: insertWorker,
      kind: 'process',
      count: 6,
      input: () => ({ path, rows: 5, waves: 60 }),
    });
    expect(writers.setupFailures).toEqual([]);
    // And async writers in this process, on the pruning repository.
    const local = Array.from({ length: 500 }, (_, i) => repo.insert({ name: 'local', value: i }));
    const [deleted, outcomes] = await Promise.all([repo.prune({ before: 10_000 }), writers.run()]);
    expect(deleted).toBe(40_000);
    const results = outcomes.map((outcome) => {
      if (!outcome.ok) throw new Error(`writer ${outcome.index} failed: ${outcome.error.message}`);
      return outcome.result;
    });
    expect(results.map((result) => result.errorCodes)).toEqual(Array(6).fill({}));
    expect((await Promise.allSettled(local)).filter((o) => o.status === 'rejected')).toEqual([]);
    await repo.close();
    expect(storedRows(path, "name = 'old'")).toBe(0);
    expect(storedRows(path, "name = 'worker.row'")).toBe(results.reduce((sum, r) => sum + r.acked, 0));
    expect(storedRows(path, "name = 'worker.row'")).toBe(6 * 5 * 60);
    expect(storedRows(path, "name = 'local'")).toBe(500);
  }, 60_000);

  it('waits for a lock held elsewhere on timers, event loop free, then LockTimeoutError', async () => {
    const path = tempDatabase();
    const repo = await openMetricsRepo({ path, lockTimeoutMs: 300 });
    await repo.insertMany(Array.from({ length: 10 }, (_, i) => old(i)));
    const holder = new BetterSqlite3(path);
    holder.exec('BEGIN IMMEDIATE');
    let ticks = 0;
    const timer = setInterval(() => ticks++, 10);
    try {
      await expect(repo.prune({ before: 10_000 })).rejects.toBeInstanceOf(LockTimeoutError);
      expect(ticks).toBeGreaterThan(5);
    } finally {
      clearInterval(timer);
      holder.exec('ROLLBACK');
      holder.close();
    }
    expect(await repo.prune({ before: 10_000 })).toBe(10);
    await repo.close();
  });

  it('stops between transactions when its signal aborts; refuses bad options', async () => {
    const repo = await openMetricsRepo({ path: tempDatabase() });
    await repo.insertMany(Array.from({ length: 5_000 }, (_, i) => old(i)));
    const controller = new AbortController();
    const reason = new Error('enough');
    const pruning = repo.prune({ before: 10_000, signal: controller.signal });
    controller.abort(reason);
    await expect(pruning).rejects.toBe(reason);
    await expect(repo.prune({} as never)).rejects.toMatchObject({ code: 'INVALID_FILTER', field: 'options.before' });
    await expect(repo.prune({ before: 'now' } as never)).rejects.toBeInstanceOf(InvalidFilterError);
    await expect(repo.prune({ before: 1, after: 2 } as never)).rejects.toMatchObject({ field: 'options.after' });
    await repo.close();
    await expect(repo.prune({ before: 1 })).rejects.toBeInstanceOf(RepoClosedError);
  });
});

describe('retention (retainMs)', () => {
  const tempDatabase = useTempDatabase();

  it('deletes rows older than retainMs periodically, and stops with close()', async () => {
    const path = tempDatabase();
    const repo = await openMetricsRepo({ path, retainMs: 60_000 });
    expect(repo.options.retainMs).toBe(60_000);
    await repo.insertMany([
      { name: 'stale', value: 1, recordedAt: Date.now() - 120_000 },
      { name: 'fresh', value: 2 },
    ]);
    const deadline = Date.now() + 10_000;
    while ((await repo.count({ name: 'stale' })) > 0 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(await repo.count({ name: 'stale' })).toBe(0);
    expect(await repo.count({ name: 'fresh' })).toBe(1);
    await repo.close();
  });

  it('is off by default; a bad value or a typo is refused', async () => {
    const repo = await openMetricsRepo({ path: tempDatabase() });
    expect(repo.options.retainMs).toBeUndefined();
    await repo.close();
    await expect(openMetricsRepo({ path: tempDatabase(), retainMs: 0 })).rejects.toBeInstanceOf(InvalidOptionError);
    await expect(openMetricsRepo({ path: tempDatabase(), retainMs: 1.5 })).rejects.toThrow(/integer >= 1/);
    await expect(openMetricsRepo({ path: tempDatabase(), retainMS: 5 } as never)).rejects.toThrow(
      /did you mean "retainMs"/,
    );
  });
});
