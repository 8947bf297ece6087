import type { AddressInfo } from 'node:net';
import { InvalidFilterError, ValidationError } from '@repo/metrics-repo';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest, LogController } from 'fastify';
import { toHttpError } from './errors.ts';
import { type EventLoopMonitor, startEventLoopMonitor } from './event-loop.ts';
import { type CountQuery, countQuerySchema, type MetricBody, postMetricsBodySchema } from './schemas.ts';
import { type MetricsStore, openStore, type StorageConfig } from './store.ts';
import { parseTimestamp, timestampExpectation } from './timestamps.ts';

export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
export const logLevels: readonly LogLevel[] = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

export interface ServiceOptions {
  /** Where to record. Default: the SQLite file `metrics.db` in the working directory. */
  storage?: StorageConfig;
  /** An already open store to record through instead of opening `storage`. The service closes it on shutdown. */
  store?: MetricsStore;
  /** How long a write may wait for the database's write lock before its request gets 503 `LOCK_TIMEOUT`. */
  lockTimeoutMs?: number;
  /** Rows accepted and not yet committed, past which requests get 503 `QUEUE_FULL`. */
  maxQueuedRows?: number;
  /** Pino's level; `silent` for tests and the harness. */
  logLevel?: LogLevel;
  /** Largest request body, in bytes; larger ones get 413. */
  bodyLimit?: number;
  /** Serve `GET /debug/event-loop` (the longest event-loop stall), for the harness. */
  debugRoutes?: boolean;
}

export interface StartOptions extends ServiceOptions {
  /** 0 picks a free port. */
  port?: number;
  host?: string;
}

export const serviceDefaults = {
  storage: { kind: 'sqlite', path: 'metrics.db' } as StorageConfig,
  // Shorter than the repository's 30 s: a request should get a 503 it can retry, not hang, and
  // every request in flight at shutdown is answered well within the 10 s a supervisor allows.
  lockTimeoutMs: 5000,
  maxQueuedRows: 100_000,
  logLevel: 'info' as LogLevel,
  bodyLimit: 1024 * 1024,
  debugRoutes: false,
  port: 3000,
  host: '127.0.0.1',
};

/**
 * Builds the service (not listening yet) and opens its store: one repository
 * for the life of the service, closed by `app.close()` after the requests in
 * flight are answered.
 */
export async function buildService(options: ServiceOptions = {}): Promise<FastifyInstance> {
  const settings = { ...serviceDefaults, ...definedOnly(options) };
  const store =
    options.store ??
    (await openStore(settings.storage, {
      lockTimeoutMs: settings.lockTimeoutMs,
      maxQueuedRows: settings.maxQueuedRows,
    }));
  try {
    return await assemble(store, settings);
  } catch (error) {
    await store.close();
    throw error;
  }
}

async function assemble(store: MetricsStore, settings: typeof serviceDefaults): Promise<FastifyInstance> {
  const app = Fastify({
    logger: { level: settings.logLevel },
    logController: new OneLinePerRequest(),
    bodyLimit: settings.bodyLimit,
    ajv: {
      // Fastify's defaults would drop unknown fields (a typo like `recorded_at` would be lost
      // silently) and turn "12" into 12: refuse both instead.
      customOptions: { removeAdditional: false, coerceTypes: false, useDefaults: false, allErrors: false },
    },
  });
  // JSON only: Fastify would also hand a text/plain body to the schema, as a string.
  app.removeContentTypeParser('text/plain');
  const eventLoop = startEventLoopMonitor();
  let closing = false;
  app.addHook('preClose', async () => {
    closing = true;
  });
  // A keep-alive connection whose request was in flight when close() began would stay open,
  // idle, until its keep-alive timeout (72 s) and hold the shutdown: answer it, then close it.
  app.addHook('onSend', async (_request, reply) => {
    if (closing) reply.header('connection', 'close');
  });
  app.addHook('onClose', async () => {
    eventLoop.stop();
    // After every request in flight was answered: commits what the store still holds, then closes it.
    await store.close();
  });
  app.setErrorHandler((error, request, reply) => {
    const mapped = toHttpError(error, Array.isArray(request.body));
    if (mapped.statusCode >= 500) request.log.error({ err: error }, 'request failed');
    else request.log.debug({ err: error }, 'request refused');
    if (mapped.retryAfterSeconds !== undefined) reply.header('retry-after', String(mapped.retryAfterSeconds));
    return reply.code(mapped.statusCode).send(mapped.body);
  });
  app.setNotFoundHandler((_request, reply) =>
    reply.code(404).send({ error: 'NOT_FOUND', message: 'no such route', field: null }),
  );

  app.post<{ Body: MetricBody | MetricBody[] }>(
    '/metrics',
    { schema: { body: postMetricsBodySchema } },
    async (request, reply) => {
      const body = request.body;
      const stored = Array.isArray(body)
        ? await store.insertMany(body.map((metric, index) => toMetricInput(metric, `rows[${index}].`)))
        : await store.insert(toMetricInput(body, ''));
      // Only now: the row is committed. Every 201 is a stored row.
      return reply.code(201).send(stored);
    },
  );

  app.get<{ Querystring: CountQuery }>(
    '/metrics/count',
    { schema: { querystring: countQuerySchema } },
    async (request) => ({ count: await store.count(toCountFilter(request.query)) }),
  );

  // Answers from the event loop alone: it is slow exactly when the loop is stuck.
  app.get('/healthz', async (_request, reply) =>
    closing ? reply.code(503).send({ status: 'closing' }) : { status: 'ok' },
  );

  if (settings.debugRoutes) registerDebugRoutes(app, eventLoop);
  await app.ready();
  return app;
}

