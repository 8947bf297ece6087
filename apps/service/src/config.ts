import { readFileSync } from 'node:fs';
import { tokenProblem } from './auth.ts';
import { ConfigError } from './errors.ts';
import { type LogLevel, logLevels, type StartOptions, serviceDefaults } from './service.ts';
import { storageFromEnv } from './store.ts';

export { ConfigError } from './errors.ts';

/**
 * The service's settings from the environment (the README's table lists each
 * with its default). Unset or empty variables take the default; loopback-
 * dependent defaults (rate limit, per-client connection cap) are left to
 * startService. Throws ConfigError naming the variable and why. Never puts the
 * token in a message.
 */
export function startOptionsFromEnv(env: NodeJS.ProcessEnv): StartOptions {
  const options: StartOptions = {
    port: integer(env, 'PORT', 0, 65_535) ?? serviceDefaults.port,
    host: env.HOST?.trim() || serviceDefaults.host,
    storage: storageFromEnv(env),
    logLevel: logLevel(env.LOG_LEVEL),
    token: token(env),
    rateLimitMax: integer(env, 'RATE_LIMIT_MAX', 0, 1_000_000_000),
    rateLimitWindowMs: integer(env, 'RATE_LIMIT_WINDOW_MS', 1000, 86_400_000),
    headersTimeoutMs: integer(env, 'HEADERS_TIMEOUT_MS', 100, 60_000),
    requestTimeoutMs: integer(env, 'REQUEST_TIMEOUT_MS', 100, 3_600_000),
    keepAliveTimeoutMs: integer(env, 'KEEP_ALIVE_TIMEOUT_MS', 100, 600_000),
    maxConnections: integer(env, 'MAX_CONNECTIONS', 1, 1_000_000),
    maxConnectionsPerClient: integer(env, 'MAX_CONNECTIONS_PER_CLIENT', 0, 1_000_000),
    shutdownGraceMs: integer(env, 'SHUTDOWN_GRACE_MS', 100, 600_000),
  };
  const headers = options.headersTimeoutMs ?? serviceDefaults.headersTimeoutMs;
  const request = options.requestTimeoutMs ?? serviceDefaults.requestTimeoutMs;
  if (headers > request) {
    throw new ConfigError('HEADERS_TIMEOUT_MS', `(${headers}) must not be longer than REQUEST_TIMEOUT_MS (${request})`);
  }
  return options;
}

function integer(env: NodeJS.ProcessEnv, name: string, min: number, max: number): number | undefined {
  const value = env[name];
  if (value === undefined || value.trim() === '') return undefined;
  const parsed = /^\d+$/.test(value.trim()) ? Number(value) : Number.NaN;
  if (!Number.isSafeInteger(parsed) || parsed < min || parsed > max) {
    throw new ConfigError(name, `must be an integer from ${min} to ${max}, got ${JSON.stringify(value)}`);
  }
  return parsed;
}

function logLevel(value: string | undefined): LogLevel {
  if (value === undefined || value.trim() === '') return serviceDefaults.logLevel;
  const level = value.trim().toLowerCase();
  if (!(logLevels as readonly string[]).includes(level)) {
    throw new ConfigError('LOG_LEVEL', `must be one of ${logLevels.join(', ')}, got ${JSON.stringify(value)}`);
  }
  return level as LogLevel;
}

/**
 * `METRICS_TOKEN`, or the contents of the file `METRICS_TOKEN_FILE` names (a
 * mounted secret: one trailing newline is stripped). Set but empty is an error,
 * not "no token": a secret that failed to arrive must not open the service.
 */
function token(env: NodeJS.ProcessEnv): string | undefined {
  const inline = env.METRICS_TOKEN;
  const file = env.METRICS_TOKEN_FILE;
  if (inline !== undefined && file !== undefined) {
    throw new ConfigError('METRICS_TOKEN', 'and METRICS_TOKEN_FILE are both set: set one');
  }
  if (inline !== undefined) return checked('METRICS_TOKEN', inline);
  if (file === undefined) return undefined;
  if (file.trim() === '')
    throw new ConfigError('METRICS_TOKEN_FILE', 'is set but empty: name the file holding the token');
  let text: string;
  try {
    // fd-safe: the token file, never a database
    text = readFileSync(file, 'utf8');
  } catch (error) {
    const code = (error as { code?: unknown }).code;
    throw new ConfigError(
      'METRICS_TOKEN_FILE',
      `cannot be read (${typeof code === 'string' ? code : 'error'}): ${file}`,
    );
  }
  return checked('METRICS_TOKEN_FILE', text.replace(/\r?\n$/, ''), ` (the contents of ${file})`);
}

function checked(variable: string, value: string, what = ''): string {
  if (value === '') throw new ConfigError(variable, `is empty${what}: a token is required when it is set`);
  const problem = tokenProblem(value);
  if (problem !== undefined) throw new ConfigError(variable, `${problem}${what}`);
  return value;
}
