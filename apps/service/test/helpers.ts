import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import BetterSqlite3 from 'better-sqlite3';

export const cliPath = fileURLToPath(new URL('../src/cli.ts', import.meta.url));

export interface JsonResponse {
  status: number;
  headers: Headers;
  body: unknown;
}

/** A real HTTP request over a socket (Node's fetch), its body read as JSON. */
export async function request(url: string, init: RequestInit = {}): Promise<JsonResponse> {
  const response = await fetch(url, init);
  const text = await response.text();
  return { status: response.status, headers: response.headers, body: text === '' ? undefined : JSON.parse(text) };
}

export const postJson = (url: string, body: unknown) =>
  request(`${url}/metrics`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });

/**
 * Rows in the file, counted by a read-only connection of its own. Only once the
 * service has closed the file (or while it runs in another process).
 */
export function storedRows(path: string, where = '1 = 1', ...params: unknown[]): number {
  const sqlite = new BetterSqlite3(path, { readonly: true, fileMustExist: true });
  try {
    return sqlite
      .prepare(`SELECT count(*) FROM metrics WHERE ${where}`)
      .pluck()
      .get(...params) as number;
  } finally {
    sqlite.close();
  }
}

/** The event ids stored in the file (same rules as storedRows). */
export function storedEventIds(path: string): Set<string> {
  const sqlite = new BetterSqlite3(path, { readonly: true, fileMustExist: true });
  try {
    return new Set(sqlite.prepare('SELECT event_id FROM metrics WHERE event_id IS NOT NULL').pluck().all() as string[]);
  } finally {
    sqlite.close();
  }
}

/** Another connection takes the file's write lock (BEGIN IMMEDIATE) until `release()`: a foreign writer mid-transaction. */
export function holdWriteLock(path: string): { release(): void } {
  const sqlite = new BetterSqlite3(path, { timeout: 5000 });
  sqlite.exec('BEGIN IMMEDIATE');
  return {
    release() {
      sqlite.exec('ROLLBACK');
      sqlite.close();
    },
  };
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** The CLI as `pnpm service` runs it, in its own process; resolves once it logged that it is ready. */
export interface CliProcess {
  child: ChildProcess;
  url: string;
  /** Every log line so far, parsed. */
  logs: Record<string, unknown>[];
  stderr: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; afterMs: number }>;
}

export function startCli(env: Record<string, string>, readyTimeoutMs = 20_000): Promise<CliProcess> {
  // DATABASE_URL (set when CI runs against a PostgreSQL server) would take precedence over METRICS_DB.
  const { DATABASE_URL: _chosenByTheTest, ...inherited } = process.env;
  const child = spawn(process.execPath, ['--import', 'tsx', cliPath], {
    env: { ...inherited, PORT: '0', LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const logs: Record<string, unknown>[] = [];
  let stderr = '';
  let signalledAt = 0;
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; afterMs: number }>((resolve) => {
    child.once('exit', (code, signal) =>
      resolve({ code, signal, afterMs: signalledAt === 0 ? 0 : performance.now() - signalledAt }),
    );
  });
  const kill = child.kill.bind(child);
  child.kill = (signal?: NodeJS.Signals | number) => {
    signalledAt = performance.now();
    return kill(signal);
  };
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`the service did not start within ${readyTimeoutMs} ms: ${stderr}`));
    }, readyTimeoutMs);
    let pending = '';
    child.stdout?.on('data', (chunk: Buffer) => {
      pending += chunk.toString();
      const lines = pending.split('\n');
      pending = lines.pop() ?? '';
      for (const line of lines) {
        const entry = parseLogLine(line);
        logs.push(entry);
        if (entry.msg === 'ready') {
          clearTimeout(timer);
          resolve({ child, url: entry.url as string, logs, stderr: () => stderr, exited });
        }
      }
    });
    void exited.then(({ code }) => {
      clearTimeout(timer);
      reject(new Error(`the service exited with code ${code} before it was ready: ${stderr}`));
    });
  });
}

function parseLogLine(line: string): Record<string, unknown> {
  try {
    return JSON.parse(line) as Record<string, unknown>;
  } catch {
    return { notJson: line };
  }
}
