import { join } from 'node:path';
import { launch, type WorkerKind } from '@repo/launcher';
import { describe, expect, it } from 'vitest';
import { openMetricsRepo } from '../src/index.ts';
import type { InsertWorkerInput, InsertWorkerResult } from './fixtures/insert-worker.ts';
import { storedRows, useTempDatabase } from './helpers.ts';

const insertWorker = join(import.meta.dirname, 'fixtures', 'insert-worker.ts');

describe('concurrent writers', () => {
  const tempDatabase = useTempDatabase();

  it('20,000 concurrent insert calls in one process: 20,000 rows, unique ids', async () => {
    const path = tempDatabase();
    const repo = await openMetricsRepo({ path });
    const rows = await Promise.all(
      Array.from({ length: 20_000 }, (_, i) => repo.insert({ name: 'async.row', value: i, labels: { i: String(i) } })),
    );
    expect(new Set(rows.map((row) => row.id)).size).toBe(20_000);
    // Each caller got its own row back.
    expect(rows.every((row, i) => row.value === i && row.labels?.i === String(i))).toBe(true);
    expect(await repo.count()).toBe(20_000);
    await repo.close();
    expect(storedRows(path)).toBe(20_000);
  });

  it('8 worker threads and 8 processes, each with its own repository on one file: stored = acknowledged, no errors', async () => {
    const path = tempDatabase();
    // Create and migrate the file once, so the writers measure inserts.
    await (await openMetricsRepo({ path })).close();
    const rowsPerWriter = 1500;
    const launchWriters = (kind: WorkerKind) =>
      launch<InsertWorkerInput, InsertWorkerResult>({
        entry: insertWorker,
        kind,
        count: 8,
        input: () => ({ path, rows: rowsPerWriter }),
      });
    const [threads, processes] = await Promise.all([launchWriters('thread'), launchWriters('process')]);
    expect([...threads.setupFailures, ...processes.setupFailures]).toEqual([]);
    const outcomes = (await Promise.all([threads.run(), processes.run()])).flat();

    const results = outcomes.map((outcome) => {
      if (!outcome.ok) throw new Error(`writer ${outcome.index} failed: ${outcome.error.message}`);
      return outcome.result;
    });
    expect(results.map((result) => result.errorCodes)).toEqual(Array(16).fill({}));
    const acked = results.reduce((sum, result) => sum + result.acked, 0);
    expect(acked).toBe(16 * rowsPerWriter);
    expect(storedRows(path)).toBe(acked);
    const ids = results.flatMap((result) => result.ids);
    expect(new Set(ids).size).toBe(acked);
  });
});
