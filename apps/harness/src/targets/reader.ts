import { execFile, execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import BetterSqlite3 from 'better-sqlite3';
import type { ReadersSummary } from '../types.ts';
import { errorCodeOf } from './tally.ts';

/**
 * Who reads: a plain better-sqlite3 connection (this process's SQLite), or the
 * system's `sqlite3` command line (another SQLite build, often older: 3.40 on
 * Debian 12), as dashboards, scripts and operators do.
 */
export type ReaderClient = 'better-sqlite3' | 'sqlite3-cli';

/** What one reader needs to know; sent to processes and threads, so plain data only. */
export interface ReaderInput {
  client: ReaderClient;
  path: string;
  /** SQLite's busy timeout of each connection (ms), as the raw writers'. */
  busyTimeoutMs: number;
  /**
   * The reader stops once this file exists. It lives in a directory of its own,
   * never next to the database, and is only stat'ed: no descriptor of ours on a database file.
   */
  stopFile: string;
  /** The reader stops by this time (epoch ms) whatever happens. */
  deadline: number;
}

/** Pause between two reads: a dashboard polling hard, without taking a whole core from the writers. */
const pauseMs = 1;

/**
 * Reads the way a dashboard, a script or an operator does: open a connection
 * with the client's defaults, `SELECT count(*)`, close; again and again until
 * told to stop. Each close is the moment a connection that believes it is the
 * last one checkpoints and removes the `-wal` and `-shm` files: what made
 * acknowledged rows vanish when a writer had dropped its POSIX locks by
 * closing a descriptor of its own (SQLite 3.40's command line does that; the
 * SQLite better-sqlite3 bundles checks the `-shm` file's locks first).
 */
export async function readUntilStopped(input: ReaderInput): Promise<ReadersSummary> {
  const summary = emptyReadersSummary();
  const readOnce = input.client === 'sqlite3-cli' ? readWithCli : readWithBetterSqlite3;
  while (!existsSync(input.stopFile) && Date.now() < input.deadline) {
    try {
      await readOnce(input);
      summary.reads += 1;
      summary.readsBy[input.client] = (summary.readsBy[input.client] ?? 0) + 1;
    } catch (error) {
      addReadFailure(summary, errorCodeOf(error), error instanceof Error ? error.message : String(error));
    }
    await new Promise((resolve) => setTimeout(resolve, pauseMs));
  }
  return summary;
}

async function readWithBetterSqlite3(input: ReaderInput): Promise<void> {
  const sqlite = new BetterSqlite3(input.path, { fileMustExist: true, timeout: input.busyTimeoutMs });
  try {
    sqlite.prepare('SELECT count(*) FROM metrics').pluck().get();
  } finally {
    sqlite.close();
  }
}

/** The command line's errors carry no code: a lock is `SQLITE_BUSY`, anything else `SQLITE3_CLI_ERROR` with its message. */
function readWithCli(input: ReaderInput): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile(
      'sqlite3',
      ['-cmd', `.timeout ${input.busyTimeoutMs}`, input.path, 'SELECT count(*) FROM metrics;'],
      { timeout: input.busyTimeoutMs + 30_000 },
      (error, _stdout, stderr) => {
        if (error === null) return resolve();
        const message = `${stderr}`.trim() || error.message;
        reject(
          Object.assign(new Error(message), {
            code: /locked|busy/i.test(message) ? 'SQLITE_BUSY' : 'SQLITE3_CLI_ERROR',
          }),
        );
      },
    );
  });
}

/** The version of the `sqlite3` command line on PATH (`3.40.1`), or undefined when there is none. */
export function sqliteCliVersion(): string | undefined {
  try {
    return execFileSync('sqlite3', ['-version'], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
      timeout: 10_000,
    })
      .split(' ')[0]
      ?.trim();
  } catch {
    return undefined;
  }
}

export function emptyReadersSummary(): ReadersSummary {
  return { reads: 0, readsBy: {}, failed: 0, errors: {}, errorExamples: {} };
}

/** Adds one failed read (or a reader that never reported) to a summary. */
export function addReadFailure(summary: ReadersSummary, code: string, message: string, count = 1): void {
  summary.failed += count;
  summary.errors[code] = (summary.errors[code] ?? 0) + count;
  summary.errorExamples[code] ??= message;
}

/** The readers' summaries added up. */
export function addReaderSummaries(summaries: readonly ReadersSummary[]): ReadersSummary {
  const total = emptyReadersSummary();
  for (const summary of summaries) {
    total.reads += summary.reads;
    for (const [client, reads] of Object.entries(summary.readsBy)) {
      total.readsBy[client] = (total.readsBy[client] ?? 0) + reads;
    }
    for (const [code, count] of Object.entries(summary.errors)) {
      addReadFailure(total, code, summary.errorExamples[code] ?? code, count);
    }
  }
  return total;
}
