import type { DatabaseError } from '../errors.ts';
import type { ResolvedSqliteOptions } from '../options.ts';
import type { Job, JobOutcome, WriteQueue } from '../queue.ts';
import { replacedFileError } from './file-identity.ts';
import { decodePosting, encodeAnswer, type FileKey, type MailJob } from './mailbox.ts';
import { postAndWait, settleIfDecided } from './post.ts';
import { openTurn, queuesForTurn, TurnWait, type WriteTurn } from './turn.ts';

/**
 * How the repositories writing one file take turns, behind one small interface: the writer
 * (writer.ts) asks it before each attempt at SQLite's lock, inside and after each transaction.
 * Two kinds: `noCoordination` (every writer polls SQLite's lock on timers: the portable path) and
 * `TurnCoordination` (the file's write turn and its mailbox, @repo/write-turn). Their states and
 * transitions are tabled in the package README ("How it works").
 */
export interface Coordination {
  /**
   * Before an attempt at SQLite's lock. `attempt`: try it now (`connected` false: open the file
   * first). `settled`: the queue's next job went to another process's transaction and is settled.
   * `retry`: a wait ended without either (a deadline passed, the holder may hang): loop.
   */
  beforeAttempt(queue: WriteQueue, connected: boolean): Promise<'attempt' | 'settled' | 'retry'>;
  /** SQLite refused the lock: true to sleep on a timer and try again, false to queue for the turn. */
  refused(): boolean;
  /** Inside BEGIN IMMEDIATE: jobs other processes posted, to commit in this transaction. */
  takeMail(identity: FileKey): MailJob[];
  /** After the transaction: each taken job's outcome, in order; or `'not-committed'` (posted again). */
  answerMail(mail: MailJob[], outcomes: JobOutcome[] | 'not-committed'): void;
  /** After a transaction: true to run another one now (others posted), false when done. */
  afterTransaction(hasOwnJobs: boolean, closing: boolean): Promise<boolean>;
  /** Jobs of this writer's own arrived: a wait for others' posts ends. */
  ownJobsArrived(): void;
  /** Hands the turn on, if held (a drain ended; the turn taken at open is let go unused). */
  release(): void;
  /** Whether this writer holds the turn (it polls SQLite's lock for the file). */
  readonly holding: boolean;
  close(): void;
}

/** The portable path: nobody coordinates; SQLite's lock alone decides, on timers. */
export const noCoordination: Coordination = {
  beforeAttempt: async () => 'attempt',
  refused: () => true,
  holding: false,
  takeMail: () => [],
  answerMail: () => {},
  afterTransaction: async () => false,
  ownJobsArrived: () => {},
  release: () => {},
  close: () => {},
};

/** A contended writer with at most this many rows queued posts them in the mailbox. */
const mailboxMaxRows = 16;
/** A writer without a connection opens one once it has posted this many jobs (it keeps writing). */
const unconnectedMaxJobs = 8;
/** How long a holder whose own rows are committed keeps serving the mailbox. */
const holderServesForMs = 3000;
/**
 * How long a holder whose last transaction carried posted rows waits for the next post (asleep in
 * the kernel) before it hands the turn on: the next holder would open the file first, while the
 * others' rows wait (see docs/decisions/0009-mailbox.md).
 */
const holderLingersMs = 150;

/** What a write that timed out waited for (LockTimeoutError's message). */
const waitedForTurn =
  'the write turn, held by another repository on this file (a process or thread that may be stopped)';

/**
 * The file's write turn and its mailbox. At most one writer of the file holds the turn: it alone
 * polls SQLite's lock, and its transactions carry the jobs the others posted; a writer that finds
 * the turn held posts its small jobs and sleeps until they are answered, or (a backlog) sleeps in
 * the kernel until the turn is handed on. What is stored is decided by the receipts in the
 * database, never by the turn file (docs/decisions/0018-the-turn-file-as-a-trust-boundary.md).
 */
