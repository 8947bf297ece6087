import { describe, expect, it } from 'vitest';
import { bearer, holdWriteLock, postJson, scrape, storedRows, testToken, useServices, waitFor } from './helpers.ts';

describe('GET /prometheus', () => {
  const start = useServices('service-prometheus-');

  it('counts rows stored as the database holds them, batch sizes, commit latency, rejections by code', async () => {
    const { url, path, service } = await start({ token: testToken });
    const auth = bearer();
    for (let i = 0; i < 5; i++) expect((await postJson(url, { name: 'one', value: i }, auth)).status).toBe(201);
    const batch = Array.from({ length: 40 }, (_, i) => ({ name: 'batch', value: i }));
    expect((await postJson(url, batch, auth)).status).toBe(201);
    expect((await postJson(url, { name: 'dup', value: 1, eventId: 'e' }, auth)).status).toBe(201);
    expect((await postJson(url, { name: 'dup', value: 2, eventId: 'e' }, auth)).status).toBe(409);
    expect((await postJson(url, { name: 'bad', value: 'x' }, auth)).status).toBe(400);
    expect((await postJson(url, '{"broken', auth)).status).toBe(400);
    expect((await postJson(url, { name: 'a', value: 1 })).status).toBe(401);

    const response = await fetch(`${url}/prometheus`, { headers: auth });
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    const text = await response.text();
    const sample = (name: string) => {
      const line = text.split('\n').find((candidate) => candidate.startsWith(`${name} `));
      return line === undefined ? undefined : Number(line.slice(name.length + 1));
    };
    expect(text).toContain('# TYPE metrics_service_rows_stored_total counter');
    expect(sample('metrics_service_rows_stored_total')).toBe(46);
    // Eight insert calls reached the store: seven committed, the duplicate refused by it (the schema and
    // the JSON parser refused the other two before any call).
    expect(sample('metrics_service_batch_rows_count')).toBe(8);
    expect(sample('metrics_service_batch_rows_sum')).toBe(5 + 40 + 1 + 1);
    expect(sample('metrics_service_batch_rows_bucket{le="1"}')).toBe(7);
    expect(sample('metrics_service_batch_rows_bucket{le="50"}')).toBe(8);
    // Only commits are timed.
    expect(sample('metrics_service_commit_duration_seconds_count')).toBe(7);
    expect(sample('metrics_service_commit_duration_seconds_sum')).toBeGreaterThan(0);
    expect(sample('metrics_service_queued_rows')).toBe(0);
    expect(sample('metrics_service_rejected_requests_total{code="DUPLICATE_EVENT"}')).toBe(1);
    expect(sample('metrics_service_rejected_requests_total{code="INVALID_METRIC"}')).toBe(1);
    expect(sample('metrics_service_rejected_requests_total{code="MALFORMED_JSON"}')).toBe(1);
    expect(sample('metrics_service_rejected_requests_total{code="UNAUTHORIZED"}')).toBe(1);
    // prom-client's default process metrics.
    expect(text).toContain('process_cpu_user_seconds_total');
    expect(text).toContain('nodejs_eventloop_lag_seconds');
    expect(text).toContain('process_resident_memory_bytes');

    await service.close();
    expect(storedRows(path)).toBe(46);
  });

  it('shows the rows queued behind a foreign lock', async () => {
    const { url, path, service } = await start();
    const lock = holdWriteLock(path);
    const posted = [
      postJson(url, { name: 'a', value: 1 }),
      postJson(url, [
        { name: 'b', value: 1 },
        { name: 'b', value: 2 },
      ]),
    ];
    await waitFor('3 rows queued', async () => (await scrape(url, 'metrics_service_queued_rows')) === 3);
    lock.release();
    expect((await Promise.all(posted)).map((response) => response.status)).toEqual([201, 201]);
    expect(await scrape(url, 'metrics_service_queued_rows')).toBe(0);
    expect(await scrape(url, 'metrics_service_rows_stored_total')).toBe(3);
    await service.close();
    expect(storedRows(path)).toBe(3);
  });
});
