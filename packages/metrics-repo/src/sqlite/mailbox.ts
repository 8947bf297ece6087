import { metricsMailboxReceipts, type Synchronous } from '@repo/db';
import { type FileIdentity, maxAnswerBytes } from '@repo/write-turn';
import type BetterSqlite3 from 'better-sqlite3';
import { getTableName } from 'drizzle-orm';
import { DatabaseError, DuplicateEventError, type MetricsRepoError } from '../errors.ts';
import type { Job, JobOutcome, Receipt } from '../queue.ts';
import { storedMetric, type ValidRow, validateMetric } from '../validate.ts';

/**
 * What crosses the turn's mailbox (@repo/write-turn): a follower's job as it
 * posts it, and the holder's answer. Both are JSON: rows are already validated
 * by the follower, so the holder writes them as they are.
 */

/** The file a follower means: a holder that opened another file at that path answers with an error. */
export type FileKey = FileIdentity;

interface Posting {
  /** dev, ino of the file the follower opened. */
  f: [number, number];
  /** The follower's `synchronous`: only a holder with the same setting commits its rows. */
  s: Synchronous;
  /** One row (insert) or an array of them (insertMany). */
  m: boolean;
  r: [string, number, number, string | null, string | null][];
  /** The job's receipt key (see Receipts): postedAt, nonce. */
  k: [number, number];
}

type Answer = { i: number } | { c: MetricsRepoError['code']; s?: string; m: string; e?: string };

const encoder = new TextEncoder();

/**
 * A job's key in `metrics_mailbox_receipts`: when it was posted and a random number. The
 * transaction that stores a posted job's rows records the key with the first row's id; a job
 * whose key is found was stored, by whichever process, and is answered from it.
 */
export function newReceipt(): Receipt {
  return { postedAt: Date.now(), nonce: Math.floor(Math.random() * Number.MAX_SAFE_INTEGER) };
}

/**
 * How long receipts are kept. A job is answered within its deadline (lockTimeoutMs) or, taken by
 * a holder that stopped, given up on a few seconds later; a job in doubt for longer than this
 * (its poster itself stopped for an hour) is answered OUTCOME_UNKNOWN rather than written again.
 */
export const receiptRetentionMs = 60 * 60_000;
/** A job older than this, in doubt, is past where its receipt is sure to be kept (pruning runs a minute apart). */
const receiptTrustedMs = receiptRetentionMs - 2 * 60_000;
const pruneEveryMs = 60_000;

export function encodePosting(job: Job, file: FileKey, synchronous: Synchronous, receipt: Receipt): Uint8Array {
  const rows = Array.isArray(job.rows) ? job.rows : [job.rows];
  const posting: Posting = {
    f: [file.dev, file.ino],
    s: synchronous,
    m: Array.isArray(job.rows),
    r: rows.map((row) => [row.name, row.value, row.recordedAt, row.labelsJson, row.eventId]),
    k: [receipt.postedAt, receipt.nonce],
  };
  return encoder.encode(JSON.stringify(posting));
}

/** A job another process posted, as the holder writes it. */
export interface MailJob {
  ticket: number;
  file: FileKey;
  synchronous: Synchronous;
  job: Job;
}

const isSafeIntegerPair = (value: unknown): value is [number, number] =>
  Array.isArray(value) && value.length === 2 && value.every((n) => Number.isSafeInteger(n) && n >= 0);

/**
 * A posting read from the turn file: input from outside, checked like a caller's metric
 * (validateMetric) and for its own fields. Throws a DatabaseError naming what is wrong.
 */
export function decodePosting(ticket: number, payload: Buffer | null): MailJob {
  const damaged = (what: string) => new DatabaseError('MAILBOX_DAMAGED', `the mailbox entry of this row ${what}`);
  if (payload === null) throw damaged('has a length past its slot');
  let posting: Partial<Posting>;
  try {
    posting = JSON.parse(payload.toString('utf8')) as Partial<Posting>;
  } catch {
    throw damaged('is not JSON');
  }
  if (typeof posting !== 'object' || posting === null) throw damaged('is not an object');
  const { f, s, m, r, k } = posting;
  if (!isSafeIntegerPair(f) || !isSafeIntegerPair(k)) throw damaged('has no file or receipt key');
  if (s !== 'normal' && s !== 'full') throw damaged('has no synchronous setting');
  if (typeof m !== 'boolean' || !Array.isArray(r) || r.length === 0 || (!m && r.length !== 1)) {
    throw damaged('has no rows');
  }
  const rows = r.map((row, index): ValidRow => {
    if (!Array.isArray(row) || row.length !== 5) throw damaged(`has a malformed row ${index}`);
    const [name, value, recordedAt, labelsJson, eventId] = row;
    let labels: unknown = null;
    try {
      labels = labelsJson === null ? null : JSON.parse(String(labelsJson));
    } catch {
      throw damaged(`has labels that are not JSON in row ${index}`);
    }
    try {
      const valid = validateMetric({
        name,
        value,
        recordedAt: typeof recordedAt === 'number' ? new Date(recordedAt) : recordedAt,
        labels,
        eventId,
      });
      // The holder answers with ids only: the follower builds the stored rows from its own.
      return { ...valid, labels: null };
    } catch (error) {
      throw damaged(`has an invalid row ${index} (${error instanceof Error ? error.message : error})`);
    }
  });
  const job: Job = {
    rows: m ? rows : (rows[0] as ValidRow),
    size: rows.length,
    calledAt: Date.now(),
    resolve: () => {},
    reject: () => {},
    receipt: { postedAt: k[0], nonce: k[1] },
  };
  return { ticket, file: { dev: f[0], ino: f[1] }, synchronous: s, job };
}

