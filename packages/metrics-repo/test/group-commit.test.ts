import { describe, expect, it } from 'vitest';
import {
  DuplicateEventError,
  openMetricsRepo,
  QueueFullError,
  RepoClosedError,
  ValidationError,
} from '../src/index.ts';
import { startForeign } from './foreign.ts';
import {
  fileWithHeldTurn,
  holdWriteLock,
  settleAll,
  storedRows,
  turnAvailable,
  usePhases,
  useTempDatabase,
} from './helpers.ts';

describe('group commit', () => {
  const tempDatabase = useTempDatabase();
  const phases = usePhases();

  it('a bad row and a duplicate eventId in the middle of a batch fail only their own callers', async () => {
    const path = tempDatabase();
    const repo = await openMetricsRepo({ path });
    await repo.insert({ name: 'seed', value: 0, eventId: 'taken' });
    // Hold the lock so that every call below lands in the same transaction.
    const released = holdWriteLock(path, 200);
    const calls = Array.from({ length: 200 }, (_, i) => {
      if (i === 50) return repo.insert({ name: 'bad', value: Number.NaN });
      if (i === 100) return repo.insert({ name: 'dup', value: 1, eventId: 'taken' });
      if (i === 120) return repo.insert({ name: 'dup-in-batch', value: 1, eventId: 'fresh' });
      if (i === 121) return repo.insert({ name: 'dup-in-batch', value: 2, eventId: 'fresh' });
      if (i === 150)
        return repo.insertMany([
          { name: 'many', value: 1 },
          { name: 'many', value: 2, eventId: 'taken' },
        ]);
      return repo.insert({ name: 'good', value: i });
    });
    // Handlers attached at once: a rejection must not count as unhandled while the lock is held.
    const settled = Promise.allSettled(calls);
    await released;
    const outcomes = await settled;
    const rejected = outcomes.flatMap((outcome, i) => (outcome.status === 'rejected' ? [[i, outcome.reason]] : []));
    expect(rejected.map(([i]) => i)).toEqual([50, 100, 121, 150]);
    expect(rejected[0]?.[1]).toBeInstanceOf(ValidationError);
    expect(rejected[1]?.[1]).toBeInstanceOf(DuplicateEventError);
    expect(rejected[2]?.[1]).toMatchObject({ code: 'DUPLICATE_EVENT', eventId: 'fresh' });
    expect(rejected[3]?.[1]).toMatchObject({ code: 'DUPLICATE_EVENT', eventId: 'taken' });
    // 1 seed + 195 good + the first 'fresh'.
    expect(storedRows(path)).toBe(1 + 195 + 1);
    expect(storedRows(path, "name = 'many'")).toBe(0);
    await repo.close();
  });

  it('splits large queues into transactions of at most maxBatchRows, each caller getting its row', async () => {
    const path = tempDatabase();
    const repo = await openMetricsRepo({ path, maxBatchRows: 7 });
    const rows = await Promise.all(Array.from({ length: 100 }, (_, i) => repo.insert({ name: 'b', value: i })));
    expect(rows.map((row) => row.value)).toEqual(Array.from({ length: 100 }, (_, i) => i));
    // An insertMany larger than a batch still commits atomically, alone.
    const many = await repo.insertMany(Array.from({ length: 20 }, (_, i) => ({ name: 'big', value: i })));
    expect(many).toHaveLength(20);
    expect(storedRows(path)).toBe(120);
    await repo.close();
  });

  it.each([
    { who: 'a repository that opened the file', followsHeldTurn: false },
    // A follower has no connection: the 100th insert opens the file, as one that opened it would have.
    { who: 'a follower (another repository holds the turn)', followsHeldTurn: true },
  ])(
    '$who commits a full batch inside the call that filled it, so a long synchronous loop keeps at most one batch queued',
    async ({ followsHeldTurn }) => {
      const path = tempDatabase();
      const holder = followsHeldTurn ? await fileWithHeldTurn(path) : undefined;
      const repo = await openMetricsRepo({ path, maxBatchRows: 100 });
      const calls: Promise<unknown>[] = [];
      for (let i = 0; i < 1050; i++) calls.push(repo.insert({ name: 'loop', value: i }));
      // Still inside the same synchronous turn: ten full batches are already committed.
      expect(repo.pendingRows).toBe(50);
      expect(storedRows(path)).toBe(1000);
      await Promise.all(calls);
      expect(storedRows(path)).toBe(1050);
      await repo.close();
      holder?.close();
    },
  );

  it.skipIf(!turnAvailable)(
    'a follower whose in-loop open meets another program holding the file exclusively: no call fails, nothing is written then, all of it after',
    async () => {
      const path = tempDatabase();
      const holder = await fileWithHeldTurn(path);
      // Another program: locking_mode=EXCLUSIVE and a write, so that nobody else can even read the file for 1.5 s.
      const foreign = startForeign('hold-exclusive', path, 1500);
      await foreign.ready;
      const repo = await openMetricsRepo({ path, maxBatchRows: 100 });
      const calls: Promise<unknown>[] = [];
      for (let i = 0; i < 1050; i++) calls.push(repo.insert({ name: 'loop', value: i }));
      // The open inside the 100th insert was refused at once; the calls wait, queued.
      expect(repo.pendingRows).toBe(1050);
      await foreign.done;
      const { values, errors } = await settleAll(calls);
      expect(errors).toEqual([]);
      expect(values).toHaveLength(1050);
      expect(storedRows(path, "name = 'loop'")).toBe(1050);
      await repo.close();
      holder.close();
    },
  );

  it.skipIf(!turnAvailable)(
    'a follower with maxBatchRows 1 still hands a one-row insert to the mailbox: a "full batch" of one does not open the file',
    async () => {
      const path = tempDatabase();
      const holder = await fileWithHeldTurn(path);
      phases.listen();
      const repo = await openMetricsRepo({ path, maxBatchRows: 1 });
      const inserting = repo.insert({ name: 'one', value: 1 });
      expect(phases.heard.some((p) => p.scope === 'open' && p.phase === 'connection')).toBe(false);
      // The turn handed on: the follower takes it, opens the file and commits its row.
      holder.release();
      await inserting;
      expect(storedRows(path, "name = 'one'")).toBe(1);
      await repo.close();
      holder.close();
    },
  );

  it("onQueueFull 'wait' holds callers in order until there is room; nothing is dropped", async () => {
    const path = tempDatabase();
    const repo = await openMetricsRepo({ path, maxQueuedRows: 10 });
    const released = holdWriteLock(path, 100);
    const order: number[] = [];
    const calls = Array.from({ length: 50 }, (_, i) =>
      repo.insert({ name: 'w', value: i }).then((row) => order.push(row.value)),
    );
    expect(repo.pendingRows).toBeLessThanOrEqual(10);
    await released;
    await Promise.all(calls);
    expect(order).toEqual(Array.from({ length: 50 }, (_, i) => i));
    expect(storedRows(path)).toBe(50);
    await repo.close();
  });

  it("onQueueFull 'reject' refuses the overflow at once with QueueFullError", async () => {
    const path = tempDatabase();
    const repo = await openMetricsRepo({ path, maxQueuedRows: 10, onQueueFull: 'reject' });
    const released = holdWriteLock(path, 100);
    const settled = settleAll(Array.from({ length: 25 }, (_, i) => repo.insert({ name: 'r', value: i })));
    await released;
    const { values, errors } = await settled;
    expect(values).toHaveLength(10);
    expect(errors).toHaveLength(15);
    for (const error of errors) expect(error).toBeInstanceOf(QueueFullError);
    expect(storedRows(path)).toBe(10);
    await expect(repo.insertMany(Array.from({ length: 11 }, () => ({ name: 'x', value: 1 })))).rejects.toMatchObject({
      code: 'INVALID_METRIC',
      field: 'rows',
    });
    await repo.close();
  });

  it('close() with pending inserts commits every accepted one, rejects the rest, and leaves nothing pending', async () => {
    const path = tempDatabase();
    const repo = await openMetricsRepo({ path, maxQueuedRows: 100 });
    const released = holdWriteLock(path, 150);
    const accepted = Array.from({ length: 100 }, (_, i) => repo.insert({ name: 'accepted', value: i }));
    const waiting = Array.from({ length: 20 }, (_, i) => repo.insert({ name: 'waiting', value: i }));
    const closed = repo.close();
    const late = repo.insert({ name: 'late', value: 1 });
    const settled = Promise.allSettled([...accepted, ...waiting, late]);
    await released;
    await closed;
    const all = await settled;
    expect(all.filter((o) => o.status === 'fulfilled')).toHaveLength(100);
    const reasons = all.flatMap((o) => (o.status === 'rejected' ? [o.reason] : []));
    expect(reasons).toHaveLength(21);
    for (const reason of reasons) expect(reason).toBeInstanceOf(RepoClosedError);
    expect(storedRows(path)).toBe(100);
    expect(repo.pendingRows).toBe(0);
  });
  it('a synchronous loop of inserts while another connection holds the lock tries it once per full batch, not once per insert', async () => {
    const path = tempDatabase();
    const repo = await openMetricsRepo({ path, maxBatchRows: 100 });
    // Count the attempts at the lock on the repository's own connection.
    const connection = repo.db.$client;
    const exec = connection.exec.bind(connection);
    let attempts = 0;
    connection.exec = (sql: string) => {
      if (sql === 'BEGIN IMMEDIATE') attempts += 1;
      return exec(sql);
    };
    const released = holdWriteLock(path, 300);
    const calls = Array.from({ length: 5000 }, (_, i) => repo.insert({ name: 'loop', value: i }));
    // Full batches were queued at 100, 200 ... 5,000 rows: one refused attempt for each, where
    // one per insert past the first batch would be 4,901.
    expect(attempts).toBeLessThanOrEqual(5000 / 100);
    expect(attempts).toBeGreaterThan(0);
    await released;
    await Promise.all(calls);
    expect(storedRows(path, "name = 'loop'")).toBe(5000);
    await repo.close();
  });
});
