import { openMetricsRepo } from '@repo/metrics-repo';
import { withPgClient } from '@repo/testkit/postgres';
import { measureInsertBurst } from '../concurrent.ts';
import { runMeasured } from '../measure.ts';
import { countStoredPgRows } from '../postgres.ts';
import { metricRows } from '../workload.ts';
import { describeError, type Measurement, type Scenario, type ScenarioContext } from './scenario.ts';

// The same five columns the repository writes, as a raw `pg` caller would send them.
const columns = '"name", "value", "recorded_at", "labels", "event_id"';
const unnestInsert = `INSERT INTO metrics (${columns}) SELECT * FROM unnest($1::text[], $2::float8[], $3::timestamptz[], $4::jsonb[], $5::text[])`;
const singleInsert = `INSERT INTO metrics (${columns}) VALUES ($1, $2, $3, $4, $5)`;

/**
 * A fresh database with the schema (created by opening the repository once, so
 * every PostgreSQL scenario measures inserts into the same migrated table).
 */
async function freshDatabase(context: ScenarioContext): Promise<string> {
  if (context.postgres === undefined) throw new Error('a PostgreSQL scenario ran without a server');
  const url = await context.postgres.createDatabase();
  await (await openMetricsRepo({ url })).close();
  return url;
}

async function withStored(url: string, measurement: Omit<Measurement, 'stored'>): Promise<Measurement> {
  return { ...measurement, stored: await countStoredPgRows(url) };
}

function columnsOf(rows: ReturnType<typeof metricRows>) {
  return [
    rows.map((row) => row.name),
    rows.map((row) => row.value),
    rows.map((row) => new Date(row.recordedAt as number).toISOString()),
    rows.map((row) => JSON.stringify(row.labels)),
    rows.map(() => null),
  ];
}

/** The ceiling: every row in one INSERT ... SELECT FROM unnest(...) statement, one transaction, one round trip. */
export const pgLimit: Scenario = {
  name: 'pg-limit',
  needsPostgres: true,
  describe: () => 'PostgreSQL, raw pg: all rows in one INSERT ... SELECT FROM unnest(arrays) statement (the ceiling)',
  medianBy: 'rowsPerSec',
  async run(context) {
    const url = await freshDatabase(context);
    const rows = metricRows(context.sizes.pgRows);
    const values = columnsOf(rows);
    const measured = await withPgClient(url, (client) =>
      runMeasured(async () => {
        const start = performance.now();
        await client.query(unnestInsert, values);
        return performance.now() - start;
      }),
    );
    const { value: wallMs, ...eventLoop } = measured;
    return withStored(url, {
      rows: rows.length,
      failedRows: 0,
      wallMs,
      latenciesMs: new Float64Array(rows.length).fill(wallMs),
      ...eventLoop,
    });
  },
};

/** What most code does: one awaited autocommit INSERT per row on one connection. Slow: a bounded sample. */
export const pgNaive: Scenario = {
  name: 'pg-naive',
  needsPostgres: true,
  describe: (sizes) =>
    `PostgreSQL, raw pg: one awaited autocommit INSERT per row on one connection; bounded sample of ${sizes.pgNaiveRows} rows`,
  medianBy: 'rowsPerSec',
  async run(context) {
    const url = await freshDatabase(context);
    const rows = metricRows(context.sizes.pgNaiveRows);
    const measured = await withPgClient(url, (client) =>
      runMeasured(async () => {
        const latenciesMs = new Float64Array(rows.length);
        let acknowledged = 0;
        let firstError: string | undefined;
        const start = performance.now();
        for (const row of rows) {
          const issuedAt = performance.now();
          try {
            await client.query(singleInsert, [
              row.name,
              row.value,
              new Date(row.recordedAt as number),
              JSON.stringify(row.labels),
              null,
            ]);
            latenciesMs[acknowledged++] = performance.now() - issuedAt;
          } catch (error) {
            firstError ??= describeError(error);
          }
        }
        return { acknowledged, latenciesMs, firstError, wallMs: performance.now() - start };
      }),
    );
    const { value, ...eventLoop } = measured;
    return withStored(url, {
      rows: value.acknowledged,
      failedRows: rows.length - value.acknowledged,
      wallMs: value.wallMs,
      latenciesMs: value.latenciesMs.subarray(0, value.acknowledged),
      ...eventLoop,
      ...(value.firstError === undefined ? {} : { firstError: value.firstError }),
    });
  },
};

/** The repository on PostgreSQL: every insert call issued at once in one process (group commit). */
export const pgRepoAsync: Scenario = {
  name: 'pg-repo-async',
  needsPostgres: true,
  describe: () => 'PostgreSQL, repo.insert, every call issued at once in one process (group commit)',
  medianBy: 'rowsPerSec',
  async run(context) {
    const url = await freshDatabase(context);
    const rows = metricRows(context.sizes.pgRows);
    const repo = await openMetricsRepo({ url });
    try {
      return withStored(url, await measureInsertBurst(repo, rows));
    } finally {
      await repo.close();
    }
  },
};
