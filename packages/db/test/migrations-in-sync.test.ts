import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, readdirSync } from 'node:fs';
import { join, relative } from 'node:path';
import { useTempDir } from '@repo/testkit';
import { describe, expect, it } from 'vitest';
import { metrics, migrationsFolder, openDatabase } from '../src/index.ts';

const packageDir = join(import.meta.dirname, '..');
const drizzleKit = join(packageDir, 'node_modules', '.bin', 'drizzle-kit');

function listFiles(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' }).sort();
}

describe('committed migrations', () => {
  const tempDir = useTempDir();

  it('match the schema: drizzle-kit generate finds nothing to add', () => {
    const out = join(tempDir(), 'drizzle');
    // fd-safe: copies migration files, not a database
    cpSync(migrationsFolder, out, { recursive: true });
    // drizzle-kit prefixes --out with "./", so it must be relative to the package.
    const generate = spawnSync(
      drizzleKit,
      ['generate', '--dialect', 'sqlite', '--schema', './src/schema.ts', '--out', relative(packageDir, out)],
      { cwd: packageDir, encoding: 'utf8', env: { ...process.env, NO_COLOR: '1' } },
    );
    expect(generate.status).toBe(0);
    expect(generate.stdout + generate.stderr).toContain('No schema changes');
    expect(listFiles(out)).toEqual(listFiles(migrationsFolder));
  });

  it('are applied by `drizzle-kit migrate` the same way openDatabase records them', () => {
    const path = join(tempDir(), 'kit', 'metrics.db');
    execFileSync(drizzleKit, ['migrate'], {
      cwd: packageDir,
      encoding: 'utf8',
      env: { ...process.env, DATABASE_PATH: path, NO_COLOR: '1' },
    });
    const opened = openDatabase(path);
    try {
      expect(opened.migrations.applied).toBe(0);
      opened.db.insert(metrics).values({ name: 'after-kit', value: 1, recordedAt: new Date() }).run();
      expect(opened.sqlite.prepare('SELECT count(*) FROM metrics').pluck().get()).toBe(1);
    } finally {
      opened.close();
    }
  });
});
