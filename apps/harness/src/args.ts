import { parseArgs } from 'node:util';
import { defaultOptions } from '@repo/metrics-repo';
import {
  type Backend,
  backends,
  type Chaos,
  chaosKinds,
  type Journal,
  journals,
  type Mode,
  modes,
  type Scenario,
  scenarioKinds,
  type Target,
  targets,
} from './types.ts';

/** A bad command line: the CLI prints the message and exits with code 2. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

export interface HarnessOptions {
  help: boolean;
  /** `--backend`: a SQLite file (default) or a PostgreSQL database. */
  backend: Backend;
  /** No option shaped the scenarios: run the default suite. */
  defaultSuite: boolean;
  scenarios: Scenario[];
  targets: Target[];
  modes: Mode[];
  journals: Journal[];
  writers: number[];
  /** Whether `--writers` was given (`--find-limit` starts from its smallest value). */
  writersGiven: boolean;
  rowsPerWriter: number;
  prefill: number;
  busyTimeoutMs: number;
  lockTimeoutMs: number;
  dbPath: string | undefined;
  keep: boolean;
  jsonPath: string | undefined;
  reportPath: string | undefined;
  findLimit: boolean;
  limitCap: number;
  chaos: Chaos;
  /** Readers alongside the writers; undefined: the default of each scenario (see `defaults.readers`). */
  readers: number | undefined;
  /** Per scenario, ms. */
  timeoutMs: number;
  /**
   * `--scenario service`: the HTTP service comparison (src/service/); `--scenario maintenance`: writers
   * against summarize, export and prune (src/maintenance/); either instead of writer scenarios.
   */
  scenario: 'service' | 'maintenance' | undefined;
}

export const defaults = {
  targets: ['raw', 'repo'] as Target[],
  modes: ['process', 'thread', 'async'] as Mode[],
  journals: ['wal'] as Journal[],
  writers: [5, 50, 500],
  rowsPerWriter: 1,
  /** A kill needs something to interrupt: chaos writers insert this many rows each unless told otherwise. */
  chaosRowsPerWriter: 50,
  /** Writers killed at scale, within a few minutes: each inserts its rows one after the other. */
  chaosWriters: [20, 200],
  /** A mixed scenario's writers of each kind, and their rows: one transaction per row, so other clients open and close between commits. */
  mixedWriters: [20],
  mixedRowsPerWriter: 20,
  prefill: 0,
  /** Readers alongside a mixed scenario's writers, and alongside `--chaos kill`'s; none otherwise. */
  readers: 4,
  busyTimeoutMs: 5000,
  /** The repository's own default. */
  lockTimeoutMs: defaultOptions.lockTimeoutMs,
  limitCap: 1000,
  findLimitStart: 5,
  timeoutSeconds: 300,
} as const;

/** The options that choose scenarios: with none of them, the default suite runs. */
const scenarioShapingOptions = [
  'scenario',
  'readers',
  'target',
  'mode',
  'writers',
  'rows-per-writer',
  'journal',
  'prefill',
  'find-limit',
  'limit-cap',
  'chaos',
] as const;

