import { type LogLevel, logLevels, type StartOptions, serviceDefaults } from './service.ts';
import { storageFromEnv } from './store.ts';

/** An environment variable the service cannot use: the CLI prints the message and exits with code 2. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

/**
 * The service's settings from the environment: `PORT` (default 3000), `HOST`
 * (default 127.0.0.1), `DATABASE_URL` (PostgreSQL, when set) or `METRICS_DB`
 * (default `metrics.db`), `LOG_LEVEL` (default info). Throws ConfigError naming the variable.
 */
export function startOptionsFromEnv(env: NodeJS.ProcessEnv): StartOptions {
  return {
    port: port(env.PORT),
    host: env.HOST?.trim() || serviceDefaults.host,
    storage: storageFromEnv(env),
    logLevel: logLevel(env.LOG_LEVEL),
  };
}

function port(value: string | undefined): number {
  if (value === undefined || value.trim() === '') return serviceDefaults.port;
  const parsed = /^\d+$/.test(value.trim()) ? Number(value) : Number.NaN;
  if (!Number.isInteger(parsed) || parsed > 65_535) {
    throw new ConfigError(`PORT must be an integer from 0 to 65535, got ${JSON.stringify(value)}`);
  }
  return parsed;
}

function logLevel(value: string | undefined): LogLevel {
  if (value === undefined || value.trim() === '') return serviceDefaults.logLevel;
  const level = value.trim().toLowerCase();
  if (!(logLevels as readonly string[]).includes(level)) {
    throw new ConfigError(`LOG_LEVEL must be one of ${logLevels.join(', ')}, got ${JSON.stringify(value)}`);
  }
  return level as LogLevel;
}
