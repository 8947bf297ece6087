import type { Metric as SqliteMetric } from '@repo/db';
import { metrics, type Metric as PgMetric, type PgMetricsDatabase } from '@repo/db/pg';
import { usePostgres, useTempDatabase } from '@repo/testkit';
import { asc, eq } from 'drizzle-orm';
import { describe, expect, expectTypeOf, it } from 'vitest';
import {
  DuplicateEventError,
  InvalidOptionError,
  type MetricInput,
  type MetricsRepo,
  type MetricsRepoOptions,
  OpenDatabaseError,
  openMetricsRepo,
  type ResolvedPgOptions,
} from '../../src/index.ts';
import { storedRows } from './helpers.ts';

// One server for the file (DATABASE_URL's when set); each test writes into a fresh database of its own.
const server = usePostgres();

describe('PostgreSQL: the same API', () => {
  it('the schema gives the same Metric type as SQLite; openMetricsRepo is typed by the options given', () => {
    expectTypeOf<PgMetric>().toEqualTypeOf<SqliteMetric>();
    const openPg = () => openMetricsRepo({ url: 'postgres://u@h/db' });
    const openSqlite = () => openMetricsRepo({ path: 'm.db' });
    expectTypeOf<Awaited<ReturnType<typeof openPg>>>().toEqualTypeOf<
      MetricsRepo<PgMetricsDatabase, ResolvedPgOptions>
    >();
    expectTypeOf<Awaited<ReturnType<typeof openSqlite>>>().toEqualTypeOf<MetricsRepo>();
    expectTypeOf<Awaited<ReturnType<typeof openPg>>['options']['poolSize']>().toEqualTypeOf<number>();
    const fromConfig = (options: MetricsRepoOptions) => openMetricsRepo(options);
    expectTypeOf<Awaited<ReturnType<typeof fromConfig>>['pendingRows']>().toEqualTypeOf<number>();
  });

  it('insert resolves after commit with the stored row; insertMany keeps order; count filters', async () => {
    const url = await server().createDatabase();
    const repo = await openMetricsRepo({ url });
    const at = new Date('2026-01-02T03:04:05.678Z');
    const row = await repo.insert({ name: 'job.ms', value: 12.5, recordedAt: at, labels: { job: 'x' }, eventId: 'e1' });
    expect(row).toEqual({
      id: expect.any(Number),
      name: 'job.ms',
      value: 12.5,
      recordedAt: at,
      labels: { job: 'x' },
      eventId: 'e1',
    });
    // Visible to another session at once: the promise resolved after COMMIT.
    expect(await storedRows(url)).toBe(1);

    const many = await repo.insertMany([
      { name: 'm', value: 1, recordedAt: 1000 },
      { name: 'm', value: 2, recordedAt: 2000 },
      { name: 'm', value: 3, recordedAt: 3000 },
    ]);
    expect(many.map((m) => m.value)).toEqual([1, 2, 3]);
    expect(many[0]?.id).toBeLessThan(many[2]?.id as number);
    expect(await repo.count()).toBe(4);
    expect(await repo.count({ name: 'm', since: 2000 })).toBe(2);
    expect(await repo.count({ name: 'm', since: 1000, until: 3000 })).toBe(2);

    // What Drizzle reads back is what insert returned.
    const [read] = await repo.db.select().from(metrics).orderBy(asc(metrics.id)).limit(1);
    expect(read).toEqual(row);
    await repo.close();
  });

  it('duplicate eventIds: DUPLICATE_EVENT, for a stored one and inside one insertMany, nothing of the call stored', async () => {
    const url = await server().createDatabase();
    const repo = await openMetricsRepo({ url });
    await repo.insert({ name: 'a', value: 1, eventId: 'taken' });
    await expect(repo.insert({ name: 'a', value: 2, eventId: 'taken' })).rejects.toBeInstanceOf(DuplicateEventError);
    await expect(
      repo.insertMany([
        { name: 'b', value: 1, eventId: 'new' },
        { name: 'b', value: 2, eventId: 'taken' },
      ]),
    ).rejects.toMatchObject({ code: 'DUPLICATE_EVENT', eventId: 'taken' });
    await expect(
      repo.insertMany([
        { name: 'c', value: 1, eventId: 'twice' },
        { name: 'c', value: 2, eventId: 'twice' },
      ]),
    ).rejects.toMatchObject({ code: 'DUPLICATE_EVENT', eventId: 'twice' });
    expect(await storedRows(url)).toBe(1);
    // 'new' was rolled back with its call: it can be recorded now.
    await expect(repo.insert({ name: 'b', value: 3, eventId: 'new' })).resolves.toMatchObject({ eventId: 'new' });
    await repo.close();
  });

  it('stores unusual values exactly: extreme numbers and dates, text, and refuses what PostgreSQL cannot hold, by field', async () => {
    const url = await server().createDatabase();
    const repo = await openMetricsRepo({ url });
    const edge: MetricInput[] = [
      { name: 'n', value: Number.MAX_VALUE, recordedAt: 8.64e15 - 10 }, // year 275760
      { name: 'n', value: Number.MIN_VALUE, recordedAt: -62_135_596_800_001 }, // 1 ms before year 1: BC
      { name: 'n', value: -0, recordedAt: 253_402_300_800_000 }, // year 10000
      { name: 'quote \' " \\ ; DROP TABLE metrics; --', value: -1.5, labels: { emoji: '🙂', ctl: '\t\n' } },
      // Array- and string-literal syntax as data: the string NULL is not a null, braces and commas stay text.
      { name: '{a,b}', value: 1, labels: { k: 'NULL', q: '\\"}{,\'\\\\' }, eventId: 'NULL' },
    ];
    const rows = await repo.insertMany(edge);
    expect(rows.map((r) => r.value)).toEqual([Number.MAX_VALUE, Number.MIN_VALUE, 0, -1.5, 1]);
    // Each timestamp stored to the millisecond: counted exactly at its own bounds.
    for (const { recordedAt } of edge.slice(0, 3)) {
      expect(await repo.count({ since: recordedAt, until: (recordedAt as number) + 1 })).toBe(1);
      expect(await repo.count({ since: (recordedAt as number) + 1, until: (recordedAt as number) + 2 })).toBe(0);
    }
    expect(await storedRows(url, `name = $1 AND labels->>'emoji' = '🙂'`, [edge[3]?.name])).toBe(1);
    const [tricky] = await repo.db.select().from(metrics).where(eq(metrics.eventId, 'NULL'));
    expect(tricky).toEqual(rows[4]);
    expect(tricky?.labels).toEqual(edge[4]?.labels);

    await expect(repo.insert({ name: 'nul', value: 1, labels: { k: 'a\u0000b' } })).rejects.toMatchObject({
      code: 'INVALID_METRIC',
      field: 'labels.k',
    });
    await expect(
      repo.insertMany([
        { name: 'old', value: 1 },
        { name: 'old', value: 1, recordedAt: -8.64e15 },
      ]),
    ).rejects.toMatchObject({ code: 'INVALID_METRIC', field: 'rows[1].recordedAt' });
    expect(await repo.count({ name: 'old' })).toBe(0);
    await repo.close();
  });
});

