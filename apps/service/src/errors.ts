/**
 * How an error becomes an HTTP response. Decided by the error's stable `code`
 * (the repository's, Fastify's), never by its class alone, so codes added later
 * fall into the generic 500 until they are mapped here. Bodies carry no stack,
 * no file path and no SQL: those go to the log only.
 */

/** A setting the service cannot use (an environment variable, an option): the CLI prints the message and exits with code 2. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  /** `variable`: the environment variable (or option) at fault; `reason` completes the sentence after its name. */
  constructor(
    readonly variable: string,
    reason: string,
  ) {
    super(`${variable} ${reason}`);
  }
}

/** The JSON body of every error response. */
export interface ErrorBody {
  /** A stable code to switch on: the repository's (`INVALID_METRIC`...) or the service's own (`MALFORMED_JSON`...). */
  error: string;
  message: string;
  /** The offending field (`value`, `rows[3].labels.host`, `since`), or null. */
  field: string | null;
}

export interface HttpError {
  statusCode: number;
  body: ErrorBody;
  /** Seconds, for a `Retry-After` header (503s). */
  retryAfterSeconds?: number;
  /** Other response headers the error asks for (`WWW-Authenticate`). */
  headers?: Readonly<Record<string, string>>;
}

/** Where a request's input was refused: its body (metrics) or its query string (count filter). */
export type InputPart = 'body' | 'querystring';

const retryAfterSeconds = 1;

/**
 * A refusal decided by the service itself (not the repository, not Fastify):
 * a stable `code`, its HTTP status, and what to tell the client. Thrown from
 * hooks; the error handler sends it as `{ error: code, message, field }`.
 */
export class ServiceError extends Error {
  override readonly name = 'ServiceError';
  constructor(
    readonly code: string,
    readonly statusCode: number,
    message: string,
    /** Extra response headers (`WWW-Authenticate`, `Retry-After`). */
    readonly headers: Readonly<Record<string, string>> = {},
  ) {
    super(message);
  }
}

/** 401: no `Authorization: Bearer` header, or not the token. RFC 6750's challenge says which. */
export class UnauthorizedError extends ServiceError {
  constructor(reason: 'missing' | 'invalid') {
    super(
      'UNAUTHORIZED',
      401,
      reason === 'missing'
        ? 'this route needs an Authorization: Bearer <token> header'
        : 'the bearer token is not the service token',
      {
        'www-authenticate':
          reason === 'missing' ? 'Bearer realm="metrics"' : 'Bearer realm="metrics", error="invalid_token"',
      },
    );
  }
}

/** 429: this client sent more requests than the rate limit allows in the window. */
export class RateLimitedError extends ServiceError {
  constructor(retryAfter: number) {
    super('RATE_LIMITED', 429, `too many requests from this client; retry after ${retryAfter} s`, {
      'retry-after': String(retryAfter),
    });
  }
}

/** 503 for a request that arrived once the shutdown had begun: nothing of it was stored. */
export class ShuttingDownError extends ServiceError {
  constructor() {
    super(
      'SHUTTING_DOWN',
      503,
      `the service is shutting down; nothing of this request was stored; retry after ${retryAfterSeconds} s`,
      {
        'retry-after': String(retryAfterSeconds),
        connection: 'close',
      },
    );
  }
}

/** One of Ajv's validation errors, as Fastify attaches them to the error (`error.validation`). */
interface SchemaViolation {
  instancePath: string;
  message?: string;
  params: Record<string, unknown>;
}

