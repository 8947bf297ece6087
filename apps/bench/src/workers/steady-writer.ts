import { statSync } from 'node:fs';
import { openMetricsRepo } from '@repo/metrics-repo';

// A writer that keeps recording while the benchmark works on the same file: one insert issued every
// INTERVAL ms (not awaited: a steady arrival of rows, as a service's requests would be), each one's
// issue time and latency kept. On the message 'stop' it closes its repository and sends back
// `{ samples: [issuedAtEpochMs, latencyMs][], failed, errors, wal }`, then exits. `wal`: the -wal
// file's size every 20 ms (`[epochMs, bytes]`), sampled here because the benchmark's own thread
// cannot look while a naive synchronous SELECT runs.
// Run with `fork(file, [PATH, INTERVAL], { execArgv: ['--import', 'tsx'] })`.
const [path, interval] = process.argv.slice(2);
if (path === undefined) throw new Error('usage: steady-writer.ts PATH [INTERVAL_MS]');
const repo = await openMetricsRepo({ path });
const samples: [number, number][] = [];
const errors: Record<string, number> = {};
let failed = 0;
let i = 0;
const wal: [number, number][] = [];
const walTimer = setInterval(() => {
  // A `stat`: no descriptor of our own on the database's files.
  wal.push([Date.now(), statSync(`${path}-wal`, { throwIfNoEntry: false })?.size ?? 0]);
}, 20);
const inFlight = new Set<Promise<void>>();
const timer = setInterval(
  () => {
    const issuedAt = Date.now();
    const started = performance.now();
    const insert = repo.insert({ name: 'bench.steady', value: i++ }).then(
      () => {
        samples.push([issuedAt, performance.now() - started]);
      },
      (error: { code?: string }) => {
        failed += 1;
        const code = error.code ?? 'UNKNOWN';
        errors[code] = (errors[code] ?? 0) + 1;
      },
    );
    inFlight.add(insert);
    void insert.finally(() => inFlight.delete(insert));
  },
  Number(interval ?? 2),
);
process.on('message', (message) => {
  if (message !== 'stop') return;
  clearInterval(timer);
  clearInterval(walTimer);
  void Promise.all(inFlight)
    .then(() => repo.close())
    .then(() => {
      process.send?.({ samples, failed, errors, wal }, () => process.exit(0));
    });
});
process.send?.('ready');
