export { useTempDir } from '@repo/testkit';

import type { RunSettings, ScenarioSpec } from '../src/types.ts';

export const spec = (overrides: Partial<ScenarioSpec>): ScenarioSpec => ({
  target: 'raw',
  mode: 'async',
  journal: 'wal',
  writers: 3,
  rowsPerWriter: 2,
  prefill: 0,
  chaos: 'none',
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
