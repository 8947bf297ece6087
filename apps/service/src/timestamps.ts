/** An ISO 8601 date (UTC midnight), or a date-time with its time zone (`2026-11-22`, `2026-11-22T09:30:00.123Z`, `...+01:00`). */
const isoDateTime = /^\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(?:Z|[+-]\d{2}:?\d{2}))?$/i;
const epochMs = /^-?\d{1,16}$/;

/**
 * A timestamp as HTTP clients send it: epoch milliseconds (a number, or digits
 * in a query string) or an ISO 8601 string. Returns epoch ms (range checks are
 * the repository's), or undefined when the text is neither.
 */
export function parseTimestamp(value: number | string): number | undefined {
  if (typeof value === 'number') return value;
  if (epochMs.test(value)) return Number(value);
  if (!isoDateTime.test(value)) return undefined;
  const ms = Date.parse(value);
  return Number.isNaN(ms) ? undefined : ms;
}

export const timestampExpectation = 'must be epoch milliseconds or an ISO 8601 date-time';
