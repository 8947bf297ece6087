import { type ChildProcess, spawn } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { afterEach, describe, expect, it } from 'vitest';
import { LockTimeoutError, openMetricsRepo } from '../src/index.ts';
import { machineOverloaded, overloaded } from '../src/sqlite/overload.ts';
import { mailboxPatienceMs } from '../src/sqlite/post.ts';
import { fileWithHeldTurn, storedRows, usePhases, useTempDatabase } from './helpers.ts';

/** When a silent turn holder is taken for one short of a CPU rather than hung (see overload.ts). */
describe('an overloaded machine', () => {
  const burners: ChildProcess[] = [];
  afterEach(() => {
    for (const burner of burners.splice(0)) burner.kill('SIGKILL');
  });

  it('is one with more than four runnable threads per CPU, read from /proc/loadavg', () => {
    expect(overloaded('0.52 0.58 0.59 3/312 2880\n', 2)).toBe(false);
    expect(overloaded('0.52 0.58 0.59 8/312 2880\n', 2)).toBe(false);
    expect(overloaded('97.91 39.96 18.12 9/1312 2880\n', 2)).toBe(true);
    expect(overloaded('97.91 39.96 18.12 9/1312 2880\n', 4)).toBe(false);
    expect(overloaded('not what Linux writes', 2)).toBe(false);
  });

  /** Real processes that keep every CPU busy five times over; resolves once the overload is seen. */
  async function overload(): Promise<boolean> {
    const count = availableParallelism() * 5;
    for (let i = 0; i < count; i++) {
      burners.push(spawn(process.execPath, ['-e', 'for (;;) {}'], { stdio: 'ignore' }));
    }
    // The count is of this instant: sampled until seen, bounded.
    for (let tries = 0; tries < 100; tries++) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      if (machineOverloaded()) return true;
    }
    return false;
  }

  it.runIf(process.platform === 'linux')(
    'is seen while real processes keep every CPU busy five times over',
    async () => {
      expect(await overload()).toBe(true);
    },
    20_000,
  );

  const tempDatabase = useTempDatabase();
  const phases = usePhases();

  it.runIf(process.platform === 'linux')(
    'keeps the holder serving when the mailbox empties for a moment: a row posted after its commit is its, no new opener',
    async () => {
      const path = tempDatabase();
      await (await openMetricsRepo({ path })).close();
      expect(await overload()).toBe(true);
      // One process, three repositories: the first holds the file's turn since its open, the others
      // are followers (no connection), as processes opened meanwhile would be.
      const holder = await openMetricsRepo({ path });
      const early = await openMetricsRepo({ path });
      const late = await openMetricsRepo({ path });
      phases.listen();
      // The follower posts first, so the holder's first transaction carries a posted row.
      await Promise.all([early.insert({ name: 'served', value: 1 }), holder.insert({ name: 'served', value: 2 })]);
      // Nothing posted now. Not overloaded, the holder hands the turn on here, and the next
      // poster finds it free, opens the file and writes (turn.test.ts).
      await new Promise((resolve) => setTimeout(resolve, 200));
      await late.insert({ name: 'served', value: 3 });
      expect(phases.heard.filter((phase) => phase.scope === 'open' && phase.phase === 'connection')).toEqual([]);
      for (const burner of burners.splice(0)) burner.kill('SIGKILL');
      await Promise.all([late.close(), early.close(), holder.close()]);
      expect(storedRows(path, "name = 'served'")).toBe(3);
    },
    30_000,
  );

  it.runIf(process.platform === 'linux')(
    'keeps a writer waiting behind a silent holder past its patience, until its deadline: LOCK_TIMEOUT, nothing written',
    async () => {
      const path = tempDatabase();
      const silent = await fileWithHeldTurn(path);
      expect(await overload()).toBe(true);
      // Not overloaded, the same writer writes on its own after mailboxPatienceMs (turn.test.ts).
      const lockTimeoutMs = mailboxPatienceMs + 1500;
      const repo = await openMetricsRepo({ path, lockTimeoutMs });
      const started = Date.now();
      const failure = await repo.insert({ name: 'overloaded', value: 1 }).catch((error: unknown) => error);
      expect(failure).toBeInstanceOf(LockTimeoutError);
      expect(Date.now() - started).toBeGreaterThanOrEqual(lockTimeoutMs - 50);
      for (const burner of burners.splice(0)) burner.kill('SIGKILL');
      await repo.close();
      silent.close();
      expect(storedRows(path, "name = 'overloaded'")).toBe(0);
    },
    30_000,
  );
});
