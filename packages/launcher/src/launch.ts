import { type ChildProcess, fork } from 'node:child_process';
import { Worker } from 'node:worker_threads';
import { type BundleOptions, bundleEntry } from './bundle.ts';
import type { FromWorker, SerializedError, ToWorker } from './protocol.ts';

export type WorkerKind = 'process' | 'thread';

export interface LaunchOptions<Input, Progress> {
  /** A file that calls `defineWorker` (TypeScript is fine: it is bundled once). */
  entry: string;
  kind: WorkerKind;
  count: number;
  /** The input handed to worker `index` before the barrier. */
  input: (index: number) => Input;
  /** How many workers may be starting at the same time (default 8): a storm of starts only thrashes two cores. */
  startConcurrency?: number;
  /** Every worker must be ready (or have failed) within this time, ms (default 180 000). */
  readyTimeoutMs?: number;
  /** Called for each `report()` of a worker. */
  onProgress?: (index: number, data: Progress) => void;
  /** Called when a worker becomes ready (for progress bars). */
  onReady?: (index: number) => void;
  /**
   * Extra Node flags for child processes (default: none). Worker threads get none either, not even
   * the launching process's own (a Worker inherits them unless told otherwise).
   */
  execArgv?: string[];
  bundle?: BundleOptions;
}

/** How one worker ended. */
export type WorkerOutcome<Result> =
  | { index: number; ok: true; result: Result }
  | { index: number; ok: false; error: SerializedError; phase: 'setup' | 'run' };

export interface Fleet<Result> {
  readonly count: number;
  /** Workers that failed before the barrier (their setup threw or they died). */
  readonly setupFailures: WorkerOutcome<Result>[];
  /** Releases every ready worker at once and waits for all of them to finish. */
  run(options?: { timeoutMs?: number }): Promise<WorkerOutcome<Result>[]>;
  /**
   * Signals one worker. The default SIGKILL ends it at once, as a crash would;
   * `'SIGTERM'` lets a process shut down in its own way. A thread is terminated whatever the signal.
   */
  kill(index: number, signal?: NodeJS.Signals): void;
  /** Kills every worker still running. */
  terminate(): Promise<void>;
  /**
   * Resolves true once every worker has ended (its process closed, its thread exited), or false
   * when `timeoutMs` passed first (default: no limit). A worker's result arrives before it is gone;
   * a thread's isolate is torn down after, in the launching process, on its CPU.
   */
  exited(options?: { timeoutMs?: number }): Promise<boolean>;
}

interface Slot<Result> {
  index: number;
  send(message: ToWorker<unknown>): void;
  kill(signal?: NodeJS.Signals): void;
  outcome?: WorkerOutcome<Result>;
  /** Everyone waiting for this worker's outcome (run() and terminate() may both wait). */
  onOutcome: (() => void)[];
  ready: boolean;
  /** Settles once the process closed or the thread exited. */
  gone: Promise<void>;
}

/**
 * Starts `count` workers from one entry, waits until each has run its setup
 * (opened its database, say), and returns a fleet whose `run()` releases them all
 * at the same moment: the contention that follows is real, not spread out by
 * start-up time.
 */
