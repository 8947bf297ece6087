import BetterSqlite3 from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { defaultOptions, openMetricsRepo, RepoClosedError, ValidationError } from '../src/index.ts';
import { storedRows, useTempDatabase } from './helpers.ts';

describe('insert, insertMany and count', () => {
  const tempDatabase = useTempDatabase();

  it('resolves with the committed row, as stored', async () => {
    const path = tempDatabase();
    const repo = await openMetricsRepo({ path });
    const recordedAt = new Date('2026-03-04T05:06:07.089Z');
    const row = await repo.insert({
      name: 'job.duration_ms',
      value: 12.5,
      recordedAt,
      labels: { host: 'a' },
      eventId: 'e1',
    });
    expect(row).toEqual({
      id: 1,
      name: 'job.duration_ms',
      value: 12.5,
      recordedAt,
      labels: { host: 'a' },
      eventId: 'e1',
    });
    // Committed before the promise resolved: another connection sees it.
    const sqlite = new BetterSqlite3(path, { readonly: true });
    expect(sqlite.prepare('SELECT * FROM metrics').get()).toEqual({
      id: 1,
      name: 'job.duration_ms',
      value: 12.5,
      recorded_at: recordedAt.getTime(),
      labels: '{"host":"a"}',
      event_id: 'e1',
    });
    sqlite.close();
    await repo.close();
  });

  it('defaults recordedAt to the time of the call and accepts epoch milliseconds', async () => {
    const repo = await openMetricsRepo({ path: tempDatabase() });
    const before = Date.now();
    const implicit = await repo.insert({ name: 'a', value: 1 });
    expect(implicit.recordedAt.getTime()).toBeGreaterThanOrEqual(before);
    expect(implicit.recordedAt.getTime()).toBeLessThanOrEqual(Date.now());
    expect(implicit.labels).toBeNull();
    expect(implicit.eventId).toBeNull();
    const explicit = await repo.insert({ name: 'a', value: 1, recordedAt: 1_700_000_000_123 });
    expect(explicit.recordedAt).toEqual(new Date(1_700_000_000_123));
    await repo.close();
  });

  it('stores printable text of any kind exactly as given, and never executes it', async () => {
    const path = tempDatabase();
    const repo = await openMetricsRepo({ path });
    const texts = [
      `it's "quoted" \\ back\`tick`,
      "'); DROP TABLE metrics; --",
      'Robert"); DELETE FROM metrics WHERE ("1"="1',
      'emoji 📈🔥 and CJK 指标 and RTL مقياس',
      'line\nbreaks\tand tabs in a label value',
      '%_* like wildcards',
    ];
    for (const [i, text] of texts.entries()) {
      const nameSafe = text.replace(/[\n\t]/g, ' ');
      await repo.insert({ name: nameSafe, value: i, labels: { text }, eventId: `${nameSafe}#${i}` });
    }
    const sqlite = new BetterSqlite3(path, { readonly: true });
    const rows = sqlite.prepare('SELECT name, labels, event_id FROM metrics ORDER BY id').all() as {
      name: string;
      labels: string;
      event_id: string;
    }[];
    sqlite.close();
    expect(rows.map((row) => JSON.parse(row.labels).text)).toEqual(texts);
    expect(rows.map((row) => row.name)).toEqual(texts.map((t) => t.replace(/[\n\t]/g, ' ')));
    expect(await repo.count()).toBe(texts.length);
    await repo.close();
  });

  it('insertMany stores all rows in order, or none', async () => {
    const path = tempDatabase();
    const repo = await openMetricsRepo({ path });
    const rows = await repo.insertMany([
      { name: 'm', value: 1 },
      { name: 'm', value: 2, eventId: 'x' },
      { name: 'm', value: 3 },
    ]);
    expect(rows.map((row) => row.value)).toEqual([1, 2, 3]);
    expect(rows.map((row) => row.id)).toEqual([1, 2, 3]);
    // The second row collides with a stored eventId: nothing of this call is stored.
    await expect(
      repo.insertMany([
        { name: 'n', value: 1 },
        { name: 'n', value: 2, eventId: 'x' },
      ]),
    ).rejects.toMatchObject({ code: 'DUPLICATE_EVENT', eventId: 'x' });
    expect(storedRows(path)).toBe(3);
    expect(await repo.insertMany([])).toEqual([]);
    await repo.close();
  });

  it('counts by name and by time, with since inclusive and until exclusive', async () => {
    const repo = await openMetricsRepo({ path: tempDatabase() });
    await repo.insertMany([
      { name: 'a', value: 1, recordedAt: 1000 },
      { name: 'a', value: 1, recordedAt: 2000 },
      { name: 'a', value: 1, recordedAt: 3000 },
      { name: 'b', value: 1, recordedAt: 2000 },
    ]);
    expect(await repo.count()).toBe(4);
    expect(await repo.count({})).toBe(4);
    expect(await repo.count({ name: 'a' })).toBe(3);
    expect(await repo.count({ name: 'zzz' })).toBe(0);
    expect(await repo.count({ since: 2000 })).toBe(3);
    expect(await repo.count({ until: 2000 })).toBe(1);
    expect(await repo.count({ name: 'a', since: new Date(2000), until: new Date(3000) })).toBe(1);
    expect(await repo.count({ since: 2000, until: 2000 })).toBe(0);
    await repo.close();
  });

  it('count sees every insert that resolved before it (read-your-writes) and rows of other connections', async () => {
    const path = tempDatabase();
    const repo = await openMetricsRepo({ path });
    const other = await openMetricsRepo({ path });
    for (let round = 1; round <= 5; round++) {
      await Promise.all(Array.from({ length: 50 }, (_, i) => repo.insert({ name: 'r', value: i })));
      expect(await repo.count()).toBe(round * 50);
      expect(await other.count()).toBe(round * 50);
    }
    await other.insert({ name: 'from-other', value: 1 });
    expect(await repo.count({ name: 'from-other' })).toBe(1);
    await Promise.all([repo.close(), other.close()]);
  });

  it('never throws synchronously, even for garbage and after close', async () => {
    const repo = await openMetricsRepo({ path: tempDatabase() });
    const garbage = [undefined, null, 42, 'text', [], () => 1] as unknown[];
    for (const input of garbage) {
      let promise: Promise<unknown> | undefined;
      expect(() => {
        promise = repo.insert(input as never);
      }).not.toThrow();
      await expect(promise).rejects.toBeInstanceOf(ValidationError);
    }
    await repo.close();
    let afterClose: Promise<unknown> | undefined;
    expect(() => {
      afterClose = repo.insert({ name: 'late', value: 1 });
    }).not.toThrow();
    await expect(afterClose).rejects.toBeInstanceOf(RepoClosedError);
    await expect(repo.insertMany([{ name: 'late', value: 1 }])).rejects.toMatchObject({ code: 'REPO_CLOSED' });
    await expect(repo.count()).rejects.toMatchObject({ code: 'REPO_CLOSED' });
    await expect(repo.close()).resolves.toBeUndefined();
  });

  it('documents its defaults and refuses nonsense options', async () => {
    expect(defaultOptions).toEqual({
      lockTimeoutMs: 30_000,
      synchronous: 'normal',
      maxQueuedRows: 100_000,
      onQueueFull: 'wait',
      maxBatchRows: 1000,
      threadSlices: false,
      retainMs: undefined,
    });
    const path = tempDatabase();
    await expect(openMetricsRepo({ path, maxBatchRows: 0 })).rejects.toThrow(/maxBatchRows/);
    await expect(openMetricsRepo({ path, lockTimeoutMs: -1 })).rejects.toThrow(/lockTimeoutMs/);
    await expect(openMetricsRepo({ path, synchronous: 'off' as never })).rejects.toThrow(/synchronous/);
    await expect(openMetricsRepo({ path: '' })).rejects.toThrow(/path/);
    await expect(openMetricsRepo({ path, threadSlices: 'yes' as never })).rejects.toThrow(
      /threadSlices must be a boolean/,
    );
    const full = await openMetricsRepo({ path, synchronous: 'full' });
    expect(full.options.synchronous).toBe('full');
    await full.close();
  });
});
