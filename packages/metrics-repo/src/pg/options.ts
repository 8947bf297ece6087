// Loaded by every user of the repository: nothing here may import `pg`.
import { InvalidOptionError } from '../errors.ts';
import {
  type CommonRepoOptions,
  commonOptionChecks,
  defaultOptions,
  describeValue,
  integerAtLeast,
  knownOptionKeys,
  type Resolved,
  resolveOptions,
} from '../options.ts';

/** A repository on a PostgreSQL database: writers on any number of hosts. */
export interface PgRepoOptions extends CommonRepoOptions {
  /**
   * `postgres://user:password@host:5432/database` (or `postgresql://`), any
   * parameter `pg` understands (`?sslmode=require`...). The password is never
   * shown: `repo.path`, `repo.options.url` and every error message carry the URL
   * without it.
   */
  url: string;
  /**
   * Most connections the repository keeps open. Writes use one at a time (one
   * batch in flight: group commit); `count` and reads through `repo.db` use the
   * others. Default 2.
   */
  poolSize?: number;
  /** How long opening one connection may take before the call fails with DatabaseError. Default 10 000 ms. */
  connectTimeoutMs?: number;
}

export type ResolvedPgOptions = Resolved<PgRepoOptions>;

export const defaultPgOptions = {
  lockTimeoutMs: defaultOptions.lockTimeoutMs,
  maxQueuedRows: defaultOptions.maxQueuedRows,
  onQueueFull: defaultOptions.onQueueFull,
  maxBatchRows: defaultOptions.maxBatchRows,
  retainMs: undefined,
  poolSize: 2,
  connectTimeoutMs: 10_000,
} as const;

const pgOptionChecks: Record<keyof PgRepoOptions, (value: unknown) => string | undefined> = {
  ...commonOptionChecks,
  url: (value) => urlProblem(value),
  poolSize: integerAtLeast(1),
  connectTimeoutMs: integerAtLeast(1),
};

for (const key of Object.keys(pgOptionChecks)) knownOptionKeys.add(key);

/** Whether the options ask for PostgreSQL (they have a `url`); then they must not also have a `path`. */
export function isPgOptions(options: unknown): boolean {
  if (typeof options !== 'object' || options === null) return false;
  const { url, path } = options as { url?: unknown; path?: unknown };
  if (url === undefined) return false;
  if (path !== undefined) {
    throw new InvalidOptionError(
      'url',
      'cannot be combined with options.path: give path for a SQLite file, or url for PostgreSQL, not both',
    );
  }
  return true;
}

/** Checks PostgreSQL options and fills in their defaults; `url` is kept as given (with its password) for the driver. */
export function resolvePgOptions(options: unknown): ResolvedPgOptions {
  return resolveOptions<PgRepoOptions>(options, pgOptionChecks, defaultPgOptions, 'PostgreSQL') as ResolvedPgOptions;
}

/**
 * The URL as it may be shown: without its password (also in the query string,
 * `?password=`). Only for URLs that passed the `url` check.
 */
export function redactPgUrl(url: string): string {
  const parsed = new URL(url);
  parsed.password = '';
  for (const key of [...parsed.searchParams.keys()]) {
    if (/pass/i.test(key)) parsed.searchParams.set(key, 'REDACTED');
  }
  return parsed.toString();
}

function urlProblem(value: unknown): string | undefined {
  const expected = 'must be a postgres:// or postgresql:// URL';
  if (typeof value !== 'string') return `${expected}, got ${describeValue(value)}`;
  let parsed: URL;
  try {
    parsed = new URL(value);
  } catch {
    // Not echoed: an unparsable string may still hold a password.
    return `${expected}; the string given is not a URL`;
  }
  if (parsed.protocol !== 'postgres:' && parsed.protocol !== 'postgresql:') {
    // Only the scheme is shown: what follows it may hold a password in any form.
    return `${expected}, got one with the scheme ${JSON.stringify(parsed.protocol)}`;
  }
  return undefined;
}
