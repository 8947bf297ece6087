import { type ChildProcess, spawn } from 'node:child_process';
import { connect, type Socket } from 'node:net';
import { fileURLToPath } from 'node:url';
import { useTempDatabase } from '@repo/testkit';
import BetterSqlite3 from 'better-sqlite3';
import { afterEach } from 'vitest';
import { type RunningService, type StartOptions, startService } from '../src/index.ts';

/** The repository's root: where the README's supervisor command is typed. */
export const repositoryRoot = fileURLToPath(new URL('../../..', import.meta.url));
/** The README's supervisor command, run from the repository root: `node apps/service/bin/service.mjs`. */
export const supervisorCommand = ['apps/service/bin/service.mjs'];

/** A token the tests configure. */
export const testToken = 'test-token-0123456789abcdef';
export const bearer = (token = testToken) => ({ authorization: `Bearer ${token}` });

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

export const postJson = (url: string, body: unknown, headers: Record<string, string> = {}) =>
  request(`${url}/metrics`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });

/** What a raw TCP client got back: the bytes, and whether the server closed (or reset) the connection. */
export interface RawExchange {
  text: string;
  status: number | undefined;
  body: unknown;
  closedAfterMs: number;
  error: string | undefined;
}

/**
 * Sends `payload` as is over a fresh TCP connection (HTTP the fetch API cannot
 * send: oversized headers, garbage, a request that never finishes) and resolves
 * when the server closes the connection.
 */
export function rawExchange(
  url: string,
  payload: string,
  options: { localAddress?: string } = {},
): Promise<RawExchange> {
  const { hostname, port } = new URL(url);
  const started = performance.now();
  return new Promise((resolve) => {
    const socket = connect({ host: hostname, port: Number(port), localAddress: options.localAddress }, () =>
      socket.write(payload),
    );
    let text = '';
    let error: string | undefined;
    socket.on('data', (chunk) => {
      text += chunk.toString();
    });
    socket.on('error', (failure: NodeJS.ErrnoException) => {
      error = failure.code ?? failure.message;
    });
    socket.on('close', () => {
      const [head = '', body = ''] = text.split('\r\n\r\n');
      const status = /^HTTP\/1\.1 (\d{3})/.exec(head)?.[1];
      resolve({
        text,
        status: status === undefined ? undefined : Number(status),
        body: body === '' ? undefined : JSON.parse(body),
        closedAfterMs: performance.now() - started,
        error,
      });
    });
  });
}

/**
 * `count` connections that send the start of a request and never finish its
 * headers (slowloris). Resolves once each is connected; `closed()` says how
 * many the server has closed since; `destroy()` ends those still open.
 */
export async function openSlowConnections(
  url: string,
  count: number,
  options: { localAddress?: string } = {},
): Promise<{ sockets: Socket[]; closed(): number; destroy(): void }> {
  const { hostname, port } = new URL(url);
  let closed = 0;
  const sockets = await Promise.all(
    Array.from(
      { length: count },
      () =>
        new Promise<Socket>((resolve) => {
          const socket = connect({ host: hostname, port: Number(port), localAddress: options.localAddress });
          socket.on('error', () => {});
          socket.once('close', () => {
            closed += 1;
          });
          socket.once('connect', () => {
            socket.write('POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Type: applic');
            resolve(socket);
          });
          // A connection the server refuses at once still counts as connected for the caller.
          socket.once('close', () => resolve(socket));
        }),
    ),
  );
  return {
    sockets,
    closed: () => closed,
    destroy() {
      for (const socket of sockets) socket.destroy();
    },
  };
}

/** How long `call` takes, in ms, with its result. */
export async function timed<T>(call: () => Promise<T>): Promise<{ ms: number; result: T }> {
  const started = performance.now();
  const result = await call();
  return { ms: performance.now() - started, result };
}

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
  /** Everything written to stdout so far, as is. */
  stdout: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; afterMs: number }>;
}

/**
 * The service in its own process, started the way the README tells operators
 * to: `node apps/service/bin/service.mjs` from the repository root, or
 * `pnpm service` (`command: 'pnpm'`).
 */
export function startCli(
  env: Record<string, string>,
  readyTimeoutMs = 20_000,
  command: 'node' | 'pnpm' = 'node',
): Promise<CliProcess> {
  // DATABASE_URL (set when CI runs against a PostgreSQL server) would take precedence over METRICS_DB;
  // a token of the environment the tests run in is not the tests' business.
  const { DATABASE_URL: _url, METRICS_TOKEN: _token, METRICS_TOKEN_FILE: _file, ...inherited } = process.env;
  const [file, args] = command === 'node' ? [process.execPath, supervisorCommand] : ['pnpm', ['service']];
  const child = spawn(file, args, {
    cwd: repositoryRoot,
    env: { ...inherited, PORT: '0', LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const logs: Record<string, unknown>[] = [];
  let stderr = '';
  let stdout = '';
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
      stdout += chunk.toString();
      pending += chunk.toString();
      const lines = pending.split('\n');
      pending = lines.pop() ?? '';
      for (const line of lines) {
        const entry = parseLogLine(line);
        logs.push(entry);
        if (entry.msg === 'ready') {
          clearTimeout(timer);
          resolve({ child, url: entry.url as string, logs, stderr: () => stderr, stdout: () => stdout, exited });
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

/** One sample of the service's Prometheus text (`name{labels}` exactly as written), or undefined. */
export async function scrape(
  url: string,
  sample: string,
  headers: Record<string, string> = {},
): Promise<number | undefined> {
  const text = await (await fetch(`${url}/prometheus`, { headers })).text();
  for (const line of text.split('\n')) {
    if (line.startsWith(`${sample} `)) return Number(line.slice(sample.length + 1));
  }
  return undefined;
}

/** Polls `check` every 25 ms until it returns true, or throws after `timeoutMs`. */
export async function waitFor(what: string, check: () => Promise<boolean> | boolean, timeoutMs = 10_000) {
  const started = performance.now();
  while (!(await check())) {
    if (performance.now() - started > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await sleep(25);
  }
}

/**
 * Services on real HTTP (127.0.0.1, a free port), each on a SQLite file of its own in a temporary
 * directory, closed after each test: `start(options)` resolves with the file, the service and its URL.
 */
export function useServices(prefix: string) {
  const tempDatabase = useTempDatabase(prefix);
  const running: RunningService[] = [];
  afterEach(async () => {
    await Promise.all(running.splice(0).map((service) => service.close()));
  });
  return async function start(options: StartOptions = {}) {
    const path = tempDatabase();
    const service = await startService({ storage: { kind: 'sqlite', path }, port: 0, logLevel: 'silent', ...options });
    running.push(service);
    return { path, service, url: service.url };
  };
}
