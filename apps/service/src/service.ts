import { STATUS_CODES } from 'node:http';
import type { AddressInfo } from 'node:net';
import rateLimit from '@fastify/rate-limit';
import { ValidationError } from '@repo/metrics-repo';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest, LogController } from 'fastify';
import { bearerChecker, isLoopback, tokenProblem } from './auth.ts';
import { ConnectionGuard } from './connections.ts';
import {
  ConfigError,
  clientErrorResponse,
  type HttpError,
  RateLimitedError,
  ShuttingDownError,
  toHttpError,
  UnauthorizedError,
} from './errors.ts';
import { type EventLoopMonitor, startEventLoopMonitor } from './event-loop.ts';
import { ServiceMetrics } from './prometheus.ts';
import { registerReadRoutes } from './read-routes.ts';
import { type MetricBody, postMetricsBodySchema, type RangeQuery, rangeFilter, rangeQuerySchema } from './schemas.ts';
import { type MetricsStore, openStore, type StorageConfig } from './store.ts';
import { parseTimestamp, timestampExpectation } from './timestamps.ts';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Served without the token (`/healthz`). */
    public?: boolean;
  }
}

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
  /** The bearer token every route but `/healthz` requires. Unset: no token (only allowed on loopback). */
  token?: string;
  /** Requests per client address per window, past which it gets 429 `RATE_LIMITED`; 0: no limit. */
  rateLimitMax?: number;
  /** The rate limit's window. */
  rateLimitWindowMs?: number;
  /** A connection must have sent its request headers within this long, or it is closed (408). */
  headersTimeoutMs?: number;
  /** A connection must have sent its whole request (headers and body) within this long, or it is closed (408). */
  requestTimeoutMs?: number;
  /** An idle keep-alive connection is closed after this long. */
  keepAliveTimeoutMs?: number;
  /** Open connections, past which a new one is closed as soon as accepted. */
  maxConnections?: number;
  /** Open connections per client address, past which a new one is closed as soon as accepted; 0: no cap. */
  maxConnectionsPerClient?: number;
}

export interface StartOptions extends ServiceOptions {
  /** 0 picks a free port. */
  port?: number;
  host?: string;
  /** How long a shutdown (`closeOnSignals`) waits for requests and slow clients before cutting them off. */
  shutdownGraceMs?: number;
}

export const serviceDefaults = {
  storage: { kind: 'sqlite', path: 'metrics.db' } as StorageConfig,
  // Shorter than the repository's 30 s: a request should get a 503 it can retry, not hang, and
  // every request in flight at shutdown is answered well within the shutdown's grace period.
  lockTimeoutMs: 5000,
  maxQueuedRows: 100_000,
  logLevel: 'info' as LogLevel,
  bodyLimit: 1024 * 1024,
  debugRoutes: false,
  token: undefined as string | undefined,
  /** buildService's default; startService's is `exposedDefaults.rateLimitMax` off loopback. */
  rateLimitMax: 0,
  rateLimitWindowMs: 60_000,
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 30_000,
  keepAliveTimeoutMs: 5_000,
  maxConnections: 4096,
  /** buildService's default; startService's is `exposedDefaults.maxConnectionsPerClient` off loopback. */
  maxConnectionsPerClient: 0,
  port: 3000,
  host: '127.0.0.1',
  shutdownGraceMs: 8_000,
};

/** Defaults of startService when it listens on anything but loopback. */
export const exposedDefaults = {
  rateLimitMax: 6_000,
  maxConnectionsPerClient: 256,
};

type Settings = Omit<typeof serviceDefaults, 'port' | 'host' | 'shutdownGraceMs'>;

/**
 * A closing service still accepts connections (answering their requests 503) until none came for
 * this long, so that a connection the kernel accepted before the listening socket closes is
 * answered, not reset; at most `acceptDrainMaxMs`.
 */
