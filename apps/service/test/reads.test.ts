import { request as httpRequest } from 'node:http';
import type { Metric, MetricInput } from '@repo/metrics-repo';
import { useTempDatabase } from '@repo/testkit';
import { afterEach, describe, expect, it } from 'vitest';
import { type MetricsStore, type RunningService, type StartOptions, startService } from '../src/index.ts';
import { bearer, postJson, request, testToken } from './helpers.ts';

describe('GET /metrics/summary and GET /metrics/export', () => {
  const tempDatabase = useTempDatabase('service-reads-');
  const running: RunningService[] = [];
  afterEach(async () => {
    await Promise.all(running.splice(0).map((service) => service.close()));
  });

  async function start(options: StartOptions = {}) {
    const path = tempDatabase();
    const service = await startService({ storage: { kind: 'sqlite', path }, port: 0, logLevel: 'silent', ...options });
    running.push(service);
    return { path, service, url: service.url };
  }

  it('summarizes by name and bucket, with label filters; refuses bad parameters with 400 INVALID_FILTER', async () => {
    const { url } = await start();
    const rows = [1, 2, 3, 4].map((value) => ({
      name: 'job.ms',
      value,
      recordedAt: 60_000 * value,
      labels: { host: value % 2 === 0 ? 'even' : 'odd', 'a.b': 'x' },
    }));
    expect(await postJson(url, rows)).toMatchObject({ status: 201 });
    const all = await request(`${url}/metrics/summary?name=job.ms`);
    expect(all).toMatchObject({
      status: 200,
      body: {
        summaries: [
          {
            name: 'job.ms',
            bucketStart: '1970-01-01T00:01:00.000Z',
            count: 4,
            sum: 10,
            min: 1,
            max: 4,
            avg: 2.5,
            p50: 2,
            p95: 4,
            p99: 4,
          },
        ],
      },
    });
    const buckets = await request(`${url}/metrics/summary?bucketMs=120000&label.host=even&label.a.b=x`);
    expect((buckets.body as { summaries: unknown[] }).summaries).toMatchObject([
      { bucketStart: '1970-01-01T00:02:00.000Z', count: 1, p50: 2 },
      { bucketStart: '1970-01-01T00:04:00.000Z', count: 1, p50: 4 },
    ]);
    for (const [query, field] of [
      ['bucketMs=0', 'bucketMs'],
      ['bucketMs=abc', 'bucketMs'],
      ['since=yesterday', 'since'],
      ['label.=x', 'label.'],
      ['colour=red', 'colour'],
    ]) {
      const response = await request(`${url}/metrics/summary?${query}`);
      expect(response, query).toMatchObject({ status: 400, body: { error: 'INVALID_FILTER', field } });
    }
  });

  it('exports the stored rows as NDJSON, in id order, the same rows POST answered with', async () => {
    const { url } = await start();
    const batch: MetricInput[] = Array.from({ length: 2500 }, (_, i) => ({
      name: i % 2 === 0 ? 'even' : 'odd',
      value: i,
      recordedAt: 1000 + i,
      labels: { i: String(i) },
    }));
    const posted = (await postJson(url, batch)).body as unknown[];
    const response = await fetch(`${url}/metrics/export`);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('application/x-ndjson; charset=utf-8');
    const lines = (await response.text()).trimEnd().split('\n');
    expect(lines.map((line) => JSON.parse(line))).toEqual(posted);
    const some = await (await fetch(`${url}/metrics/export?name=odd&since=1100&until=1200`)).text();
    expect(some.trimEnd().split('\n')).toHaveLength(50);
    const bad = await request(`${url}/metrics/export?since=later`);
    expect(bad).toMatchObject({ status: 400, body: { error: 'INVALID_FILTER', field: 'since' } });
  });

  it('needs the token like every other route', async () => {
    const { url } = await start({ token: testToken });
    for (const route of ['/metrics/summary', '/metrics/export']) {
      expect(await request(`${url}${route}`), route).toMatchObject({ status: 401, body: { error: 'UNAUTHORIZED' } });
      expect((await fetch(`${url}${route}`, { headers: bearer() })).status, route).toBe(200);
    }
  });

  it('a client that disconnects stops the export (its iterator is returned, not drained)', async () => {
    let pulled = 0;
    let ended: 'returned' | 'exhausted' | undefined;
    const endless: MetricsStore = {
      insert: () => Promise.reject(new Error('unused')),
      insertMany: () => Promise.reject(new Error('unused')),
      count: async () => 0,
      close: async () => {},
      async *export() {
        try {
          for (let id = 1; id <= 10_000_000; id++) {
            pulled += 1;
            const row: Metric = { id, name: 'n', value: id, recordedAt: new Date(id), labels: null, eventId: null };
            yield row;
          }
          ended = 'exhausted';
        } finally {
          ended ??= 'returned';
        }
      },
    };
    const { url } = await start({ store: endless });
    await new Promise<void>((resolve, reject) => {
      const req = httpRequest(`${url}/metrics/export`, (response) => {
        response.once('data', () => {
          req.destroy();
          resolve();
        });
      });
      req.on('error', (error) => ((error as NodeJS.ErrnoException).code === 'ECONNRESET' ? resolve() : reject(error)));
      req.end();
    });
    const deadline = Date.now() + 5000;
    while (ended === undefined && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
    expect(ended).toBe('returned');
    expect(pulled).toBeLessThan(10_000_000);
  });
});
