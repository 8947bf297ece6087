import { type Synchronous, tracePhases } from '@repo/db';
import { DatabaseError } from '../errors.ts';
import type { Job, WriteQueue } from '../queue.ts';
import { encodePosting, type FileKey, outcomeOf } from './mailbox.ts';
import { machineOverloaded } from './overload.ts';
import { askThreadSlice, dropThreadSlice, type WriteTurn } from './turn.ts';

/**
 * How long a writer waits in the mailbox while the holder answers nobody before
 * it gives up on the holder and writes its job itself, without the turn: a
 * holder that hangs (a stopped process) must not hold the others until their
 * deadline. A working holder answers someone every few ms, even behind hundreds
 * of processes on two cores; each answer restarts the count. But a new holder
 * opening the file answers nobody meanwhile, seconds under that load: with 2 s,
 * at 500 one-row processes, a cascade of writers gave up, opened the file and
 * contended (`phases --writers 500`: p99 1.03× to 1.39× naive code's, `open:
 * connection` in a fifth of them); with 5 s, none (1.01×, CPU 0.84×). While the machine is
 * overloaded (see overload.ts), the wait goes on until the deadline.
 */
export const mailboxPatienceMs = 5000;

/**
 * A follower's thread waits for its answer on the shortest CPU slice a normal thread may ask for,
 * from its post until the answer is in. The fair scheduler (EEVDF) runs first the runnable thread
 * whose slice ends soonest, and a thread that went to sleep having run past its share wakes up
 * behind the others; a short slice does neither. Among hundreds of one-row processes on two cores,
 * woken followers then take their answers ahead of the ones already answered and exiting: `phases
 * --writers 500`, p99 0.43× to 0.79× naive code's with it, 1.01× to 1.41× without, CPU per row 0.4
 * ms more (BENCHMARKS.md, "Compiled when loaded; answers taken first"). Same share of the CPU.
 */
const waitingSliceNs = 100_000;

/** How often a writer whose job a holder took looks again (the answer wakes it anyway). */
const takenRecheckMs = 1000;

/**
 * A holder that took a job commits it within milliseconds. One that has not answered this long
 * past the job's deadline is stopped (not dead: a dead one hands the turn on): the caller hears
 * that the outcome is unknown instead of waiting for ever.
 */
const takenGraceMs = 5000;
/**
 * The same, while the machine is overloaded (see overload.ts): at 1,000 one-row processes on two
 * cores, 8 callers heard `OUTCOME_UNKNOWN` for rows their holder, slow and not stopped, then stored.
 */
const takenGraceOverloadedMs = 60_000;

/** How a wait in the mailbox ended. Only `answered` and `in-doubt` leave the job posted. */
export type Posted =
  /** The holder committed (or failed) the job: its answer, collected. */
  | { kind: 'answered'; answer: Buffer }
  /** Nobody holds the turn: this writer does now, and the job is withdrawn. */
  | { kind: 'turn' }
  /**
   * This writer holds the turn, but its job was taken by a holder that died: as the holder now,
   * it serves the mailbox (which settles the doubt), then collects `ticket`.
   */
  | { kind: 'in-doubt'; ticket: number }
  /** The job's deadline passed before any holder took it (withdrawn). */
  | { kind: 'timeout' }
  /** The holder answered nobody for `mailboxPatienceMs` (withdrawn): it may hang. */
  | { kind: 'quiet' }
  /** Too large for a slot, or every slot in use: nothing was posted. */
  | { kind: 'unposted' }
  /** A holder took the job and then stopped answering (see takenGraceMs): stored or not, nobody can say. */
  | { kind: 'unknown' };

/**
 * Posts one job in the turn's mailbox (@repo/write-turn) and sleeps in the kernel
 * until the holder answers it, the turn is free, or time runs out. The event loop
 * stays free; the process wakes for its own answer only.
 */
// biome-ignore format: the parentheses make V8 compile it when its module loads (metrics-repo README, "Compiled when loaded")
export const postAndWait = (async function postAndWait(
  turn: WriteTurn,
  job: Job,
  file: FileKey,
  synchronous: Synchronous,
  deadline: number,
): Promise<Posted> {
  const trace = tracePhases('write');
  const ticket = turn.post(encodePosting(job, file, synchronous));
  if (ticket === undefined) return { kind: 'unposted' };
  const slice = askThreadSlice(waitingSliceNs);
  try {
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
      if (outcome === 'turn') {
        trace.mark('mailbox-wait');
        if (turn.withdraw(ticket)) return { kind: 'turn' };
        const answer = turn.collect(ticket);
        return answer === null ? { kind: 'in-doubt', ticket } : { kind: 'answered', answer };
      }
      // Quiet on a machine short of CPUs: the holder is most likely waiting for one, as this writer would.
      if (outcome === 'quiet' && !taken && machineOverloaded()) continue;
      // 'timeout' or 'quiet'. A job already taken by a holder is being committed: its answer comes shortly.
      if (!turn.withdraw(ticket)) {
        taken = true;
        const late = Date.now() - deadline;
        // A holder short of a CPU is slow, not stopped: it gets longer, but not for ever.
        if (late > takenGraceMs && (late > takenGraceOverloadedMs || !machineOverloaded())) return { kind: 'unknown' };
        continue;
      }
      trace.mark('mailbox-wait');
      return Date.now() >= deadline ? { kind: 'timeout' } : { kind: 'quiet' };
    }
  } finally {
    dropThreadSlice(slice);
  }
});

/**
 * Settles the job when the wait decided its outcome (answered, past its deadline, unknown) and
 * says so; otherwise (the turn, a doubt, a silent holder, not posted) the caller goes on writing.
 */
// biome-ignore format: the parentheses make V8 compile it when its module loads (metrics-repo README, "Compiled when loaded")
export const settleIfDecided = (function settleIfDecided(queue: WriteQueue, job: Job, posted: Posted): boolean {
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
      queue.expireOverdue(Date.now());
      return true;
    default:
      return false;
  }
});

/** Settles the job with the holder's answer, collected; null when no holder will ever give one. */
// biome-ignore format: the parentheses make V8 compile it when its module loads (metrics-repo README, "Compiled when loaded")
export const settleFromAnswer = (function settleFromAnswer(queue: WriteQueue, job: Job, answer: Buffer | null): void {
  queue.settle([job], [answer === null ? lostAnswer() : outcomeOf(answer, job)]);
});

/** The outcome of a job whose holder stopped (or died and left no way to tell) before answering it. */
function lostAnswer(): DatabaseError {
  return new DatabaseError(
    'OUTCOME_UNKNOWN',
    'the process that was committing this row stopped before it answered: the row may or may not be stored',
  );
}
