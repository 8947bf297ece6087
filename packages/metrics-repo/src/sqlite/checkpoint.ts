import { rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import type BetterSqlite3 from 'better-sqlite3';
import { walFile } from './file-identity.ts';

/**
 * Checkpoints (copying committed pages from the -wal file back into the
 * database) without freezing the host's event loop.
 *
 * A checkpoint is one synchronous SQLite call whose cost grows with the pages it
 * copies. SQLite's automatic checkpoint runs inside a commit every 1000 pages,
 * and after a reader held a snapshot for a while (a dashboard, a backup) the
 * backlog it copies in one go can be hundreds of MB: the writer's event loop
 * froze for about a second. Cutting a large -wal file back inside a commit froze
 * it too (figures: docs/decisions/0006-one-checkpoint-thread-per-file.md).
 *
 * So the repository's connection never checkpoints inside a commit
 * (`wal_autocheckpoint = 0`) and never truncates the WAL (`journal_size_limit =
 * -1`). After each commit it looks at the WAL's size (a `stat`): past `walBytes`,
 * a repository that keeps writing hands the work to a worker thread with its own
 * connection, started on first need. The thread copies the backlog (PASSIVE: no
 * writer waits), retrying while readers hold old snapshots, then empties the WAL
 * file (TRUNCATE, which holds the write lock only for what is left; the
 * repository waits for it on timers, event loop free). A repository that has
 * committed only once (a short-lived process recording one row) starts no thread
 * (a thread costs tens of ms of CPU): it tries the same in `close()`, at the end of its life, as
 * SQLite itself checkpoints when the last connection closes.
 *
 * One thread per file, not one per repository: the repository whose thread
 * works touches a lease file beside the database (`<file>-checkpointer`, its
 * modification time only) while it commits with a large WAL (at most every 500 ms), and
 * removes it when it closes. Another repository, in this process or another,
 * starts no thread while that lease is fresh (`leaseMs`); it takes over once
 * the lease is gone or stale (its holder closed, was killed, or stopped
 * writing). Eight processes writing one file each started a thread before, and
 * wrote fewer rows per second than with the lease (see
 * docs/decisions/0006-one-checkpoint-thread-per-file.md). Two repositories that
 * start at the same moment can both start one: harmless.
 */
export const checkpointPolicy = {
  /** WAL size past which a checkpoint is due: about SQLite's own 1000 pages. */
  walBytes: 4 * 1024 * 1024,
  /** How often the thread tries again while readers keep it from finishing. */
  retryMs: 200,
  /** Commits after which a repository counts as long-lived and gets the thread. */
  commitsBeforeThread: 2,
  /** Another repository's checkpoint thread counts as at work while its lease was touched this recently. */
  leaseMs: 2000,
} as const;

/** What the checkpoint thread reports, for tests and diagnostics. */
export interface CheckpointReport {
  busy: number;
  log: number;
  checkpointed: number;
}

export class Checkpointer {
  private commits = 0;
  private worker: Worker | undefined;
  private exited: Promise<void> | undefined;
  /** The last outcome of the thread, and the last error it met (a checkpoint never loses a committed row). */
  lastReport: CheckpointReport | undefined;
  lastError: string | undefined;

  private readonly leasePath: string;
  /** When this repository last touched its own lease. */
  private ownLeaseTouchedAt = 0;

  constructor(
    private readonly sqlite: BetterSqlite3.Database,
    private readonly path: string,
  ) {
    this.leasePath = `${path}-checkpointer`;
    sqlite.pragma('wal_autocheckpoint = 0');
    sqlite.pragma('journal_size_limit = -1');
  }

  /** Whether the checkpoint thread was started. */
  get threadStarted(): boolean {
    return this.worker !== undefined;
  }

  /** Called after each commit. Synchronous and cheap: one `stat`. */
  afterCommit(): void {
    this.commits += 1;
    if (this.commits < checkpointPolicy.commitsBeforeThread || !this.walIsLarge()) return;
    // Another repository's thread is at work on this file: leave the checkpoints to it.
    if (this.worker === undefined && !this.leaseIsOurs()) return;
    this.thread().postMessage('checkpoint');
  }

  /** Before the connection closes: stops the thread, or checkpoints here once if the WAL is large. */
  async close(): Promise<void> {
    if (this.worker !== undefined) {
      // Held from here until it exits: an unreferenced thread is not waited for, so a host with
      // nothing else to do would exit with close() still pending and the code after it never run.
      this.worker.ref();
      this.worker.postMessage('close');
      await this.exited;
      // Another repository still writing takes over at its next commit instead of after leaseMs.
      rmSync(this.leasePath, { force: true });
      return;
    }
    if (!this.walIsLarge()) return;
    try {
      // With busy_timeout 0 this never waits: a writer or a reader on an old snapshot makes it give up.
      this.sqlite.pragma('wal_checkpoint(TRUNCATE)');
    } catch (error) {
      // Committed rows are safe in the WAL; another connection checkpoints them later.
      this.lastError = error instanceof Error ? error.message : String(error);
    }
  }

  /**
   * Takes or keeps the lease, unless another repository holds a fresh one. The holder touches it at
   * most every quarter of `leaseMs`, however often it commits.
   */
  private leaseIsOurs(): boolean {
    const now = Date.now();
    if (this.worker === undefined) {
      const touched = leaseTouchedAt(this.leasePath);
      if (touched !== undefined && now - touched < checkpointPolicy.leaseMs) return false;
    }
    if (now - this.ownLeaseTouchedAt >= checkpointPolicy.leaseMs / 4) {
      touchLease(this.leasePath);
      this.ownLeaseTouchedAt = now;
    }
    return true;
  }

  private walIsLarge(): boolean {
    return (walFile(this.path)?.size ?? 0) > checkpointPolicy.walBytes;
  }

  private thread(): Worker {
    if (this.worker !== undefined) return this.worker;
    // Plain JavaScript evaluated in the thread: it runs the same from sources, tsx and esbuild bundles,
    // and needs none of the host's Node flags, which a Worker inherits unless told otherwise: the
    // host's `--require`/`--import` preloads (tsx's loader, an APM agent) would run again in it.
    const worker = new Worker(threadSource, {
      eval: true,
      execArgv: [],
      workerData: { path: this.path, driver: betterSqlite3Path, retryMs: checkpointPolicy.retryMs },
    });
    // The thread never keeps the host process alive; a checkpoint cut short by exit is safe (the WAL stays valid).
    worker.unref();
    worker.on('message', (message: { report?: CheckpointReport; error?: string }) => {
      if (message.report !== undefined) this.lastReport = message.report;
      if (message.error !== undefined) this.lastError = message.error;
    });
    worker.on('error', (error) => {
      this.lastError = error.message;
    });
    this.exited = new Promise((resolve) => worker.once('exit', () => resolve()));
    this.worker = worker;
    return worker;
  }
}

/** When a checkpoint thread (of any repository on the file) last touched the lease; undefined when there is none. */
function leaseTouchedAt(leasePath: string): number | undefined {
  try {
    return statSync(leasePath, { throwIfNoEntry: false })?.mtimeMs;
  } catch {
    return undefined;
  }
}

/** Marks this repository's thread as at work: the lease's modification time, set by path (no descriptor kept). */
function touchLease(leasePath: string): void {
  const now = new Date();
  try {
    utimesSync(leasePath, now, now);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') return; // Only an optimisation: never fail a write.
    try {
      writeFileSync(leasePath, '', { flag: 'a' }); // fd-safe: the checkpoint lease, never a database
    } catch {
      // An unwritable lease: every repository keeps its own thread, as without the lease.
    }
  }
}

const betterSqlite3Path = createRequire(import.meta.url).resolve('better-sqlite3');

const threadSource = `
const { parentPort, workerData } = require('node:worker_threads');
const Database = require(workerData.driver);
const db = new Database(workerData.path, { timeout: 0 });
let retry;
let truncateAttempts = 0;
function checkpoint() {
  retry = undefined;
  try {
    // Copy the backlog without blocking any writer.
    let report = db.pragma('wal_checkpoint(PASSIVE)')[0];
    // Readers still on older snapshots: what they may need cannot be copied yet.
    if (report.busy === 0 && report.log <= report.checkpointed) {
      // Caught up: empty the file. Holds the write lock only for the frames added since; gives up at once if busy.
      report = db.pragma('wal_checkpoint(TRUNCATE)')[0];
      truncateAttempts = report.busy === 0 ? 0 : truncateAttempts + 1;
      if (report.busy !== 0 && truncateAttempts < 5) retry = setTimeout(checkpoint, workerData.retryMs);
    } else {
      retry = setTimeout(checkpoint, workerData.retryMs);
    }
    parentPort.postMessage({ report });
  } catch (error) {
    parentPort.postMessage({ error: String(error && error.message || error) });
    retry = setTimeout(checkpoint, workerData.retryMs);
  }
}
parentPort.on('message', (message) => {
  if (message === 'checkpoint') {
    if (retry === undefined) checkpoint();
  } else if (message === 'close') {
    clearTimeout(retry);
    db.close();
    parentPort.close();
  }
});
`;
