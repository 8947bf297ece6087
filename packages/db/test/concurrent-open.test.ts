import { join } from 'node:path';
import { launch } from '@repo/launcher';
import { useTempDir } from '@repo/testkit';
import { describe, expect, it } from 'vitest';
import journal from '../drizzle/meta/_journal.json' with { type: 'json' };
import { openDatabase } from '../src/index.ts';

const processes = 50;

/** Every migration drizzle-kit generated: a fresh file gets them all. */
const migrationCount = journal.entries.length;

describe('many processes opening a fresh file at once', () => {
  const tempDir = useTempDir();

  it(`${processes} processes all succeed and the schema is applied exactly once`, async () => {
    const path = join(tempDir(), 'fresh', 'metrics.db');
    const fleet = await launch<{ path: string }, { applied: number }>({
      entry: join(import.meta.dirname, 'fixtures', 'open-worker.ts'),
      kind: 'process',
      count: processes,
      input: () => ({ path }),
    });
    expect(fleet.setupFailures).toEqual([]);
    const outcomes = await fleet.run({ timeoutMs: 120_000 });

    const failures = outcomes.filter((outcome) => !outcome.ok);
    expect(failures).toEqual([]);
    const applied = outcomes.map((outcome) => (outcome.ok ? outcome.result.applied : 0));
    expect(applied.reduce((sum, n) => sum + n, 0)).toBe(migrationCount);

    const check = openDatabase(path);
    try {
      expect(check.migrations.applied).toBe(0);
      expect(check.sqlite.prepare('SELECT count(*) FROM __drizzle_migrations').pluck().get()).toBe(migrationCount);
      expect(check.sqlite.prepare(`SELECT count(*) FROM sqlite_master WHERE name = 'metrics'`).pluck().get()).toBe(1);
      expect(check.sqlite.pragma('integrity_check', { simple: true })).toBe('ok');
    } finally {
      check.close();
    }
  });
});