const acceptQuietMs = 50;
const acceptDrainMaxMs = 1000;
/** How often a closing service closes its idle connections (see ConnectionGuard.closeIdle). */
const idleSweepMs = 100;

/** What startService needs of the app buildService made: its connections, and how to start refusing requests. */
const internals = new WeakMap<FastifyInstance, { connections: ConnectionGuard; refuseRequests(): void }>();

/**
 * Builds the service (not listening yet) and opens its store: one repository
 * for the life of the service, closed by `app.close()` after the requests in
 * flight are answered. Throws ConfigError for an option out of range.
 */
export async function buildService(options: ServiceOptions = {}): Promise<FastifyInstance> {
  const { port: _port, host: _host, shutdownGraceMs: _grace, ...defaults } = serviceDefaults;
  const settings: Settings = { ...defaults, ...definedOnly(options) };
  checkSettings(settings);
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

function checkSettings(settings: Settings): void {
  const integer = (name: keyof Settings, min: number, max: number) => {
    const value = settings[name];
    if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
      throw new ConfigError(name, `must be an integer from ${min} to ${max}, got ${String(value)}`);
    }
  };
  integer('rateLimitMax', 0, 1_000_000_000);
  integer('rateLimitWindowMs', 1000, 86_400_000);
  integer('headersTimeoutMs', 100, 60_000);
  integer('requestTimeoutMs', 100, 3_600_000);
  integer('keepAliveTimeoutMs', 100, 600_000);
  integer('maxConnections', 1, 1_000_000);
  integer('maxConnectionsPerClient', 0, 1_000_000);
  if (settings.headersTimeoutMs > settings.requestTimeoutMs) {
    throw new ConfigError('headersTimeoutMs', 'must not be longer than requestTimeoutMs');
  }
  if (settings.token !== undefined) {
    const problem = tokenProblem(settings.token);
    if (problem !== undefined) throw new ConfigError('token', problem);
  }
}

