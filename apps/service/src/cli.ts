import { ConfigError, startOptionsFromEnv } from './config.ts';
import { startService } from './service.ts';
import { closeOnSignals } from './shutdown.ts';
import { describeStorage } from './store.ts';

/**
 * `pnpm service`: the metrics service on PORT/HOST, recording into METRICS_DB.
 * Exit codes: 0 after a clean shutdown, 1 when it could not start or close, 2 for a bad setting.
 */
async function main(): Promise<void> {
  let options: ReturnType<typeof startOptionsFromEnv>;
  try {
    options = startOptionsFromEnv(process.env);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    process.stderr.write(`service: ${error.message}\n`);
    process.exit(2);
  }
  const service = await startService(options);
  closeOnSignals(service);
  service.app.log.info({ url: service.url, storage: options.storage && describeStorage(options.storage) }, 'ready');
}

main().catch((error: unknown) => {
  // Startup failed (the database cannot be opened, the port is taken...): say why, on one line.
  const code = (error as { code?: unknown }).code;
  process.stderr.write(
    `service: cannot start: ${typeof code === 'string' ? `${code}: ` : ''}${error instanceof Error ? error.message : String(error)}\n`,
  );
  process.exit(1);
});
