import { openDatabase } from '@repo/db';
import type { Journal } from './types.ts';

export const prefillRowName = 'harness.prefill';

/**
 * Creates and migrates the file once, in the requested journal mode, before any
 * writer starts: the writers then measure inserts, not migrations. Then inserts
 * `prefill` rows, one after the other, in transactions of 1000 (how they get
 * there is not what is measured).
 */
export function prepareDatabaseFile(path: string, journal: Journal, prefill: number): void {
  const { sqlite, close } = openDatabase(path, { journalMode: journal });
  try {
    const insert = sqlite.prepare(
      'INSERT INTO metrics (name, value, recorded_at, labels, event_id) VALUES (?, ?, ?, NULL, NULL)',
    );
    const insertChunk = sqlite.transaction((from: number, to: number) => {
      const now = Date.now();
      for (let i = from; i < to; i++) insert.run(prefillRowName, i, now);
    });
    for (let from = 0; from < prefill; from += 1000) insertChunk(from, Math.min(prefill, from + 1000));
  } finally {
    close();
  }
}
