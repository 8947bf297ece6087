import { usePostgres, useTempDatabase } from '@repo/testkit';
import { describe, expect, it } from 'vitest';
import { InvalidFilterError, type Metric, openMetricsRepo } from '../../src/index.ts';
import { type ReferenceFilter, referenceSummaries, sampleRows } from '../read-fixtures.ts';

// One server for the file (DATABASE_URL's when set); each test writes into a fresh database of its own.
const server = usePostgres();

describe('PostgreSQL: summarize, export and prune give what SQLite gives', () => {
  const tempDatabase = useTempDatabase();

  it('the same rows in, the same summaries, exports and prune counts out, on both backends', async () => {
    const pg = await openMetricsRepo({ url: await server().createDatabase() });
    const sqlite = await openMetricsRepo({ path: tempDatabase() });
    const rows = sampleRows(2500, 11);
    await pg.insertMany(rows);
    await sqlite.insertMany(rows);
    const filters: ReferenceFilter[] = [
      {},
      { bucketMs: 3_600_000 },
      { bucketMs: 7_000_000 },
      { name: 'job.ms', bucketMs: 60_000 },
      { since: -1_800_000, until: 1_800_000, bucketMs: 600_000 },
      { since: 0 },
      { labels: { host: 'h2' }, bucketMs: 3_600_000 },
      { labels: { 'a.b': 'x', 'q"uote': '0' } },
      { labels: { host: 'with\u0000nul' } },
    ];
    for (const filter of filters) {
      const fromPg = await pg.summarize(filter);
      expect(fromPg, JSON.stringify(filter)).toEqual(await sqlite.summarize(filter));
      expect(fromPg, JSON.stringify(filter)).toEqual(referenceSummaries(rows, filter));
    }

    const collect = async (iterable: AsyncIterable<Metric>) => {
      const out: Metric[] = [];
      for await (const row of iterable) out.push(row);
      return out;
    };
    const allPg = await collect(pg.export());
    expect(allPg).toHaveLength(2500);
    expect(allPg).toEqual(await collect(sqlite.export()));
    const some = { name: 'zeta', since: 0, until: 7_200_000 };
    expect(await collect(pg.export(some))).toEqual(await collect(sqlite.export(some)));

    await expect(pg.summarize({ bucketMs: -1 })).rejects.toBeInstanceOf(InvalidFilterError);
    expect(await pg.prune({ before: 0 })).toBe(await sqlite.prune({ before: 0 }));
    expect(await pg.count()).toBe(await sqlite.count());
    expect(await pg.summarize({ bucketMs: 3_600_000 })).toEqual(await sqlite.summarize({ bucketMs: 3_600_000 }));
    await Promise.all([pg.close(), sqlite.close()]);
  });

  it('prune deletes in chunks while the repository writes', async () => {
    const repo = await openMetricsRepo({ url: await server().createDatabase() });
    await repo.insertMany(Array.from({ length: 6000 }, (_, i) => ({ name: 'old', value: i, recordedAt: i })));
    const writes = Array.from({ length: 300 }, (_, i) => repo.insert({ name: 'new', value: i }));
    expect(await repo.prune({ before: new Date(6000) })).toBe(6000);
    await Promise.all(writes);
    expect(await repo.count({ name: 'old' })).toBe(0);
    expect(await repo.count({ name: 'new' })).toBe(300);
    await repo.close();
  });
});
