/** Who writes the rows: naive Drizzle code, or the repository. */
export type Target = 'raw' | 'repo';
/** How the writers run: separate OS processes, worker threads, or async tasks in the harness process. */
export type Mode = 'process' | 'thread' | 'async';
export type Journal = 'wal' | 'delete';
/** `kill`: writers are SIGKILLed at random moments while they insert (process mode only). */
export type Chaos = 'none' | 'kill';
/**
 * `insert`: one target's writers alone on the file. `mixed`: repository writers,
 * raw writers and readers on one file at the same time, as in real life
 * (dashboards, scripts, backups); one result per kind of writer.
 */
export type Scenario = 'insert' | 'mixed';
/** Where the rows go: one SQLite file (default), or a PostgreSQL database (`--backend postgres`). */
export type Backend = 'sqlite' | 'postgres';

export const targets: readonly Target[] = ['raw', 'repo'];
export const modes: readonly Mode[] = ['process', 'thread', 'async'];
export const journals: readonly Journal[] = ['wal', 'delete'];
export const chaosKinds: readonly Chaos[] = ['none', 'kill'];
export const scenarioKinds: readonly Scenario[] = ['insert', 'mixed'];
export const backends: readonly Backend[] = ['sqlite', 'postgres'];

/** One scenario: who writes, how, into what kind of file. */
export interface ScenarioSpec {
  scenario: Scenario;
  /**
   * Whose rows are counted. A `mixed` scenario is planned once, as `repo`: it
   * also runs as many raw writers on the same file, reported as a second
   * result with the same spec and target `raw`.
   */
  target: Target;
  mode: Mode;
  journal: Journal;
  writers: number;
  rowsPerWriter: number;
  /** Rows inserted sequentially by the harness before the writers start. */
  prefill: number;
  chaos: Chaos;
  /** Reader processes (threads in thread mode) that open, `SELECT count(*)` and close in a loop while the writers write. */
  readers: number;
  /** Set for PostgreSQL scenarios (then `journal` means nothing). */
  backend?: 'postgres';
}

/** Settings shared by every scenario of a run. */
export interface RunSettings {
  /** The raw target's busy timeout (ms). */
  busyTimeoutMs: number;
  /** The repo target's `lockTimeoutMs`. */
  lockTimeoutMs: number;
  /** A file shared by every scenario, or undefined for a fresh temporary file per scenario. */
  dbPath: string | undefined;
  /** Keep the temporary files. */
  keep: boolean;
  /** Every scenario is stopped (its writers killed) after this long (ms). */
  scenarioTimeoutMs: number;
  /** `--backend postgres`: the run's server; each scenario gets a fresh database on it. */
  postgres?: import('@repo/testkit/postgres').PostgresServer;
}

/** What one writer (process, thread or async task) hands back. */
export interface WriterResult {
  acked: number;
  failed: number;
  /** Failed rows by error code (`SQLITE_BUSY`, `LOCK_TIMEOUT`, `OPEN_BUSY`...). */
  errors: Record<string, number>;
  /** One message per error code, to explain it. */
  errorExamples: Record<string, string>;
  /** Per attempted insert, acknowledged or failed: how long the caller waited (ms). */
  latenciesMs: number[];
  /**
   * The writer process's peak memory (kB): its peak RSS less the pages it shares
   * with other processes (the Node binary...), so that a sum over a thousand
   * processes counts those once. Undefined for threads and async tasks, which
   * live in the harness process and are measured there.
   */
  memoryKb: number | undefined;
  /** CPU time (user + system, ms) the writer process spent from its release to its end; undefined for threads and async tasks. */
  cpuMs: number | undefined;
}

/** What the harness prints and writes to `--json`, one per scenario. */
export interface ScenarioResult extends ScenarioSpec {
  attempted: number;
  acked: number;
  failed: number;
  errors: Record<string, number>;
  /** Rows of this scenario actually in the table afterwards, counted by a separate read-only connection. */
  stored: number;
  /** acked − stored (with `--chaos kill`: acknowledged event ids missing from the file). Must be 0. */
  lost: number;
  /** From the start barrier until the last writer finished. */
  wallMs: number;
  rowsPerSec: number;
  /** Insert latency percentiles over every attempted insert (null when none was attempted). */
  p50Ms: number | null;
  p95Ms: number | null;
  p99Ms: number | null;
  maxMs: number | null;
  /**
   * Memory the scenario needed at its peak (MB): how much the harness process's
   * RSS grew (sampled every 100 ms; threads and async tasks live there) plus
   * each writer process's peak memory (see WriterResult.memoryKb).
   */
  peakMemoryMb: number;
  /**
   * CPU time (user + system, ms) spent while the writers wrote: the harness
   * process's (threads and async tasks run there) plus each writer process's.
   * Waiting for a lock by polling shows up here.
   */
  cpuMs: number;
  /** `PRAGMA journal_mode` of the file afterwards. */
  journalAfter: string;
  /** `PRAGMA integrity_check` of the file afterwards (`ok`). */
  integrity: string;
  /** Writers killed by `--chaos kill`. */
  killed: number;
  /** The busy timeout of the raw target's connections (ms). */
  busyTimeoutMs: number;
  /** The repo target's lock timeout (ms). */
  lockTimeoutMs: number;
  /** How long the writers took to start and become ready (ms). */
  readyMs: number;
  errorExamples: Record<string, string>;
  /** What the readers running alongside did (only when there were readers). */
  reads?: ReadersSummary;
  /** The database file (only when it was kept). The JSON and HTML reports show only its name. */
  dbPath?: string;
  /** Why the scenario did not run to completion, when it did not. */
  note?: string;
}

/** What the readers of a scenario did: reads that returned, and reads that failed by code. */
export interface ReadersSummary {
  reads: number;
  /** Reads that returned, by client (`better-sqlite3`, `sqlite3-cli`). */
  readsBy: Record<string, number>;
  failed: number;
  errors: Record<string, number>;
  errorExamples: Record<string, string>;
}
