// Loaded only with the PostgreSQL backend (through pg/driver.ts).
import type { Metric, MetricLabels } from '@repo/db/pg';
import type { Pool, PoolClient } from 'pg';
import { RepoClosedError } from '../errors.ts';
import type { ValidSummaryFilter } from '../read-validate.ts';
import { exportPolicy, nextChunk, prunePolicy, type ReadsBackend, sleep } from '../reads.ts';
import { SummaryBuilder } from '../summary.ts';
import type { MetricSummary } from '../types.ts';
import type { ValidFilter } from '../validate.ts';
import { timestampLiteral } from './rows.ts';
import { toDatabaseError } from './writer.ts';

/** Epoch milliseconds of `recorded_at`, exact (extract() is numeric on PostgreSQL 14 and later). */
const msOf = '(extract(epoch from recorded_at) * 1000)::bigint';
const summaryFetchRows = 10_000;

/**
 * Reads and retention on PostgreSQL, through the repository's pool: every page
 * of an export and every chunk of a prune is its own statement (no transaction
 * held across them); a summary reads its one sorted statement through a cursor,
 * so memory holds one bucket's values, not the range's rows.
 */
export function pgReads(pool: Pool): ReadsBackend {
  let closed = false;
  const running = new Set<Promise<unknown>>();
  const track = <T>(work: Promise<T>): Promise<T> => {
    running.add(work);
    void work.finally(() => running.delete(work)).catch(() => undefined);
    return work;
  };
  const check = () => {
    if (closed) throw new RepoClosedError();
  };
  return {
    summarize: (filter) => track(summarize(pool, filter, check)),
    exportRows: (filter) => exportRows(pool, filter, check),
    prune: (before, signal) => track(prune(pool, before, signal, check)),
    async closeReads() {
      closed = true;
      await Promise.allSettled([...running]);
    },
  };
}

function whereClause(filter: ValidFilter, params: unknown[], conditions: string[] = []): string {
  if (filter.name !== undefined) {
    params.push(filter.name);
    conditions.push(`name = $${params.length}`);
  }
  // Bound as literals the writer also uses: exact for every date PostgreSQL holds.
  if (filter.since !== undefined) {
    params.push(timestampLiteral(filter.since));
    conditions.push(`recorded_at >= $${params.length}::timestamptz`);
  }
  if (filter.until !== undefined) {
    params.push(timestampLiteral(filter.until));
    conditions.push(`recorded_at < $${params.length}::timestamptz`);
  }
  return conditions.length === 0 ? '' : ` WHERE ${conditions.join(' AND ')}`;
}

async function summarize(pool: Pool, filter: ValidSummaryFilter, check: () => void): Promise<MetricSummary[]> {
  check();
  const params: unknown[] = [];
  const conditions: string[] = [];
  if (filter.labels !== undefined) {
    // jsonb cannot hold U+0000, so no stored row has such a value: nothing matches (as on SQLite).
    if (filter.labels.some(([, value]) => value.includes('\u0000'))) return [];
    params.push(JSON.stringify(Object.fromEntries(filter.labels)));
    conditions.push(`labels @> $${params.length}::jsonb`);
  }
  const where = whereClause(filter, params, conditions);
  const b = filter.bucketMs;
  const bucket = b === undefined ? '0' : `(${msOf} - mod(mod(${msOf}, ${b}) + ${b}, ${b}))::float8`;
  const withTime = b === undefined && filter.since === undefined;
  // COLLATE "C": names in byte order, as SQLite's BINARY collation sorts them.
  const sql = `SELECT name, ${bucket} AS bucket, value${withTime ? `, ${msOf}::float8` : ''} FROM metrics${where} ORDER BY name COLLATE "C", bucket, value`;
  const builder = new SummaryBuilder(b === undefined ? filter.since : undefined);
  let client: PoolClient | undefined;
  try {
    client = await pool.connect();
    await client.query('BEGIN READ ONLY');
    await client.query(`DECLARE summary NO SCROLL CURSOR FOR ${sql}`, params);
    for (;;) {
      const result = await client.query({ text: `FETCH ${summaryFetchRows} FROM summary`, rowMode: 'array' });
      for (const row of result.rows as unknown[][]) {
        builder.add(
          row[0] as string,
          Number(row[1]),
          row[2] as number,
          row[3] === undefined ? undefined : Number(row[3]),
        );
      }
      if (result.rows.length < summaryFetchRows) break;
      check();
    }
    await client.query('COMMIT');
  } catch (error) {
    await client?.query('ROLLBACK').catch(() => undefined);
    if (error instanceof RepoClosedError) throw error;
    throw toDatabaseError(error);
  } finally {
    client?.release();
  }
  return builder.finish();
}

async function* exportRows(
  pool: Pool,
  filter: ValidFilter,
  check: () => void,
): AsyncGenerator<Metric, void, undefined> {
  check();
  let upper: number;
  try {
    const result = await pool.query({ text: 'SELECT coalesce(max(id), 0)::float8 FROM metrics', rowMode: 'array' });
    upper = Number((result.rows[0] as unknown[])[0]);
  } catch (error) {
    throw toDatabaseError(error);
  }
  const params: unknown[] = [0, 0];
  const where = whereClause(filter, params, ['id > $1', 'id <= $2']);
  params.push(exportPolicy.pageRows);
  const sql = `SELECT id::float8, name, value, ${msOf}::float8, labels, event_id FROM metrics${where} ORDER BY id LIMIT $${params.length}`;
  let after = 0;
  while (after < upper) {
    check();
    const windowEnd = Math.min(upper, after + exportPolicy.scanWindowRows);
    params[0] = after;
    params[1] = windowEnd;
    let page: unknown[][];
    try {
      page = (await pool.query({ text: sql, values: params, rowMode: 'array' })).rows as unknown[][];
    } catch (error) {
      throw toDatabaseError(error);
    }
    for (const row of page) {
      yield {
        id: Number(row[0]),
        name: row[1] as string,
        value: row[2] as number,
        recordedAt: new Date(Number(row[3])),
        labels: (row[4] ?? null) as MetricLabels | null,
        eventId: row[5] as string | null,
      };
    }
    after = page.length === exportPolicy.pageRows ? Number((page[page.length - 1] as unknown[])[0]) : windowEnd;
  }
}

async function prune(pool: Pool, before: number, signal: AbortSignal | undefined, check: () => void): Promise<number> {
  let deleted = 0;
  let chunk = prunePolicy.initialRows;
  const cutoff = timestampLiteral(before);
  for (;;) {
    signal?.throwIfAborted();
    check();
    const t0 = performance.now();
    let changes: number;
    try {
      const result = await pool.query(
        'DELETE FROM metrics WHERE id IN (SELECT id FROM metrics WHERE recorded_at < $1::timestamptz LIMIT $2)',
        [cutoff, chunk],
      );
      changes = result.rowCount ?? 0;
    } catch (error) {
      throw toDatabaseError(error);
    }
    const elapsedMs = performance.now() - t0;
    deleted += changes;
    if (changes < chunk) return deleted;
    chunk = nextChunk(chunk, elapsedMs);
    await sleep(Math.max(prunePolicy.minPauseMs, elapsedMs * prunePolicy.pauseRatio));
  }
}
