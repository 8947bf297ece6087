import { unlinkSync } from 'node:fs';
import net from 'node:net';
import BetterSqlite3 from 'better-sqlite3';

/**
 * A measurement sketch of the "leader" design of issue 11, NOT part of the
 * library: it exists to measure that design's best case against naive code on
 * the same run (`phases --sketch relay`), and its figures are in docs/decisions/0007-a-leader-process-not-kept.md.
 *
 * The first writer to bind a Unix socket beside the file becomes the leader: it
 * opens the file, commits the rows the others send it in one transaction per
 * turn of its event loop, and acknowledges each row after the COMMIT. The
 * others never open SQLite: they send their row and wait for the answer. The
 * leader stays while it has followers, and 50 ms more (at most 3 s).
 *
 * What it leaves out, on purpose (a real design needs all of it): the leader
 * waits for the lock in SQLite's busy handler (its event loop stalls); a
 * follower whose leader dies after COMMIT and before the answer sends its row
 * again, so that row can be stored twice; no validation, no typed errors.
 */

const insertSql = 'INSERT INTO metrics (name, value, recorded_at, labels) VALUES (?, ?, ?, ?)';
const lingerMs = 50;
const maxLeadMs = 3000;
const maxTries = 20;

export interface SketchRow {
  name: string;
  value: number;
  labels: Record<string, string>;
}

interface SentRow extends SketchRow {
  recordedAt: number;
}

export interface RelayOutcome {
  /** Whether this writer led (opened the file and committed others' rows). */
  led: boolean;
  /** Attempts to bind or reach a leader (1 when the first one worked). */
  tries: number;
}

/** Records `row` through the file's leader, or as its leader. Calls `acknowledged` once the row is committed. */
export async function relayInsert(path: string, row: SketchRow, acknowledged: () => void): Promise<RelayOutcome> {
  const socketPath = `${path}-relay-sketch`;
  for (let attempt = 0; attempt < maxTries; attempt++) {
    const server = net.createServer();
    const bound = await new Promise<string>((resolve) => {
      server.once('error', (error: NodeJS.ErrnoException) => resolve(error.code ?? 'error'));
      server.listen({ path: socketPath, backlog: 4096 }, () => resolve('ok'));
    });
    if (bound === 'ok') {
      await lead(server, path, row, acknowledged);
      return { led: true, tries: attempt + 1 };
    }
    const answer = await sendToLeader(socketPath, { ...row, recordedAt: Date.now() });
    if (answer === 'ok') {
      acknowledged();
      return { led: false, tries: attempt + 1 };
    }
    // A socket file without a leader (it died): remove it, so that the next attempt can bind.
    if (answer === 'ECONNREFUSED') {
      try {
        unlinkSync(socketPath); // fd-safe: the sketch's own socket file, not a database
      } catch {
        // Another writer removed it first.
      }
    }
    await new Promise((resolve) => setTimeout(resolve, Math.random() * 5));
  }
  throw new Error(`relay sketch: no leader answered in ${maxTries} attempts`);
}

function sendToLeader(socketPath: string, row: SentRow): Promise<string> {
  return new Promise((resolve) => {
    let answered = false;
    const socket = net.createConnection(socketPath);
    socket.on('connect', () => socket.write(`${JSON.stringify(row)}\n`));
    socket.on('data', () => {
      answered = true;
      socket.end();
      resolve('ok');
    });
    socket.on('error', (error: NodeJS.ErrnoException) => {
      if (!answered) resolve(error.code ?? 'error');
    });
    socket.on('close', () => {
      if (!answered) resolve('closed');
    });
  });
}

/** Commits its own row, then the others' until idle. */
async function lead(server: net.Server, path: string, own: SketchRow, acknowledged: () => void): Promise<void> {
  const db = new BetterSqlite3(path, { timeout: 5000 });
  const insert = db.prepare(insertSql);
  let pending: { socket: net.Socket; row: SentRow }[] = [];
  let flushScheduled = false;
  let connections = 0;
  let lastActivity = Date.now();
  const flush = () => {
    flushScheduled = false;
    const batch = pending;
    pending = [];
    if (batch.length === 0) return;
    db.exec('BEGIN IMMEDIATE');
    for (const { row } of batch) insert.run(row.name, row.value, row.recordedAt, JSON.stringify(row.labels));
    db.exec('COMMIT');
    for (const { socket } of batch) socket.write('ok\n');
  };
  server.on('connection', (socket) => {
    connections += 1;
    lastActivity = Date.now();
    let buffered = '';
    socket.on('data', (chunk) => {
      buffered += chunk;
      for (let end = buffered.indexOf('\n'); end !== -1; end = buffered.indexOf('\n')) {
        pending.push({ socket, row: JSON.parse(buffered.slice(0, end)) as SentRow });
        buffered = buffered.slice(end + 1);
      }
      if (!flushScheduled) {
        flushScheduled = true;
        setImmediate(flush);
      }
    });
    socket.on('error', () => {});
    socket.on('close', () => {
      connections -= 1;
      lastActivity = Date.now();
    });
  });
  insert.run(own.name, own.value, Date.now(), JSON.stringify(own.labels));
  acknowledged();
  const started = Date.now();
  await new Promise<void>((resolve) => {
    const check = () => {
      const idle = connections === 0 && Date.now() - lastActivity > lingerMs;
      if (idle || Date.now() - started > maxLeadMs) resolve();
      else setTimeout(check, 10);
    };
    check();
  });
  await new Promise((resolve) => server.close(resolve));
  flush();
  db.close();
}
