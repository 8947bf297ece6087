import { closeOnSignals, startService } from '@repo/service';
import { openRawStore } from './raw-store.ts';
import type { ServiceProcessInput, ServiceProcessMessage } from './service-process.ts';

/**
 * The service under load, in a process of its own (forked by the harness with
 * tsx): `@repo/service` with the repository, or with the raw store. Same
 * routes, same validation, same shutdown as `pnpm service`; quiet logs; the
 * debug route that reports the longest event-loop stall.
 */
const input = JSON.parse(process.env.HARNESS_SERVICE_INPUT ?? '{}') as ServiceProcessInput;
const service = await startService({
  port: 0,
  logLevel: 'silent',
  debugRoutes: true,
  storage: { kind: 'sqlite', path: input.path },
  token: input.token,
  ...(input.target === 'raw' ? { store: openRawStore(input.path, input.busyTimeoutMs) } : {}),
});
closeOnSignals(service);
// The harness going away must not leave a service behind.
process.once('disconnect', () => process.kill(process.pid, 'SIGTERM'));
process.send?.({ type: 'listening', url: service.url } satisfies ServiceProcessMessage);