describe('PostgreSQL: options', () => {
  const tempDatabase = useTempDatabase();

  const refusal = (options: unknown) =>
    openMetricsRepo(options as { url: string }).then(
      () => {
        throw new Error('opened');
      },
      (error: unknown) => error,
    );

  it('path and url: exactly one; a url must be postgres:// or postgresql://', async () => {
    const both = await refusal({ path: tempDatabase(), url: 'postgres://u@127.0.0.1/db' });
    expect(both).toBeInstanceOf(InvalidOptionError);
    expect(both).toMatchObject({ code: 'INVALID_OPTION', option: 'url' });
    const scheme = await refusal({ url: 'mysql://user:hunter2@127.0.0.1/db' });
    expect(scheme).toMatchObject({ code: 'INVALID_OPTION', option: 'url' });
    expect((scheme as Error).message).toContain('mysql:');
    expect((scheme as Error).message).not.toContain('hunter2');
    const notUrl = await refusal({ url: 'user:hunter2 at somewhere' });
    expect(notUrl).toMatchObject({ code: 'INVALID_OPTION', option: 'url' });
    expect((notUrl as Error).message).not.toContain('hunter2');
    expect(await refusal({ url: 42 })).toMatchObject({ code: 'INVALID_OPTION', option: 'url' });
  });

  it('SQLite-only options are refused on PostgreSQL, PostgreSQL-only ones on SQLite, each by name', async () => {
    const url = await server().createDatabase();
    const synchronous = await refusal({ url, synchronous: 'full' });
    expect(synchronous).toMatchObject({ code: 'INVALID_OPTION', option: 'synchronous' });
    expect((synchronous as Error).message).toContain('is not an option of a PostgreSQL repository');
    const poolSize = await refusal({ path: tempDatabase(), poolSize: 4 });
    expect(poolSize).toMatchObject({ code: 'INVALID_OPTION', option: 'poolSize' });
    expect((poolSize as Error).message).toContain('is not an option of a SQLite repository');
    expect(await refusal({ url, poolSize: 0 })).toMatchObject({ code: 'INVALID_OPTION', option: 'poolSize' });
    expect(await refusal({ url, poolSiz: 3 })).toMatchObject({
      option: 'poolSiz',
      message: expect.stringContaining('poolSize'),
    });
  });

  it('the password appears nowhere: repo.path, repo.options, open errors (wrong password, wrong port)', async () => {
    const url = await server().createDatabase();
    const password = new URL(url).password;
    expect(password.length).toBeGreaterThan(0);
    const repo = await openMetricsRepo({ url, poolSize: 3 });
    expect(repo.path).not.toContain(password);
    expect(JSON.stringify(repo.options)).not.toContain(password);
    expect(repo.options).toMatchObject({ poolSize: 3, connectTimeoutMs: 10_000, lockTimeoutMs: 30_000 });
    expect(repo.path).toBe(url.replace(`:${password}@`, '@'));
    await repo.close();

    const wrongPassword = new URL(url);
    wrongPassword.password = `${password}x`;
    const refused = await refusal({ url: wrongPassword.toString() });
    expect(refused).toBeInstanceOf(OpenDatabaseError);
    expect(refused).toMatchObject({ code: 'OPEN_FAILED', message: expect.stringContaining('28P01') });
    expect(describeFully(refused)).not.toContain(password);

    const wrongPort = new URL(url);
    wrongPort.port = '1';
    const unreachable = await refusal({ url: wrongPort.toString() });
    expect(unreachable).toMatchObject({ code: 'OPEN_FAILED', message: expect.stringContaining('ECONNREFUSED') });
    expect(describeFully(unreachable)).not.toContain(password);

    const query = await refusal({ url: `postgres://127.0.0.1:1/db?password=${password}` });
    expect(describeFully(query)).not.toContain(password);
  });
});

/** An error as a log line would show it: message, stack and every cause. */
function describeFully(error: unknown): string {
  const parts: string[] = [];
  for (let e: unknown = error; e instanceof Error; e = e.cause) parts.push(e.message, e.stack ?? '');
  return parts.join('\n');
}