const optionSpec = {
  scenario: { type: 'string' },
  readers: { type: 'string' },
  target: { type: 'string' },
  mode: { type: 'string' },
  writers: { type: 'string' },
  'rows-per-writer': { type: 'string' },
  journal: { type: 'string' },
  prefill: { type: 'string' },
  'busy-timeout': { type: 'string' },
  'lock-timeout': { type: 'string' },
  db: { type: 'string' },
  keep: { type: 'boolean' },
  json: { type: 'string' },
  report: { type: 'string' },
  'find-limit': { type: 'boolean' },
  'limit-cap': { type: 'string' },
  chaos: { type: 'string' },
  timeout: { type: 'string' },
  backend: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

/** Parses the command line. Throws UsageError, naming the flag, for anything it cannot use. */
export function parseHarnessArgs(argv: readonly string[]): HarnessOptions {
  let values: ReturnType<typeof parseArgs<{ options: typeof optionSpec; strict: true }>>['values'];
  try {
    ({ values } = parseArgs({ args: [...argv], options: optionSpec, strict: true, allowPositionals: false }));
  } catch (error) {
    throw new UsageError(error instanceof Error ? error.message : String(error));
  }
  const chaos = oneOf('--chaos', values.chaos, chaosKinds) ?? 'none';
  const findLimit = values['find-limit'] ?? false;
  // `service` and `maintenance` are comparisons of their own (src/service/, src/maintenance/), not writer scenarios: each runs alone.
  const scenarioList = listOf('--scenario', values.scenario, [...scenarioKinds, 'service', 'maintenance'] as const);
  const standalone = scenarioList?.find((s) => s === 'service' || s === 'maintenance');
  if (standalone !== undefined && scenarioList?.length !== 1) {
    throw new UsageError(`--scenario ${standalone} runs alone: give it on its own`);
  }
  const scenarios =
    standalone !== undefined
      ? ['insert' as const]
      : (scenarioList ?? ['insert']).filter((s): s is Scenario => s !== 'service' && s !== 'maintenance');
  const mixed = scenarios.includes('mixed');
  const options: HarnessOptions = {
    help: values.help ?? false,
    backend: oneOf('--backend', values.backend, backends) ?? 'sqlite',
    defaultSuite: scenarioShapingOptions.every((name) => values[name] === undefined),
    scenarios,
    // --find-limit answers a question about the raw target; repo only when asked for.
    targets: listOf('--target', values.target, targets) ?? (findLimit ? ['raw'] : [...defaults.targets]),
    // Killing needs processes; doubling threads up to the cap would need gigabytes (an isolate per thread).
    // A mixed scenario runs its writers and readers as processes or threads, never as async tasks.
    modes:
      listOf('--mode', values.mode, modes) ??
      (chaos === 'kill' || findLimit ? ['process'] : defaults.modes.filter((mode) => !(mixed && mode === 'async'))),
    journals: listOf('--journal', values.journal, journals) ?? [...defaults.journals],
    writers:
      integerList('--writers', values.writers, 1, 100_000) ??
      (chaos === 'kill' ? [...defaults.chaosWriters] : mixed ? [...defaults.mixedWriters] : [...defaults.writers]),
    writersGiven: values.writers !== undefined,
    rowsPerWriter:
      integer('--rows-per-writer', values['rows-per-writer'], 1, 10_000_000) ??
      (chaos === 'kill' ? defaults.chaosRowsPerWriter : mixed ? defaults.mixedRowsPerWriter : defaults.rowsPerWriter),
    prefill: integer('--prefill', values.prefill, 0, 100_000_000) ?? defaults.prefill,
    busyTimeoutMs: integer('--busy-timeout', values['busy-timeout'], 0, 3_600_000) ?? defaults.busyTimeoutMs,
    lockTimeoutMs: integer('--lock-timeout', values['lock-timeout'], 0, 3_600_000) ?? defaults.lockTimeoutMs,
    dbPath: nonEmpty('--db', values.db),
    keep: values.keep ?? false,
    jsonPath: nonEmpty('--json', values.json),
    reportPath: nonEmpty('--report', values.report),
    findLimit,
    limitCap: integer('--limit-cap', values['limit-cap'], 2, 100_000) ?? defaults.limitCap,
    chaos,
    readers: integer('--readers', values.readers, 0, 1000),
    timeoutMs: (integer('--timeout', values.timeout, 1, 86_400) ?? defaults.timeoutSeconds) * 1000,
    scenario: standalone,
  };
  if (options.backend === 'postgres') {
    for (const flag of ['journal', 'db', 'keep', 'busy-timeout', 'readers'] as const) {
      if (values[flag] !== undefined)
        throw new UsageError(`--${flag} is about SQLite files; it cannot be used with --backend postgres`);
    }
    if (mixed)
      throw new UsageError('--scenario mixed is about SQLite files; it cannot be used with --backend postgres');
  }
  if (options.scenario !== undefined) {
    const ignored = ['db', 'keep', 'report', 'timeout', 'busy-timeout', 'lock-timeout', 'backend'] as const;
    // `maintenance` takes --prefill: the rows its prune deletes.
    const allowed = options.scenario === 'maintenance' ? ['scenario', 'prefill'] : ['scenario'];
    const shaped = scenarioShapingOptions.some((name) => !allowed.includes(name) && values[name] !== undefined);
    if (shaped || ignored.some((name) => values[name] !== undefined)) {
      throw new UsageError(
        `--scenario ${options.scenario} sets up its own load and files: it takes only --json${options.scenario === 'maintenance' ? ' and --prefill' : ''}`,
      );
    }
  }
  if (options.reportPath !== undefined && !/\.html?$/i.test(options.reportPath)) {
    throw new UsageError(`--report needs a file name ending in .html, got ${JSON.stringify(options.reportPath)}`);
  }
  if (values['limit-cap'] !== undefined && !findLimit)
    throw new UsageError('--limit-cap only makes sense with --find-limit');
  if (findLimit && chaos !== 'none') throw new UsageError('--find-limit and --chaos cannot be combined');
  if (chaos === 'kill' && options.modes.some((mode) => mode !== 'process')) {
    throw new UsageError('--chaos kill needs --mode process (only a process can be killed as a crash would)');
  }
  if (mixed && values.target !== undefined) {
    throw new UsageError('--scenario mixed runs repo and raw writers together: leave out --target');
  }
  if (mixed && options.modes.includes('async')) {
    throw new UsageError('--scenario mixed runs writers as processes or threads: --mode process, thread or both');
  }
  if (mixed && (findLimit || chaos !== 'none')) {
    throw new UsageError('--scenario mixed cannot be combined with --find-limit or --chaos');
  }
  if (chaos === 'kill' && options.rowsPerWriter < 2) {
    throw new UsageError('--chaos kill needs --rows-per-writer 2 or more, so that a writer can be killed mid-way');
  }
  return options;
}

function nonEmpty(flag: string, value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  if (value.trim() === '') throw new UsageError(`${flag} needs a value`);
  return value;
}

function items(flag: string, value: string): string[] {
  const parts = value.split(',').map((part) => part.trim());
  if (parts.some((part) => part === '')) throw new UsageError(`${flag} got an empty item in ${JSON.stringify(value)}`);
  return [...new Set(parts)];
}

function oneOf<T extends string>(flag: string, value: string | undefined, allowed: readonly T[]): T | undefined {
  if (value === undefined) return undefined;
  if (!(allowed as readonly string[]).includes(value)) {
    throw new UsageError(`${flag} must be one of ${allowed.join(', ')}; got ${JSON.stringify(value)}`);
  }
  return value as T;
}

function listOf<T extends string>(flag: string, value: string | undefined, allowed: readonly T[]): T[] | undefined {
  if (value === undefined) return undefined;
  return items(flag, value).map((item) => {
    if (!(allowed as readonly string[]).includes(item)) {
      throw new UsageError(
        `${flag} takes a comma-separated list of ${allowed.join(', ')}; ${JSON.stringify(item)} is not one`,
      );
    }
    return item as T;
  });
}

function integer(flag: string, value: string | undefined, min: number, max: number): number | undefined {
  if (value === undefined) return undefined;
  const text = value.trim();
  const parsed = /^\d+$/.test(text) ? Number(text) : Number.NaN;
  if (!Number.isSafeInteger(parsed) || parsed < min || parsed > max) {
    throw new UsageError(`${flag} must be an integer from ${min} to ${max}, got ${JSON.stringify(value)}`);
  }
  return parsed;
}

function integerList(flag: string, value: string | undefined, min: number, max: number): number[] | undefined {
  if (value === undefined) return undefined;
  return [...new Set(items(flag, value).map((item) => integer(flag, item, min, max) as number))].sort((a, b) => a - b);
}