export class TurnCoordination implements Coordination {
  private turn: WriteTurn | undefined;
  /**
   * Another writer was seen on the file (a BEGIN refused): from then on this writer takes part in
   * the turn. Until then it makes no call on the turn at all (one long-lived process alone pays nothing).
   */
  private othersSeen = false;
  /** The holder seems hung: the next attempt is made without the turn. */
  private bypass = false;
  private readonly turnWait = new TurnWait();
  private posted = 0;
  private servingSince: number | undefined;
  /** The last transaction carried posted rows: others are posting. */
  private tookMail = false;
  private lingering = false;
  /** The turn file was deleted or replaced: the turn now at the path replaces it once released. */
  private stale = false;

  constructor(
    turn: WriteTurn,
    private readonly path: string,
    private readonly options: ResolvedSqliteOptions,
    /** Names the file in postings: the one this repository means (a holder that opened another answers an error). */
    private readonly file: FileKey,
  ) {
    this.turn = turn;
  }

  get holding(): boolean {
    return this.turn?.held === true;
  }

  /** Takes the turn if it is free (at open: then this repository opens the file for the others). */
  tryHold(): boolean {
    return this.turn?.tryAcquire() === true;
  }

  async beforeAttempt(queue: WriteQueue, connected: boolean): Promise<'attempt' | 'settled' | 'retry'> {
    const turn = this.turn;
    if (turn === undefined || turn.held || this.bypass) {
      this.bypass = false;
      return 'attempt';
    }
    // A connected writer that has seen nobody else on the file makes no call on the turn.
    if (connected && !this.othersSeen) return 'attempt';
    // Free: this writer holds it for its transaction, and serves the mailbox with it.
    if (turn.tryAcquire()) return 'attempt';
    const deadline = queue.nextDeadline;
    // Held elsewhere, and one small job here (a process's one row): hand it to the holder, whose
    // next transaction commits it with everyone else's, rather than a transaction of its own.
    const small = queue.pendingRows <= mailboxMaxRows && (connected || this.posted < unconnectedMaxJobs);
    const job = small ? queue.takeBatch(1)[0] : undefined;
    if (job !== undefined) {
      if (queue.hasJobs) queue.putBack([job]);
      else return this.hand(turn, queue, job, deadline);
    }
    // A writer without a connection opens one for a backlog, holding the turn or not. In worker
    // threads a backlog polls on timers: there a timer's wake-up is cheaper than the turn's hand-over.
    if (!connected || !queuesForTurn) return 'attempt';
    const patience = this.turnWait.next();
    const wait = Math.min(patience, Math.max(0, deadline - Date.now()));
    if (await turn.acquire(wait)) return 'attempt';
    queue.expireOverdue(Date.now(), waitedForTurn);
    // Out of patience (the holder may hang): one attempt at SQLite's lock without the turn.
    if (wait >= patience) this.bypass = true;
    return 'retry';
  }

  /** Posts `job` and waits for its answer; see post.ts for how the wait can end. */
  private async hand(
    turn: WriteTurn,
    queue: WriteQueue,
    job: Job,
    deadline: number,
  ): Promise<'attempt' | 'settled' | 'retry'> {
    this.posted += 1;
    const { synchronous, threadSlices } = this.options;
    const posted = await postAndWait(turn, job, this.file, synchronous, deadline, threadSlices);
    if (settleIfDecided(queue, job, posted)) return 'settled';
    // Written by this writer now. A job a holder may have stored keeps its receipt: it is written
    // only if no transaction stored it.
    queue.putBack([job]);
    if (posted.kind === 'broken') this.dropBroken();
    if (posted.kind === 'quiet') this.bypass = true;
    return 'attempt';
  }

  refused(): boolean {
    this.othersSeen = true;
    // Queue for the turn instead of polling, unless this writer holds it (or is a worker thread).
    return !(queuesForTurn && this.turn !== undefined && !this.turn.held);
  }