/** One log line per request, when its response is sent (Fastify's default writes two, the first on arrival). */
class OneLinePerRequest extends LogController {
  override incomingRequest(): void {}

  override requestCompleted(error: Error | null | undefined, request: FastifyRequest, reply: FastifyReply): void {
    const line = {
      method: request.method,
      url: request.url,
      statusCode: reply.statusCode,
      ms: Math.round(reply.elapsedTime * 10) / 10,
    };
    if (error) reply.log.error({ ...line, err: error }, 'request errored');
    else reply.log.info(line, 'request');
  }
}

function registerDebugRoutes(app: FastifyInstance, eventLoop: EventLoopMonitor): void {
  app.get<{ Querystring: { reset?: string } }>(
    '/debug/event-loop',
    {
      schema: {
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: { reset: { type: 'string', enum: ['true', 'false'] } },
        },
      },
    },
    async (request) => {
      const stall = eventLoop.read();
      if (request.query.reset === 'true') eventLoop.reset();
      return stall;
    },
  );
}

/** A running service: its address, and how to stop it (requests in flight are answered, the store closed). */
export interface RunningService {
  app: FastifyInstance;
  url: string;
  port: number;
  close(): Promise<void>;
}

/** Builds the service and listens on `host:port` (default 127.0.0.1:3000; port 0 picks a free one). */
export async function startService(options: StartOptions = {}): Promise<RunningService> {
  const { port = serviceDefaults.port, host = serviceDefaults.host, ...serviceOptions } = options;
  const app = await buildService(serviceOptions);
  try {
    await app.listen({ port, host });
  } catch (error) {
    await app.close();
    throw error;
  }
  const address = app.server.address() as AddressInfo;
  const hostInUrl = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return { app, url: `http://${hostInUrl}:${address.port}`, port: address.port, close: () => app.close() };
}

function toMetricInput(metric: MetricBody, prefix: string) {
  const { recordedAt, ...rest } = metric;
  if (recordedAt === undefined) return rest;
  const ms = parseTimestamp(recordedAt);
  if (ms === undefined) throw new ValidationError(`${prefix}recordedAt`, timestampExpectation);
  return { ...rest, recordedAt: ms };
}

function toCountFilter(query: CountQuery) {
  const filter: { name?: string; since?: number; until?: number } = {};
  if (query.name !== undefined) filter.name = query.name;
  for (const field of ['since', 'until'] as const) {
    const text = query[field];
    if (text === undefined) continue;
    const ms = parseTimestamp(text);
    if (ms === undefined) throw new InvalidFilterError(field, timestampExpectation);
    filter[field] = ms;
  }
  return filter;
}

/** `{ a: undefined }` must not override a default when spread. */
function definedOnly<T extends object>(options: T): Partial<T> {
  return Object.fromEntries(Object.entries(options).filter(([, value]) => value !== undefined)) as Partial<T>;
}
