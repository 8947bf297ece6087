import type { MetricLabels } from '@repo/db';
import { InvalidFilterError, ValidationError } from './errors.ts';
import { limits } from './limits.ts';
import type { ValidFilter } from './validate.ts';
import { checkLabels, checkText, checkTimestamp, describe, isPlainObject } from './validate.ts';

/** A `summarize` filter that passed validation. */
export interface ValidSummaryFilter extends ValidFilter {
  bucketMs: number | undefined;
  /** Key/value pairs every row must have, in the order given; undefined when none. */
  labels: [string, string][] | undefined;
}

const summaryFields = new Set(['name', 'since', 'until', 'bucketMs', 'labels']);
const exportFields = new Set(['name', 'since', 'until']);
const pruneFields = new Set(['before', 'signal']);

/** Validates a `summarize` filter; refusals are InvalidFilterError naming the field. */
export function validateSummaryFilter(input: unknown): ValidSummaryFilter {
  return asFilterError('summary', () => {
    const fields = checkFields(input, summaryFields, 'summary');
    const range = checkRange(fields);
    let bucketMs: number | undefined;
    if (fields.bucketMs !== undefined) {
      const value = fields.bucketMs;
      if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1 || value > limits.maxBucketMs) {
        throw new ValidationError(
          'filter.bucketMs',
          `must be an integer from 1 to ${limits.maxBucketMs} (ms), got ${describe(value)}`,
        );
      }
      bucketMs = value;
    }
    let labels: [string, string][] | undefined;
    if (fields.labels !== undefined) {
      const checked: MetricLabels = checkLabels(fields.labels, 'filter.');
      const pairs = Object.entries(checked);
      labels = pairs.length === 0 ? undefined : pairs;
    }
    return { ...range, bucketMs, labels };
  });
}

/** Validates an `export` filter; refusals are InvalidFilterError naming the field. */
export function validateExportFilter(input: unknown): ValidFilter {
  return asFilterError('export', () => checkRange(checkFields(input, exportFields, 'export')));
}

/** Validates `prune`'s options: the cut-off in epoch ms. Refusals are InvalidFilterError naming the field. */
export function validatePruneOptions(input: unknown): { before: number; signal: AbortSignal | undefined } {
  return asFilterError('prune', () => {
    if (input === undefined) throw new ValidationError('options.before', 'is required (a Date or epoch ms)');
    if (!isPlainObject(input)) throw new ValidationError('options', `must be an object, got ${describe(input)}`);
    for (const key in input) {
      if (!pruneFields.has(key)) throw new ValidationError(`options.${key}`, 'is not an option of prune');
    }
    if (input.before === undefined) throw new ValidationError('options.before', 'is required (a Date or epoch ms)');
    const before = checkTimestamp(input.before, 'options.', 'before');
    const signal = input.signal;
    if (signal !== undefined && !(signal instanceof AbortSignal)) {
      throw new ValidationError('options.signal', `must be an AbortSignal, got ${describe(signal)}`);
    }
    return { before, signal };
  });
}

function checkFields(input: unknown, known: Set<string>, kind: string): Record<string, unknown> {
  if (input === undefined) return {};
  if (!isPlainObject(input)) throw new ValidationError('filter', `must be an object, got ${describe(input)}`);
  for (const key in input) {
    if (!known.has(key)) throw new ValidationError(`filter.${key}`, `is not a field of a ${kind} filter`);
  }
  return input;
}

function checkRange(fields: Record<string, unknown>): ValidFilter {
  const name = fields.name === undefined ? undefined : checkText(fields.name, 'filter.', 'name', limits.maxNameLength);
  const since = fields.since === undefined ? undefined : checkTimestamp(fields.since, 'filter.', 'since');
  const until = fields.until === undefined ? undefined : checkTimestamp(fields.until, 'filter.', 'until');
  if (since !== undefined && until !== undefined && since > until) {
    throw new ValidationError('filter.since', `must not be after filter.until (${since} > ${until})`);
  }
  return { name, since, until };
}

/** The checks are shared with metrics; the error says which filter, not a metric, was refused. */
function asFilterError<T>(kind: string, check: () => T): T {
  try {
    return check();
  } catch (error) {
    if (error instanceof ValidationError) throw new InvalidFilterError(error.field, error.reason, kind);
    throw error;
  }
}
