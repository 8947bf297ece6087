/**
 * Periodic retention (`retainMs`): deletes the rows recorded more than
 * `retainMs` ago, once shortly after open and then every tenth of `retainMs`
 * (between 1 s and 15 min). Runs on unref'd timers (it never keeps a process
 * alive) and one prune at a time; each prune is made of short transactions with
 * pauses between them (see `prunePolicy`), so writers and the event loop keep
 * going. A failed run is reported once per error code as a process warning and
 * tried again at the next tick.
 */
export class Retention {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private readonly abort = new AbortController();
  private warned = new Set<string>();
  /** Rows deleted by retention so far, and the last error met (for diagnostics). */
  deleted = 0;
  lastError: unknown;

  constructor(
    private readonly retainMs: number,
    private readonly prune: (before: number, signal: AbortSignal) => Promise<number>,
    firstRunMs = retentionPolicy.firstRunMs,
  ) {
    this.schedule(firstRunMs);
  }

  /** Between runs: a tenth of `retainMs`, within [minIntervalMs, maxIntervalMs]. */
  get intervalMs(): number {
    return Math.min(retentionPolicy.maxIntervalMs, Math.max(retentionPolicy.minIntervalMs, this.retainMs / 10));
  }

  /** Stops the timer and the prune under way (after its current transaction). */
  async stop(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.abort.abort(new Error('retention stopped'));
    await this.running;
  }

  private schedule(ms: number): void {
    if (this.abort.signal.aborted) return;
    this.timer = setTimeout(() => this.run(), ms);
    this.timer.unref();
  }

  private run(): void {
    this.running = this.prune(Date.now() - this.retainMs, this.abort.signal)
      .then(
        (deleted) => {
          this.deleted += deleted;
        },
        (error: unknown) => {
          if (this.abort.signal.aborted) return;
          this.lastError = error;
          const code = String((error as { code?: unknown }).code ?? 'UNKNOWN');
          if (!this.warned.has(code)) {
            this.warned.add(code);
            process.emitWarning(
              `metrics-repo retention: prune failed (${error instanceof Error ? error.message : error}); retrying at the next tick`,
              'MetricsRepoRetentionWarning',
            );
          }
        },
      )
      .finally(() => {
        this.running = undefined;
        this.schedule(this.intervalMs);
      });
  }
}

export const retentionPolicy = {
  firstRunMs: 1000,
  minIntervalMs: 1000,
  maxIntervalMs: 15 * 60_000,
};