export async function launch<Input, Result, Progress = never>(
  options: LaunchOptions<Input, Progress>,
): Promise<Fleet<Result>> {
  const { kind, count, startConcurrency = 8, readyTimeoutMs = 180_000 } = options;
  if (!Number.isInteger(count) || count < 1) throw new RangeError(`count must be a positive integer, got ${count}`);
  const file = await bundleEntry(options.entry, options.bundle);
  const slots: Slot<Result>[] = [];

  const settle = (slot: Slot<Result>, outcome: WorkerOutcome<Result>) => {
    if (slot.outcome !== undefined) return;
    slot.outcome = outcome;
    for (const notify of slot.onOutcome.splice(0)) notify();
  };

  const startOne = (index: number) =>
    new Promise<void>((resolveStarted) => {
      let markGone = () => {};
      const gone = new Promise<void>((resolveGone) => {
        markGone = resolveGone;
      });
      const slot: Slot<Result> = { index, ready: false, send: () => {}, kill: () => {}, onOutcome: [], gone };
      slots[index] = slot;
      const onMessage = (message: FromWorker<Result, Progress>) => {
        switch (message.type) {
          case 'ready':
            slot.ready = true;
            options.onReady?.(index);
            resolveStarted();
            break;
          case 'progress':
            options.onProgress?.(index, message.data);
            break;
          case 'result':
            settle(slot, { index, ok: true, result: message.data });
            break;
          case 'failed':
            settle(slot, { index, ok: false, error: message.error, phase: slot.ready ? 'run' : 'setup' });
            resolveStarted();
            break;
        }
      };
      const onExit = (description: string) => {
        settle(slot, {
          index,
          ok: false,
          error: { name: 'WorkerExited', message: `worker ${index} ${description} before reporting a result` },
          phase: slot.ready ? 'run' : 'setup',
        });
        resolveStarted();
      };
      if (kind === 'process') {
        const child: ChildProcess = fork(file, [], {
          serialization: 'advanced',
          stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
          execArgv: options.execArgv ?? [],
        });
        slot.send = (message) => {
          if (child.connected) child.send(message);
        };
        slot.kill = (signal = 'SIGKILL') => child.kill(signal);
        child.on('message', onMessage as (message: unknown) => void);
        child.on('error', (error) => {
          // A process that could not start never closes.
          if (child.pid === undefined) markGone();
          onExit(`could not start (${error.message})`);
        });
        // 'close', not 'exit': a process can exit before its last IPC messages (its result) are delivered.
        child.on('close', (code, signal) => {
          markGone();
          onExit(signal === null ? `exited with code ${code}` : `was killed by ${signal}`);
        });
      } else {
        // The bundle is plain JavaScript: a thread needs none of the launching process's flags, which a
        // Worker inherits by default. Under `tsx` that is its TypeScript loader, loaded again in every
        // thread, which made threads slow and costly to start (see
        // docs/decisions/0011-measuring-short-lived-writers.md). V8's flags are the process's anyway.
        const worker = new Worker(file, { execArgv: [] });
        slot.send = (message) => worker.postMessage(message);
        slot.kill = () => void worker.terminate();
        worker.on('message', onMessage);
        worker.on('error', (error) => onExit(`threw ${error.message}`));
        worker.on('exit', (code) => {
          markGone();
          onExit(`exited with code ${code}`);
        });
      }
      slot.send({ type: 'setup', index, input: options.input(index) });
    });

  // Start with bounded concurrency: a slot frees up as soon as a worker is ready or dead.
  let next = 0;
  let stopStarting = false;
  const starters = Array.from({ length: Math.min(startConcurrency, count) }, async () => {
    while (next < count && !stopStarting) {
      const index = next++;
      await startOne(index);
    }
  });
  if ((await within(Promise.all(starters), readyTimeoutMs)) === timedOut) {
    stopStarting = true;
    for (const slot of slots) slot?.kill();
    throw new Error(
      `launch: not every worker was ready within ${readyTimeoutMs} ms (${slots.filter((s) => s?.ready).length}/${count})`,
    );
  }

  const outcomeOf = (slot: Slot<Result>) =>
    new Promise<WorkerOutcome<Result>>((resolveOutcome) => {
      if (slot.outcome !== undefined) return resolveOutcome(slot.outcome);
      slot.onOutcome.push(() => resolveOutcome(slot.outcome as WorkerOutcome<Result>));
    });

  return {
    count,
    setupFailures: slots
      .filter((slot) => slot.outcome !== undefined)
      .map((slot) => slot.outcome as WorkerOutcome<Result>),
    async run({ timeoutMs = 600_000 } = {}) {
      for (const slot of slots) if (slot.outcome === undefined) slot.send({ type: 'go' });
      const outcomes = await within(Promise.all(slots.map(outcomeOf)), timeoutMs);
      if (outcomes !== timedOut) return outcomes;
      for (const slot of slots) if (slot.outcome === undefined) slot.kill();
      throw new Error(`launch: workers still running after ${timeoutMs} ms; killed`);
    },
    kill(index, signal) {
      slots[index]?.kill(signal);
    },
    async terminate() {
      for (const slot of slots) if (slot.outcome === undefined) slot.kill();
      await Promise.all(slots.map(outcomeOf));
    },
    async exited({ timeoutMs = Number.POSITIVE_INFINITY } = {}) {
      return (await within(Promise.all(slots.map((slot) => slot.gone)), timeoutMs)) !== timedOut;
    },
  };
}

const timedOut = Symbol('timed out');

/** `work`'s value, or `timedOut` once `ms` have passed first; the timer never outlives the wait (none for Infinity). */
async function within<T>(work: Promise<T>, ms: number): Promise<T | typeof timedOut> {
  if (!Number.isFinite(ms)) return work;
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<typeof timedOut>((resolveLate) => {
    timer = setTimeout(() => resolveLate(timedOut), ms);
  });
  try {
    return await Promise.race([work, late]);
  } finally {
    clearTimeout(timer);
  }
}
