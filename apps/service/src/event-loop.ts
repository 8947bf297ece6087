import { monitorEventLoopDelay } from 'node:perf_hooks';

/** How long this process's event loop was stuck, since the monitor started or was last reset. Times in ms. */
export interface EventLoopStall {
  /** The longest single stall: how late a timer ran at worst, so how long every request waited behind it. */
  maxMs: number;
  p99Ms: number;
  meanMs: number;
  /** How long this was measured. */
  windowMs: number;
}

export interface EventLoopMonitor {
  read(): EventLoopStall;
  reset(): void;
  stop(): void;
}

const resolutionMs = 10;

/**
 * Samples the event loop's delay (perf_hooks.monitorEventLoopDelay) while the
 * service runs: a synchronous wait for a database lock shows up here as a stall
 * as long as the wait. A 10 ms timer costs nothing measurable. The monitor
 * records the intervals between its timer's runs (an idle loop reads 10 ms), so
 * a stall is an interval less the 10 ms expected.
 */
export function startEventLoopMonitor(): EventLoopMonitor {
  const histogram = monitorEventLoopDelay({ resolution: resolutionMs });
  histogram.enable();
  let since = performance.now();
  const ms = (ns: number) => Math.max(0, Math.round((ns / 1e6 - resolutionMs) * 100) / 100);
  return {
    read: () => ({
      // An empty histogram (nothing sampled yet) reads max 0 and min 9.2e18.
      maxMs: histogram.count === 0 ? 0 : ms(histogram.max),
      p99Ms: histogram.count === 0 ? 0 : ms(histogram.percentile(99)),
      meanMs: histogram.count === 0 ? 0 : ms(histogram.mean),
      windowMs: Math.round(performance.now() - since),
    }),
    reset() {
      histogram.reset();
      since = performance.now();
    },
    stop: () => histogram.disable(),
  };
}
