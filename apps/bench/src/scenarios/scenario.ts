import type { PostgresServer } from '@repo/testkit/postgres';
import type { BenchSizes } from '../config.ts';
import type { EventLoopDelay } from '../measure.ts';

/** What one run of a scenario measured. Every time is in milliseconds. */
export interface Measurement extends EventLoopDelay {
  /** Rows whose write was acknowledged as committed (the call returned or its promise resolved). */
  rows: number;
  /** Rows whose write was refused (an error was thrown or the promise rejected). */
  failedRows: number;
  /** From the first write issued to the last one acknowledged. */
  wallMs: number;
  /** For each acknowledged row: from the moment its write was issued to its acknowledgement. */
  latenciesMs: Float64Array;
  /** One-shot scenarios: per writer, from the release to the end of its close(). */
  toCloseMs?: Float64Array;
  /** The first refusal, to say why rows failed. */
  firstError?: string;
  /** CPU (user + system) of every writer while it wrote, where the scenario measures it (the one-shot ones). */
  cpuMs?: number;
  /** Rows counted in the database afterwards, by a scenario that does not write to `file` (PostgreSQL). */
  stored?: number;
}

export interface ScenarioContext {
  sizes: BenchSizes;
  /** A fresh, not yet existing database file; the scenario opens (and so creates) it. */
  file: string;
  /** The run's PostgreSQL server, for scenarios with `needsPostgres`: each run takes a fresh database from it. */
  postgres?: PostgresServer;
}

export interface Scenario {
  name: string;
  /** Runs against PostgreSQL: skipped, with a line saying why, when no server can be had. */
  needsPostgres?: boolean;
  /** One line for the table: how the rows go in, with this run's sizes. */
  describe(sizes: BenchSizes): string;
  /**
   * The figure that picks the median of several runs: throughput for most
   * scenarios, the event-loop delay for lock-wait (whose throughput is set by the 2 s lock),
   * the latency's p99 for the one-shot ones (one row per process: their throughput is start-up).
   */
  medianBy: 'rowsPerSec' | 'p99EventLoopDelayMs' | 'maxEventLoopDelayMs' | 'p99Ms';
  run(context: ScenarioContext): Promise<Measurement>;
}

export function describeError(error: unknown): string {
  if (error instanceof Error) {
    const code = (error as { code?: unknown }).code;
    return `${error.name}${typeof code === 'string' ? ` ${code}` : ''}: ${error.message}`;
  }
  return String(error);
}
