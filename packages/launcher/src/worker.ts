import { parentPort } from 'node:worker_threads';
import type { FromWorker, ToWorker } from './protocol.ts';
import { serializeError } from './protocol.ts';

export interface WorkerContext<Progress> {
  /** This worker's index, 0 to count - 1. */
  index: number;
  /** Sends a progress message to the launcher (e.g. ids acknowledged so far). */
  report(data: Progress): void;
}

export interface WorkerDefinition<Input, State, Result, Progress> {
  /** Runs before the start barrier: open files, prepare state. */
  setup(input: Input, context: WorkerContext<Progress>): State | Promise<State>;
  /** Runs when the launcher releases every worker at once. */
  run(state: State, context: WorkerContext<Progress>): Result | Promise<Result>;
}

/**
 * The body of a launched worker: the same file runs as a child process or a
 * worker thread. Call it once, at the top level of the entry file.
 */
export function defineWorker<Input, State, Result, Progress = never>(
  definition: WorkerDefinition<Input, State, Result, Progress>,
): void {
  const channel = openChannel<Input, Result, Progress>();
  let state: State;
  let context: WorkerContext<Progress>;
  channel.onMessage(async (message) => {
    try {
      if (message.type === 'setup') {
        context = { index: message.index, report: (data) => channel.send({ type: 'progress', data }) };
        state = await definition.setup(message.input, context);
        channel.send({ type: 'ready' });
      } else {
        const result = await definition.run(state, context);
        channel.send({ type: 'result', data: result }, () => channel.close());
      }
    } catch (error) {
      channel.send({ type: 'failed', error: serializeError(error) }, () => channel.close());
    }
  });
}

interface Channel<Input, Result, Progress> {
  send(message: FromWorker<Result, Progress>, sent?: () => void): void;
  onMessage(handler: (message: ToWorker<Input>) => void): void;
  close(): void;
}

function openChannel<Input, Result, Progress>(): Channel<Input, Result, Progress> {
  if (parentPort !== null) {
    const port = parentPort;
    return {
      send: (message, sent) => {
        port.postMessage(message);
        sent?.();
      },
      onMessage: (handler) => port.on('message', handler),
      close: () => port.close(),
    };
  }
  if (process.send !== undefined) {
    return {
      send: (message, sent) => process.send?.(message, undefined, undefined, () => sent?.()),
      onMessage: (handler) => process.on('message', handler as (message: unknown) => void),
      // Disconnecting lets the process exit once its work is done.
      close: () => process.disconnect(),
    };
  }
  throw new Error('defineWorker: this file must be started by @repo/launcher (no IPC channel or parent port)');
}
