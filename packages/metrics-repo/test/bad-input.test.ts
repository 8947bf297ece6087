import BetterSqlite3 from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import {
  DuplicateEventError,
  InvalidFilterError,
  limits,
  type MetricInput,
  type MetricsRepo,
  type MetricsRepoError,
  openMetricsRepo,
  ValidationError,
} from '../src/index.ts';
import { storedRows, useTempDatabase } from './helpers.ts';

type Call = (repo: MetricsRepo) => Promise<unknown>;
interface BadCase {
  what: string;
  call: Call;
  error: new (...args: never[]) => MetricsRepoError;
  /** The field the error must name. */
  field?: string;
}

const insert =
  (metric: unknown): Call =>
  (repo) =>
    repo.insert(metric as never);
const insertMany =
  (rows: unknown): Call =>
  (repo) =>
    repo.insertMany(rows as never);
const count =
  (filter: unknown): Call =>
  (repo) =>
    repo.count(filter as never);

const ok = { name: 'ok.metric', value: 1 };
const manyLabels = Object.fromEntries(Array.from({ length: limits.maxLabels + 1 }, (_, i) => [`k${i}`, 'v']));
const cyclic: Record<string, unknown> = { a: 'x' };
cyclic.self = cyclic;

const badCases: BadCase[] = [
  { what: 'undefined metric', call: insert(undefined), error: ValidationError, field: 'metric' },
  { what: 'null metric', call: insert(null), error: ValidationError, field: 'metric' },
  { what: 'a string as metric', call: insert('cpu=1'), error: ValidationError, field: 'metric' },
  { what: 'an array as metric', call: insert([ok]), error: ValidationError, field: 'metric' },
  { what: 'a class instance as metric', call: insert(new Date()), error: ValidationError, field: 'metric' },
  { what: 'missing name', call: insert({ value: 1 }), error: ValidationError, field: 'name' },
  { what: 'empty name', call: insert({ name: '', value: 1 }), error: ValidationError, field: 'name' },
  { what: 'numeric name', call: insert({ name: 42, value: 1 }), error: ValidationError, field: 'name' },
  {
    what: 'oversized name',
    call: insert({ name: 'n'.repeat(limits.maxNameLength + 1), value: 1 }),
    error: ValidationError,
    field: 'name',
  },
  { what: 'name with a newline', call: insert({ name: 'a\nb', value: 1 }), error: ValidationError, field: 'name' },
  { what: 'name with NUL', call: insert({ name: 'a\u0000b', value: 1 }), error: ValidationError, field: 'name' },
  { what: 'name with ESC', call: insert({ name: '\u001b[31mred', value: 1 }), error: ValidationError, field: 'name' },
  {
    what: 'name with a lone surrogate',
    call: insert({ name: 'a\ud800b', value: 1 }),
    error: ValidationError,
    field: 'name',
  },
  { what: 'missing value', call: insert({ name: 'a' }), error: ValidationError, field: 'value' },
  { what: 'NaN value', call: insert({ name: 'a', value: Number.NaN }), error: ValidationError, field: 'value' },
  {
    what: '+Infinity value',
    call: insert({ name: 'a', value: Number.POSITIVE_INFINITY }),
    error: ValidationError,
    field: 'value',
  },
  {
    what: '-Infinity value',
    call: insert({ name: 'a', value: Number.NEGATIVE_INFINITY }),
    error: ValidationError,
    field: 'value',
  },
  { what: 'string value', call: insert({ name: 'a', value: '1' }), error: ValidationError, field: 'value' },
  { what: 'bigint value', call: insert({ name: 'a', value: 1n }), error: ValidationError, field: 'value' },
  { what: 'boolean value', call: insert({ name: 'a', value: true }), error: ValidationError, field: 'value' },
  {
    what: 'Invalid Date',
    call: insert({ ...ok, recordedAt: new Date('nope') }),
    error: ValidationError,
    field: 'recordedAt',
  },
  { what: 'fractional ms', call: insert({ ...ok, recordedAt: 1.5 }), error: ValidationError, field: 'recordedAt' },
  {
    what: 'timestamp out of range',
    call: insert({ ...ok, recordedAt: 9e15 }),
    error: ValidationError,
    field: 'recordedAt',
  },
  {
    what: 'timestamp as string',
    call: insert({ ...ok, recordedAt: '2026-01-01' }),
    error: ValidationError,
    field: 'recordedAt',
  },
  { what: 'labels as array', call: insert({ ...ok, labels: ['a'] }), error: ValidationError, field: 'labels' },
  { what: 'labels as string', call: insert({ ...ok, labels: 'a=b' }), error: ValidationError, field: 'labels' },
  {
    what: 'nested label value',
    call: insert({ ...ok, labels: { a: { b: 'c' } } }),
    error: ValidationError,
    field: 'labels.a',
  },
  { what: 'numeric label value', call: insert({ ...ok, labels: { a: 1 } }), error: ValidationError, field: 'labels.a' },
  { what: 'null label value', call: insert({ ...ok, labels: { a: null } }), error: ValidationError, field: 'labels.a' },
  { what: 'cyclic labels', call: insert({ ...ok, labels: cyclic }), error: ValidationError, field: 'labels.self' },
  { what: 'too many labels', call: insert({ ...ok, labels: manyLabels }), error: ValidationError, field: 'labels' },
  { what: 'empty label key', call: insert({ ...ok, labels: { '': 'v' } }), error: ValidationError, field: 'labels' },
  {
    what: 'label key with a control character',
    call: insert({ ...ok, labels: { 'a\tb': 'v' } }),
    error: ValidationError,
    field: 'labels.a\tb (key)',
  },
  {
    what: 'oversized label value',
    call: insert({ ...ok, labels: { a: 'v'.repeat(limits.maxLabelValueLength + 1) } }),
    error: ValidationError,
    field: 'labels.a',
  },
  {
    what: 'label value with a lone surrogate',
    call: insert({ ...ok, labels: { a: '\udc00' } }),
    error: ValidationError,
    field: 'labels.a',
  },
  { what: 'empty eventId', call: insert({ ...ok, eventId: '' }), error: ValidationError, field: 'eventId' },
  { what: 'numeric eventId', call: insert({ ...ok, eventId: 7 }), error: ValidationError, field: 'eventId' },
  {
    what: 'unknown field (typo)',
    call: insert({ ...ok, recorded_at: 1 }),
    error: ValidationError,
    field: 'recorded_at',
  },
  { what: 'caller-chosen id', call: insert({ ...ok, id: 1 }), error: ValidationError, field: 'id' },
  { what: 'insertMany of a non-array', call: insertMany(ok), error: ValidationError, field: 'rows' },
  {
    what: 'insertMany with one bad row',
    call: insertMany([ok, ok, { name: 'a', value: Number.NaN }]),
    error: ValidationError,
    field: 'rows[2].value',
  },
  { what: 'insertMany with a null row', call: insertMany([ok, null]), error: ValidationError, field: 'rows[1]' },
  {
    what: 'duplicate eventId inside one insertMany',
    call: insertMany([
      { ...ok, eventId: 'twice' },
      { ...ok, eventId: 'twice' },
    ]),
    error: DuplicateEventError,
  },
  { what: 'count filter as string', call: count('name'), error: InvalidFilterError, field: 'filter' },
  {
    what: 'count with since > until',
    call: count({ since: 2000, until: 1000 }),
    error: InvalidFilterError,
    field: 'filter.since',
  },
  {
    what: 'count with an Invalid Date',
    call: count({ until: new Date('x') }),
    error: InvalidFilterError,
    field: 'filter.until',
  },
  { what: 'count with an empty name', call: count({ name: '' }), error: InvalidFilterError, field: 'filter.name' },
  {
    what: 'count with an unknown field',
    call: count({ label: 'x' }),
    error: InvalidFilterError,
    field: 'filter.label',
  },
];

