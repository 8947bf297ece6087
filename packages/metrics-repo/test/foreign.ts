import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';

/** A role of test/fixtures/foreign-client.mjs: another program on the same file. */
export type ForeignRole =
  | 'hold-read'
  | 'hold-exclusive'
  | 'readers'
  | 'raw-writer'
  | 'backup'
  | 'vacuum-into'
  | 'checkpoint';

export interface ForeignResult {
  operations: number;
  errors: number;
  errorCodes: Record<string, number>;
  /** Ids a raw writer committed. */
  ids: number[];
}

export interface ForeignClient {
  /** Resolves once the client holds its lock or snapshot, or has started its loop. */
  ready: Promise<void>;
  /** Resolves with its counts when it ends; rejects if it crashed. */
  done: Promise<ForeignResult>;
  process: ChildProcess;
}

const script = join(import.meta.dirname, 'fixtures', 'foreign-client.mjs');

/** Starts another program (its own process, plain better-sqlite3) doing `role` on `path` for `ms`. */
export function startForeign(
  role: ForeignRole,
  path: string,
  ms: number,
  options: { name?: string; copiesDir?: string } = {},
): ForeignClient {
  const child = spawn(
    process.execPath,
    [script, role, path, String(ms), options.name ?? 'foreign.row', options.copiesDir ?? ''],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let stderr = '';
  child.stderr?.on('data', (chunk) => {
    stderr += String(chunk);
  });
  let output = '';
  let onReady: () => void = () => {};
  let result: ForeignResult | undefined;
  const ready = new Promise<void>((resolve) => {
    onReady = resolve;
  });
  child.stdout?.on('data', (chunk) => {
    output += String(chunk);
    let newline = output.indexOf('\n');
    while (newline !== -1) {
      const message = JSON.parse(output.slice(0, newline)) as { event: string } & ForeignResult;
      output = output.slice(newline + 1);
      if (message.event === 'ready') onReady();
      if (message.event === 'done') result = message;
      newline = output.indexOf('\n');
    }
  });
  const done = new Promise<ForeignResult>((resolve, reject) => {
    child.on('close', (code, signal) => {
      if (result !== undefined && code === 0) resolve(result);
      else reject(new Error(`foreign ${role} ended with ${signal ?? `code ${code}`}: ${stderr.trim()}`));
    });
  });
  // A crash before 'ready' must not leave the test waiting for it.
  void done.catch(() => onReady());
  return { ready, done, process: child };
}
