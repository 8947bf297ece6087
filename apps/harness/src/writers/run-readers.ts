import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Fleet, launch, type WorkerKind, type WorkerOutcome } from '@repo/launcher';
import {
  addReaderSummaries,
  addReadFailure,
  emptyReadersSummary,
  type ReaderInput,
  sqliteCliVersion,
} from '../targets/reader.ts';
import type { ReadersSummary } from '../types.ts';

export const readerEntry = join(import.meta.dirname, 'reader-entry.ts');

export interface ReadersOptions {
  kind: WorkerKind;
  count: number;
  path: string;
  busyTimeoutMs: number;
  /** Readers not ready by then fail; readers still reading this long after their release stop by themselves. */
  timeoutMs: number;
}

/** Readers started and waiting at their own barrier. */
export interface Readers {
  /** Starts the reading loops (call it as the writers are released). */
  release(): void;
  /** Tells every reader to stop, waits for them, and adds up what they did. */
  stop(): Promise<ReadersSummary>;
}

/**
 * Starts reader processes or threads (`src/targets/reader.ts`) that read the
 * file in a loop from their release until `stop()`; every other one reads
 * through the system's `sqlite3` command line when it is installed. The stop signal is a file
 * in a directory of its own, which each reader stats between two reads: it
 * works the same for processes and threads, and lets each reader return its
 * own count.
 */
export async function startReaders(options: ReadersOptions): Promise<Readers> {
  const { kind, count, path, busyTimeoutMs, timeoutMs } = options;
  const stopDirectory = mkdtempSync(join(tmpdir(), 'harness-readers-'));
  const stopFile = join(stopDirectory, 'stop');
  const deadline = Date.now() + 2 * timeoutMs;
  // Every other reader is the system's sqlite3 command line, when there is one: another SQLite build on the same file.
  const cliVersion = sqliteCliVersion();
  const cli = cliVersion !== undefined;
  const input = (index: number): ReaderInput => ({
    client: cli && index % 2 === 1 ? 'sqlite3-cli' : 'better-sqlite3',
    path,
    busyTimeoutMs,
    stopFile,
    deadline,
  });
  let fleet: Fleet<ReadersSummary>;
  try {
    fleet = await launch<ReaderInput, ReadersSummary>({
      entry: readerEntry,
      kind,
      count,
      input,
      readyTimeoutMs: timeoutMs,
    });
  } catch (error) {
    rmSync(stopDirectory, { recursive: true, force: true });
    const summary = emptyReadersSummary();
    addReadFailure(summary, 'READER_NOT_READY', error instanceof Error ? error.message : String(error), count);
    return { release: () => {}, stop: async () => summary };
  }
  let running: Promise<WorkerOutcome<ReadersSummary>[]> | undefined;
  const release = () => {
    running ??= fleet.run({ timeoutMs: 2 * timeoutMs + 60_000 });
    return running;
  };
  return {
    release,
    async stop() {
      try {
        // fd-safe: the readers' stop flag, in a directory of its own
        writeFileSync(stopFile, '');
        const outcomes = await release().catch((error: unknown): WorkerOutcome<ReadersSummary>[] =>
          Array.from({ length: count }, (_, index) => ({
            index,
            ok: false,
            phase: 'run',
            error: { name: 'ReaderDeadline', message: error instanceof Error ? error.message : String(error) },
          })),
        );
        const summary = addReaderSummaries(outcomes.flatMap((outcome) => (outcome.ok ? [outcome.result] : [])));
        // Name the command line's SQLite: that it is another build is the point.
        const cliReads = summary.readsBy['sqlite3-cli'];
        if (cliReads !== undefined) {
          delete summary.readsBy['sqlite3-cli'];
          summary.readsBy[`sqlite3 CLI ${cliVersion}`] = cliReads;
        }
        for (const outcome of outcomes) {
          if (!outcome.ok) addReadFailure(summary, 'READER_DIED', `${outcome.error.name}: ${outcome.error.message}`);
        }
        return summary;
      } finally {
        rmSync(stopDirectory, { recursive: true, force: true });
      }
    },
  };
}
