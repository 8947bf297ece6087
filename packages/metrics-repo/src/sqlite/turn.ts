import { openWriteTurn, type WriteTurn } from '@repo/write-turn';

export type { WriteTurn };

/** The turn file beside the database (never a file SQLite opens), or none where the addon is unavailable. */
export function openTurn(databasePath: string): WriteTurn | undefined {
  try {
    return openWriteTurn(`${databasePath}-turn`);
  } catch {
    return undefined; // Waiting falls back to timers alone (see lock.ts).
  }
}

/**
 * How long to wait for the turn before one attempt at SQLite's lock without it: a holder
 * that hangs (stopped, its event loop blocked) must not stall the others for good. Grows
 * with the time already waited: a working holder hands the turn on long before.
 */
export class TurnWait {
  bypass = false;
  private startedAt = Date.now();

  next(): number {
    return Math.min(4000, Math.max(500, Date.now() - this.startedAt));
  }

  reset(): void {
    this.startedAt = Date.now();
    this.bypass = false;
  }
}
