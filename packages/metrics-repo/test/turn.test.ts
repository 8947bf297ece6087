import { mkdirSync } from 'node:fs';
import { openWriteTurn } from '@repo/write-turn';
import { describe, expect, it } from 'vitest';
import { openMetricsRepo } from '../src/index.ts';
import { holdWriteLock, storedRows, usePhases, useTempDatabase } from './helpers.ts';

/** Waiting for the write lock behind the write turn (@repo/write-turn): one writer polls, the others sleep in the kernel. */
describe('the write turn', () => {
  const tempDatabase = useTempDatabase();
  const { heard, listen } = usePhases();
  const attempts = () =>
    heard.filter((p) => p.scope === 'write' && p.phase === 'lock-wait').map((p) => p.attempts ?? Number.NaN);

  async function fourWritersBehindAForeignLock(path: string) {
    const repos = await Promise.all(Array.from({ length: 4 }, () => openMetricsRepo({ path })));
    listen();
    const held = holdWriteLock(path, 300);
    await Promise.all(repos.map((repo, i) => repo.insert({ name: 'turn', value: i })));
    await held;
    await Promise.all(repos.map((repo) => repo.close()));
    expect(storedRows(path, "name = 'turn'")).toBe(4);
  }

  it('while another connection holds the lock, one writer polls SQLite and the others wait for their turn', async () => {
    const path = tempDatabase();
    await fourWritersBehindAForeignLock(path);
    const perWriter = attempts();
    expect(perWriter).toHaveLength(4);
    // The turn's holder follows SQLite's schedule through the 300 ms hold (several refusals);
    // the three behind it are woken when it commits and find the lock free.
    expect(perWriter.filter((n) => n > 2)).toHaveLength(1);
  });

  it('without a usable turn file the writers fall back to polling on timers, and still store every row', async () => {
    const path = tempDatabase();
    mkdirSync(`${path}-turn`); // a directory where the turn file would be: it cannot be opened
    await fourWritersBehindAForeignLock(path);
    expect(attempts().filter((n) => n > 2).length).toBeGreaterThan(1);
  });

  it('a turn holder that never lets go (a stopped process) is bypassed: the row is still stored', async () => {
    const path = tempDatabase();
    const repo = await openMetricsRepo({ path });
    const stuck = openWriteTurn(`${path}-turn`);
    expect(stuck.tryAcquire()).toBe(true);
    // The first attempt is refused, so the repository queues for the turn, which never comes.
    const held = holdWriteLock(path, 100);
    const stored = await repo.insert({ name: 'bypass', value: 1 });
    await held;
    expect(stored.name).toBe('bypass');
    expect(storedRows(path, "name = 'bypass'")).toBe(1);
    await repo.close();
    stuck.close();
  });
});
