import { monitorEventLoopDelay } from 'node:perf_hooks';
import { timeWeightedPercentile } from './stats.ts';

/** Every figure is in milliseconds. */
export interface EventLoopDelay {
  /** The longest tick seen by perf_hooks.monitorEventLoopDelay. */
  maxEventLoopDelayMs: number;
  /** p99 of monitorEventLoopDelay's samples: one sample per tick, so a 2 s freeze counts once, as much as a 1 ms tick. */
  p99EventLoopDelayMs: number;
  /**
   * p99 over time: the loop spent 99% of the measured time in ticks no longer
   * than this. A freeze weighs as long as it lasts, so this is what a timer or
   * request arriving at a random moment could be stuck behind.
   */
  timeWeightedP99EventLoopDelayMs: number;
}

/** Sampling interval of the monitor. Its samples are intervals between ticks, so an idle loop reads about 1.1 ms. */
const resolutionMs = 1;

const timerTick = () => new Promise<void>((resolve) => setTimeout(resolve, resolutionMs));

/**
 * Collects the garbage left by the setup (the input rows were just built and
 * still sit in the young generation), so the measured work pays for its own
 * garbage only, whatever ran before it. Needs `--expose-gc`, which `pnpm bench`
 * and the launched processes pass; without it this does nothing.
 */
export function collectSetupGarbage(): void {
  const gc = (globalThis as { gc?: () => void }).gc;
  gc?.();
}

export interface MeasureOptions {
  /**
   * Collect the setup's garbage first (default true). A launched process passes
   * false and collects in its setup instead, before the barrier: there the
   * collection would run while the other processes are already writing.
   */
  collectGarbage?: boolean;
}

/**
 * Milliseconds on CLOCK_MONOTONIC, which every process of this machine shares:
 * timings taken in different processes can be compared (`performance.now()`
 * counts from each process's own start).
 */
export function monotonicMs(): number {
  return Number(process.hrtime.bigint()) / 1e6;
}

/**
 * Runs `work` (the timed part of a scenario) while sampling this thread's
 * event-loop delay with perf_hooks.monitorEventLoopDelay.
 *
 * The monitor's first tick only sets its reference point, so we wait for two
 * ticks before the work starts; and a loop blocked until the very end is only
 * recorded when the next tick fires, so we wait for two ticks after it too.
 */
export async function runMeasured<T>(
  work: () => Promise<T>,
  { collectGarbage = true }: MeasureOptions = {},
): Promise<{ value: T } & EventLoopDelay> {
  if (collectGarbage) collectSetupGarbage();
  const histogram = monitorEventLoopDelay({ resolution: resolutionMs });
  histogram.enable();
  await timerTick();
  await timerTick();
  const ticks = recordTicks();
  const value = await work();
  await timerTick();
  await timerTick();
  const tickLengths = ticks.stop();
  histogram.disable();
  return {
    value,
    maxEventLoopDelayMs: histogram.max / 1e6,
    p99EventLoopDelayMs: histogram.percentile(99) / 1e6,
    timeWeightedP99EventLoopDelayMs: timeWeightedPercentile(tickLengths, 99),
  };
}

/**
 * Records the length of every event-loop tick, as the time between two runs of
 * a 1 ms interval timer (the same thing monitorEventLoopDelay samples, but with
 * every sample kept, so it can be weighted by its duration).
 */
function recordTicks(): { stop(): number[] } {
  const lengths: number[] = [];
  let last = performance.now();
  const timer = setInterval(() => {
    const now = performance.now();
    lengths.push(now - last);
    last = now;
  }, resolutionMs);
  return {
    stop() {
      clearInterval(timer);
      lengths.push(performance.now() - last);
      return lengths;
    },
  };
}
