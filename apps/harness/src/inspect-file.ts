import BetterSqlite3 from 'better-sqlite3';

/** What the file holds after a scenario, seen by a connection of its own. */
export interface FileInspection {
  /** Rows with the scenario's row name. */
  stored: number;
  /** `PRAGMA journal_mode` now. */
  journalMode: string;
  /** `PRAGMA integrity_check`: `ok`, or the first problems it lists. */
  integrity: string;
  /** With the acknowledged event ids given: how many of them are not in the file. */
  missingAcked: number | undefined;
}

/**
 * Counts a scenario's rows independently of the writers: a new read-only
 * connection, opened after every writer has finished.
 */
export function inspectDatabaseFile(path: string, rowName: string, ackedEventIds?: readonly string[]): FileInspection {
  const sqlite = new BetterSqlite3(path, { readonly: true, fileMustExist: true, timeout: 5000 });
  try {
    const stored = sqlite.prepare('SELECT count(*) FROM metrics WHERE name = ?').pluck().get(rowName) as number;
    const journalMode = String(sqlite.pragma('journal_mode', { simple: true }));
    const problems = sqlite.prepare('PRAGMA integrity_check(3)').pluck().all() as string[];
    let missingAcked: number | undefined;
    if (ackedEventIds !== undefined) {
      const storedIds = new Set(
        sqlite.prepare('SELECT event_id FROM metrics WHERE name = ?').pluck().all(rowName) as string[],
      );
      missingAcked = ackedEventIds.filter((id) => !storedIds.has(id)).length;
    }
    return { stored, journalMode, integrity: problems.join('; '), missingAcked };
  } finally {
    sqlite.close();
  }
}
