export { elsewhere, useTempDatabase } from '@repo/testkit';

import { type Phase, phaseChannel } from '@repo/db';
import { loadWriteTurn, openWriteTurn, type WriteTurn } from '@repo/write-turn';
import BetterSqlite3 from 'better-sqlite3';
import { afterEach, expect } from 'vitest';
import { openMetricsRepo } from '../src/index.ts';
import { nativeEnabled } from '../src/sqlite/turn.ts';

/**
 * Whether repositories here use the write turn and its mailbox: the addon is built, and the
 * portable path was not asked for (`METRICS_REPO_NATIVE=off`, which CI runs this suite with too).
 * Tests of the turn itself are skipped without it.
 */
export const turnAvailable = nativeEnabled() && loadWriteTurn().ok;

/** Counts the stored rows through a separate, independent connection. */
export function storedRows(path: string, where = '1 = 1'): number {
  const sqlite = new BetterSqlite3(path, { readonly: true });
  try {
    return sqlite.prepare(`SELECT count(*) FROM metrics WHERE ${where}`).pluck().get() as number;
  } finally {
    sqlite.close();
  }
}

/**
 * Another connection takes the file's write lock (`BEGIN IMMEDIATE`) and holds it
 * for `ms`. The lock is SQLite's, between connections: holding it does not block
 * this thread, so the repository's waiting can be observed from here.
 */
export function holdWriteLock(path: string, ms: number): Promise<void> {
  const holder = new BetterSqlite3(path);
  holder.exec('BEGIN IMMEDIATE');
  return new Promise((resolve) =>
    setTimeout(() => {
      holder.exec('COMMIT');
      holder.close();
      resolve();
    }, ms),
  );
}

/** Settles every promise and splits the outcomes. */
export async function settleAll<T>(promises: Promise<T>[]): Promise<{ values: T[]; errors: unknown[] }> {
  const outcomes = await Promise.allSettled(promises);
  return {
    values: outcomes.flatMap((o) => (o.status === 'fulfilled' ? [o.value] : [])),
    errors: outcomes.flatMap((o) => (o.status === 'rejected' ? [o.reason] : [])),
  };
}

/**
 * The phases published on `metrics-db:phase` from `listen()` on (what `pnpm --filter @repo/bench run phases`
 * hears), forgotten after each test.
 */
export function usePhases(): { heard: Phase[]; listen(): void } {
  const heard: Phase[] = [];
  const collect = (message: unknown) => heard.push(message as Phase);
  afterEach(() => {
    phaseChannel.unsubscribe(collect);
    heard.length = 0;
  });
  return { heard, listen: () => phaseChannel.subscribe(collect) };
}

/**
 * Creates the database at `path` (migrated, closed), then takes its write turn in this process
 * and keeps it: a holder that never answers, as a stopped process would be. Close it when done.
 */
export async function fileWithHeldTurn(path: string): Promise<WriteTurn> {
  await (await openMetricsRepo({ path })).close();
  const holder = openWriteTurn(path);
  expect(holder.tryAcquire()).toBe(true);
  return holder;
}
