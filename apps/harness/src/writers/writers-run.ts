import type { WriterResult } from '../types.ts';

/** How a group of writers went, whatever ran them (processes, threads or async tasks). */
export interface WritersRun {
  /** One per writer; a writer that never handed back a result has its rows counted as failed, with why. */
  writers: WriterResult[];
  /** From the first writer starting until every writer was ready at the barrier. */
  readyMs: number;
  /** From the barrier's release until the last writer finished. */
  wallMs: number;
  /** CPU time (ms) of the harness process from the release to the end. */
  harnessCpuMs: number;
  /** Writers killed by `--chaos kill`. */
  killed: number;
  /** With `--chaos kill`: every event id whose insert a writer acknowledged, as reported while it ran. */
  ackedEventIds: string[] | undefined;
  /** Why the run did not complete normally (timeout...). */
  note: string | undefined;
}

/** Progress callbacks, for the progress bar. */
export interface WritersHooks {
  onReady?(): void;
  onReleased?(): void;
  onFinished?(): void;
}

/** The result of a writer that never reported one: its rows failed with `code`. */
export function missingWriterResult(rows: number, code: string, message: string): WriterResult {
  return {
    acked: 0,
    failed: rows,
    errors: { [code]: rows },
    errorExamples: { [code]: message },
    latenciesMs: [],
    memoryKb: undefined,
    cpuMs: undefined,
  };
}