/** The response for `error`. `bodyIsArray` says whether a POSTed body was a batch (field names `rows[3].value`). */
export function toHttpError(error: unknown, bodyIsArray = false): HttpError {
  if (error instanceof ServiceError) {
    return { ...respond(error.statusCode, error.code, error.message, null), headers: error.headers };
  }
  const fields = (typeof error === 'object' && error !== null ? error : {}) as Record<string, unknown>;
  const validation = fields.validation as SchemaViolation[] | undefined;
  if (Array.isArray(validation) && validation.length > 0) {
    return schemaError(validation, fields.validationContext as InputPart, bodyIsArray);
  }
  const code = typeof fields.code === 'string' ? fields.code : undefined;
  const message = error instanceof Error ? error.message : String(error);
  const field = typeof fields.field === 'string' ? fields.field : null;
  switch (code) {
    case 'INVALID_METRIC':
      return respond(400, code, message, field);
    case 'INVALID_FILTER':
      // The repository names the filter's fields `filter.since`; over HTTP they are query parameters.
      return respond(400, code, message.replace('filter.', ''), field?.replace(/^filter\./, '') ?? null);
    case 'DUPLICATE_EVENT':
      return respond(409, code, message, 'eventId');
    case 'LOCK_TIMEOUT':
      return unavailable(code, 'the database stayed locked by another writer; nothing of this request was stored');
    case 'QUEUE_FULL':
      return unavailable(code, 'too many rows are waiting to be written; nothing of this request was stored');
    case 'REPO_CLOSED':
      return unavailable(code, 'the service is shutting down; nothing of this request was stored');
    case 'DATABASE_ERROR':
      return respond(500, code, 'the database refused the operation; see the service log', null);
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return respond(400, 'MALFORMED_JSON', 'the body is not valid JSON', 'body');
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return respond(413, 'BODY_TOO_LARGE', message, 'body');
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return respond(415, 'UNSUPPORTED_MEDIA_TYPE', 'send the body as application/json', 'body');
  }
  // Fastify's other refusals of a request (bad content length, a JSON body with __proto__...) say what was wrong.
  const statusCode = typeof fields.statusCode === 'number' ? fields.statusCode : 500;
  if (statusCode >= 400 && statusCode < 500) {
    // Bad JSON caught by the parser itself (e.g. a forbidden __proto__ key) arrives as a SyntaxError.
    if (error instanceof SyntaxError) return respond(400, 'MALFORMED_JSON', 'the body is not valid JSON', 'body');
    return respond(statusCode, 'BAD_REQUEST', message, null);
  }
  return respond(500, 'INTERNAL_ERROR', 'the service failed to handle the request; see the service log', null);
}

function respond(statusCode: number, error: string, message: string, field: string | null): HttpError {
  return { statusCode, body: { error, message, field } };
}

function unavailable(code: string, message: string): HttpError {
  return { ...respond(503, code, `${message}; retry after ${retryAfterSeconds} s`, null), retryAfterSeconds };
}

/**
 * What Node's HTTP parser refused before Fastify saw a request (the `clientError`
 * event): headers that never finished in time, headers too large, bytes that are not HTTP.
 */
export function clientErrorResponse(error: { code?: string }): HttpError {
  switch (error.code) {
    case 'ERR_HTTP_REQUEST_TIMEOUT':
      return respond(408, 'REQUEST_TIMEOUT', 'the request was not received in time', null);
    case 'HPE_HEADER_OVERFLOW':
      return respond(431, 'HEADERS_TOO_LARGE', 'the request headers are too large', null);
    default:
      return respond(400, 'BAD_REQUEST', 'the request is not valid HTTP/1.1', null);
  }
}

/** A request refused by the JSON schema: the field it is about, in the repository's notation. */
function schemaError(violations: SchemaViolation[], part: InputPart, bodyIsArray: boolean): HttpError {
  const violation = violations[0] as SchemaViolation;
  const segments = violation.instancePath
    .split('/')
    .slice(1)
    .map((segment) => segment.replace(/~1/g, '/').replace(/~0/g, '~'));
  const child =
    violation.params.missingProperty ?? violation.params.additionalProperty ?? violation.params.propertyName;
  if (typeof child === 'string') segments.push(child);
  let field = '';
  segments.forEach((segment, index) => {
    if (index === 0 && bodyIsArray && part === 'body') field = `rows[${segment}]`;
    else field += field === '' ? segment : `.${segment}`;
  });
  let what = violation.message ?? 'is not valid';
  if (violation.params.missingProperty !== undefined) what = 'is required';
  if (violation.params.additionalProperty !== undefined) what = 'is not a known field';
  // A bad label key: Ajv reports what is wrong with the key first, then that the object has such a key.
  if (violations.some((other) => other.params.propertyName !== undefined)) what = `has a key that ${what}`;
  if (part === 'querystring') {
    const name = field || 'query';
    return respond(400, 'INVALID_FILTER', `invalid count filter: ${name} ${what}`, name);
  }
  const name = field || (bodyIsArray ? 'rows' : 'metric');
  return respond(400, 'INVALID_METRIC', `invalid metric: ${name} ${what}`, name);
}
