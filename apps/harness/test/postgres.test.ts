import { usePostgres } from '@repo/testkit';
import { describe, expect, it } from 'vitest';
import { parseHarnessArgs } from '../src/args.ts';
import { runScenario } from '../src/run-scenario.ts';
import { planScenarios } from '../src/scenarios.ts';
import type { Mode, Target } from '../src/types.ts';
import { settings, spec } from './helpers.ts';

const server = usePostgres();

describe('--backend postgres', () => {
  it('plans the WAL insert cases of the default suite (PostgreSQL has no journal modes) and refuses SQLite-only flags', () => {
    const plan = planScenarios(parseHarnessArgs(['--backend', 'postgres']));
    expect(plan.map((s) => `${s.target} ${s.mode} ${s.writers} ${s.readers}`)).toEqual([
      'raw process 5 0',
      'repo process 5 0',
      'raw process 50 0',
      'repo process 50 0',
      'raw process 200 0',
      'repo process 200 0',
      'raw thread 20 0',
      'repo thread 20 0',
      'raw async 500 0',
      'repo async 500 0',
    ]);
    expect(plan.every((s) => s.backend === 'postgres' && s.scenario === 'insert')).toBe(true);
    // Readers are SQLite clients: none alongside --chaos kill on PostgreSQL.
    expect(planScenarios(parseHarnessArgs(['--backend', 'postgres', '--chaos', 'kill'])).map((s) => s.readers)).toEqual(
      [0, 0, 0, 0],
    );
    for (const flag of [
      ['--journal', 'delete'],
      ['--db', 'x.db'],
      ['--keep'],
      ['--busy-timeout', '0'],
      ['--readers', '2'],
      ['--scenario', 'mixed'],
    ]) {
      expect(() => parseHarnessArgs(['--backend', 'postgres', ...flag])).toThrow(
        /cannot be used with --backend postgres/,
      );
    }
    expect(() => parseHarnessArgs(['--backend', 'mysql'])).toThrow(/--backend must be one of sqlite, postgres/);
  });

  const cases: [Mode, Target][] = [
    ['process', 'raw'],
    ['process', 'repo'],
    ['thread', 'raw'],
    ['thread', 'repo'],
    ['async', 'raw'],
    ['async', 'repo'],
  ];
  it.each(cases)('%s %s: every row acknowledged and stored, counted by another session', async (mode, target) => {
    const [result] = await runScenario(
      spec({ target, mode, writers: 3, rowsPerWriter: 4, prefill: 25, backend: 'postgres' }),
      settings({ postgres: server() }),
    );
    expect(result).toMatchObject({
      target,
      mode,
      backend: 'postgres',
      attempted: 12,
      acked: 12,
      failed: 0,
      errors: {},
      stored: 12,
      lost: 0,
      journalAfter: 'postgres',
      integrity: 'ok',
    });
    expect(result?.note).toBeUndefined();
  });

  it('--chaos kill: writers die mid-way; every acknowledged row is in the database', async () => {
    const [result] = await runScenario(
      spec({ target: 'repo', mode: 'process', writers: 4, rowsPerWriter: 30, chaos: 'kill', backend: 'postgres' }),
      settings({ postgres: server() }),
    );
    expect(result?.killed).toBeGreaterThan(0);
    expect(result?.lost).toBe(0);
    expect(result?.integrity).toBe('ok');
  });
});
