import { afterEach, describe, expect, it } from 'vitest';
import { serviceDefaults } from '../src/index.ts';
import {
  bearer,
  openSlowConnections,
  postJson,
  rawExchange,
  request,
  sleep,
  storedRows,
  testToken,
  timed,
  useServices,
} from './helpers.ts';

describe('limits over real HTTP', () => {
  const start = useServices('service-limits-');
  const cleanups: (() => void)[] = [];
  afterEach(() => {
    for (const cleanup of cleanups.splice(0)) cleanup();
  });

  it('sets the server timeouts and caps: headers within 20 s by default', async () => {
    const { service } = await start();
    const server = service.app.server;
    expect(server.headersTimeout).toBe(serviceDefaults.headersTimeoutMs);
    expect(server.headersTimeout).toBeLessThanOrEqual(20_000);
    expect(server.requestTimeout).toBe(serviceDefaults.requestTimeoutMs);
    expect(server.keepAliveTimeout).toBe(serviceDefaults.keepAliveTimeoutMs);
    expect(server.maxConnections).toBe(serviceDefaults.maxConnections);
  });

  it('answers 429 RATE_LIMITED with Retry-After past the limit, per client; /healthz stays free', async () => {
    const { url, path, service } = await start({ token: testToken, rateLimitMax: 3, rateLimitWindowMs: 60_000 });
    expect(await postJson(url, { name: 'a', value: 1 }, bearer())).toMatchObject({ status: 201 });
    // Requests without the token count too: guessing tokens is limited as well.
    expect(await postJson(url, { name: 'a', value: 2 })).toMatchObject({ status: 401 });
    expect(await postJson(url, { name: 'a', value: 3 }, bearer())).toMatchObject({ status: 201 });
    const limited = await postJson(url, { name: 'a', value: 4 }, bearer());
    expect(limited).toMatchObject({ status: 429, body: { error: 'RATE_LIMITED', field: null } });
    expect(Object.keys(limited.body as object).sort()).toEqual(['error', 'field', 'message']);
    const retryAfter = Number(limited.headers.get('retry-after'));
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    expect(retryAfter).toBeLessThanOrEqual(60);
    expect(await request(`${url}/metrics/count`, { headers: bearer() })).toMatchObject({ status: 429 });
    for (let i = 0; i < 5; i++) expect(await request(`${url}/healthz`)).toMatchObject({ status: 200 });
    await service.close();
    expect(storedRows(path)).toBe(2);
  });

  it('has no rate limit by default on loopback, and one beyond it', async () => {
    const loopback = await start();
    const response = await postJson(loopback.url, { name: 'a', value: 1 });
    expect(response.headers.get('x-ratelimit-limit')).toBeNull();
    const exposed = await start({ host: '0.0.0.0', token: testToken });
    const local = `http://127.0.0.1:${exposed.service.port}`;
    const limited = await postJson(local, { name: 'a', value: 1 }, bearer());
    expect(limited.headers.get('x-ratelimit-limit')).toBe('6000');
  });

  it('closes a connection that never finishes its headers, with 408 REQUEST_TIMEOUT', async () => {
    const { url } = await start({ headersTimeoutMs: 500, requestTimeoutMs: 1000 });
    const slow = await rawExchange(url, 'GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ');
    expect(slow.status).toBe(408);
    expect(slow.body).toEqual({
      error: 'REQUEST_TIMEOUT',
      message: 'the request was not received in time',
      field: null,
    });
    // Closed by the server within the timeout and one check interval, with a margin for a busy machine.
    expect(slow.closedAfterMs).toBeGreaterThanOrEqual(400);
    expect(slow.closedAfterMs).toBeLessThan(5000);
  });

  it('closes a connection that never finishes its body; nothing is stored', async () => {
    const { url, path, service } = await start({ headersTimeoutMs: 500, requestTimeoutMs: 1000 });
    const body = JSON.stringify({ name: 'slow', value: 1 });
    const slow = await rawExchange(
      url,
      `POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${body.length + 50}\r\n\r\n${body}`,
    );
    expect(slow.status).toBe(408);
    expect(slow.body).toMatchObject({ error: 'REQUEST_TIMEOUT' });
    expect(slow.closedAfterMs).toBeLessThan(6000);
    await service.close();
    expect(storedRows(path)).toBe(0);
  });

  it('answers /healthz and authorized POSTs within a second while 200 slow connections stay open', async () => {
    const { url, path, service } = await start({ token: testToken });
    const slow = await openSlowConnections(url, 200);
    cleanups.push(() => slow.destroy());
    await sleep(100);
    expect(service.connections.size).toBeGreaterThanOrEqual(200);
    for (let i = 0; i < 5; i++) {
      const health = await timed(() => request(`${url}/healthz`));
      expect(health.result.status).toBe(200);
      expect(health.ms).toBeLessThan(1000);
      const post = await timed(() => postJson(url, { name: 'during', value: i }, bearer()));
      expect(post.result.status).toBe(201);
      expect(post.ms).toBeLessThan(1000);
    }
    expect(slow.closed()).toBe(0);
    slow.destroy();
    await service.close();
    expect(storedRows(path)).toBe(5);
  });

  it('caps connections per client: one address cannot take the others’ place', async () => {
    const { url, service } = await start({ token: testToken, maxConnectionsPerClient: 50 });
    // Another loopback address stands for another host.
    const slow = await openSlowConnections(url, 120, { localAddress: '127.0.0.2' });
    cleanups.push(() => slow.destroy());
    await sleep(200);
    expect(slow.closed()).toBe(70);
    expect(service.connections.size).toBe(50);
    expect(await request(`${url}/healthz`)).toMatchObject({ status: 200 });
    expect(await postJson(url, { name: 'a', value: 1 }, bearer())).toMatchObject({ status: 201 });
    const scrape = await (await fetch(`${url}/prometheus`, { headers: bearer() })).text();
    expect(scrape).toContain('metrics_service_dropped_connections_total{reason="max_connections_per_client"} 70');
  });

  it('caps connections in all: past maxConnections a new one is closed at once', async () => {
    const { url } = await start({ maxConnections: 20 });
    const slow = await openSlowConnections(url, 30);
    cleanups.push(() => slow.destroy());
    await sleep(200);
    expect(slow.closed()).toBe(10);
    slow.destroy();
    await sleep(100);
    expect(await request(`${url}/healthz`)).toMatchObject({ status: 200 });
  });
});
