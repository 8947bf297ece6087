import { type PhaseTrace, type Synchronous, tracePhases } from '@repo/db';
import { DatabaseError } from '../errors.ts';
import type { Job, Receipt, WriteQueue } from '../queue.ts';
import { encodePosting, type FileKey, newReceipt, outcomeOf } from './mailbox.ts';
import { askThreadSlice, dropThreadSlice, type WriteTurn, waitingSliceNs } from './turn.ts';

/**
 * How long a writer waits in the mailbox while the holder answers nobody before it gives up on
 * the holder and writes its job itself, without the turn: a holder that hangs (a stopped process)
 * must not hold the others until their deadline. A working holder answers someone every few ms;
 * each answer restarts the count. A new holder opening the file answers nobody meanwhile, which
 * under a burst of hundreds of processes takes seconds: hence 5 s (docs/decisions/0009-mailbox.md).
 * Decided from the turn's own answers and time alone, never from the machine's load.
 */
export const mailboxPatienceMs = 5000;

/** How often a writer whose job a holder took looks again (the answer wakes it anyway). */
const takenRecheckMs = 1000;

/**
 * A holder that took a job commits it within milliseconds. One that has not answered this long
 * past the job's deadline is stopped (not dead: a dead one hands the turn on): the caller hears
 * that the outcome is unknown instead of waiting for ever.
 */
const takenGraceMs = 5000;
/** How a wait in the mailbox ended. */
export type Posted =
  /** The holder committed (or failed) the job: its answer, collected. */
  | { kind: 'answered'; answer: Buffer }
  /**
   * Nobody holds the turn: this writer does now. The job is withdrawn, or was taken by a holder
   * that died before answering: either way this writer writes it, and its receipt (kept on the
   * job) makes that store it only if the dead holder had not.
   */
  | { kind: 'turn' }
  /** The job's deadline passed before any holder took it (withdrawn). */
  | { kind: 'timeout' }
  /** The holder answered nobody for `mailboxPatienceMs` (withdrawn): it may hang. */
  | { kind: 'quiet' }
  /** Too large for a slot, or every slot in use: nothing was posted. */
  | { kind: 'unposted' }
  /** A holder took the job and then stopped answering (see takenGraceMs): stored or not, nobody can say. */
  | { kind: 'unknown' }
  /**
   * The turn file broke under the mapping (truncated, damaged): nobody can answer through it. The
   * job keeps its receipt, so that writing it now stores it only if no holder did.
   */
  | { kind: 'broken' };

/**
 * Posts one job in the turn's mailbox (@repo/write-turn) and sleeps in the kernel
 * until the holder answers it, the turn is free, or time runs out. The event loop
 * stays free; the process wakes for its own answer only.
 */
export async function postAndWait(
  turn: WriteTurn,
  job: Job,
  file: FileKey,
  synchronous: Synchronous,
  deadline: number,
  threadSlices: boolean,
): Promise<Posted> {
  const trace = tracePhases('write');
  const receipt = newReceipt();
  const ticket = turn.post(encodePosting(job, file, synchronous, receipt));
  if (ticket === undefined) return { kind: 'unposted' };
  const slice = threadSlices ? askThreadSlice(waitingSliceNs) : undefined;
  try {
    return await awaitPosted(turn, job, ticket, receipt, deadline, trace);
  } finally {
    dropThreadSlice(slice);
  }
}

async function awaitPosted(
  turn: WriteTurn,
  job: Job,
  ticket: number,
  receipt: Receipt,
  deadline: number,
  trace: PhaseTrace,
): Promise<Posted> {
  // From here a holder may take it: whoever writes it records this receipt (see writer.ts). Kept
  // even once withdrawn: a holder that died may have stored it and a later one put it back.
  job.receipt = receipt;
  let taken = false;
  for (;;) {
    // Once a holder has taken the job, only its answer (or its death, seen by the turn) ends the wait.
    const until = taken ? Date.now() + takenRecheckMs : deadline;
    const outcome = await turn.awaitAnswer(ticket, Math.max(0, until - Date.now()), mailboxPatienceMs);
    if (outcome === 'answer') {
      const answer = turn.collect(ticket);
      if (answer === null) continue;
      trace.mark('mailbox-wait');
      return { kind: 'answered', answer };
    }
    if (outcome === 'broken') {
      trace.mark('mailbox-wait');
      return { kind: 'broken' };
    }
    if (outcome === 'turn') {
      trace.mark('mailbox-wait');
      if (turn.withdraw(ticket)) return { kind: 'turn' };
      const answer = turn.collect(ticket);
      return answer === null ? { kind: 'turn' } : { kind: 'answered', answer };
    }
    // 'timeout' or 'quiet'. A job already taken by a holder is being committed: its answer comes shortly.
    if (!turn.withdraw(ticket)) {
      taken = true;
      if (Date.now() - deadline > takenGraceMs) return { kind: 'unknown' };
      continue;
    }
    trace.mark('mailbox-wait');
    return Date.now() >= deadline ? { kind: 'timeout' } : { kind: 'quiet' };
  }
}

/**
 * Settles the job when the wait decided its outcome (answered, past its deadline, unknown) and
 * says so; otherwise (the turn, a doubt, a silent holder, not posted) the caller goes on writing.
 */
export function settleIfDecided(queue: WriteQueue, job: Job, posted: Posted): boolean {
  switch (posted.kind) {
    case 'answered':
      settleFromAnswer(queue, job, posted.answer);
      return true;
    case 'unknown':
      settleFromAnswer(queue, job, null);
      return true;
    case 'timeout':
      // Back at the front of the queue, past its deadline: it fails with LockTimeoutError there.
      queue.putBack([job]);
      queue.expireOverdue(Date.now(), 'the write turn: no holder took the row from the mailbox');
      return true;
    default:
      return false;
  }
}

/** Settles the job with the holder's answer, collected; null when no holder will ever give one. */
export function settleFromAnswer(queue: WriteQueue, job: Job, answer: Buffer | null): void {
  queue.settle([job], [answer === null ? lostAnswer() : outcomeOf(answer, job)]);
}

/** The outcome of a job whose holder stopped (or died and left no way to tell) before answering it. */
function lostAnswer(): DatabaseError {
  return new DatabaseError(
    'OUTCOME_UNKNOWN',
    'the process that was committing this row stopped before it answered: the row may or may not be stored',
  );
}