export function encodeAnswer(outcome: JobOutcome): Uint8Array {
  if (!(outcome instanceof Error)) {
    return encoder.encode(JSON.stringify({ i: (Array.isArray(outcome) ? outcome[0] : outcome)?.id ?? 0 }));
  }
  // The follower rebuilds the duplicate's message from its own row: the start of the eventId names it.
  if (outcome instanceof DuplicateEventError) {
    return fitAnswer((chars) => ({ c: outcome.code, m: '', e: outcome.eventId.slice(0, chars) }));
  }
  const sqliteCode = outcome instanceof DatabaseError ? outcome.sqliteCode : undefined;
  const message = sqliteCode === undefined ? outcome.message : outcome.message.slice(sqliteCode.length + 2);
  return fitAnswer((chars) => ({ c: outcome.code, s: sqliteCode, m: message.slice(0, chars) }));
}

/** An answer holds maxAnswerBytes: the text is cut until its JSON fits. */
function fitAnswer(build: (chars: number) => Answer): Uint8Array {
  for (let chars = 200; ; chars = Math.floor(chars / 2)) {
    const bytes = encoder.encode(JSON.stringify(build(chars)));
    if (bytes.length <= maxAnswerBytes || chars === 0) return bytes;
  }
}

/** The follower's side: its job's outcome from the holder's answer (input from outside too). */
export function outcomeOf(answer: Buffer, job: Job): JobOutcome {
  let parsed: Partial<{ i: unknown; c: unknown; s: unknown; m: unknown; e: unknown }>;
  try {
    parsed = JSON.parse(answer.toString());
  } catch {
    parsed = {};
  }
  if (typeof parsed === 'object' && parsed !== null && Number.isSafeInteger(parsed.i) && (parsed.i as number) > 0) {
    const id = parsed.i as number;
    if (!Array.isArray(job.rows)) return storedMetric(job.rows, id);
    return job.rows.map((row, k) => storedMetric(row, id + k));
  }
  if (typeof parsed === 'object' && parsed !== null && typeof parsed.c === 'string') {
    const e = typeof parsed.e === 'string' ? parsed.e : undefined;
    if (parsed.c === 'DUPLICATE_EVENT') {
      const row = (Array.isArray(job.rows) ? job.rows : [job.rows]).find(
        (candidate) => candidate.eventId !== null && e !== undefined && candidate.eventId.startsWith(e),
      );
      return new DuplicateEventError(row?.eventId ?? e ?? '');
    }
    return new DatabaseError(
      typeof parsed.s === 'string' ? parsed.s : 'UNKNOWN',
      typeof parsed.m === 'string' ? parsed.m : '',
    );
  }
  return new DatabaseError(
    'OUTCOME_UNKNOWN',
    'the answer in the mailbox is damaged: the row may or may not be stored (its eventId, if any, tells)',
  );
}

/** Receipts of one connection: read, record, prune (see Receipt). Inside the caller's transaction. */
export class Receipts {
  private readonly select: BetterSqlite3.Statement;
  private readonly insert: BetterSqlite3.Statement;
  private readonly prune: BetterSqlite3.Statement;
  private prunedAt = 0;

  constructor(sqlite: BetterSqlite3.Database) {
    const table = `"${getTableName(metricsMailboxReceipts)}"`;
    this.select = sqlite.prepare(`SELECT first_id FROM ${table} WHERE posted_at = ? AND nonce = ?`).pluck();
    this.insert = sqlite.prepare(`INSERT INTO ${table} (posted_at, nonce, first_id) VALUES (?, ?, ?)`);
    this.prune = sqlite.prepare(`DELETE FROM ${table} WHERE posted_at < ?`);
  }

  /**
   * The first id of the job's rows if a transaction stored them; undefined if none did. A
   * DatabaseError (OUTCOME_UNKNOWN) when nobody can tell any more (see receiptRetentionMs).
   */
  find(receipt: Receipt, now: number): number | undefined | DatabaseError {
    const firstId = this.select.get(receipt.postedAt, receipt.nonce) as number | undefined;
    if (firstId !== undefined || now - receipt.postedAt < receiptTrustedMs) return firstId;
    return new DatabaseError(
      'OUTCOME_UNKNOWN',
      'this row waited in the mailbox longer than its receipt is kept: it may or may not be stored',
    );
  }

  record(receipt: Receipt, firstId: number, now: number): void {
    this.insert.run(receipt.postedAt, receipt.nonce, firstId);
    if (now - this.prunedAt >= pruneEveryMs) {
      this.prunedAt = now;
      this.prune.run(now - receiptRetentionMs);
    }
  }
}
