import { defaults, type HarnessOptions } from './args.ts';
import type { Journal, Mode, ScenarioSpec, Target } from './types.ts';

type Case = Omit<ScenarioSpec, 'target'>;

const insertCase = (mode: Mode, journal: Journal, writers: number, rowsPerWriter = 1): Case => ({
  scenario: 'insert',
  mode,
  journal,
  writers,
  rowsPerWriter,
  prefill: 0,
  chaos: 'none',
  readers: 0,
});

/**
 * The default suite, sized to finish in about 3 minutes on two cores. Starting a
 * writer process costs far more CPU than its insert, more still when hundreds
 * start at once, so the number of processes decides its duration: the 630 it
 * starts take most of its time (see docs/decisions/0011-measuring-short-lived-writers.md). The original experiment's WAL cases, one row per writer
 * process (5, 50, 200); rollback-journal mode with 50 processes of 60 rows each,
 * where raw connections fail with `SQLITE_BUSY` once a wait passes their 5 s
 * busy timeout (500 one-row processes fail the same way at five times the
 * start-up cost); 20 worker threads; 500 async tasks; and the mixed scenario
 * (10 repository writers and 10 raw writers of 20 rows each, and 4 readers, on
 * one file).
 */
export const defaultSuiteCases: readonly Case[] = [
  insertCase('process', 'wal', 5),
  insertCase('process', 'wal', 50),
  insertCase('process', 'wal', 200),
  // 250, 500 and 1,000 processes are one command away (`--writers 250,500,1000 --mode process`): 250
  // alone made the suite much longer, mostly starting Node processes (docs/decisions/0011-measuring-short-lived-writers.md).
  insertCase('process', 'delete', 50, 60),
  insertCase('thread', 'wal', 20),
  insertCase('async', 'wal', 500),
  { ...insertCase('process', 'wal', 10, 20), scenario: 'mixed', readers: 4 },
];

/**
 * Every case for each target, the targets side by side. A mixed case runs
 * both kinds of writers at once: it is planned once (see ScenarioSpec.target).
 */
function forTargets(cases: readonly Case[], targets: readonly Target[]): ScenarioSpec[] {
  return cases.flatMap((scenario) =>
    scenario.scenario === 'mixed'
      ? [{ target: 'repo', ...scenario }]
      : targets.map((target) => ({ target, ...scenario })),
  );
}

/** The scenarios a command line asks for (not `--find-limit`, which decides its sizes as it goes). */
export function planScenarios(options: HarnessOptions): ScenarioSpec[] {
  // PostgreSQL has no journal modes: its default suite is the WAL cases. The mixed scenario and the
  // readers (better-sqlite3, the sqlite3 command line) are about SQLite files.
  if (options.backend === 'postgres')
    return planScenarios({ ...options, backend: 'sqlite' })
      .filter((spec) => spec.journal === 'wal' && spec.scenario === 'insert')
      .map((spec) => ({ ...spec, backend: 'postgres' as const, readers: 0 }));
  if (options.defaultSuite) return forTargets(defaultSuiteCases, ['raw', 'repo']);
  const cases: Case[] = [];
  for (const scenario of options.scenarios) {
    for (const journal of options.journals) {
      for (const mode of options.modes) {
        for (const writers of options.writers) {
          cases.push({
            scenario,
            mode,
            journal,
            writers,
            rowsPerWriter: options.rowsPerWriter,
            prefill: options.prefill,
            chaos: options.chaos,
            readers: options.readers ?? (scenario === 'mixed' || options.chaos === 'kill' ? defaults.readers : 0),
          });
        }
      }
    }
  }
  return forTargets(cases, options.targets);
}

/** How many writers a scenario starts: a mixed one starts `writers` of each kind. */
export function writerCount(spec: ScenarioSpec): number {
  return spec.scenario === 'mixed' ? spec.writers * 2 : spec.writers;
}

/**
 * A short name for progress lines, problems and chart series. A planned mixed
 * scenario runs both kinds of writers (`mixed repo+raw`); each of its results
 * counts one kind (`mixed repo`, `mixed raw`). `withWriters: false` leaves out
 * the number of writers (a chart series spans several).
 */
export function describeScenario(
  spec: ScenarioSpec,
  { planned = false, withWriters = true }: { planned?: boolean; withWriters?: boolean } = {},
): string {
  const mixed = spec.scenario === 'mixed';
  const parts = [
    mixed ? `mixed ${planned ? 'repo+raw' : spec.target}` : spec.target,
    spec.mode,
    spec.backend ?? spec.journal,
  ];
  if (withWriters) parts.push(mixed ? `${spec.writers} writers of each kind` : `${spec.writers} writers`);
  if (spec.rowsPerWriter !== 1) parts.push(`${spec.rowsPerWriter} rows each`);
  if (spec.prefill > 0) parts.push(`prefill ${spec.prefill}`);
  if (spec.chaos !== 'none') parts.push(`chaos ${spec.chaos}`);
  if (spec.readers > 0) parts.push(`${spec.readers} readers`);
  return parts.join(' ');
}
