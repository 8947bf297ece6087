import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { useTempDatabase, useTempDir } from '@repo/testkit';
import { describe, expect, it } from 'vitest';
import { ConfigError, isLoopback, startOptionsFromEnv } from '../src/index.ts';
import { bearer, postJson, request, startCli, storedRows, testToken, useServices } from './helpers.ts';

describe('the bearer token over real HTTP', () => {
  const start = useServices('service-auth-');

  it('without a token on loopback, writes and reads need no header', async () => {
    const { url } = await start();
    expect(await postJson(url, { name: 'a', value: 1 })).toMatchObject({ status: 201 });
    expect(await request(`${url}/metrics/count`)).toMatchObject({ status: 200, body: { count: 1 } });
    expect((await fetch(`${url}/prometheus`)).status).toBe(200);
  });

  it('with a token, every route but /healthz answers 401 without it, or with another; nothing is stored', async () => {
    const { url, path, service } = await start({ token: testToken });
    const metric = { name: 'a', value: 1 };
    const missing = await postJson(url, metric);
    expect(missing).toMatchObject({ status: 401, body: { error: 'UNAUTHORIZED', field: null } });
    expect(Object.keys(missing.body as object).sort()).toEqual(['error', 'field', 'message']);
    expect(missing.headers.get('www-authenticate')).toBe('Bearer realm="metrics"');

    const wrongTokens = [
      `${testToken.slice(0, -1)}X`, // same length, last character differs
      `${testToken}0`, // one longer
      testToken.slice(0, 16), // a prefix
      'x',
    ];
    for (const token of wrongTokens) {
      const wrong = await postJson(url, metric, bearer(token));
      expect(wrong).toMatchObject({ status: 401, body: { error: 'UNAUTHORIZED' } });
      expect(wrong.headers.get('www-authenticate')).toBe('Bearer realm="metrics", error="invalid_token"');
      expect(JSON.stringify(wrong.body)).not.toContain(token);
    }
    for (const authorization of [`Basic ${testToken}`, testToken, 'Bearer', `Bearer ${testToken} extra`]) {
      expect(await postJson(url, metric, { authorization })).toMatchObject({ status: 401 });
    }
    expect(await request(`${url}/metrics/count`)).toMatchObject({ status: 401 });
    expect((await fetch(`${url}/prometheus`)).status).toBe(401);
    // An unknown route says nothing of what exists without the token.
    expect(await request(`${url}/nope`)).toMatchObject({ status: 401 });
    expect(await request(`${url}/nope`, { headers: bearer() })).toMatchObject({ status: 404 });
    expect(await request(`${url}/healthz`)).toMatchObject({ status: 200, body: { status: 'ok' } });

    // The scheme is case-insensitive (RFC 7235).
    expect(await postJson(url, metric, bearer())).toMatchObject({ status: 201 });
    expect(await postJson(url, metric, { authorization: `bearer ${testToken}` })).toMatchObject({ status: 201 });
    expect(await request(`${url}/metrics/count`, { headers: bearer() })).toMatchObject({ body: { count: 2 } });
    expect((await fetch(`${url}/prometheus`, { headers: bearer() })).status).toBe(200);
    await service.close();
    expect(storedRows(path)).toBe(2);
  });

  it('refuses to listen beyond loopback without a token (ConfigError naming METRICS_TOKEN), and with one it does', async () => {
    const refused = start({ host: '0.0.0.0' });
    await expect(refused).rejects.toBeInstanceOf(ConfigError);
    await expect(refused).rejects.toThrow(/METRICS_TOKEN/);
    const { service } = await start({ host: '0.0.0.0', token: testToken });
    const local = `http://127.0.0.1:${service.port}`;
    expect(await postJson(local, { name: 'a', value: 1 })).toMatchObject({ status: 401 });
    expect(await postJson(local, { name: 'a', value: 1 }, bearer())).toMatchObject({ status: 201 });
  });

  it('tells loopback addresses from the others', () => {
    for (const host of ['127.0.0.1', '127.1.2.3', 'localhost', '::1', '[::1]', '::ffff:127.0.0.1']) {
      expect(isLoopback(host), host).toBe(true);
    }
    for (const host of ['0.0.0.0', '::', '10.0.0.1', '192.168.1.10', 'example.internal', '::ffff:10.0.0.1']) {
      expect(isLoopback(host), host).toBe(false);
    }
  });
});

