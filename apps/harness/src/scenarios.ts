import type { HarnessOptions } from './args.ts';
import type { ScenarioSpec, Target } from './types.ts';

type Case = Omit<ScenarioSpec, 'target'>;

const processCase = (writers: number, journal: 'wal' | 'delete', prefill = 0): Case => ({
  mode: 'process',
  journal,
  writers,
  rowsPerWriter: 1,
  prefill,
  chaos: 'none',
});

/**
 * The original experiment's cases, one row per writer process: 5, 50, 250 and
 * 500 writers on a new file; 10,000 sequential rows then 100 writers; 250 and
 * 500 in WAL and in rollback-journal mode. The WAL 250 and 500 cases are the
 * new-file ones (WAL is the default), so they run once.
 */
export const defaultSuiteCases: readonly Case[] = [
  processCase(5, 'wal'),
  processCase(50, 'wal'),
  processCase(250, 'wal'),
  processCase(500, 'wal'),
  processCase(100, 'wal', 10_000),
  processCase(250, 'delete'),
  processCase(500, 'delete'),
];

/** Every case for each target, the targets side by side. */
function forTargets(cases: readonly Case[], targets: readonly Target[]): ScenarioSpec[] {
  return cases.flatMap((scenario) => targets.map((target) => ({ target, ...scenario })));
}

/** The scenarios a command line asks for (not `--find-limit`, which decides its sizes as it goes). */
export function planScenarios(options: HarnessOptions): ScenarioSpec[] {
  // PostgreSQL has no journal modes: its default suite is the WAL cases.
  if (options.backend === 'postgres')
    return planScenarios({ ...options, backend: 'sqlite' })
      .filter((spec) => spec.journal === 'wal')
      .map((spec) => ({ ...spec, backend: 'postgres' as const }));
  if (options.defaultSuite) return forTargets(defaultSuiteCases, ['raw', 'repo']);
  const cases: Case[] = [];
  for (const journal of options.journals) {
    for (const mode of options.modes) {
      for (const writers of options.writers) {
        cases.push({
          mode,
          journal,
          writers,
          rowsPerWriter: options.rowsPerWriter,
          prefill: options.prefill,
          chaos: options.chaos,
        });
      }
    }
  }
  return forTargets(cases, options.targets);
}

/** A short name for progress lines and chart series. */
export function describeScenario(spec: ScenarioSpec): string {
  const parts = [spec.target, spec.mode, spec.backend ?? spec.journal, `${spec.writers} writers`];
  if (spec.rowsPerWriter !== 1) parts.push(`${spec.rowsPerWriter} rows each`);
  if (spec.prefill > 0) parts.push(`prefill ${spec.prefill}`);
  if (spec.chaos !== 'none') parts.push(`chaos ${spec.chaos}`);
  return parts.join(' ');
}
