import type { Synchronous } from '@repo/db';
import { type FileIdentity, maxAnswerBytes } from '@repo/write-turn';
import type BetterSqlite3 from 'better-sqlite3';
import { DatabaseError, DuplicateEventError, type MetricsRepoError } from '../errors.ts';
import type { Job, JobOutcome } from '../queue.ts';
import { storedMetric, type ValidRow } from '../validate.ts';

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
}

/** `t`: the token of the transaction that wrote the answer (see CommitTokens). */
type Answer = ({ i: number } | { c: MetricsRepoError['code']; s?: string; m: string; e?: string }) & { t?: number };

const encoder = new TextEncoder();

// biome-ignore format: the parentheses make V8 compile it when its module loads (metrics-repo README, "Compiled when loaded")
export const encodePosting = (function encodePosting(job: Job, file: FileKey, synchronous: Synchronous): Uint8Array {
  const rows = Array.isArray(job.rows) ? job.rows : [job.rows];
  const posting: Posting = {
    f: [file.dev, file.ino],
    s: synchronous,
    m: Array.isArray(job.rows),
    r: rows.map((row) => [row.name, row.value, row.recordedAt, row.labelsJson, row.eventId]),
  };
  return encoder.encode(JSON.stringify(posting));
});

/** A job another process posted, as the holder writes it. */
export interface MailJob {
  ticket: number;
  file: FileKey;
  synchronous: Synchronous;
  job: Job;
  /** Set when a holder that died answered it before its commit: check the database. */
  answerBeforeCommit: Buffer | null;
}

// biome-ignore format: the parentheses make V8 compile it when its module loads (metrics-repo README, "Compiled when loaded")
export const decodePosting = (function decodePosting(
  ticket: number,
  payload: Buffer,
  answerBeforeCommit: Buffer | null,
): MailJob {
  const posting = JSON.parse(payload.toString('utf8')) as Posting;
  const rows = posting.r.map(
    ([name, value, recordedAt, labelsJson, eventId]): ValidRow => ({
      name,
      value,
      recordedAt,
      labelsJson,
      // The holder answers with ids only: the follower builds the stored rows from its own.
      labels: null,
      eventId,
    }),
  );
  const job: Job = {
    rows: posting.m ? rows : (rows[0] as ValidRow),
    size: rows.length,
    calledAt: Date.now(),
    resolve: () => {},
    reject: () => {},
  };
  return { ticket, file: { dev: posting.f[0], ino: posting.f[1] }, synchronous: posting.s, job, answerBeforeCommit };
});

// biome-ignore format: the parentheses make V8 compile it when its module loads (metrics-repo README, "Compiled when loaded")
export const encodeAnswer = (function encodeAnswer(outcome: JobOutcome, token?: number): Uint8Array {
  if (!(outcome instanceof Error)) {
    return encoder.encode(JSON.stringify({ i: (Array.isArray(outcome) ? outcome[0] : outcome)?.id ?? 0, t: token }));
  }
  // The follower rebuilds the duplicate's message from its own row: the start of the eventId names it.
  if (outcome instanceof DuplicateEventError) {
    return fitAnswer((chars) => ({ c: outcome.code, m: '', e: outcome.eventId.slice(0, chars), t: token }));
  }
  const sqliteCode = outcome instanceof DatabaseError ? outcome.sqliteCode : undefined;
  const message = sqliteCode === undefined ? outcome.message : outcome.message.slice(sqliteCode.length + 2);
  return fitAnswer((chars) => ({ c: outcome.code, s: sqliteCode, m: message.slice(0, chars), t: token }));
});

/** An answer holds maxAnswerBytes: the text is cut until its JSON fits. */
// biome-ignore format: the parentheses make V8 compile it when its module loads (metrics-repo README, "Compiled when loaded")
const fitAnswer = (function fitAnswer(build: (chars: number) => Answer): Uint8Array {
  for (let chars = 200; ; chars = Math.floor(chars / 2)) {
    const bytes = encoder.encode(JSON.stringify(build(chars)));
    if (bytes.length <= maxAnswerBytes || chars === 0) return bytes;
  }
});

/** The follower's side: its job's outcome from the holder's answer. */
// biome-ignore format: the parentheses make V8 compile it when its module loads (metrics-repo README, "Compiled when loaded")
export const outcomeOf = (function outcomeOf(answer: Buffer, job: Job): JobOutcome {
  const parsed = JSON.parse(answer.toString()); // UTF-8: toString()'s own path, without Node's encoding lookup as Answer;
  if ('i' in parsed) {
    if (!Array.isArray(job.rows)) return storedMetric(job.rows, parsed.i);
    return job.rows.map((row, k) => storedMetric(row, parsed.i + k));
  }
  if (parsed.c === 'DUPLICATE_EVENT') {
    const row = (Array.isArray(job.rows) ? job.rows : [job.rows]).find(
      (candidate) => candidate.eventId !== null && parsed.e !== undefined && candidate.eventId.startsWith(parsed.e),
    );
    return new DuplicateEventError(row?.eventId ?? parsed.e ?? '');
  }
  return new DatabaseError(parsed.s ?? 'UNKNOWN', parsed.m);
});

/**
 * Where a holder records, inside each transaction that carries mailbox rows, a token that its
 * answers repeat: a row of SQLite's own `sqlite_sequence` table, which SQLite documents as
 * editable with ordinary statements and reads only for the tables named in it (this name is no
 * table). No schema of ours changes, and the record commits or rolls back with the rows.
 */
const commitTokenName = 'metrics-repo mailbox commit';

/** The commit token of one connection: read the one in the file, record a new one. */
export class CommitTokens {
  private readonly select: BetterSqlite3.Statement;
  private readonly update: BetterSqlite3.Statement;
  private readonly insert: BetterSqlite3.Statement;

  constructor(sqlite: BetterSqlite3.Database) {
    this.select = sqlite.prepare('SELECT seq FROM sqlite_sequence WHERE name = ?').pluck();
    this.update = sqlite.prepare('UPDATE sqlite_sequence SET seq = ? WHERE name = ?');
    this.insert = sqlite.prepare('INSERT INTO sqlite_sequence (name, seq) VALUES (?, ?)');
  }

  /** The token of the last transaction that recorded one and committed, if any. */
  read(): number | undefined {
    return this.select.get(commitTokenName) as number | undefined;
  }

  /**
   * Inside the caller's transaction: records a new token, random so that no other transaction's
   * can be mistaken for it, and returns it for the answers.
   */
  record(): number {
    const token = Math.floor(Math.random() * 2 ** 52) + 1;
    if (this.update.run(token, commitTokenName).changes === 0) this.insert.run(commitTokenName, token);
    return token;
  }
}

/**
 * A job answered by a holder that died before it could make the answer final: did that
 * holder's transaction commit? Yes exactly when the token it recorded in that transaction is
 * the one in the file: the next holder reads it before recording its own. (Comparing the rows
 * at the answered ids would not do: a rolled-back id is given again to the next row, and an
 * identical row written by another program would pass for the lost one.)
 */
export function wasCommitted(recordedToken: number | undefined, mail: MailJob): boolean {
  if (mail.answerBeforeCommit === null || recordedToken === undefined) return false;
  const answer = JSON.parse(mail.answerBeforeCommit.toString('utf8')) as Answer;
  return answer.t === recordedToken;
}
