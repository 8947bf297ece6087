import { ConfigError, startOptionsFromEnv } from './config.ts';
import { startService } from './service.ts';
import { closeOnSignals } from './shutdown.ts';
import { describeStorage } from './store.ts';

/**
 * `pnpm service` (or `node apps/service/bin/service.mjs`): the metrics service
 * on PORT/HOST, recording into METRICS_DB. Exit codes: 0 after a shutdown, 1
 * when it could not start or close, 2 for a bad setting.
 */
async function main(): Promise<void> {
  const options = startOptionsFromEnv(process.env);
  const service = await startService(options);
  closeOnSignals(service);
  const server = service.app.server;
  service.app.log.info(
    {
      url: service.url,
      storage: options.storage && describeStorage(options.storage),
      token: options.token === undefined ? 'none' : 'required',
      headersTimeoutMs: server.headersTimeout,
      requestTimeoutMs: server.requestTimeout,
      keepAliveTimeoutMs: server.keepAliveTimeout,
      maxConnections: server.maxConnections,
      shutdownGraceMs: service.shutdownGraceMs,
    },
    'ready',
  );
}

main().catch((error: unknown) => {
  if (error instanceof ConfigError) {
    process.stderr.write(`service: ${error.message}\n`);
    process.exit(2);
  }
  // Startup failed (the database cannot be opened, the port is taken...): say why, on one line.
  const code = (error as { code?: unknown }).code;
  process.stderr.write(
    `service: cannot start: ${typeof code === 'string' ? `${code}: ` : ''}${error instanceof Error ? error.message : String(error)}\n`,
  );
  process.exit(1);
});
