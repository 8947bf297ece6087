import { DatabaseError, InvalidFilterError, LockTimeoutError, ValidationError } from '@repo/metrics-repo';
import { describe, expect, it } from 'vitest';
import { toHttpError } from '../src/index.ts';

// The mapping alone, for the errors a live service cannot be made to produce on demand.
describe('toHttpError', () => {
  it('maps an error code it does not know to 500 INTERNAL_ERROR, repeating nothing of the error', () => {
    const error = Object.assign(new Error('SELECT * FROM metrics failed in /srv/data/metrics.db'), {
      code: 'A_CODE_FROM_THE_FUTURE',
    });
    const mapped = toHttpError(error);
    expect(mapped.statusCode).toBe(500);
    expect(mapped.body).toEqual({
      error: 'INTERNAL_ERROR',
      message: 'the service failed to handle the request; see the service log',
      field: null,
    });
    expect(toHttpError('a string').statusCode).toBe(500);
    expect(toHttpError(undefined).statusCode).toBe(500);
  });

  it('maps by code: the repository errors, their status, their field, no path', () => {
    expect(toHttpError(new ValidationError('rows[3].value', 'must be a finite number'))).toMatchObject({
      statusCode: 400,
      body: { error: 'INVALID_METRIC', field: 'rows[3].value' },
    });
    expect(toHttpError(new InvalidFilterError('filter.since', 'must not be after filter.until'))).toMatchObject({
      statusCode: 400,
      body: { error: 'INVALID_FILTER', field: 'since' },
    });
    const lock = toHttpError(new LockTimeoutError('/srv/data/metrics.db', 5000));
    expect(lock).toMatchObject({ statusCode: 503, retryAfterSeconds: 1, body: { error: 'LOCK_TIMEOUT' } });
    expect(JSON.stringify(lock.body)).not.toContain('/srv');
    const database = toHttpError(new DatabaseError('SQLITE_IOERR_WRITE', 'disk I/O error in /srv/data/metrics.db'));
    expect(database).toMatchObject({ statusCode: 500, body: { error: 'DATABASE_ERROR', field: null } });
    expect(JSON.stringify(database.body)).not.toMatch(/srv|SQLITE/);
    expect(toHttpError(Object.assign(new Error('x'), { code: 'REPO_CLOSED' }))).toMatchObject({
      statusCode: 503,
      body: { error: 'REPO_CLOSED' },
    });
  });
});
