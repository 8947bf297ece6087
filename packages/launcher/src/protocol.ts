/** Messages between a launcher and the workers it started (over IPC or a MessagePort). */
export type ToWorker<Input> = { type: 'setup'; index: number; input: Input } | { type: 'go' };

export type FromWorker<Result, Progress> =
  | { type: 'ready' }
  | { type: 'progress'; data: Progress }
  | { type: 'result'; data: Result }
  | { type: 'failed'; error: SerializedError };

export interface SerializedError {
  name: string;
  message: string;
  code?: string;
  stack?: string;
}

export function serializeError(error: unknown): SerializedError {
  if (error instanceof Error) {
    const code = (error as { code?: unknown }).code;
    return {
      name: error.name,
      message: error.message,
      ...(typeof code === 'string' ? { code } : {}),
      ...(error.stack === undefined ? {} : { stack: error.stack }),
    };
  }
  return { name: 'Error', message: String(error) };
}
