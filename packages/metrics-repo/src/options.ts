import type { Synchronous } from '@repo/db';
import { InvalidOptionError } from './errors.ts';

/** Options every backend understands. */
export interface CommonRepoOptions {
  /**
   * How long a write may wait, counted from the call, for the lock it needs
   * (held by another connection, thread or process) and for room in a full queue,
   * before its caller gets a LockTimeoutError (or QueueFullError). Also bounds
   * how long opening may wait for a lock. Default 30 000 ms.
   */
  lockTimeoutMs?: number;
  /**
   * Most rows accepted but not yet committed. Past it, `onQueueFull` decides.
   * Default 100 000 (roughly 30 MB of queued rows).
   */
  maxQueuedRows?: number;
  /**
   * `'wait'` (default): the call waits, in order, until the queue has room (at
   * most until its deadline, then QueueFullError). `'reject'`: the call fails at
   * once with QueueFullError. Nothing is ever dropped silently.
   */
  onQueueFull?: 'wait' | 'reject';
  /**
   * Most rows in one transaction. Bounds how long one commit holds the write lock
   * and the event loop (about 3 to 5 ms for 1000 rows here). Default 1000.
   * An `insertMany` call larger than this still commits in one transaction, alone.
   */
  maxBatchRows?: number;
  /**
   * Retention, off by default (undefined): when set (an integer of ms >= 1), the repository deletes
   * the rows recorded more than `retainMs` ago, at open and then periodically (every tenth of
   * `retainMs`, between 1 s and 15 min), with `prune()`: small transactions that leave the write
   * lock to writers between them. Set it in one long-lived process (a service), not in every
   * short-lived writer.
   */
  retainMs?: number | undefined;
}

/** A repository on one SQLite file. */
export interface SqliteRepoOptions extends CommonRepoOptions {
  /** The SQLite file. Created, with its directory, if missing. */
  path: string;
  /**
   * `'normal'` (default): a killed process never loses an acknowledged row;
   * power loss or an OS crash can lose the last commits.
   * `'full'`: acknowledged rows survive power loss too, at one fsync per commit.
   */
  synchronous?: Synchronous;
  /**
   * Off by default: the repository changes nothing in how the caller's threads are scheduled.
   * On (Linux 6.12 and later, elsewhere nothing happens): a thread that opens the file while its
   * followers wait for it runs on a 30 ms CPU slice for that open, and a thread waiting for its
   * answer in the mailbox on the shortest one, 0.1 ms; each gets its own slice back after. The
   * user's own code on that thread shares the slice meanwhile. Measured effect, on and off:
   * docs/decisions/0015-cpu-slices.md.
   */
  threadSlices?: boolean;
}

/** Options with their defaults filled in; `retainMs` stays undefined when retention is off. */
export type Resolved<T extends CommonRepoOptions> = Required<Omit<T, 'retainMs'>> & { retainMs: number | undefined };
export type ResolvedCommonOptions = Resolved<CommonRepoOptions>;
export type ResolvedSqliteOptions = Resolved<SqliteRepoOptions>;

export const defaultOptions = {
  lockTimeoutMs: 30_000,
  maxQueuedRows: 100_000,
  onQueueFull: 'wait',
  maxBatchRows: 1000,
  synchronous: 'normal',
  threadSlices: false,
  retainMs: undefined,
} as const;

/** How one option is checked: returns why a value is refused, or undefined. */
type Check = (value: unknown) => string | undefined;

export const commonOptionChecks: Record<keyof CommonRepoOptions, Check> = {
  lockTimeoutMs: integerAtLeast(0),
  maxQueuedRows: integerAtLeast(1),
  onQueueFull: oneOf('wait', 'reject'),
  maxBatchRows: integerAtLeast(1),
  retainMs: integerAtLeast(1),
};

const sqliteOptionChecks: Record<keyof SqliteRepoOptions, Check> = {
  ...commonOptionChecks,
  path: nonEmptyString,
  synchronous: oneOf('normal', 'full'),
  threadSlices: (value) => (typeof value === 'boolean' ? undefined : `must be a boolean, got ${describeValue(value)}`),
};

