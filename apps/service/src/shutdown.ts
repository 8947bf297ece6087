import type { RunningService } from './service.ts';

export interface ShutdownOptions {
  /** How long to wait for requests and slow clients before cutting them off. Default: the service's `shutdownGraceMs` (8000). */
  graceMs?: number;
  /** After the grace period, how long closing the database may still take before the process exits 1. Default 2000 ms. */
  closeMarginMs?: number;
  /** How to end the process (tests pass their own). */
  exit?: (code: number) => void;
}

/** Signals this soon after the first are the same stop passed on again (Ctrl-C reaches `pnpm` and the service both). */
const repeatWindowMs = 1000;

/**
 * On SIGTERM or SIGINT: stop accepting connections, answer every request
 * already received (201 once stored, or a JSON 503), close idle keep-alive
 * connections, close the database, exit 0. Connections still open after
 * `graceMs` (a slow client) are cut off, and the last log line says how many;
 * exits 1 when the database then does not close within `closeMarginMs`,
 * when closing fails, or at once on a second signal (rows not yet committed
 * then get no 201: nothing acknowledged is lost).
 */
export function closeOnSignals(service: RunningService, options: ShutdownOptions = {}): void {
  const {
    graceMs = service.shutdownGraceMs,
    closeMarginMs = 2000,
    exit = (code: number) => process.exit(code),
  } = options;
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
    const since = started;
    log.info(
      { signal, graceMs, connections: service.connections.size },
      'shutting down: answering requests already received, then closing the database',
    );
    let cutOff = 0;
    let hardDeadline: NodeJS.Timeout | undefined;
    const grace = setTimeout(() => {
      cutOff = service.connections.cutOff();
      log.warn({ graceMs, connections: cutOff }, 'grace period over: cutting off the connections still open');
      hardDeadline = setTimeout(() => {
        log.error({ graceMs, closeMarginMs }, 'shutdown took too long: the database did not close; exiting');
        exit(1);
      }, closeMarginMs);
    }, graceMs);
    service.close().then(
      () => {
        clearTimeout(grace);
        clearTimeout(hardDeadline);
        const ms = Math.round(performance.now() - since);
        if (cutOff > 0) {
          log.warn(
            { ms, cutOff, graceMs },
            `shut down: cut off ${cutOff} connection(s) still open after the ${graceMs} ms grace period`,
          );
        } else log.info({ ms }, 'shut down cleanly');
        exit(0);
      },
      (error: unknown) => {
        clearTimeout(grace);
        clearTimeout(hardDeadline);
        log.error({ err: error }, 'shutdown failed');
        exit(1);
      },
    );
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
}
