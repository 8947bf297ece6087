import type { ResolvedSqliteOptions } from '../options.ts';
import type { Job, WriteQueue } from '../queue.ts';
import type { FileKey } from './mailbox.ts';
import { postAndWait, settleIfDecided } from './post.ts';
import type { WriteTurn } from './turn.ts';
import { toDatabaseError } from './writer.ts';

/** What a follower becomes once it needs a connection of its own. */
export interface ConnectedWriter {
  /** Takes over the queue (it listens to it from then on) and drains it; first without the turn if the holder seems hung. */
  start(holderSeemsHung: boolean): void;
}

/**
 * A follower opens the file and becomes an ordinary writer when more rows than this are
 * queued (a loop of inserts: a connection of its own commits them in batches)...
 */
const followerMaxRows = 16;
/** ...or once it has posted this many jobs (a process that keeps writing, one row at a time). */
const followerMaxJobs = 8;

/**
 * A writer that has not opened the database: it posts each job in the turn's
 * mailbox (@repo/write-turn) and sleeps in the kernel until the turn's holder
 * has committed it with its own rows and answered. A process that records one
 * row and exits then never loads SQLite: the holder's one transaction stores
 * the rows of every process that posted meanwhile.
 *
 * When the turn is free, the follower takes it, and with it the holder's job:
 * it opens the connection (`connect`) and becomes an ordinary writer, which
 * commits its own jobs and the mailbox's. It does the same for a job the mailbox
 * cannot hold (larger than a slot, or all 1,024 slots in use).
 */
export class Follower {
  /**
   * The drains, one after the other (each posts the queue's next job and waits for its answer),
   * and how many are under way or waiting. A chain of promises rather than the writer's
   * async-mutex: a one-row process compiles each function it calls once, and a follower's whole
   * path is one job (BENCHMARKS.md, "The follower's path, compiled").
   */
  private drains: Promise<void> = Promise.resolve();
  private pendingDrains = 0;
  private drainScheduled = false;
  private writer: ConnectedWriter | undefined;
  private closed = false;
  private posted = 0;
  private triedConnectNow = false;

  constructor(
    private readonly turn: WriteTurn,
    private readonly file: FileKey,
    private readonly options: ResolvedSqliteOptions,
    private readonly queue: WriteQueue,
    private readonly connect: () => Promise<ConnectedWriter>,
    /** One attempt at opening the file without waiting: throws if anything is in the way, undefined if an open is under way. */
    private readonly connectNow: () => ConnectedWriter | undefined,
  ) {
    queue.listen({ jobsAdded: (queuedRows) => this.jobsAdded(queuedRows) });
  }

  /** Commits (or fails) everything it was given; the backend then closes the writer or the turn. */
  async close(): Promise<void> {
    await this.afterOtherDrains(() => this.drain());
    this.closed = true;
  }

  /** Runs `drain` once every drain before it has ended: two never take jobs from the queue at once. */
  private afterOtherDrains(drain: () => Promise<void>): Promise<void> {
    this.pendingDrains += 1;
    const run = this.drains.then(drain).finally(() => {
      this.pendingDrains -= 1;
    });
    this.drains = run.catch(() => undefined);
    return run;
  }

  /**
   * A synchronous loop of inserts that fills a whole batch: a writer commits such a batch inside the
   * call (SqliteWriter.commitFullBatchNow), so that writing overlaps the caller's loop. A follower
   * opens its connection there and then, once, to do the same from the next insert on; otherwise it
   * would write nothing before the loop ends (`pnpm bench --only limit,repo-processes`: five of
   * eight processes were followers). Anything in the way (a lock, a damaged file): the drain opens
   * the file as usual, on timers.
   */
  private jobsAdded(queuedRows: number): void {
    // A small maxBatchRows must not make one-row processes open the file: past the mailbox's rows only.
    const fullBatch = queuedRows >= this.options.maxBatchRows && queuedRows > followerMaxRows;
    if (fullBatch && !this.triedConnectNow && this.writer === undefined && !this.closed) {
      this.triedConnectNow = true;
      if (this.pendingDrains === 0) {
        try {
          this.writer = this.connectNow();
          if (this.writer !== undefined) {
            this.writer.start(false);
            return;
          }
        } catch {
          // The drain below opens it with retries, and reports what stays wrong to the callers.
        }
      }
    }
    this.scheduleDrain();
  }

  private scheduleDrain(): void {
    if (this.drainScheduled || this.writer !== undefined) return;
    this.drainScheduled = true;
    // After the caller's synchronous code (a loop of inserts shares one drain), on a microtask
    // rather than the writer's setImmediate: a one-row process then never sets up Node's timers.
    void Promise.resolve()
      .then(() => this.afterOtherDrains(() => this.drain()))
      .finally(() => {
        this.drainScheduled = false;
        if (this.queue.hasJobs && this.writer === undefined && !this.closed) this.scheduleDrain();
      });
  }

  private async drain(): Promise<void> {
    while (this.queue.hasJobs && this.writer === undefined) {
      // A writer with a backlog, or with a steady flow of jobs, pays for a connection: it opens one.
      if (this.queue.pendingRows > followerMaxRows || this.posted >= followerMaxJobs) {
        await this.becomeWriter();
        return;
      }
      const job = this.queue.takeBatch(1)[0] as Job;
      this.posted += 1;
      const { synchronous, lockTimeoutMs, threadSlices } = this.options;
      const posted = await postAndWait(
        this.turn,
        job,
        this.file,
        synchronous,
        job.calledAt + lockTimeoutMs,
        threadSlices,
      );
      if (settleIfDecided(this.queue, job, posted)) continue;
      // The turn is free (this follower holds it now), the holder seems hung, the job did not fit,
      // or the turn file broke: this follower opens the file and writes (with the turn, if it holds
      // it). A job a holder may have stored keeps its receipt: it is written only if none did.
      this.queue.putBack([job]);
      await this.becomeWriter(posted.kind === 'quiet');
      return;
    }
  }

  /**
   * Opens the connection; the writer takes the queue (and the turn, if held) from here. If the
   * database cannot be opened, what is queued fails with that error, and the turn is let go.
   */
  private async becomeWriter(holderSeemsHung = false): Promise<boolean> {
    try {
      this.writer = await this.connect();
    } catch (error) {
      if (this.turn.held) this.turn.release();
      this.queue.fail(this.queue.takeBatch(Number.POSITIVE_INFINITY), toDatabaseError(error));
      return false;
    }
    this.writer.start(holderSeemsHung);
    return true;
  }
}
