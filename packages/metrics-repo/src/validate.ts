import type { Metric, MetricLabels } from '@repo/db';
import { InvalidFilterError, ValidationError } from './errors.ts';
import { limits } from './limits.ts';
import type { CountFilter, MetricInput } from './types.ts';

/** A metric that passed validation, in the shape the INSERT statement binds. */
export interface ValidRow {
  name: string;
  value: number;
  recordedAt: number;
  labels: MetricLabels | null;
  labelsJson: string | null;
  eventId: string | null;
}

const metricFields = new Set(['name', 'value', 'recordedAt', 'labels', 'eventId']);
const countFields = new Set(['name', 'since', 'until']);
// C0 and C1 control characters and DEL: invisible in names, keys and ids, and a common injection vector in logs.
// biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point
const controlCharacter = /[\u0000-\u001f\u007f-\u009f]/;

/** The row as stored, once the database gave it `id`: what `insert` resolves with. */
export function storedMetric(row: ValidRow, id: number): Metric {
  return {
    id,
    name: row.name,
    value: row.value,
    recordedAt: new Date(row.recordedAt),
    labels: row.labels,
    eventId: row.eventId,
  };
}

/** Validates one insert. `prefix` locates the row in an `insertMany` call (`rows[3].`). */
export function validateMetric(input: unknown, prefix = '', now?: number): ValidRow {
  if (!isPlainObject(input)) {
    throw new ValidationError(
      prefix === '' ? 'metric' : prefix.slice(0, -1),
      `must be an object, got ${describe(input)}`,
    );
  }
  for (const key in input) {
    if (!metricFields.has(key)) throw new ValidationError(prefix + key, 'is not a field of a metric');
  }
  const metric = input as Partial<MetricInput>;
  const name = checkText(metric.name, prefix, 'name', limits.maxNameLength);
  const value = metric.value;
  if (typeof value !== 'number')
    throw new ValidationError(`${prefix}value`, `must be a number, got ${describe(value)}`);
  if (!Number.isFinite(value)) throw new ValidationError(`${prefix}value`, `must be finite, got ${value}`);
  // SQLite stores -0 as 0: return what is stored, not what was given.
  const storedValue = value === 0 ? 0 : value;
  const recordedAt =
    metric.recordedAt === undefined ? (now ?? Date.now()) : checkTimestamp(metric.recordedAt, prefix, 'recordedAt');
  let labels: MetricLabels | null = null;
  let labelsJson: string | null = null;
  if (metric.labels !== undefined && metric.labels !== null) {
    labels = checkLabels(metric.labels, prefix);
    labelsJson = JSON.stringify(labels);
  }
  const eventId =
    metric.eventId === undefined || metric.eventId === null
      ? null
      : checkText(metric.eventId, prefix, 'eventId', limits.maxEventIdLength);
  return { name, value: storedValue, recordedAt, labels, labelsJson, eventId };
}

export interface ValidFilter {
  name: string | undefined;
  since: number | undefined;
  until: number | undefined;
}

/** Validates a count filter: `since <= recordedAt < until`, every field optional. Refusals are InvalidFilterError. */
export function validateFilter(input: unknown): ValidFilter {
  if (input === undefined) return { name: undefined, since: undefined, until: undefined };
  try {
    if (!isPlainObject(input)) throw new ValidationError('filter', `must be an object, got ${describe(input)}`);
    for (const key in input) {
      if (!countFields.has(key)) throw new ValidationError(`filter.${key}`, 'is not a field of a count filter');
    }
    const filter = input as CountFilter;
    const name =
      filter.name === undefined ? undefined : checkText(filter.name, 'filter.', 'name', limits.maxNameLength);
    const since = filter.since === undefined ? undefined : checkTimestamp(filter.since, 'filter.', 'since');
    const until = filter.until === undefined ? undefined : checkTimestamp(filter.until, 'filter.', 'until');
    if (since !== undefined && until !== undefined && since > until) {
      throw new ValidationError('filter.since', `must not be after filter.until (${since} > ${until})`);
    }
    return { name, since, until };
  } catch (error) {
    // The checks are shared with metrics; the error says a filter, not a metric, was refused.
    if (error instanceof ValidationError) throw new InvalidFilterError(error.field, error.reason);
    throw error;
  }
}

// Field names (`rows[3].labels.host`) are built only when a check fails: the hot path allocates none.

