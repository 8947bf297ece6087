import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { defineConfig } from 'drizzle-kit';

/** Where `drizzle-kit migrate` applies the migrations when DATABASE_PATH is not set. */
const defaultDatabasePath = 'data/metrics.db';

const databasePath = process.env.DATABASE_PATH ?? defaultDatabasePath;
// SQLite creates the file but not its directory.
mkdirSync(dirname(databasePath), { recursive: true });

export default defineConfig({
  dialect: 'sqlite',
  schema: './src/schema.ts',
  out: './drizzle',
  dbCredentials: { url: databasePath },
  strict: true,
  verbose: true,
});
