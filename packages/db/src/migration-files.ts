import { type MigrationMeta, readMigrationFiles } from 'drizzle-orm/migrator';
import { OpenDatabaseError } from './errors.ts';

/** Shared by the SQLite and PostgreSQL migrators: reading a folder's migrations, refusing a newer schema. */

const migrationsByFolder = new Map<string, MigrationMeta[]>();

/** Reads and hashes a folder's migrations once per process, and only when one must be applied. */
export function migrationsIn(folder: string): MigrationMeta[] {
  let migrations = migrationsByFolder.get(folder);
  if (migrations === undefined) {
    migrations = readMigrationFiles({ migrationsFolder: folder });
    migrationsByFolder.set(folder, migrations);
  }
  return migrations;
}

/** A database migrated by newer code than this is refused: this code would not know its schema. */
export function assertNotNewer(lastApplied: number | undefined, latestKnown: number, database: string): void {
  if (lastApplied !== undefined && lastApplied > latestKnown) {
    throw new OpenDatabaseError(
      'SCHEMA_TOO_NEW',
      database,
      `its schema is newer than this code (last applied migration ${new Date(lastApplied).toISOString()}, newest known ${new Date(latestKnown).toISOString()}); upgrade the code`,
    );
  }
}
