import { type ChildProcess, fork } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import type { EventLoopStall } from '@repo/service';

export type ServiceTarget = 'raw' | 'repo';

export interface ServiceProcessInput {
  target: ServiceTarget;
  path: string;
  /** The raw store's SQLite busy timeout. */
  busyTimeoutMs: number;
  /** The bearer token the service requires (every route but /healthz), as deployed. */
  token: string;
}

export type ServiceProcessMessage = { type: 'listening'; url: string };

const entry = fileURLToPath(new URL('./service-entry.ts', import.meta.url));
const harnessDirectory = fileURLToPath(new URL('../..', import.meta.url));

export interface ServiceProcess {
  url: string;
  /** `Authorization` header with the service's token. */
  authorization: string;
  /** The service's own measure of its event loop since the last reset; `reset` starts a new window. */
  eventLoop(reset?: boolean): Promise<EventLoopStall>;
  /** SIGTERM, then waits for the exit: its code and how long the shutdown took. */
  stop(): Promise<{ exitCode: number | null; signal: NodeJS.Signals | null; shutdownMs: number }>;
  /** SIGKILL, for a harness that gives up. */
  kill(): void;
}

/** Starts the service in its own process and resolves once it listens. */
export function startServiceProcess(
  settings: Omit<ServiceProcessInput, 'token'>,
  timeoutMs = 60_000,
): Promise<ServiceProcess> {
  const input: ServiceProcessInput = { ...settings, token: randomBytes(24).toString('base64url') };
  const authorization = `Bearer ${input.token}`;
  const child: ChildProcess = fork(entry, [], {
    cwd: harnessDirectory,
    execArgv: ['--import', 'tsx'],
    env: { ...process.env, HARNESS_SERVICE_INPUT: JSON.stringify(input) },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`the ${input.target} service did not listen within ${timeoutMs} ms`));
    }, timeoutMs);
    void exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`the ${input.target} service exited (${signal ?? code}) before it listened`));
    });
    child.once('message', (message: ServiceProcessMessage) => {
      clearTimeout(timer);
      const { url } = message;
      resolve({
        url,
        authorization,
        async eventLoop(reset = false) {
          const response = await fetch(`${url}/debug/event-loop${reset ? '?reset=true' : ''}`, {
            headers: { authorization },
          });
          return (await response.json()) as EventLoopStall;
        },
        async stop() {
          const started = performance.now();
          child.kill('SIGTERM');
          const { code, signal } = await exited;
          return { exitCode: code, signal, shutdownMs: Math.round(performance.now() - started) };
        },
        kill: () => child.kill('SIGKILL'),
      });
    });
  });
}
