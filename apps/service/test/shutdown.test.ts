import { connect } from 'node:net';
import { useTempDatabase, useTempDir } from '@repo/testkit';
import { describe, expect, it } from 'vitest';
import { startService } from '../src/index.ts';
import {
  bearer,
  holdWriteLock,
  openSlowConnections,
  postJson,
  type RawExchange,
  rawExchange,
  request,
  scrape,
  sleep,
  startCli,
  storedEventIds,
  storedRows,
  testToken,
  waitFor,
} from './helpers.ts';

const clients = 8;

describe('the CLI (`pnpm service`) in its own process', () => {
  const tempDatabase = useTempDatabase('service-cli-');
  const tempDir = useTempDir('service-cli-');

  it('on SIGTERM with requests in flight: answers them, stores every row it acknowledged, exits 0 within 10 s', async () => {
    const path = tempDatabase();
    const cli = await startCli({ METRICS_DB: path });
    const acknowledged: string[] = [];
    const statuses: Record<string, number> = {};
    let signalled = false;
    let acknowledgedAfterSignal = 0;
    let inFlight = 0;

    // Clients posting one row after the other until the service stops answering.
    const client = async (id: number) => {
      for (let i = 0; ; i++) {
        const eventId = `client${id}.${i}`;
        let status: number;
        inFlight += 1;
        try {
          status = (await postJson(cli.url, { name: 'load', value: i, eventId })).status;
        } catch {
          return; // The listening socket is closed: the shutdown has begun.
        } finally {
          inFlight -= 1;
        }
        statuses[status] = (statuses[status] ?? 0) + 1;
        if (status !== 201) return;
        acknowledged.push(eventId);
        if (signalled) acknowledgedAfterSignal += 1;
      }
    };
    const load = Array.from({ length: clients }, (_, id) => client(id));
    await sleep(500);
    // Every client's next request now waits for this lock inside the service: in flight at the signal.
    const lock = holdWriteLock(path);
    await sleep(200);
    const inFlightAtSignal = inFlight;
    cli.child.kill('SIGTERM');
    signalled = true;
    await sleep(500);
    lock.release();
    await Promise.all(load);
    const exit = await cli.exited;

    expect(exit).toMatchObject({ code: 0, signal: null });
    expect(exit.afterMs).toBeLessThan(10_000);
    expect(inFlightAtSignal).toBe(clients);
    // The requests that waited through the signal were answered 201, after it.
    expect(acknowledgedAfterSignal).toBeGreaterThanOrEqual(clients);
    expect(acknowledged.length).toBeGreaterThan(clients);
    // Only 201s and the 503s of requests that reached a closing server: nothing failed otherwise.
    expect(Object.keys(statuses).filter((status) => status !== '201' && status !== '503')).toEqual([]);

    // Counted after the process exited, by a connection of our own.
    const stored = storedEventIds(path);
    const missing = acknowledged.filter((eventId) => !stored.has(eventId));
    expect(missing).toEqual([]);
    expect(stored.size).toBe(acknowledged.length);
    expect(cli.logs.some((entry) => entry.msg === 'shut down cleanly')).toBe(true);
  });

  it('on SIGINT exits 0; logs one JSON line per request', async () => {
    const path = tempDatabase();
    const cli = await startCli({ METRICS_DB: path });
    expect(await postJson(cli.url, { name: 'a', value: 1 })).toMatchObject({ status: 201 });
    expect(await request(`${cli.url}/healthz`)).toMatchObject({ status: 200 });
    expect(await postJson(cli.url, { name: 'a', value: 'x' })).toMatchObject({ status: 400 });
    cli.child.kill('SIGINT');
    expect(await cli.exited).toMatchObject({ code: 0 });
    const requestLines = cli.logs.filter((entry) => entry.msg === 'request');
    expect(requestLines.map(({ method, url, statusCode }) => ({ method, url, statusCode }))).toEqual([
      { method: 'POST', url: '/metrics', statusCode: 201 },
      { method: 'GET', url: '/healthz', statusCode: 200 },
      { method: 'POST', url: '/metrics', statusCode: 400 },
    ]);
    expect(requestLines.every((entry) => typeof entry.ms === 'number')).toBe(true);
    expect(cli.logs.filter((entry) => entry.notJson !== undefined)).toEqual([]);
    expect(storedRows(path)).toBe(1);
  });

  it('exits 2 naming a bad setting, and 1 when the database cannot be opened', async () => {
    await expect(startCli({ PORT: 'eighty' })).rejects.toThrow(/exited with code 2.*PORT must be an integer/s);
    await expect(startCli({ LOG_LEVEL: 'loud' })).rejects.toThrow(/exited with code 2.*LOG_LEVEL/s);
    // A directory where the file should be.
    await expect(startCli({ METRICS_DB: tempDir() })).rejects.toThrow(/exited with code 1.*cannot start: NOT_A_FILE/s);
  });

  it('on SIGTERM with 300 requests in flight: 300 × 201, no connection reset, 300 rows stored, exit 0', async () => {
    const path = tempDatabase();
    const inFlight = 300;
    const cli = await startCli({ METRICS_DB: path, METRICS_TOKEN: testToken });
    // Every request waits inside the service for this lock: received, not yet answered.
    const lock = holdWriteLock(path);
    const outcomes = Array.from({ length: inFlight }, (_, i) =>
      postJson(cli.url, { name: 'in-flight', value: i, eventId: `in-flight-${i}` }, bearer()).then(
        (response) => ({ status: response.status, eventId: (response.body as { eventId?: string }).eventId }),
        (error: Error & { cause?: { code?: string } }) => ({ status: 0, error: error.cause?.code ?? error.message }),
      ),
    );
    await waitFor(
      `${inFlight} rows queued`,
      async () => (await scrape(cli.url, 'metrics_service_queued_rows', bearer())) === inFlight,
    );
    cli.child.kill('SIGTERM');
    await sleep(300);
    lock.release();
    const results = await Promise.all(outcomes);
    const exit = await cli.exited;

    expect(results.filter((result) => result.status !== 201)).toEqual([]);
    expect(exit).toMatchObject({ code: 0, signal: null });
    const stored = storedEventIds(path);
    expect(stored.size).toBe(inFlight);
    expect(results.every((result) => 'eventId' in result && stored.has(result.eventId as string))).toBe(true);
    expect(cli.logs.at(-1)).toMatchObject({ msg: 'shut down cleanly' });
  });

  it('cuts off a slow client after the grace period and says so; answers the rest: 201, or a JSON 503', async () => {
    const path = tempDatabase();
    const graceMs = 1500;
    const cli = await startCli({ METRICS_DB: path, METRICS_TOKEN: testToken, SHUTDOWN_GRACE_MS: String(graceMs) });
    const slow = await openSlowConnections(cli.url, 1);
    // A request whose headers end only after the signal, on a connection opened before it.
    const { hostname, port } = new URL(cli.url);
    const late = connect(Number(port), hostname);
    let lateText = '';
    late.on('data', (chunk) => {
      lateText += chunk.toString();
    });
    const lateClosed = new Promise<void>((resolve) => late.once('close', () => resolve()));
    await new Promise((resolve) => late.once('connect', resolve));
    late.write(`GET /metrics/count HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${testToken}\r\n`);

    const lock = holdWriteLock(path);
    const outcomes = Array.from({ length: 20 }, (_, i) =>
      postJson(cli.url, { name: 'a', value: i }, bearer()).then(
        (response) => response.status,
        () => 0,
      ),
    );
    await waitFor(
      '20 rows queued',
      async () => (await scrape(cli.url, 'metrics_service_queued_rows', bearer())) === 20,
    );
    cli.child.kill('SIGTERM');
    // The same stop passed on again (as pnpm does with Ctrl-C) is not a second signal.
    await sleep(50);
    cli.child.kill('SIGINT');
    await sleep(200);
    late.write('\r\n');
    await lateClosed;
    lock.release();
    const statuses = await Promise.all(outcomes);
    const exit = await cli.exited;

    expect(statuses).toEqual(Array(20).fill(201));
    const [head = '', body = ''] = lateText.split('\r\n\r\n');
    expect(head).toMatch(/^HTTP\/1\.1 503 /);
    expect(head.toLowerCase()).toContain('connection: close');
    expect(head.toLowerCase()).toContain('retry-after: 1');
    expect(JSON.parse(body)).toMatchObject({ error: 'SHUTTING_DOWN', field: null });
    expect(slow.closed()).toBe(1);
    expect(exit.code).toBe(0);
    expect(exit.afterMs).toBeGreaterThanOrEqual(graceMs - 100);
    expect(exit.afterMs).toBeLessThan(graceMs + 5000);
    expect(cli.logs.at(-1)).toMatchObject({ level: 40, cutOff: 1, graceMs });
    expect(String(cli.logs.at(-1)?.msg)).toMatch(/cut off 1 connection/);
    expect(storedRows(path)).toBe(20);
  });

  it('`pnpm service` passes SIGTERM on and leaves no process behind: the port is free again', async () => {
    const path = tempDatabase();
    const cli = await startCli({ METRICS_DB: path }, 60_000, 'pnpm');
    expect(await postJson(cli.url, { name: 'a', value: 1 })).toMatchObject({ status: 201 });
    const ready = cli.logs.find((entry) => entry.msg === 'ready') as { pid: number };
    expect(ready.pid).not.toBe(cli.child.pid);
    cli.child.kill('SIGTERM');
    expect(await cli.exited).toMatchObject({ code: 0 });
    expect(() => process.kill(ready.pid, 0)).toThrow(/ESRCH/);
    const refused: RawExchange = await rawExchange(cli.url, 'GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n');
    expect(refused.error).toBe('ECONNREFUSED');
    // The next start gets the port.
    const next = await startService({
      storage: { kind: 'sqlite', path },
      port: Number(new URL(cli.url).port),
      logLevel: 'silent',
    });
    await next.close();
    expect(storedRows(path)).toBe(1);
  });
});
