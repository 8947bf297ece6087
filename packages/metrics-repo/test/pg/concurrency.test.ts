import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { pgMigrationsFolder } from '@repo/db/pg';
import { launch } from '@repo/launcher';
import { usePostgres } from '@repo/testkit';
import { describe, expect, it } from 'vitest';
import { openMetricsRepo } from '../../src/index.ts';
import type { PgWriterInput, PgWriterResult } from './fixtures/pg-writer.ts';
import { storedRows, withSession } from './helpers.ts';

const pgWriter = join(import.meta.dirname, 'fixtures', 'pg-writer.ts');
const server = usePostgres();

function resultsOf(
  outcomes: Awaited<ReturnType<Awaited<ReturnType<typeof launch<PgWriterInput, PgWriterResult>>>['run']>>,
) {
  return outcomes.map((outcome) => {
    if (!outcome.ok) throw new Error(`writer ${outcome.index} failed: ${outcome.error.message}`);
    return outcome.result;
  });
}

describe('PostgreSQL: concurrent writers', () => {
  it('20,000 concurrent insert calls in one process: 20,000 rows, distinct ids, each caller its own row', async () => {
    const url = await server().createDatabase();
    const repo = await openMetricsRepo({ url });
    const rows = await Promise.all(
      Array.from({ length: 20_000 }, (_, i) => repo.insert({ name: 'async.row', value: i, labels: { i: String(i) } })),
    );
    expect(new Set(rows.map((row) => row.id)).size).toBe(20_000);
    expect(rows.every((row, i) => row.value === i && row.labels?.i === String(i))).toBe(true);
    expect(await repo.count()).toBe(20_000);
    await repo.close();
    // Each id stored with the row its caller was given.
    const mismatched = await storedRows(url, `value::int::text <> labels->>'i'`);
    expect(mismatched).toBe(0);
    expect(await storedRows(url)).toBe(20_000);
  });

  it('8 processes × 2,000 rows, one repository each: stored = acknowledged, distinct ids, no errors', async () => {
    const url = await server().createDatabase();
    await (await openMetricsRepo({ url })).close();
    const fleet = await launch<PgWriterInput, PgWriterResult>({
      entry: pgWriter,
      kind: 'process',
      count: 8,
      input: () => ({ url, rows: 2000, rounds: 1, openAtStart: false, reportAcked: false }),
    });
    expect(fleet.setupFailures).toEqual([]);
    const results = resultsOf(await fleet.run({ timeoutMs: 60_000 }));
    expect(results.map((result) => result.errors)).toEqual(Array(8).fill({}));
    const ids = results.flatMap((result) => result.ids);
    expect(ids).toHaveLength(16_000);
    expect(new Set(ids).size).toBe(16_000);
    expect(await storedRows(url)).toBe(16_000);
  });

  it('12 processes opening a fresh database at the same moment: all succeed, the schema is created once', async () => {
    const url = await server().createDatabase();
    const fleet = await launch<PgWriterInput, PgWriterResult>({
      entry: pgWriter,
      kind: 'process',
      count: 12,
      input: () => ({ url, rows: 50, rounds: 1, openAtStart: true, reportAcked: false }),
    });
    expect(fleet.setupFailures).toEqual([]);
    const results = resultsOf(await fleet.run({ timeoutMs: 60_000 }));
    expect(results.map((result) => result.errors)).toEqual(Array(12).fill({}));
    expect(await storedRows(url)).toBe(12 * 50);
    const applied = await withSession(url, async (client) => {
      const { rows } = await client.query<{ n: string }>('SELECT count(*) AS n FROM drizzle.__drizzle_migrations');
      return Number(rows[0]?.n);
    });
    // Each committed migration recorded once.
    expect(applied).toBe(readdirSync(pgMigrationsFolder).filter((name) => name.endsWith('.sql')).length);
  });
});