/**
 * Every option key of every backend, for suggestions ("did you mean") and for a
 * clear word when an option belongs to another backend. Backends register theirs.
 */
export const knownOptionKeys = new Set<string>([...Object.keys(sqliteOptionChecks), 'url']);

/**
 * Checks `options` against a backend's option checks and fills in its defaults.
 * Unknown keys are refused with the closest known one; every refusal is an
 * InvalidOptionError naming the option, the expected type and what was given.
 */
export function resolveOptions<T extends object>(
  options: unknown,
  checks: Record<string, Check>,
  defaults: Partial<T>,
  backend: string,
): Required<T> {
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    throw new InvalidOptionError('options', `must be an object, got ${describeValue(options)}`);
  }
  for (const key of Object.keys(options)) {
    if (Object.hasOwn(checks, key)) continue;
    if (knownOptionKeys.has(key)) throw new InvalidOptionError(key, `is not an option of a ${backend} repository`);
    const suggestion = closest(key, Object.keys(checks));
    throw new InvalidOptionError(
      key,
      `is not an option${suggestion === undefined ? '' : `; did you mean ${JSON.stringify(suggestion)}?`} (known: ${Object.keys(checks).join(', ')})`,
    );
  }
  const resolved: Record<string, unknown> = { ...defaults };
  for (const [key, check] of Object.entries(checks)) {
    const value = (options as Record<string, unknown>)[key];
    if (value === undefined) {
      if (!Object.hasOwn(defaults, key)) throw new InvalidOptionError(key, `is required: ${check(undefined)}`);
      continue;
    }
    const problem = check(value);
    if (problem !== undefined) throw new InvalidOptionError(key, problem);
    resolved[key] = value;
  }
  return resolved as Required<T>;
}

export function resolveSqliteOptions(options: unknown): ResolvedSqliteOptions {
  return resolveOptions<SqliteRepoOptions>(
    options,
    sqliteOptionChecks,
    defaultOptions,
    'SQLite',
  ) as ResolvedSqliteOptions;
}

export function integerAtLeast(min: number): Check {
  return (value) =>
    typeof value === 'number' && Number.isSafeInteger(value) && value >= min
      ? undefined
      : `must be an integer >= ${min}, got ${describeValue(value)}`;
}

export function oneOf(...allowed: string[]): Check {
  return (value) =>
    typeof value === 'string' && allowed.includes(value)
      ? undefined
      : `must be ${allowed.map((a) => `'${a}'`).join(' or ')}, got ${describeValue(value)}`;
}

export function nonEmptyString(value: unknown): string | undefined {
  return typeof value === 'string' && value.length > 0
    ? undefined
    : `must be a non-empty string, got ${describeValue(value)}`;
}

/** A value as an error message should show it: its type first, so `'5000'` is not mistaken for 5000. */
export function describeValue(value: unknown): string {
  if (value === undefined) return 'undefined';
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  switch (typeof value) {
    case 'string':
      return `the string ${JSON.stringify(value.length > 60 ? `${value.slice(0, 60)}…` : value)}`;
    case 'number':
    case 'bigint':
      return `the ${typeof value} ${String(value)}`;
    case 'boolean':
      return `${value}`;
    case 'function':
      return 'a function';
    case 'symbol':
      return 'a symbol';
    default:
      return 'an object';
  }
}

/** The candidate closest to `key` by edit distance (case-insensitive), if it is close enough to be a typo. */
function closest(key: string, candidates: string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Number.POSITIVE_INFINITY;
  for (const candidate of candidates) {
    const distance = editDistance(key.toLowerCase(), candidate.toLowerCase());
    if (distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  // A prefix ("lockTimeout" for "lockTimeoutMs") or a few edits away.
  const isPrefix = best?.toLowerCase().startsWith(key.toLowerCase()) === true && key.length >= 3;
  return isPrefix || bestDistance <= Math.max(2, Math.floor(key.length / 3)) ? best : undefined;
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      const substitution = (previous[j - 1] as number) + (a[i - 1] === b[j - 1] ? 0 : 1);
      current[j] = Math.min((previous[j] as number) + 1, (current[j - 1] as number) + 1, substitution);
    }
    previous = current;
  }
  return previous[b.length] as number;
}