async function assemble(rawStore: MetricsStore, settings: Settings): Promise<FastifyInstance> {
  const metrics = new ServiceMetrics(() => rawStore.pendingRows ?? 0);
  const store = metrics.instrument(rawStore);
  let closing = false;
  const app = Fastify({
    logger: { level: settings.logLevel, redact: ['req.headers.authorization'] },
    logController: new OneLinePerRequest(),
    bodyLimit: settings.bodyLimit,
    ajv: {
      // Fastify's defaults would drop unknown fields (a typo like `recorded_at` would be lost
      // silently) and turn "12" into 12: refuse both instead.
      customOptions: { removeAdditional: false, coerceTypes: false, useDefaults: false, allErrors: false },
    },
    // Slow clients: Node checks these every connectionsCheckingInterval and closes the connection (408).
    http: {
      headersTimeout: settings.headersTimeoutMs,
      requestTimeout: settings.requestTimeoutMs,
      connectionsCheckingInterval: Math.max(50, Math.min(1000, Math.floor(settings.headersTimeoutMs / 4))),
    },
    requestTimeout: settings.requestTimeoutMs,
    keepAliveTimeout: settings.keepAliveTimeoutMs,
    // Requests that arrive while closing get the service's own JSON 503 (the preValidation hook below).
    return503OnClosing: false,
    forceCloseConnections: 'idle',
    // Refusals before a request exists (headers too large or too slow, not HTTP): the same JSON shape.
    clientErrorHandler(error, socket) {
      if (error.code === 'ECONNRESET' || socket.destroyed) return;
      const mapped = clientErrorResponse(error);
      metrics.rejected.inc({ code: mapped.body.error });
      app.log.debug({ err: error }, 'client error');
      if (socket.writable) {
        const body = JSON.stringify(mapped.body);
        socket.write(
          `HTTP/1.1 ${mapped.statusCode} ${STATUS_CODES[mapped.statusCode]}\r\nContent-Type: application/json; charset=utf-8\r\n` +
            `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
        );
      }
      socket.destroy();
    },
    frameworkErrors: (error, _request, reply) => sendError(reply, toHttpError(error)),
  });
  app.server.maxConnections = settings.maxConnections;
  const connections = new ConnectionGuard(app.server, settings.maxConnectionsPerClient, (reason) =>
    metrics.dropped(reason),
  );
  internals.set(app, {
    connections,
    refuseRequests: () => {
      closing = true;
    },
  });

  function sendError(reply: FastifyReply, mapped: HttpError) {
    metrics.rejected.inc({ code: mapped.body.error });
    if (mapped.retryAfterSeconds !== undefined) reply.header('retry-after', String(mapped.retryAfterSeconds));
    for (const [name, value] of Object.entries(mapped.headers ?? {})) reply.header(name, value);
    return reply.code(mapped.statusCode).send(mapped.body);
  }

  // JSON only: Fastify would also hand a text/plain body to the schema, as a string.
  app.removeContentTypeParser('text/plain');
  const eventLoop = startEventLoopMonitor();
  app.addHook('preClose', async () => {
    closing = true;
  });
  // Requests that arrive during the shutdown are refused, in JSON, once their body is read: a
  // connection closed with unread bytes in its buffer is reset (RST), and the client loses the 503.
  app.addHook('preValidation', async () => {
    if (closing) throw new ShuttingDownError();
  });
  // A keep-alive connection whose request was in flight when close() began would stay open,
  // idle, until its keep-alive timeout and hold the shutdown: answer it, then close it.
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
    if (mapped.statusCode >= 500 && !(error instanceof ShuttingDownError)) {
      request.log.error({ err: error }, 'request failed');
    } else request.log.debug({ err: error }, 'request refused');
    return sendError(reply, mapped);
  });
  app.setNotFoundHandler((_request, reply) =>
    sendError(reply, { statusCode: 404, body: { error: 'NOT_FOUND', message: 'no such route', field: null } }),
  );

  if (settings.rateLimitMax > 0) {
    // Per client address; its onRequest hook runs before the token check, so guessing tokens is limited too.
    await app.register(rateLimit, {
      max: settings.rateLimitMax,
      timeWindow: settings.rateLimitWindowMs,
      hook: 'onRequest',
      errorResponseBuilder: (_request, context) => new RateLimitedError(Math.max(1, Math.ceil(context.ttl / 1000))),
    });
  }
  if (settings.token !== undefined) {
    const check = bearerChecker(settings.token);
    // Before the body is read: a request without the token costs no parsing.
    app.addHook('preParsing', async (request, _reply, payload) => {
      if (request.routeOptions.config.public !== true) {
        const verdict = check(request.headers.authorization);
        if (verdict !== 'ok') throw new UnauthorizedError(verdict);
      }
      return payload;
    });
  }

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

  app.get<{ Querystring: RangeQuery }>(
    '/metrics/count',
    { schema: { querystring: rangeQuerySchema } },
    async (request) => ({ count: await store.count(rangeFilter(request.query)) }),
  );

  registerReadRoutes(app, store);

  // Prometheus text format: the service's own metrics and the process's.
  app.get('/prometheus', async (_request, reply) =>
    reply.type(metrics.registry.contentType).send(await metrics.registry.metrics()),
  );

  // Answers from the event loop alone: it is slow exactly when the loop is stuck. No token, no rate limit.
  app.get('/healthz', { config: { public: true, rateLimit: false } }, async () => ({ status: 'ok' }));

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
  /** The connections open now. */
  connections: ConnectionGuard;
  /** How long `close()` waits for requests in flight and slow clients before it cuts their connections off. */
  shutdownGraceMs: number;
  /**
   * Stops accepting, answers every request already received (201 once stored, or a JSON 503),
   * closes idle keep-alive connections, cuts off those still open after `shutdownGraceMs`,
   * then commits what the store accepted and closes it. Idempotent.
   */
  close(): Promise<ShutdownReport>;
}

export interface ShutdownReport {
  /** Connections still open when the grace period ended, closed without an answer (slow clients). */
  cutOff: number;
  ms: number;
}

/**
 * Builds the service and listens on `host:port` (default 127.0.0.1:3000; port 0 picks a free one).
 * Anywhere but loopback it needs a token (ConfigError naming METRICS_TOKEN otherwise), and the
 * rate limit and the per-client connection cap are on by default (`exposedDefaults`).
 */
export async function startService(options: StartOptions = {}): Promise<RunningService> {
  const {
    port = serviceDefaults.port,
    host = serviceDefaults.host,
    shutdownGraceMs = serviceDefaults.shutdownGraceMs,
    ...serviceOptions
  } = options;
  if (!Number.isInteger(shutdownGraceMs) || shutdownGraceMs < 100 || shutdownGraceMs > 600_000) {
    throw new ConfigError('shutdownGraceMs', `must be an integer from 100 to 600000, got ${shutdownGraceMs}`);
  }
  const loopback = isLoopback(host);
  if (!loopback && serviceOptions.token === undefined) {
    throw new ConfigError(
      'METRICS_TOKEN',
      `(or METRICS_TOKEN_FILE, or the option \`token\`) must be set to listen on ${host}: without a token anyone who can reach the port could record and read metrics. Set one, or listen on 127.0.0.1`,
    );
  }
  const app = await buildService({ ...(loopback ? {} : exposedDefaults), ...definedOnly(serviceOptions) });
  try {
    await app.listen({ port, host });
  } catch (error) {
    await app.close();
    throw error;
  }
  const address = app.server.address() as AddressInfo;
  const hostInUrl = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  const { connections, refuseRequests } = internals.get(app) as NonNullable<ReturnType<typeof internals.get>>;
  let closing: Promise<ShutdownReport> | undefined;
  const close = () => {
    closing ??= (async () => {
      const started = performance.now();
      // Connections the kernel already accepted but Node has not would be reset when the listening
      // socket closes: let the loop take them in for a moment more (their requests get a JSON 503).
      refuseRequests();
      const drainUntil = started + acceptDrainMaxMs;
      do {
        await new Promise<void>((resolve) => setTimeout(resolve, acceptQuietMs));
        // Then past the loop's poll phase, where connections waiting in the kernel are accepted:
        // after a busy stretch the timer fires before them.
        await new Promise<void>((resolve) => setImmediate(resolve));
      } while (performance.now() - connections.lastAcceptedAt < acceptQuietMs && performance.now() < drainUntil);
      // server.close() would destroy at once every connection without a request in progress, those
      // just accepted whose request is still on its way included (the client would see a reset):
      // close idle connections by the guard's rules instead, until the end.
      const server = app.server;
      server.closeIdleConnections = () => {};
      const sweep = setInterval(() => connections.closeIdle(), idleSweepMs);
      let cutOff = 0;
      // Node stops checking its headers and request timeouts once the server closes: the grace period takes over.
      const grace = setTimeout(() => {
        cutOff = connections.cutOff();
      }, shutdownGraceMs);
      try {
        await app.close();
      } finally {
        clearTimeout(grace);
        clearInterval(sweep);
      }
      return { cutOff, ms: Math.round(performance.now() - started) };
    })();
    return closing;
  };
  return { app, url: `http://${hostInUrl}:${address.port}`, port: address.port, connections, shutdownGraceMs, close };
}

function toMetricInput(metric: MetricBody, prefix: string) {
  const { recordedAt, ...rest } = metric;
  if (recordedAt === undefined) return rest;
  const ms = parseTimestamp(recordedAt);
  if (ms === undefined) throw new ValidationError(`${prefix}recordedAt`, timestampExpectation);
  return { ...rest, recordedAt: ms };
}

/** `{ a: undefined }` must not override a default when spread. */
function definedOnly<T extends object>(options: T): Partial<T> {
  return Object.fromEntries(Object.entries(options).filter(([, value]) => value !== undefined)) as Partial<T>;
}
