import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, readdirSync } from 'node:fs';
import { join, relative } from 'node:path';
import { usePostgres, useTempDir } from '@repo/testkit';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { OpenDatabaseError } from '../src/index.ts';
import { applyPgMigrations, pgMigrationsFolder } from '../src/pg/index.ts';

const packageDir = join(import.meta.dirname, '..');
const drizzleKit = join(packageDir, 'node_modules', '.bin', 'drizzle-kit');
const server = usePostgres();
/** How many PostgreSQL migrations are committed (drizzle-kit's journal). */
const migrationCount = readdirSync(pgMigrationsFolder).filter((name) => name.endsWith('.sql')).length;

async function withPool<T>(url: string, work: (pool: pg.Pool) => Promise<T>): Promise<T> {
  const pool = new pg.Pool({ connectionString: url, max: 2 });
  try {
    return await work(pool);
  } finally {
    await pool.end();
  }
}

function appliedRows(url: string): Promise<number> {
  return withPool(url, async (pool) => {
    const { rows } = await pool.query<{ n: string }>('SELECT count(*) AS n FROM drizzle.__drizzle_migrations');
    return Number(rows[0]?.n);
  });
}

describe('PostgreSQL migrations', () => {
  const tempDir = useTempDir();

  it('match the schema: drizzle-kit generate finds nothing to add', () => {
    const out = join(tempDir(), 'drizzle-pg');
    // fd-safe: copies migration files, not a database
    cpSync(pgMigrationsFolder, out, { recursive: true });
    const generate = spawnSync(
      drizzleKit,
      ['generate', '--dialect', 'postgresql', '--schema', './src/pg/schema.ts', '--out', relative(packageDir, out)],
      { cwd: packageDir, encoding: 'utf8', env: { ...process.env, NO_COLOR: '1' } },
    );
    expect(generate.status).toBe(0);
    expect(generate.stdout + generate.stderr).toContain('No schema changes');
    const list = (dir: string) => readdirSync(dir, { recursive: true, encoding: 'utf8' }).sort();
    expect(list(out)).toEqual(list(pgMigrationsFolder));
  });

  it('are applied by `drizzle-kit migrate` the same way applyPgMigrations records them', async () => {
    const url = await server().createDatabase();
    execFileSync(drizzleKit, ['migrate', '--config', 'drizzle.pg.config.ts'], {
      cwd: packageDir,
      encoding: 'utf8',
      env: { ...process.env, DATABASE_URL: url, NO_COLOR: '1' },
    });
    await withPool(url, async (pool) => {
      expect(await applyPgMigrations(pool, { database: 'test' })).toEqual({ applied: 0 });
    });
    expect(await appliedRows(url)).toBe(migrationCount);
  });

  it('six migrators on a fresh database at once: one applies every migration, the others wait and find it done', async () => {
    const url = await server().createDatabase();
    const results = await Promise.all(
      Array.from({ length: 6 }, () => withPool(url, (pool) => applyPgMigrations(pool, { database: 'test' }))),
    );
    expect(results.map((result) => result.applied).sort()).toEqual([0, 0, 0, 0, 0, migrationCount]);
    expect(await appliedRows(url)).toBe(migrationCount);
  });

  it('refuse a database migrated by newer code (SCHEMA_TOO_NEW), naming the database as given', async () => {
    const url = await server().createDatabase();
    await withPool(url, async (pool) => {
      await applyPgMigrations(pool, { database: 'the-db' });
      await pool.query(`INSERT INTO drizzle.__drizzle_migrations (hash, created_at) VALUES ('future', $1)`, [
        Date.now() + 86_400_000 * 365 * 10,
      ]);
      const refused = await applyPgMigrations(pool, { database: 'the-db' }).catch((error: unknown) => error);
      expect(refused).toBeInstanceOf(OpenDatabaseError);
      expect(refused).toMatchObject({ code: 'SCHEMA_TOO_NEW', path: 'the-db' });
    });
  });
});
