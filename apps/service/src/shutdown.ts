import type { RunningService } from './service.ts';

export interface ShutdownOptions {
  /** Everything must be closed by then, or the process exits with code 1. Default 10 000 ms. */
  timeoutMs?: number;
  /** How to end the process (tests pass their own). */
  exit?: (code: number) => void;
}

/**
 * On SIGTERM or SIGINT: stop accepting connections, answer the requests in
 * flight, commit every row they were promised, close the database, exit 0.
 * Exits 1 when closing fails or takes longer than `timeoutMs`, and at once on
 * a second signal (rows not yet committed then get no 201: nothing
 * acknowledged is lost).
 */
export function closeOnSignals(service: RunningService, options: ShutdownOptions = {}): void {
  const { timeoutMs = 10_000, exit = (code: number) => process.exit(code) } = options;
  const log = service.app.log;
  let closing = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (closing) {
      log.error({ signal }, 'second signal during shutdown: exiting now');
      exit(1);
      return;
    }
    closing = true;
    const started = performance.now();
    log.info({ signal }, 'shutting down: answering requests in flight, then closing the database');
    // Leave a margin for the exit itself inside the supervisor's budget.
    const deadline = setTimeout(() => {
      log.error({ timeoutMs }, 'shutdown took too long: exiting');
      exit(1);
    }, timeoutMs - 250);
    service.close().then(
      () => {
        clearTimeout(deadline);
        log.info({ ms: Math.round(performance.now() - started) }, 'shut down cleanly');
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
