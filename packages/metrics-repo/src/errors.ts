/** Stable codes of every error the repository rejects with. Safe to switch on. */
export type MetricsRepoErrorCode =
  | 'INVALID_OPTION'
  | 'INVALID_METRIC'
  | 'INVALID_FILTER'
  | 'DUPLICATE_EVENT'
  | 'LOCK_TIMEOUT'
  | 'QUEUE_FULL'
  | 'REPO_CLOSED'
  | 'DATABASE_ERROR';

/** Base class of every error the repository rejects with. */
export abstract class MetricsRepoError extends Error {
  abstract readonly code: MetricsRepoErrorCode;
}

/** `openMetricsRepo` was given an option it does not know, or a value it cannot use. Nothing was opened. */
export class InvalidOptionError extends MetricsRepoError {
  override readonly name = 'InvalidOptionError';
  readonly code = 'INVALID_OPTION' as const;
  constructor(
    /** The option (`lockTimeoutMs`), or `options` for the object itself. */
    readonly option: string,
    readonly reason: string,
  ) {
    super(`openMetricsRepo: ${option === 'options' ? 'options' : `options.${option}`} ${reason}`);
  }
}

/** The input was refused before it reached SQL. `field` names the offending field (`labels.host`, `rows[3].value`). */
export class ValidationError extends MetricsRepoError {
  override readonly name = 'ValidationError';
  readonly code = 'INVALID_METRIC' as const;
  constructor(
    readonly field: string,
    readonly reason: string,
  ) {
    super(`invalid metric: ${field} ${reason}`);
  }
}

/** A filter (of `count`, `summarize`, `export` or `prune`) was refused before it reached SQL. `field` names it (`filter.since`). */
export class InvalidFilterError extends MetricsRepoError {
  override readonly name = 'InvalidFilterError';
  readonly code = 'INVALID_FILTER' as const;
  constructor(
    readonly field: string,
    readonly reason: string,
    /** Whose filter: `count`, `summary`, `export` or `prune`. */
    kind = 'count',
  ) {
    super(`invalid ${kind} filter: ${field} ${reason}`);
  }
}

/** A row with this `eventId` is already stored (or earlier in the same `insertMany`). Nothing of the call was stored. */
export class DuplicateEventError extends MetricsRepoError {
  override readonly name = 'DuplicateEventError';
  readonly code = 'DUPLICATE_EVENT' as const;
  constructor(
    readonly eventId: string,
    options?: { cause?: unknown },
  ) {
    super(`a metric with eventId ${JSON.stringify(eventId)} is already recorded`, options);
  }
}

/**
 * The lock the write needed stayed held by another connection past `lockTimeoutMs`
 * (counted from the call). Nothing of the call was stored.
 */
export class LockTimeoutError extends MetricsRepoError {
  override readonly name = 'LockTimeoutError';
  readonly code = 'LOCK_TIMEOUT' as const;
  constructor(
    /** The database: the SQLite file's path, or the PostgreSQL URL without its password. */
    readonly path: string,
    readonly waitedMs: number,
    /** What the write waited for, held by someone else all along (the lock, the write turn, the mailbox's holder). */
    readonly waitedFor = 'the write lock, held by another connection',
  ) {
    super(`the write to ${JSON.stringify(path)} waited ${Math.round(waitedMs)} ms for ${waitedFor}`);
  }
}

/**
 * The write queue had no room for the call: at once with `onQueueFull: 'reject'`,
 * or, with `'wait'`, when no room came before the call's deadline (`lockTimeoutMs`
 * from the call). Nothing of the call was stored.
 */
export class QueueFullError extends MetricsRepoError {
  override readonly name = 'QueueFullError';
  readonly code = 'QUEUE_FULL' as const;
  constructor(
    readonly maxQueuedRows: number,
    /** How long the call waited for room (0 with `onQueueFull: 'reject'`). */
    readonly waitedMs = 0,
  ) {
    super(
      waitedMs === 0
        ? `the write queue is full (${maxQueuedRows} rows waiting); retry later`
        : `the write queue stayed full (${maxQueuedRows} rows waiting) for ${Math.round(waitedMs)} ms; retry later`,
    );
  }
}

/** The repository was closed before the call was accepted. */
export class RepoClosedError extends MetricsRepoError {
  override readonly name = 'RepoClosedError';
  readonly code = 'REPO_CLOSED' as const;
  constructor() {
    super('the metrics repository is closed');
  }
}

/**
 * The database refused the write or read (disk full, I/O error, file replaced,
 * connection lost...). `sqliteCode` says which: SQLite's extended result code, or
 * for PostgreSQL the SQLSTATE or the driver's error code.
 */
export class DatabaseError extends MetricsRepoError {
  override readonly name = 'DatabaseError';
  readonly code = 'DATABASE_ERROR' as const;
  constructor(
    readonly sqliteCode: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(`${sqliteCode}: ${message}`, options);
  }
}
