import { describe, expect, it } from 'vitest';
import { openMetricsRepo } from '../src/index.ts';
import { holdWriteLock, usePhases, useTempDatabase } from './helpers.ts';

/** The phases profilers hear on `metrics-db:phase` (what `pnpm --filter @repo/bench run phases` prints). */
describe('published phases', () => {
  const tempDatabase = useTempDatabase();
  const { heard, listen } = usePhases();

  const named = (scope: string, phase: string) => heard.filter((p) => p.scope === scope && p.phase === phase);

  it('open, lock-wait (with its attempts), lock-held, settle and close, each with wall, CPU and preemptions', async () => {
    const path = tempDatabase();
    // Created and migrated before anyone listens: what is heard below is one writer's life on a deployed file.
    await (await openMetricsRepo({ path })).close();
    listen();
    const repo = await openMetricsRepo({ path });
    await repo.insert({ name: 'phases', value: 1 });
    await repo.close();

    for (const phase of ['location', 'connection', 'header', 'journal-mode', 'pragmas', 'repo-setup']) {
      expect(named('open', phase), phase).toHaveLength(1);
    }
    expect(named('write', 'lock-wait')).toHaveLength(1);
    expect(named('write', 'lock-wait')[0]?.attempts).toBe(1);
    expect(named('write', 'lock-held')).toHaveLength(1);
    expect(named('write', 'settle')).toHaveLength(1);
    expect(named('close', 'close')).toHaveLength(1);
    for (const phase of heard) {
      expect(phase.wallMs, `${phase.scope}: ${phase.phase}`).toBeGreaterThanOrEqual(0);
      expect(phase.cpuMs).toBeGreaterThanOrEqual(0);
      expect(Number.isInteger(phase.preempted) && phase.preempted >= 0).toBe(true);
    }
  });

  it('lock-wait counts the refused attempts while another connection holds the lock', async () => {
    const path = tempDatabase();
    const repo = await openMetricsRepo({ path });
    listen();
    // Taken synchronously: the insert's first attempt is refused.
    const held = holdWriteLock(path, 200);
    await repo.insert({ name: 'phases', value: 2 });
    await held;
    await repo.close();

    const [wait] = named('write', 'lock-wait');
    // SQLite's schedule (1, 2, 5, 10 ... ms) is refused several times in a 200 ms hold.
    expect(wait?.attempts).toBeGreaterThan(3);
    expect(wait?.wallMs).toBeGreaterThan(50);
  });
});