describe('METRICS_TOKEN and METRICS_TOKEN_FILE', () => {
  const tempDir = useTempDir('service-token-');
  const tokenFile = (contents: string) => {
    const path = join(tempDir(), 'token');
    // fd-safe: a token file in a fresh directory, never a database
    writeFileSync(path, contents);
    return path;
  };
  const configError = (env: NodeJS.ProcessEnv) => {
    try {
      startOptionsFromEnv(env);
    } catch (error) {
      expect(error).toBeInstanceOf(ConfigError);
      return error as ConfigError;
    }
    throw new Error('no ConfigError');
  };

  it('reads the token from the variable, or from the file with one trailing newline stripped', () => {
    expect(startOptionsFromEnv({ METRICS_TOKEN: testToken }).token).toBe(testToken);
    expect(startOptionsFromEnv({}).token).toBeUndefined();
    expect(startOptionsFromEnv({ METRICS_TOKEN_FILE: tokenFile(testToken) }).token).toBe(testToken);
    expect(startOptionsFromEnv({ METRICS_TOKEN_FILE: tokenFile(`${testToken}\n`) }).token).toBe(testToken);
    expect(startOptionsFromEnv({ METRICS_TOKEN_FILE: tokenFile(`${testToken}\r\n`) }).token).toBe(testToken);
  });

  it.each([
    ['an empty METRICS_TOKEN', () => ({ METRICS_TOKEN: '' }), 'METRICS_TOKEN', /is empty/],
    ['a short token', () => ({ METRICS_TOKEN: 'short-secret' }), 'METRICS_TOKEN', /16 to 1024 characters/],
    ['a token with a space', () => ({ METRICS_TOKEN: 'secret with spaces 0123' }), 'METRICS_TOKEN', /only/],
    [
      'an empty token file',
      (file: (text: string) => string) => ({ METRICS_TOKEN_FILE: file('') }),
      'METRICS_TOKEN_FILE',
      /is empty/,
    ],
    [
      'a file of only a newline',
      (file: (text: string) => string) => ({ METRICS_TOKEN_FILE: file('\n') }),
      'METRICS_TOKEN_FILE',
      /is empty/,
    ],
    [
      'a file with two trailing newlines',
      (file: (text: string) => string) => ({ METRICS_TOKEN_FILE: file(`${testToken}\n\n`) }),
      'METRICS_TOKEN_FILE',
      /only/,
    ],
    ['a missing file', () => ({ METRICS_TOKEN_FILE: '/nonexistent/token' }), 'METRICS_TOKEN_FILE', /ENOENT/],
    ['both variables', () => ({ METRICS_TOKEN: testToken, METRICS_TOKEN_FILE: '/x' }), 'METRICS_TOKEN', /both/],
  ])('refuses %s with a ConfigError naming the variable, never the token', (_label, env, variable, reason) => {
    const error = configError(env(tokenFile));
    expect(error.variable).toBe(variable);
    expect(error.message).toMatch(reason);
    expect(error.message).not.toContain(testToken);
    expect(error.message).not.toContain('secret');
  });

  it.each([
    ['PORT', 'eighty'],
    ['RATE_LIMIT_MAX', '-1'],
    ['RATE_LIMIT_WINDOW_MS', '10'],
    ['HEADERS_TIMEOUT_MS', '1.5'],
    ['REQUEST_TIMEOUT_MS', 'forever'],
    ['KEEP_ALIVE_TIMEOUT_MS', '0'],
    ['MAX_CONNECTIONS', '0'],
    ['MAX_CONNECTIONS_PER_CLIENT', 'many'],
    ['SHUTDOWN_GRACE_MS', '99999999'],
  ])('refuses %s=%s naming the variable', (variable, value) => {
    expect(configError({ [variable]: value }).variable).toBe(variable);
  });

  it('refuses a headers timeout longer than the request timeout', () => {
    expect(configError({ HEADERS_TIMEOUT_MS: '20000', REQUEST_TIMEOUT_MS: '15000' }).variable).toBe(
      'HEADERS_TIMEOUT_MS',
    );
  });
});

describe('the CLI and the token', () => {
  const tempDatabase = useTempDatabase('service-auth-cli-');

  it('exits 2 naming METRICS_TOKEN when told to listen beyond loopback without one', async () => {
    const path = tempDatabase();
    await expect(startCli({ HOST: '0.0.0.0', METRICS_DB: path })).rejects.toThrow(
      /exited with code 2.*METRICS_TOKEN.*0\.0\.0\.0/s,
    );
    await expect(startCli({ HOST: '0.0.0.0', METRICS_DB: path, METRICS_TOKEN: '' })).rejects.toThrow(
      /exited with code 2.*METRICS_TOKEN is empty/s,
    );
  });

  it('never writes the token (or a wrong one) to its output, even at LOG_LEVEL=trace', async () => {
    const path = tempDatabase();
    const wrong = 'wrong-token-0123456789abcdef';
    const cli = await startCli({ HOST: '0.0.0.0', METRICS_DB: path, METRICS_TOKEN: testToken, LOG_LEVEL: 'trace' });
    const url = cli.url.replace('0.0.0.0', '127.0.0.1');
    expect(await postJson(url, { name: 'a', value: 1 }, bearer())).toMatchObject({ status: 201 });
    expect(await postJson(url, { name: 'a', value: 1 }, bearer(wrong))).toMatchObject({ status: 401 });
    expect(await postJson(url, '{"broken', bearer())).toMatchObject({ status: 400 });
    cli.child.kill('SIGTERM');
    expect(await cli.exited).toMatchObject({ code: 0 });
    const output = cli.stdout() + cli.stderr();
    expect(output).toContain('"token":"required"');
    expect(output).not.toContain(testToken);
    expect(output).not.toContain(wrong);
    expect(storedRows(path)).toBe(1);
  });
});
