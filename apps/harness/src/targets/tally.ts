import type { WriterResult } from '../types.ts';

/** One row's outcome, as a writer reports it to the parent with `--chaos kill`. */
export type RowEvent =
  | { ok: true; eventId: string; latencyMs: number }
  | { ok: false; code: string; message: string; latencyMs: number | undefined };

/** Counts one writer's acknowledged and failed rows, their error codes and latencies. */
export class WriterTally {
  private acked = 0;
  private failed = 0;
  private readonly errors: Record<string, number> = {};
  private readonly errorExamples: Record<string, string> = {};
  private readonly latenciesMs: number[] = [];

  constructor(private readonly onRow?: (event: RowEvent) => void) {}

  ack(eventId: string, latencyMs: number): void {
    this.acked += 1;
    this.latenciesMs.push(latencyMs);
    this.onRow?.({ ok: true, eventId, latencyMs });
  }

  /** A failed row; `latencyMs` is undefined when the row was never tried (its connection could not be opened). */
  fail(error: unknown, latencyMs: number | undefined): void {
    this.failCode(errorCodeOf(error), errorMessageOf(error), latencyMs);
  }

  failCode(code: string, message: string, latencyMs: number | undefined): void {
    this.failed += 1;
    this.errors[code] = (this.errors[code] ?? 0) + 1;
    this.errorExamples[code] ??= message;
    if (latencyMs !== undefined) this.latenciesMs.push(latencyMs);
    this.onRow?.({ ok: false, code, message, latencyMs });
  }

  /** Replays an event reported by a writer (the parent's copy of a writer's tally). */
  record(event: RowEvent): void {
    if (event.ok) this.ack(event.eventId, event.latencyMs);
    else this.failCode(event.code, event.message, event.latencyMs);
  }

  /** The writer's result; `usage` is what a writer process measured of itself (undefined for threads and tasks). */
  result(usage?: { memoryKb: number | undefined; cpuMs: number | undefined }): WriterResult {
    return {
      acked: this.acked,
      failed: this.failed,
      errors: { ...this.errors },
      errorExamples: { ...this.errorExamples },
      latenciesMs: [...this.latenciesMs],
      memoryKb: usage?.memoryKb,
      cpuMs: usage?.cpuMs,
    };
  }
}

/**
 * A stable code for an error: SQLite's (`SQLITE_BUSY`), the repository's
 * (`LOCK_TIMEOUT`, `DATABASE_ERROR(SQLITE_FULL)`), or `OPEN_<code>` when the
 * connection could not even be opened.
 */
export function errorCodeOf(error: unknown): string {
  if (typeof error !== 'object' || error === null) return 'UNKNOWN';
  const { name, code, sqliteCode } = error as { name?: unknown; code?: unknown; sqliteCode?: unknown };
  if (name === 'OpenDatabaseError' && typeof code === 'string') return `OPEN_${code}`;
  if (code === 'DATABASE_ERROR' && typeof sqliteCode === 'string') return `DATABASE_ERROR(${sqliteCode})`;
  if (typeof code === 'string') return code;
  return typeof name === 'string' ? name : 'UNKNOWN';
}

function errorMessageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
