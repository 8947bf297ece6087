export { useTempDir } from '@repo/testkit';

import { summarizeScenario } from '../src/summarize.ts';
import type { RunSettings, ScenarioResult, ScenarioSpec } from '../src/types.ts';

export const spec = (overrides: Partial<ScenarioSpec>): ScenarioSpec => ({
  scenario: 'insert',
  target: 'raw',
  mode: 'async',
  journal: 'wal',
  writers: 3,
  rowsPerWriter: 2,
  prefill: 0,
  chaos: 'none',
  readers: 0,
  ...overrides,
});

export const settings = (overrides: Partial<RunSettings> = {}): RunSettings => ({
  busyTimeoutMs: 5000,
  lockTimeoutMs: 30_000,
  dbPath: undefined,
  keep: false,
  scenarioTimeoutMs: 60_000,
  ...overrides,
});

/** A raw result of 50 one-row writer processes, 10 of them failed with SQLITE_BUSY; `overrides` change any field. */
export const result = (overrides: Partial<ScenarioResult>): ScenarioResult => ({
  ...summarizeScenario(
    spec({ target: 'raw', mode: 'process', writers: 50, rowsPerWriter: 1 }),
    {
      writers: [
        {
          acked: 40,
          failed: 10,
          errors: { SQLITE_BUSY: 10 },
          errorExamples: {},
          latenciesMs: [1, 2],
          memoryKb: 0,
          cpuMs: 5,
        },
      ],
      readyMs: 10,
      wallMs: 100,
      harnessCpuMs: 1,
      killed: 0,
      ackedEventIds: undefined,
      note: undefined,
    },
    { stored: 40, journalMode: 'wal', integrity: 'ok', missingAcked: undefined },
    { busyTimeoutMs: 0, lockTimeoutMs: 30_000, harnessGrowthKb: 0 },
  ),
  ...overrides,
});
