import { isMainThread } from 'node:worker_threads';
import { defineWorker } from '@repo/launcher/worker';
import { type ReaderInput, readUntilStopped } from '../targets/reader.ts';
import type { ReadersSummary } from '../types.ts';

/** One reader, as a process or a thread: nothing to open before the barrier; reads in a loop once released. */
defineWorker<ReaderInput, ReaderInput, ReadersSummary>({
  setup(input) {
    // A reader process whose harness died stops at once, not at its deadline.
    if (isMainThread) process.once('disconnect', () => process.exit(4));
    return input;
  },
  run: (input) => readUntilStopped(input),
});
