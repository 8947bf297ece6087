import { cpuClockMs, type Phase, phaseChannel, tracePhases } from '@repo/db';
import { defineWorker } from '@repo/launcher/worker';
import { openMetricsRepo } from '@repo/metrics-repo';
import BetterSqlite3 from 'better-sqlite3';
import { relayInsert } from './relay-sketch.ts';

/**
 * One short-lived writer, the scenario this project started from: after the
 * release it opens the file, records one row and closes, the way naive code
 * (`raw`: better-sqlite3 with the driver's 5 s busy timeout, a prepared INSERT,
 * autocommit) or the repository (`repo`: openMetricsRepo, insert, close) does.
 */
export interface OneshotInput {
  path: string;
  /** `relay-sketch`: the measurement sketch of a leader design (relay-sketch.ts), not the library. */
  target: 'raw' | 'repo' | 'relay-sketch';
  index: number;
  /** Collect the phases (`phases`): a subscriber makes every phase read the clocks, on both sides. */
  tracePhases: boolean;
  /** The repository's options beside `path` (`repo` target only). */
  repoOptions?: { threadSlices?: boolean; synchronous?: 'normal' | 'full' };
}

/** A published phase, and when it ended: ms after the release reached this writer. */
export type TimedPhase = Phase & { endedMs: number };

export interface OneshotResult {
  /** From the release to the row's acknowledgement (the INSERT returned / the promise resolved). */
  latencyMs: number;
  /** From the release to the end of close. */
  totalMs: number;
  /** CPU (user + system) of this process (of this thread, in a worker thread on Linux) from the release to the end of close. */
  cpuMs: number;
  /** This process's CPU (this thread's, in a worker thread on Linux) at the release, counted from its start. */
  cpuAtReleaseMs: number;
  /** From the start of the process (or thread) to the barrier, and the CPU it took. */
  startupMs: number;
  startupCpuMs: number;
  /** Where the time went, phase by phase (the repository's published ones, or raw's own). */
  phases: TimedPhase[];
  /** When the release reached this writer: `performance.timeOrigin` plus `performance.now()`, in ms (comparable across processes). */
  releasedAtMs: number;
  error?: string;
}

defineWorker<OneshotInput, { input: OneshotInput; startupMs: number; startupCpuMs: number }, OneshotResult>({
  setup(input) {
    // performance.now() counts from the start of this process (or thread).
    return { input, startupMs: performance.now(), startupCpuMs: cpuClockMs() };
  },
  async run({ input, startupMs, startupCpuMs }) {
    const phases: TimedPhase[] = [];
    // Published synchronously at the phase's end: the time it arrives is the time it ended. Phases
    // arrive only after `start` below (subscribing stays outside the measured window).
    const collect = (message: unknown) => phases.push({ ...(message as Phase), endedMs: performance.now() - start });
    if (input.tracePhases) phaseChannel.subscribe(collect);
    const start = performance.now();
    const cpu = cpuClockMs();
    let latencyMs = Number.NaN;
    let error: string | undefined;
    const row = { name: 'oneshot', value: input.index, labels: { writer: String(input.index) } };
    try {
      // Every phase, the library's and the caller's, goes through the same diagnostics channel (collected above).
      if (input.target === 'relay-sketch') {
        const trace = tracePhases('sketch');
        const outcome = await relayInsert(input.path, row, () => {
          latencyMs = performance.now() - start;
        });
        trace.mark(outcome.led ? 'led' : 'followed', { attempts: outcome.tries });
      } else if (input.target === 'raw') {
        const trace = tracePhases('raw');
        const db = new BetterSqlite3(input.path, { timeout: 5000 });
        trace.mark('connection');
        db.prepare('INSERT INTO metrics (name, value, recorded_at, labels) VALUES (?, ?, ?, ?)').run(
          row.name,
          row.value,
          Date.now(),
          JSON.stringify(row.labels),
        );
        latencyMs = performance.now() - start;
        trace.mark('insert (lock wait + commit)');
        db.close();
        trace.mark('close');
      } else {
        // The caller's own view, around each call: what the library's phases leave out shows in the difference.
        const trace = tracePhases('call');
        const repo = await openMetricsRepo({ ...input.repoOptions, path: input.path });
        trace.mark('openMetricsRepo');
        await repo.insert(row);
        latencyMs = performance.now() - start;
        trace.mark('insert');
        await repo.close();
        trace.mark('close');
      }
    } catch (caught) {
      error =
        caught instanceof Error
          ? `${(caught as { code?: string }).code ?? caught.name}: ${caught.message}`
          : String(caught);
    } finally {
      if (input.tracePhases) phaseChannel.unsubscribe(collect);
    }
    return {
      latencyMs,
      totalMs: performance.now() - start,
      cpuMs: cpuClockMs() - cpu,
      cpuAtReleaseMs: cpu,
      releasedAtMs: performance.timeOrigin + start,
      startupMs,
      startupCpuMs,
      phases,
      ...(error === undefined ? {} : { error }),
    };
  },
});
