import { useTempDatabase, useTempDir } from '@repo/testkit';
import { describe, expect, it } from 'vitest';
import { holdWriteLock, postJson, request, sleep, startCli, storedEventIds, storedRows } from './helpers.ts';

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
});
