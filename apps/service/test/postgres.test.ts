import { usePostgres, withPgClient } from '@repo/testkit';
import { describe, expect, it } from 'vitest';
import { describeStorage, startService, storageFromEnv } from '../src/index.ts';
import { postJson, request } from './helpers.ts';

// The same service on PostgreSQL: DATABASE_URL picks the backend; routes, errors and guarantees stay.
describe('the service on PostgreSQL', () => {
  const server = usePostgres();

  it('DATABASE_URL chooses PostgreSQL over METRICS_DB, and its password is never shown', () => {
    const url = 'postgres://metrics:s3cret@127.0.0.1:5432/metrics';
    const storage = storageFromEnv({ DATABASE_URL: url, METRICS_DB: 'ignored.db' });
    expect(storage).toEqual({ kind: 'postgres', url });
    expect(describeStorage(storage)).toBe('PostgreSQL postgres://metrics@127.0.0.1:5432/metrics');
    expect(storageFromEnv({ METRICS_DB: '/srv/m.db' })).toEqual({ kind: 'sqlite', path: '/srv/m.db' });
  });

  it('records, counts and refuses as on SQLite; every 201 is a row in the database', async () => {
    const url = await server().createDatabase();
    const service = await startService({ storage: { kind: 'postgres', url }, port: 0, logLevel: 'silent' });
    try {
      expect(await postJson(service.url, { name: 'pg', value: 1, eventId: 'pg-1' })).toMatchObject({
        status: 201,
        body: { id: 1, name: 'pg', eventId: 'pg-1' },
      });
      expect(
        await postJson(service.url, [
          { name: 'pg', value: 2 },
          { name: 'pg', value: 3 },
        ]),
      ).toMatchObject({
        status: 201,
      });
      expect(await postJson(service.url, { name: 'pg', value: 4, eventId: 'pg-1' })).toMatchObject({
        status: 409,
        body: { error: 'DUPLICATE_EVENT' },
      });
      const badBatch = await postJson(service.url, [
        { name: 'pg', value: 5 },
        { name: 'bad\u0001', value: 6 },
      ]);
      expect(badBatch).toMatchObject({ status: 400, body: { error: 'INVALID_METRIC', field: 'rows[1].name' } });
      expect(await request(`${service.url}/metrics/count?name=pg`)).toMatchObject({ body: { count: 3 } });
    } finally {
      await service.close();
    }
    const stored = await withPgClient(url, (client) => client.query('SELECT count(*)::int AS n FROM metrics'));
    expect(stored.rows[0]).toEqual({ n: 3 });
  });
});
