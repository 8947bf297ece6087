import type { Journal, Target } from '../types.ts';

/** What one writer needs to know; sent to processes and threads, so plain data only. */
export interface WriterInput {
  target: Target;
  path: string;
  journal: Journal;
  /** The raw target's busy timeout (ms). */
  busyTimeoutMs: number;
  /** The repo target's lock timeout (ms). */
  lockTimeoutMs: number;
  rows: number;
  /** Every row of a scenario carries this name, so the rows can be counted apart from prefill rows. */
  rowName: string;
  /** Event ids are `${eventPrefix}.${writer}.${row}`: unique, so acknowledged rows can be looked up one by one. */
  eventPrefix: string;
  /**
   * Insert one row after the other, each awaited before the next (one
   * transaction each), instead of issuing every row at once.
   */
  oneAtATime: boolean;
  /**
   * Raw writers: a connection of its own for each row (open, insert, close),
   * as a script run once per event would; the first is opened before the barrier.
   */
  reopenEachRow: boolean;
  /**
   * Report each outcome to the parent as it happens (`--chaos kill`: a killed
   * writer cannot hand back a result). Implies `oneAtATime`.
   */
  reportEachRow: boolean;
  /**
   * A process or thread writer not released by this time (epoch ms) exits by
   * itself: if the launcher gives up waiting for every writer to be ready, it
   * still starts the writers it had not started yet and never releases them.
   */
  releaseDeadline: number;
}

/** A row as both targets insert it. */
export function rowFor(input: WriterInput, writer: number, row: number) {
  return {
    name: input.rowName,
    value: row,
    recordedAt: new Date(),
    labels: { writer: String(writer) },
    eventId: `${input.eventPrefix}.${writer}.${row}`,
  };
}
