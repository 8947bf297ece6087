import { defineWorker } from '@repo/launcher/worker';
import { type MetricsRepo, openMetricsRepo } from '@repo/metrics-repo';
import BetterSqlite3 from 'better-sqlite3';
import { WriterTally } from '../targets/tally.ts';
import type { WriterResult } from '../types.ts';
import { type PollResult, pollHealthz } from './healthz-poller.ts';

/** What runs beside the service, each in a process of its own: writers on the same file, and one foreign lock. */
export type BackgroundInput =
  | {
      role: 'writer';
      path: string;
      rowName: string;
      /** Insert one row after the other for this long after the release, pausing `pauseMs` between rows. */
      durationMs: number;
      pauseMs: number;
    }
  | {
      role: 'prober';
      /** The service's URL: GET /healthz every `intervalMs` for `durationMs`. */
      url: string;
      intervalMs: number;
      durationMs: number;
    }
  | {
      role: 'lock';
      path: string;
      /** Take the write lock this long after the release, and hold it `holdMs`. */
      atMs: number;
      holdMs: number;
    };

/** How long the foreign lock was held, from when it was taken (ms after the release). */
export interface ForeignLockResult {
  role: 'lock';
  takenAtMs: number;
  heldMs: number;
}

export type BackgroundResult =
  | ({ role: 'writer' } & WriterResult)
  | ({ role: 'prober' } & PollResult)
  | ForeignLockResult;

type State = { input: BackgroundInput; repo?: MetricsRepo };

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Other processes recording into the service's file while it is under load
 * (through the repository, as well-behaved neighbours); another one that
 * takes the write lock with BEGIN IMMEDIATE and sits on it, as a long
 * transaction or a backup would; and the /healthz prober, in a process of its
 * own so that the load generator's work does not delay its probes or their timing.
 */
defineWorker<BackgroundInput, State, BackgroundResult>({
  async setup(input) {
    if (input.role !== 'writer') return { input };
    return { input, repo: await openMetricsRepo({ path: input.path }) };
  },
  async run({ input, repo }) {
    const released = performance.now();
    if (input.role === 'prober') {
      const poller = pollHealthz(input.url, input.intervalMs);
      await sleep(input.durationMs);
      return { role: 'prober', ...(await poller.stop()) };
    }
    if (input.role === 'lock') {
      await sleep(input.atMs);
      // Its own process: SQLite's busy wait (for a writer's short commit) blocks nothing else.
      const sqlite = new BetterSqlite3(input.path, { timeout: 10_000 });
      sqlite.exec('BEGIN IMMEDIATE');
      const takenAt = performance.now();
      await sleep(input.holdMs);
      sqlite.exec('COMMIT');
      const heldMs = performance.now() - takenAt;
      sqlite.close();
      return { role: 'lock', takenAtMs: Math.round(takenAt - released), heldMs: Math.round(heldMs) };
    }
    const tally = new WriterTally();
    const until = released + input.durationMs;
    for (let row = 0; performance.now() < until; row++) {
      const started = performance.now();
      try {
        await repo?.insert({ name: input.rowName, value: row });
        tally.ack('', performance.now() - started);
      } catch (error) {
        tally.fail(error, performance.now() - started);
      }
      await sleep(input.pauseMs);
    }
    await repo?.close();
    return { role: 'writer', ...tally.result() };
  },
});
