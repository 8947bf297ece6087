import type { WriteQueue } from './queue.ts';
import type { ReadsBackend } from './reads.ts';
import type { ValidFilter } from './validate.ts';

/**
 * What a database backend gives the repository: its typed Drizzle database, a
 * write queue whose batches it commits, counting, reading back, pruning, and closing. Validation,
 * errors and the public API are the repository's, the same for every backend.
 */
export interface Backend<Db> extends ReadsBackend {
  readonly db: Db;
  readonly queue: WriteQueue;
  /** The SQLite file's absolute path, or the PostgreSQL URL without its password. */
  readonly location: string;
  count(filter: ValidFilter): Promise<number>;
  /** Commits or fails everything queued, then releases the connection(s). Called once, after the queue stopped accepting. */
  close(): Promise<void>;
}
