import { defineConfig } from 'drizzle-kit';

/**
 * drizzle-kit on the PostgreSQL schema: `pnpm --filter @repo/db generate:pg` writes
 * `drizzle-pg/`; `DATABASE_URL=postgres://... pnpm --filter @repo/db migrate:pg` applies it.
 */
export default defineConfig({
  dialect: 'postgresql',
  schema: './src/pg/schema.ts',
  out: './drizzle-pg',
  dbCredentials: { url: process.env.DATABASE_URL ?? 'postgres://localhost:5432/postgres' },
  strict: true,
  verbose: true,
});
