import type { Synchronous } from '@repo/db';

export interface MetricsRepoOptions {
  /** The SQLite file. Created, with its directory, if missing. */
  path: string;
  /**
   * How long a write may wait for the file's write lock, held by another
   * connection (thread or process), before its caller gets a LockTimeoutError.
   * Counted from the moment the write is queued. Default 30 000 ms.
   */
  lockTimeoutMs?: number;
  /**
   * `'normal'` (default): a killed process never loses an acknowledged row;
   * power loss or an OS crash can lose the last commits.
   * `'full'`: acknowledged rows survive power loss too, at one fsync per commit.
   */
  synchronous?: Synchronous;
  /**
   * Most rows accepted but not yet committed. Past it, `onQueueFull` decides.
   * Default 100 000 (roughly 30 MB of queued rows).
   */
  maxQueuedRows?: number;
  /**
   * `'wait'` (default): the call waits, in order, until the queue has room.
   * `'reject'`: the call fails at once with QueueFullError. Nothing is ever dropped silently.
   */
  onQueueFull?: 'wait' | 'reject';
  /**
   * Most rows in one transaction. Bounds how long one commit holds the file's
   * write lock and the event loop (about 3 to 5 ms for 1000 rows here). Default 1000.
   * An `insertMany` call larger than this still commits in one transaction, alone.
   */
  maxBatchRows?: number;
}

export type ResolvedOptions = Required<MetricsRepoOptions>;

export const defaultOptions = {
  lockTimeoutMs: 30_000,
  synchronous: 'normal',
  maxQueuedRows: 100_000,
  onQueueFull: 'wait',
  maxBatchRows: 1000,
} as const satisfies Omit<ResolvedOptions, 'path'>;

/** Fills in defaults and refuses options that make no sense, naming the option. */
export function resolveOptions(options: MetricsRepoOptions): ResolvedOptions {
  if (typeof options !== 'object' || options === null)
    throw new TypeError('openMetricsRepo: options must be an object');
  if (typeof options.path !== 'string' || options.path.length === 0) {
    throw new TypeError('openMetricsRepo: options.path must be a non-empty string');
  }
  const resolved: ResolvedOptions = { ...defaultOptions, ...definedOnly(options) } as ResolvedOptions;
  positiveInteger(resolved.lockTimeoutMs, 'lockTimeoutMs', 0);
  positiveInteger(resolved.maxQueuedRows, 'maxQueuedRows', 1);
  positiveInteger(resolved.maxBatchRows, 'maxBatchRows', 1);
  if (resolved.synchronous !== 'normal' && resolved.synchronous !== 'full') {
    throw new TypeError(
      `openMetricsRepo: options.synchronous must be 'normal' or 'full', got ${String(resolved.synchronous)}`,
    );
  }
  if (resolved.onQueueFull !== 'wait' && resolved.onQueueFull !== 'reject') {
    throw new TypeError(
      `openMetricsRepo: options.onQueueFull must be 'wait' or 'reject', got ${String(resolved.onQueueFull)}`,
    );
  }
  return resolved;
}

function definedOnly<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}

function positiveInteger(value: unknown, name: string, min: number): void {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min) {
    throw new RangeError(`openMetricsRepo: options.${name} must be an integer >= ${min}, got ${String(value)}`);
  }
}
