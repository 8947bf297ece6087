/** Stable codes of every error the repository rejects with. Safe to switch on. */
export type MetricsRepoErrorCode =
  | 'INVALID_METRIC'
  | 'DUPLICATE_EVENT'
  | 'LOCK_TIMEOUT'
  | 'QUEUE_FULL'
  | 'REPO_CLOSED'
  | 'DATABASE_ERROR';

/** Base class of every error the repository rejects with. */
export abstract class MetricsRepoError extends Error {
  abstract readonly code: MetricsRepoErrorCode;
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

/** The file's write lock stayed held by another connection past `lockTimeoutMs`. Nothing of the call was stored. */
export class LockTimeoutError extends MetricsRepoError {
  override readonly name = 'LockTimeoutError';
  readonly code = 'LOCK_TIMEOUT' as const;
  constructor(
    readonly path: string,
    readonly waitedMs: number,
  ) {
    super(`the write lock of ${JSON.stringify(path)} stayed held by another connection for ${Math.round(waitedMs)} ms`);
  }
}

/** `onQueueFull: 'reject'` and `maxQueuedRows` rows were already waiting. Nothing of the call was stored. */
export class QueueFullError extends MetricsRepoError {
  override readonly name = 'QueueFullError';
  readonly code = 'QUEUE_FULL' as const;
  constructor(readonly maxQueuedRows: number) {
    super(`the write queue is full (${maxQueuedRows} rows waiting); retry later`);
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

/** SQLite refused the write or read (disk full, I/O error, file replaced...). `sqliteCode` says which. */
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
