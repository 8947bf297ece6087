import type { RunningService } from './service.ts';

export interface ShutdownOptions {
  /** After the service's grace period, how long closing the database may still take before the process exits 1. Default 2000 ms. */
  closeMarginMs?: number;
  /** How to end the process (tests pass their own). */
  exit?: (code: number) => void;
}

/** Signals this soon after the first are the same stop passed on again (Ctrl-C reaches `pnpm` and the service both). */
const repeatWindowMs = 1000;

/**
 * On SIGTERM or SIGINT: `service.close()` (stop accepting, answer every
 * request already received, close idle keep-alive connections, cut off the
 * connections still open after the grace period, close the database), then
 * exit 0; the last log line says how many slow connections were cut off.
 * Exits 1 when the database is not closed `closeMarginMs` after the grace
 * period, when closing fails, or at once on a second signal (rows not yet
 * committed then get no 201: nothing acknowledged is lost).
 */
export function closeOnSignals(service: RunningService, options: ShutdownOptions = {}): void {
  const { closeMarginMs = 2000, exit = (code: number) => process.exit(code) } = options;
  const graceMs = service.shutdownGraceMs;
  const log = service.app.log;
  let started: number | undefined;
  const onSignal = (signal: NodeJS.Signals) => {
    if (started !== undefined) {
      if (performance.now() - started < repeatWindowMs) return;
      log.error({ signal }, 'second signal during shutdown: exiting now');
      exit(1);
      return;
    }
    started = performance.now();
    log.info(
      { signal, graceMs, connections: service.connections.size },
      'shutting down: answering requests already received, then closing the database',
    );
    const deadline = setTimeout(() => {
      log.error({ graceMs, closeMarginMs }, 'shutdown took too long: the database did not close in time; exiting');
      exit(1);
    }, graceMs + closeMarginMs);
    service.close().then(
      ({ cutOff, ms }) => {
        clearTimeout(deadline);
        if (cutOff > 0) {
          log.warn(
            { ms, cutOff, graceMs },
            `shut down: cut off ${cutOff} connection(s) still open after the ${graceMs} ms grace period`,
          );
        } else log.info({ ms }, 'shut down cleanly');
        exit(0);
      },
      (error: unknown) => {
        clearTimeout(deadline);
        log.error({ err: error }, 'shutdown failed');
        exit(1);
      },
    );
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
}
