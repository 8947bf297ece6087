import { type CountFilter, InvalidFilterError, limits } from '@repo/metrics-repo';
import { parseTimestamp, timestampExpectation } from './timestamps.ts';

/**
 * JSON schemas of the request bodies and query strings, checked by Fastify
 * before a handler runs. They refuse the shape (types, unknown fields, sizes);
 * the repository validates every row again, fully (control characters, lone
 * surrogates, timestamp ranges), so the two cannot drift into accepting bad data.
 */

/** Most rows in one POST: far under what 1 MiB of JSON can hold, and a batch commits in one transaction. */
export const maxRowsPerRequest = 10_000;

const text = (maxLength: number) => ({ type: 'string', minLength: 1, maxLength }) as const;

export const metricSchema = {
  type: 'object',
  required: ['name', 'value'],
  additionalProperties: false,
  properties: {
    name: text(limits.maxNameLength),
    value: { type: 'number' },
    // Epoch milliseconds or an ISO 8601 date-time; the handler converts it.
    recordedAt: { anyOf: [{ type: 'integer' }, { type: 'string', minLength: 1, maxLength: 64 }] },
    labels: {
      type: 'object',
      nullable: true,
      maxProperties: limits.maxLabels,
      propertyNames: text(limits.maxLabelKeyLength),
      additionalProperties: { type: 'string', maxLength: limits.maxLabelValueLength },
    },
    eventId: { ...text(limits.maxEventIdLength), nullable: true },
  },
} as const;

/** One metric, or an array of them (stored all or nothing). */
export const postMetricsBodySchema = {
  if: { type: 'array' },
  // biome-ignore lint/suspicious/noThenProperty: JSON Schema's if/then/else, never awaited
  then: { type: 'array', maxItems: maxRowsPerRequest, items: metricSchema },
  else: metricSchema,
} as const;

/** `name`, `since`, `until`: the range of `/metrics/count` and `/metrics/export`. */
export const rangeQuerySchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    name: { type: 'string' },
    since: { type: 'string' },
    until: { type: 'string' },
  },
} as const;

/** A metric as POSTed: `recordedAt` may be an ISO string. */
export interface MetricBody {
  name: string;
  value: number;
  recordedAt?: number | string;
  labels?: Record<string, string> | null;
  eventId?: string | null;
}

/** The query string of a range, as received. */
export interface RangeQuery {
  name?: string;
  since?: string;
  until?: string;
}

/** A range query as the repository's filter: `since` and `until` as epoch ms (`since <= recordedAt < until`). */
export function rangeFilter(query: RangeQuery): CountFilter {
  const filter: CountFilter = {};
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
