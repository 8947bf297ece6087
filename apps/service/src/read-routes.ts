import { Readable } from 'node:stream';
import { InvalidFilterError, limits, type Metric, type SummaryFilter } from '@repo/metrics-repo';
import type { FastifyInstance } from 'fastify';
import { ServiceError } from './errors.ts';
import { rangeFilter, rangeQuerySchema } from './schemas.ts';
import type { MetricsStore } from './store.ts';

/**
 * `GET /metrics/summary` and `GET /metrics/export`: reading the metrics back.
 * Same token, rate limit and error shape as the other routes (the hooks are the
 * app's); query strings are checked by JSON schema, then by the repository.
 */

const labelPrefix = 'label.';

const summaryProperties = {
  ...rangeQuerySchema.properties,
  bucketMs: { type: 'string', pattern: '^[0-9]{1,16}$' },
} as const;

export const summaryQuerySchema = {
  type: 'object',
  additionalProperties: false,
  properties: summaryProperties,
  // `label.host=web-1`: rows whose label `host` is `web-1` (every such parameter must match).
  patternProperties: { '^label\\..+$': { type: 'string', maxLength: limits.maxLabelValueLength } },
  maxProperties: Object.keys(summaryProperties).length + limits.maxLabels,
} as const;

type Query = Record<string, string | undefined>;

/** NDJSON is sent in chunks of about this many bytes (many rows per write, one write per chunk). */
const chunkBytes = 64 * 1024;

export function registerReadRoutes(app: FastifyInstance, store: MetricsStore): void {
  app.get<{ Querystring: Query }>(
    '/metrics/summary',
    { schema: { querystring: summaryQuerySchema } },
    async (request) => {
      const summarize = store.summarize;
      if (summarize === undefined) throw notSupported('summaries');
      const filter = rangeFilter(request.query) as SummaryFilter;
      const { bucketMs } = request.query;
      if (bucketMs !== undefined) filter.bucketMs = Number(bucketMs);
      const labels: Record<string, string> = {};
      let anyLabel = false;
      for (const [key, value] of Object.entries(request.query)) {
        if (!key.startsWith(labelPrefix) || value === undefined) continue;
        labels[key.slice(labelPrefix.length)] = value;
        anyLabel = true;
      }
      if (anyLabel) filter.labels = labels;
      try {
        return { summaries: await summarize.call(store, filter) };
      } catch (error) {
        // The repository names a label `filter.labels.host`; over HTTP it is the parameter `label.host`.
        if (error instanceof InvalidFilterError && error.field.startsWith('filter.labels.')) {
          throw new InvalidFilterError(`label.${error.field.slice('filter.labels.'.length)}`, error.reason, 'summary');
        }
        throw error;
      }
    },
  );

  app.get<{ Querystring: Query }>(
    '/metrics/export',
    { schema: { querystring: rangeQuerySchema } },
    async (request, reply) => {
      const exportRows = store.export;
      if (exportRows === undefined) throw notSupported('exports');
      const rows = exportRows.call(store, rangeFilter(request.query))[Symbol.asyncIterator]();
      // The first page before the status line: a bad filter or a database error still gets its JSON error.
      const first = await rows.next();
      reply.type('application/x-ndjson; charset=utf-8');
      // Readable.from pulls the next chunk only when the socket has room (backpressure); a client
      // that goes away destroys the stream, which ends the export (its iterator's return()).
      return reply.send(Readable.from(ndjson(first, rows), { objectMode: false }));
    },
  );
}

async function* ndjson(first: IteratorResult<Metric>, rows: AsyncIterator<Metric>): AsyncGenerator<string> {
  let chunk = '';
  try {
    for (let step = first; step.done !== true; step = await rows.next()) {
      chunk += `${JSON.stringify(step.value)}\n`;
      if (chunk.length >= chunkBytes) {
        yield chunk;
        chunk = '';
      }
    }
    if (chunk !== '') yield chunk;
  } finally {
    // Ended early (the client went away, or an error): stop the export too.
    await rows.return?.();
  }
}

function notSupported(what: string): ServiceError {
  return new ServiceError('NOT_SUPPORTED', 501, `this service's store does not serve ${what}`);
}
