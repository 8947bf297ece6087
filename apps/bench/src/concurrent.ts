import type { MetricInput, MetricsRepo } from '@repo/metrics-repo';
import { type EventLoopDelay, type MeasureOptions, monotonicMs, runMeasured } from './measure.ts';
import { describeError } from './scenarios/scenario.ts';

export interface BurstOutcome {
  rows: number;
  failedRows: number;
  wallMs: number;
  /** When the first write was issued and the last one settled, in {@link monotonicMs}: comparable across processes. */
  startedAtMs: number;
  endedAtMs: number;
  latenciesMs: Float64Array;
  firstError?: string;
}

/**
 * Issues `calls` writes at once, in one synchronous loop, as a burst of callers
 * finishing together would, and times each from its issue to its settlement.
 * Call `i` writes `rowsOfCall(i)` rows; each of them gets the call's latency.
 */
export async function issueBurst(
  calls: number,
  rowsOfCall: (call: number) => number,
  write: (call: number) => Promise<unknown>,
): Promise<BurstOutcome> {
  let totalRows = 0;
  for (let call = 0; call < calls; call++) totalRows += rowsOfCall(call);
  const latenciesMs = new Float64Array(totalRows);
  let rows = 0;
  let failedRows = 0;
  let firstError: string | undefined;
  const pending: Promise<void>[] = new Array(calls);
  const startedAtMs = monotonicMs();
  for (let call = 0; call < calls; call++) {
    const issuedAt = performance.now();
    const callRows = rowsOfCall(call);
    pending[call] = write(call).then(
      () => {
        latenciesMs.fill(performance.now() - issuedAt, rows, rows + callRows);
        rows += callRows;
      },
      (error: unknown) => {
        failedRows += callRows;
        firstError ??= describeError(error);
      },
    );
  }
  await Promise.all(pending);
  const endedAtMs = monotonicMs();
  return {
    rows,
    failedRows,
    wallMs: endedAtMs - startedAtMs,
    startedAtMs,
    endedAtMs,
    latenciesMs: latenciesMs.subarray(0, rows),
    ...(firstError === undefined ? {} : { firstError }),
  };
}

/** Every row's `repo.insert` issued at once, each timed from its call to its settlement, with the event-loop delay. */
export async function measureInsertBurst(
  repo: Pick<MetricsRepo, 'insert'>,
  rows: readonly MetricInput[],
  options?: MeasureOptions,
): Promise<BurstOutcome & EventLoopDelay> {
  const { value, ...eventLoop } = await runMeasured(
    () =>
      issueBurst(
        rows.length,
        () => 1,
        (i) => repo.insert(rows[i] as MetricInput),
      ),
    options,
  );
  return { ...value, ...eventLoop };
}
