import { rmSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { holdWriteLock, postJson, rawExchange, request, sleep, storedRows, useServices } from './helpers.ts';

/** Error bodies: a stable code, a message, the field; never a stack, a path or SQL. */
function expectCleanError(body: unknown, path: string) {
  const text = JSON.stringify(body);
  expect(Object.keys(body as object).sort()).toEqual(['error', 'field', 'message']);
  expect(text).not.toContain(path);
  expect(text).not.toMatch(/\bat .+:\d+:\d+|INSERT|SELECT|\.ts\b|\/tmp\//);
}

describe('the service over real HTTP', () => {
  const start = useServices('service-test-');

  it('records one metric (201 with the stored row), a batch (201 with the rows), counts them, and is healthy', async () => {
    const { url, path, service } = await start();
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);

    const one = await postJson(url, {
      name: 'job.ms',
      value: 12.5,
      recordedAt: '2026-11-22T10:00:00.000Z',
      labels: { job: 'resize' },
      eventId: 'e-1',
    });
    expect(one.status).toBe(201);
    expect(one.body).toEqual({
      id: 1,
      name: 'job.ms',
      value: 12.5,
      recordedAt: '2026-11-22T10:00:00.000Z',
      labels: { job: 'resize' },
      eventId: 'e-1',
    });

    const epoch = Date.parse('2026-11-22T11:00:00Z');
    const batch = await postJson(url, [
      { name: 'job.ms', value: 1, recordedAt: epoch },
      { name: 'other', value: 2 },
    ]);
    expect(batch.status).toBe(201);
    expect(batch.body).toMatchObject([
      { id: 2, name: 'job.ms', recordedAt: '2026-11-22T11:00:00.000Z', labels: null, eventId: null },
      { id: 3, name: 'other' },
    ]);
    expect(await postJson(url, [])).toMatchObject({ status: 201, body: [] });

    expect(await request(`${url}/metrics/count`)).toMatchObject({ status: 200, body: { count: 3 } });
    expect(await request(`${url}/metrics/count?name=job.ms`)).toMatchObject({ body: { count: 2 } });
    const window = `since=2026-11-22T10:30:00Z&until=${epoch + 1}`;
    expect(await request(`${url}/metrics/count?name=job.ms&${window}`)).toMatchObject({ body: { count: 1 } });
    expect(await request(`${url}/metrics/count?since=2026-11-23`)).toMatchObject({ body: { count: 1 } });

    expect(await request(`${url}/healthz`)).toMatchObject({ status: 200, body: { status: 'ok' } });

    await service.close();
    expect(storedRows(path)).toBe(3);
  });

  it.each([
    ['a wrong type', { name: 'a', value: 'high' }, 'value'],
    ['a missing field', { value: 1 }, 'name'],
    ['an unknown field (a typo)', { name: 'a', value: 1, recorded_at: 5 }, 'recorded_at'],
    ['a label that is not a string', { name: 'a', value: 1, labels: { host: 5 } }, 'labels.host'],
    [
      'a timestamp that is neither epoch ms nor ISO 8601',
      { name: 'a', value: 1, recordedAt: 'yesterday' },
      'recordedAt',
    ],
    // Past the schema, refused by the repository's own validation:
    ['a control character in the name', { name: 'a\u0007b', value: 1 }, 'name'],
    ['a timestamp out of range', { name: 'a', value: 1, recordedAt: 9e15 }, 'recordedAt'],
    ['not an object', 42, 'metric'],
  ])('refuses %s with 400 INVALID_METRIC naming the field', async (_label, body, field) => {
    const { url, path } = await start();
    const response = await postJson(url, body);
    expect(response.status).toBe(400);
    expect(response.body).toMatchObject({ error: 'INVALID_METRIC', field });
    expectCleanError(response.body, path);
  });

  it('refuses a malformed body (400), a non-JSON one (415), an empty one (400), a 2 MiB one (413)', async () => {
    const { url, path, service } = await start();
    const malformed = await postJson(url, '{"name": "a", "value": ');
    expect(malformed).toMatchObject({ status: 400, body: { error: 'MALFORMED_JSON', field: 'body' } });
    expectCleanError(malformed.body, path);
    const prototypeKey = await postJson(url, '{"name": "a", "value": 1, "__proto__": {"x": 1}}');
    expect(prototypeKey).toMatchObject({ status: 400, body: { error: 'MALFORMED_JSON' } });
    const form = await request(`${url}/metrics`, { method: 'POST', body: 'name=a&value=1' });
    expect(form).toMatchObject({ status: 415, body: { error: 'UNSUPPORTED_MEDIA_TYPE' } });
    const empty = await postJson(url, '');
    expect(empty).toMatchObject({ status: 400, body: { error: 'MALFORMED_JSON' } });

    const twoMiB = JSON.stringify({ name: 'big', value: 1, labels: { pad: 'x'.repeat(2 * 1024 * 1024) } });
    const tooLarge = await postJson(url, twoMiB);
    expect(tooLarge).toMatchObject({ status: 413, body: { error: 'BODY_TOO_LARGE', field: 'body' } });
    // The service carries on.
    expect(await postJson(url, { name: 'after', value: 1 })).toMatchObject({ status: 201 });
    await service.close();
    expect(storedRows(path)).toBe(1);
  });

  it('refuses a duplicate eventId with 409 DUPLICATE_EVENT; the first row stays', async () => {
    const { url, path, service } = await start();
    expect(await postJson(url, { name: 'a', value: 1, eventId: 'once' })).toMatchObject({ status: 201 });
    const again = await postJson(url, { name: 'a', value: 2, eventId: 'once' });
    expect(again).toMatchObject({ status: 409, body: { error: 'DUPLICATE_EVENT', field: 'eventId' } });
    expectCleanError(again.body, path);
    await service.close();
    expect(storedRows(path, 'event_id = ?', 'once')).toBe(1);
    expect(storedRows(path, 'value = 2')).toBe(0);
  });

  it('stores nothing of a batch with one bad row (schema, repository or duplicate), and names the row', async () => {
    const { url, path, service } = await start();
    expect(await postJson(url, { name: 'seed', value: 0, eventId: 'taken' })).toMatchObject({ status: 201 });
    const rows = (bad: object) => [{ name: 'batch', value: 1 }, { name: 'batch', value: 2 }, bad];

    const schema = await postJson(url, rows({ name: 'batch', value: null }));
    expect(schema).toMatchObject({ status: 400, body: { error: 'INVALID_METRIC', field: 'rows[2].value' } });
    const repository = await postJson(url, rows({ name: 'batch', value: 3, labels: { host: 'lone \ud800' } }));
    expect(repository).toMatchObject({ status: 400, body: { error: 'INVALID_METRIC', field: 'rows[2].labels.host' } });
    const duplicate = await postJson(url, rows({ name: 'batch', value: 3, eventId: 'taken' }));
    expect(duplicate).toMatchObject({ status: 409, body: { error: 'DUPLICATE_EVENT' } });

    expect(await request(`${url}/metrics/count?name=batch`)).toMatchObject({ body: { count: 0 } });
    await service.close();
    expect(storedRows(path, 'name = ?', 'batch')).toBe(0);
    expect(storedRows(path)).toBe(1);
  });

  it.each([
    ['since=yesterday', 'since'],
    ['until=2026-13-45T99:00:00Z', 'until'],
    ['since=2000&until=1000', 'since'],
    ['name=', 'name'],
    ['colour=red', 'colour'],
  ])('refuses the count filter %s with 400 INVALID_FILTER naming the parameter', async (query, field) => {
    const { url, path } = await start();
    const response = await request(`${url}/metrics/count?${query}`);
    expect(response).toMatchObject({ status: 400, body: { error: 'INVALID_FILTER', field } });
    expectCleanError(response.body, path);
  });

  it('answers 503 LOCK_TIMEOUT with Retry-After while another writer holds the lock past the deadline, then 201', async () => {
    const { url, path, service } = await start({ lockTimeoutMs: 300 });
    const lock = holdWriteLock(path);
    const refused = await postJson(url, { name: 'a', value: 1 });
    // The service stayed responsive while its write waited.
    const health = await request(`${url}/healthz`);
    lock.release();
    expect(refused).toMatchObject({ status: 503, body: { error: 'LOCK_TIMEOUT', field: null } });
    expect(refused.headers.get('retry-after')).toBe('1');
    expectCleanError(refused.body, path);
    expect(health.status).toBe(200);
    expect(await postJson(url, { name: 'a', value: 2 })).toMatchObject({ status: 201 });
    await service.close();
    expect(storedRows(path)).toBe(1);
  });

  it('answers 503 QUEUE_FULL with Retry-After when the write queue is full; the queued row is stored', async () => {
    const { url, path, service } = await start({ maxQueuedRows: 1 });
    const lock = holdWriteLock(path);
    const queued = postJson(url, { name: 'a', value: 1 });
    // Let the first row reach the queue, where it waits for the lock.
    await sleep(300);
    const refused = await postJson(url, { name: 'a', value: 2 });
    lock.release();
    expect(refused).toMatchObject({ status: 503, body: { error: 'QUEUE_FULL' } });
    expect(refused.headers.get('retry-after')).toBe('1');
    expect(await queued).toMatchObject({ status: 201, body: { value: 1 } });
    await service.close();
    expect(storedRows(path)).toBe(1);
  });

  it('answers 500 DATABASE_ERROR without path, SQL or stack when the file was deleted under it', async () => {
    const { url, path } = await start();
    expect(await postJson(url, { name: 'a', value: 1 })).toMatchObject({ status: 201 });
    // unlink takes no descriptor: the service's SQLite locks are untouched.
    rmSync(path);
    const failed = await postJson(url, { name: 'a', value: 2 });
    expect(failed).toMatchObject({ status: 500, body: { error: 'DATABASE_ERROR', field: null } });
    expectCleanError(failed.body, path);
    expect(JSON.stringify(failed.body)).not.toContain('SQLITE');
    const count = await request(`${url}/metrics/count`);
    expect(count).toMatchObject({ status: 500, body: { error: 'DATABASE_ERROR' } });
  });

  it('answers 404 NOT_FOUND for an unknown route', async () => {
    const { url } = await start();
    expect(await request(`${url}/nope`)).toMatchObject({
      status: 404,
      body: { error: 'NOT_FOUND', field: null },
    });
  });

  it('refuses at the HTTP level in the same shape: 431 for huge headers, 400 for bytes that are not HTTP', async () => {
    const { url, path } = await start();
    const huge = await rawExchange(url, `GET /healthz HTTP/1.1\r\nHost: x\r\nX-Pad: ${'x'.repeat(20_000)}\r\n\r\n`);
    expect(huge).toMatchObject({ status: 431, body: { error: 'HEADERS_TOO_LARGE', field: null } });
    expectCleanError(huge.body, path);
    const garbage = await rawExchange(url, 'NOT HTTP AT ALL\r\n\r\n');
    expect(garbage).toMatchObject({ status: 400, body: { error: 'BAD_REQUEST', field: null } });
    expectCleanError(garbage.body, path);
    const badLength = await rawExchange(
      url,
      'POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: abc\r\n\r\n{}',
    );
    expect(badLength).toMatchObject({ status: 400, body: { error: 'BAD_REQUEST' } });
    expect(await request(`${url}/healthz`)).toMatchObject({ status: 200 });
  });
});