describe('bad input', () => {
  const tempDatabase = useTempDatabase();

  it(`has at least 30 cases (${badCases.length})`, () => {
    expect(badCases.length).toBeGreaterThanOrEqual(30);
  });

  it.each(badCases)('$what: typed error naming the field, nothing stored', async ({ call, error, field }) => {
    const path = tempDatabase();
    const repo = await openMetricsRepo({ path });
    // Valid writers running at the same moment are unaffected.
    const neighbours = Array.from({ length: 20 }, (_, i) => repo.insert({ name: 'neighbour', value: i }));
    const rejection = await call(repo).then(
      () => undefined,
      (reason: unknown) => reason,
    );
    expect(rejection).toBeInstanceOf(error);
    if (field !== undefined) {
      const code = rejection instanceof InvalidFilterError ? 'INVALID_FILTER' : 'INVALID_METRIC';
      expect(rejection).toMatchObject({ code, field });
      expect((rejection as Error).message).toContain(field);
    }
    await expect(Promise.all(neighbours)).resolves.toHaveLength(20);
    await repo.close();
    expect(storedRows(path)).toBe(20);
  });

  it('legal but unusual input is stored and read back byte for byte', async () => {
    const path = tempDatabase();
    const repo = await openMetricsRepo({ path });
    const unusual: MetricInput[] = [
      { name: 'n'.repeat(limits.maxNameLength), value: -0.000001 },
      { name: "'; DROP TABLE metrics; --", value: Number.MAX_VALUE, eventId: "1' OR '1'='1" },
      { name: 'SELECT * FROM metrics', value: Number.MIN_VALUE, labels: { sql: 'DELETE FROM metrics;', '"k"': "'v'" } },
      { name: 'emoji 🚀 ✓', value: -1e308, labels: { '🏷️': '👍🏽 family: 👨‍👩‍👧' } },
      { name: 'labels may hold control text', value: 0, labels: { note: 'tab\there\nnewline\u0000nul' } },
      { name: 'recordedAt at the limits', value: 1, recordedAt: -limits.maxAbsTimestampMs },
      { name: 'empty labels', value: 2, labels: {} },
      { name: 'null optionals', value: 3, labels: null, eventId: null },
    ];
    const stored = await repo.insertMany(unusual);
    await repo.close();
    const sqlite = new BetterSqlite3(path, { readonly: true });
    const rows = sqlite.prepare('SELECT * FROM metrics ORDER BY id').all() as Record<string, unknown>[];
    sqlite.close();
    expect(rows).toHaveLength(unusual.length);
    unusual.forEach((input, i) => {
      const row = rows[i] as Record<string, unknown>;
      expect(row.name).toBe(input.name);
      expect(Object.is(row.value, input.value)).toBe(true);
      expect(row.labels === null ? null : JSON.parse(row.labels as string)).toEqual(input.labels ?? null);
      expect(row.event_id).toBe(input.eventId ?? null);
      expect(stored[i]).toMatchObject({ name: input.name, labels: input.labels ?? null });
    });
    // The SQL-looking text was stored, not executed: the table is still there, with every row.
    expect(storedRows(path)).toBe(unusual.length);
  });

  it('labels are copied at the call: changing the object afterwards changes nothing', async () => {
    const repo = await openMetricsRepo({ path: tempDatabase() });
    const labels: Record<string, string> = { a: 'before' };
    const pending = repo.insert({ name: 'copy', value: 1, labels });
    labels.a = 'after';
    labels.b = 'added';
    expect((await pending).labels).toEqual({ a: 'before' });
    await repo.close();
  });
});