/** Why `value` is not an acceptable name, key or id, or undefined when it is. */
function textProblem(value: unknown, maxLength: number): string | undefined {
  if (typeof value !== 'string') return `must be a string, got ${describe(value)}`;
  if (value.length === 0) return 'must not be empty';
  if (value.length > maxLength) return `must be at most ${maxLength} characters, got ${value.length}`;
  if (controlCharacter.test(value)) return 'must not contain control characters';
  // A lone surrogate cannot be encoded as UTF-8: SQLite would store U+FFFD, not the caller's text.
  if (!value.isWellFormed()) return 'must be well-formed UTF-16 (it has a lone surrogate)';
  return undefined;
}

export function checkText(value: unknown, prefix: string, name: string, maxLength: number): string {
  const problem = textProblem(value, maxLength);
  if (problem !== undefined) throw new ValidationError(prefix + name, problem);
  return value as string;
}

export function checkTimestamp(value: unknown, prefix: string, name: string): number {
  let ms: number;
  if (isDate(value)) {
    ms = Date.prototype.getTime.call(value);
    if (Number.isNaN(ms)) throw new ValidationError(prefix + name, 'must be a valid Date, got an Invalid Date');
  } else if (typeof value === 'number') {
    if (!Number.isInteger(value)) {
      throw new ValidationError(prefix + name, `must be a Date or an integer of epoch milliseconds, got ${value}`);
    }
    ms = value;
  } else {
    throw new ValidationError(prefix + name, `must be a Date or epoch milliseconds, got ${describe(value)}`);
  }
  if (Math.abs(ms) > limits.maxAbsTimestampMs) {
    throw new ValidationError(prefix + name, `must be within ±${limits.maxAbsTimestampMs} ms of the epoch, got ${ms}`);
  }
  return ms;
}

export function checkLabels(value: unknown, prefix: string): MetricLabels {
  if (!isPlainObject(value)) {
    throw new ValidationError(labelsField(prefix), `must be a flat object of strings, got ${describe(value)}`);
  }
  const keys = Object.keys(value);
  if (keys.length > limits.maxLabels) {
    throw new ValidationError(labelsField(prefix), `must have at most ${limits.maxLabels} labels, got ${keys.length}`);
  }
  // A fresh object: later changes by the caller cannot alter what was validated.
  const labels: MetricLabels = {};
  for (const key of keys) {
    if (key.length === 0) throw new ValidationError(labelsField(prefix), 'must not have an empty key');
    const keyProblem = textProblem(key, limits.maxLabelKeyLength);
    if (keyProblem !== undefined) throw new ValidationError(`${labelField(prefix, key)} (key)`, keyProblem);
    const labelValue = (value as Record<string, unknown>)[key];
    if (typeof labelValue !== 'string') {
      throw new ValidationError(labelField(prefix, key), `must be a string, got ${describe(labelValue)}`);
    }
    if (labelValue.length > limits.maxLabelValueLength) {
      throw new ValidationError(
        labelField(prefix, key),
        `must be at most ${limits.maxLabelValueLength} characters, got ${labelValue.length}`,
      );
    }
    if (!labelValue.isWellFormed()) {
      throw new ValidationError(labelField(prefix, key), 'must be well-formed UTF-16 (it has a lone surrogate)');
    }
    if (key === '__proto__') {
      // Assignment would call the prototype setter and drop the label; define it as the own key JSON.parse makes.
      Object.defineProperty(labels, key, { value: labelValue, enumerable: true, writable: true, configurable: true });
    } else {
      labels[key] = labelValue;
    }
  }
  return labels;
}

function labelsField(prefix: string): string {
  return `${prefix}labels`;
}

function labelField(prefix: string, key: string): string {
  return `${prefix}labels.${key.length > 40 ? `${key.slice(0, 40)}…` : key}`;
}

/** An object literal, JSON.parse's output or `Object.create(null)`, from this realm or another (vm, worker). */
export function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const prototype = Object.getPrototypeOf(value);
  if (prototype === Object.prototype || prototype === null) return true;
  // Another realm's Object.prototype: the root of its chain, with the plain-object tag.
  return Object.getPrototypeOf(prototype) === null && Object.prototype.toString.call(value) === '[object Object]';
}

/** A Date from this realm or another (`instanceof` fails across realms). */
function isDate(value: unknown): value is Date {
  return Object.prototype.toString.call(value) === '[object Date]';
}

export function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (isDate(value)) return 'a Date';
  if (typeof value === 'number') return `${value}`;
  if (typeof value === 'object') return `an instance of ${(value as object).constructor?.name ?? 'Object'}`;
  return typeof value;
}

declare global {
  // ES2024's String.prototype.isWellFormed, which Node 20 has. The workspace's lib stays ES2023,
  // so that no other ES2024 API (absent from Node 20) type-checks by accident.
  interface String {
    isWellFormed(): boolean;
  }
}