  /**
   * The holder's share of the mailbox: every job posted for this file, except those of followers
   * with another `synchronous` (handed back: they commit them themselves when they get the turn).
   * A damaged entry, or one meant for a file that another has replaced, is answered with an error.
   */
  takeMail(identity: FileKey): MailJob[] {
    this.tookMail = false;
    this.turnWait.reset();
    const turn = this.usableTurn();
    if (turn === undefined || !turn.held) return [];
    const mail: MailJob[] = [];
    for (const posted of turn.take()) {
      let entry: MailJob;
      try {
        entry = decodePosting(posted.ticket, posted.payload);
      } catch (error) {
        turn.answer(posted.ticket, encodeAnswer(error as DatabaseError), true);
        continue;
      }
      if (entry.synchronous !== this.options.synchronous) turn.untake(entry.ticket);
      else if (entry.file.dev !== identity.dev || entry.file.ino !== identity.ino) {
        turn.answer(entry.ticket, encodeAnswer(replacedFileError(this.path)), true);
      } else mail.push(entry);
    }
    this.tookMail = mail.length > 0;
    return mail;
  }

  answerMail(mail: MailJob[], outcomes: JobOutcome[] | 'not-committed'): void {
    const turn = this.turn;
    if (mail.length === 0 || turn === undefined) return;
    if (outcomes === 'not-committed') {
      for (const entry of mail) turn.untake(entry.ticket);
      return;
    }
    mail.forEach((entry, k) => {
      turn.answer(entry.ticket, encodeAnswer(outcomes[k] as JobOutcome), false);
    });
    // Every answer is written before the first follower is woken.
    turn.finish(mail.map((entry) => entry.ticket));
  }

  /**
   * After a commit, the holder keeps the turn for another transaction while rows wait in the
   * mailbox (with its connection open, that costs a transaction, where handing the turn on makes a
   * follower open the file first), for at most 3 s, and never once its repository is closing.
   */
  async afterTransaction(hasOwnJobs: boolean, closing: boolean): Promise<boolean> {
    const turn = this.turn;
    if (turn === undefined || !turn.held) return false;
    let serve = !closing && (turn.posted() > 0 || (await this.postedSoon(turn, hasOwnJobs, closing)));
    if (serve) {
      this.servingSince ??= Date.now();
      serve = Date.now() - this.servingSince <= holderServesForMs;
    }
    if (!serve) {
      this.servingSince = undefined;
      this.release();
    }
    return serve;
  }

  /** Nothing posted: after a transaction that carried posted rows, waits a moment for the next post. */
  private async postedSoon(turn: WriteTurn, hasOwnJobs: boolean, closing: boolean): Promise<boolean> {
    if (!this.tookMail || hasOwnJobs || closing) return false;
    this.lingering = true;
    try {
      return await turn.awaitPost(holderLingersMs);
    } finally {
      this.lingering = false;
    }
  }

  ownJobsArrived(): void {
    if (this.lingering) this.turn?.stopAwaitingPost();
  }

  release(): void {
    if (this.turn?.held) this.turn.release();
    if (this.stale) {
      this.stale = false;
      this.turn?.close();
      this.turn = openTurn(this.path);
    }
  }

  close(): void {
    this.ownJobsArrived();
    this.turn?.close();
  }

  /** Closes and removes the turn file if this repository created it (a failed open leaves nothing). */
  discard(): void {
    if (this.turn?.created) this.turn.discard();
    else this.turn?.close();
    this.turn = undefined;
  }

  /**
   * The turn, if it can still be used. A broken one (truncated or damaged under the mapping) is
   * dropped: this writer waits on timers from now on. A stale one (deleted or replaced at its path)
   * is served once more, then replaced by the turn now at the path (see release), so that every
   * writer of the file meets in one mailbox again.
   */
  private usableTurn(): WriteTurn | undefined {
    const state = this.turn?.state();
    if (state === 'broken') this.dropBroken();
    if (state === 'stale') this.stale = true;
    return this.turn;
  }

  private dropBroken(): void {
    this.turn?.close();
    this.turn = undefined;
  }
}
