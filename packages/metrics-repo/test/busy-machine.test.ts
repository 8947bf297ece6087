import { type ChildProcess, spawn } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { afterEach, describe, expect, it } from 'vitest';
import { openMetricsRepo } from '../src/index.ts';
import { fileWithHeldTurn, storedRows, turnAvailable, useTempDatabase } from './helpers.ts';

/**
 * Whether a turn's holder is hung is decided from the turn's own answers and time, never from
 * other programs' load: a machine kept busy by unrelated work changes nothing about it.
 */
describe.skipIf(!turnAvailable)('a machine kept busy by other programs', () => {
  const tempDatabase = useTempDatabase();
  const burners: ChildProcess[] = [];
  afterEach(() => {
    for (const burner of burners.splice(0)) burner.kill('SIGKILL');
  });

  /** Unrelated processes that keep every CPU busy six times over (each ends by itself after 60 s). */
  function keepBusy(): void {
    for (let i = 0; i < availableParallelism() * 6; i++) {
      const script = 'const end = Date.now() + 60_000; while (Date.now() < end) {}';
      burners.push(spawn(process.execPath, ['-e', script], { stdio: 'ignore' }));
    }
  }

  it('a writer behind a silent holder still writes on its own once out of patience: stored, no LOCK_TIMEOUT', {
    timeout: 60_000,
  }, async () => {
    const path = tempDatabase();
    const silent = await fileWithHeldTurn(path);
    keepBusy();
    await new Promise((resolve) => setTimeout(resolve, 200));
    // Its deadline is far past the mailbox's patience: only a rule built on the machine's load
    // (an earlier version's) kept it waiting until then.
    const repo = await openMetricsRepo({ path, lockTimeoutMs: 40_000 });
    try {
      const stored = await repo.insert({ name: 'busy', value: 1 });
      expect(stored.name).toBe('busy');
    } finally {
      for (const burner of burners.splice(0)) burner.kill('SIGKILL');
      await repo.close();
      silent.close();
    }
    expect(storedRows(path, "name = 'busy'")).toBe(1);
  });
});
