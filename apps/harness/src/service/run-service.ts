import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { launch } from '@repo/launcher';
import type { EventLoopStall } from '@repo/service';
import autocannon from 'autocannon';
import { inspectDatabaseFile } from '../inspect-file.ts';
import { prepareDatabaseFile } from '../prepare-file.ts';
import { percentile, round2 } from '../stats.ts';
import type { BackgroundInput, BackgroundResult, ForeignLockResult } from './background-load.ts';
import type { PollResult } from './healthz-poller.ts';
import { type ServiceTarget, startServiceProcess } from './service-process.ts';

/** The load of `--scenario service`. Times in ms. */
export interface ServiceScenarioSettings {
  /** How long autocannon drives `POST /metrics` (and the writers write). */
  durationMs: number;
  /** autocannon's connections, each with one request at a time. */
  connections: number;
  /** autocannon stops after this many requests, if the duration has not passed first. */
  maxRequests: number;
  /** A `GET /healthz` is sent this often, answered or not. */
  healthzIntervalMs: number;
  /** Other processes recording into the same file meanwhile (through the repository). */
  writers: number;
  writerPauseMs: number;
  /** Another process takes the write lock this long after the start, and holds it `lockHoldMs`. */
  lockAtMs: number;
  lockHoldMs: number;
  /** The raw service's SQLite busy timeout. */
  busyTimeoutMs: number;
  /** The service idles this long before the load, its event loop measured: the machine's own noise, same run. */
  baselineMs: number;
}

export const serviceScenarioDefaults: ServiceScenarioSettings = {
  durationMs: 10_000,
  connections: 4,
  maxRequests: 1_000_000,
  healthzIntervalMs: 10,
  writers: 3,
  writerPauseMs: 10,
  lockAtMs: 4_000,
  lockHoldMs: 2_000,
  busyTimeoutMs: 5_000,
  baselineMs: 2_000,
};

export interface LatencyFigures {
  requests: number;
  p50Ms: number | null;
  p99Ms: number | null;
  p999Ms: number | null;
  maxMs: number | null;
}

/** One service process (raw or repo) under the load. */
export interface ServiceRunResult {
  target: ServiceTarget;
  post: LatencyFigures & {
    perSec: number;
    /** Responses by status code. */
    statuses: Record<string, number>;
    non2xx: number;
    /** Requests that got no response (connection errors, timeouts). */
    errors: number;
  };
  healthz: LatencyFigures & { failed: number };
  /** 201s received. */
  acked: number;
  /**
   * The service's rows in the file afterwards, counted by a read-only connection of the harness.
   * A few more than `acked`: the requests in flight when autocannon stopped, stored but never read.
   */
  stored: number;
  /** Acknowledged eventIds missing from the file. Must be 0. */
  lost: number;
  writers: { acked: number; failed: number; stored: number; errors: Record<string, number> };
  /** The service's own measure of its event loop during the load. */
  stall: EventLoopStall;
  /** The same, while it idled just before the load: what the machine alone costs. */
  idleStall: EventLoopStall;
  lock: ForeignLockResult | undefined;
  shutdown: { exitCode: number | null; shutdownMs: number };
  integrity: string;
}

const backgroundEntry = fileURLToPath(new URL('./background-load.ts', import.meta.url));

/** Runs the raw service, then the repository's, under the same load, each on a fresh file. */
export async function runServiceComparison(
  settings: ServiceScenarioSettings = serviceScenarioDefaults,
  onProgress: (line: string) => void = () => {},
): Promise<ServiceRunResult[]> {
  const results: ServiceRunResult[] = [];
  for (const target of ['raw', 'repo'] as const) {
    onProgress(`service: ${target}: starting`);
    const result = await runServiceTarget(target, settings);
    onProgress(
      `service: ${target}: ${result.acked} rows acknowledged, ${result.stored} stored, longest stall ${result.stall.maxMs} ms`,
    );
    results.push(result);
  }
  return results;
}

export async function runServiceTarget(
  target: ServiceTarget,
  settings: ServiceScenarioSettings,
): Promise<ServiceRunResult> {
  const directory = mkdtempSync(join(tmpdir(), 'harness-service-'));
  const path = join(directory, 'metrics.db');
  const tag = `service.${target}.${randomBytes(3).toString('hex')}`;
  const writerRowName = `${tag}.writer`;
  try {
    prepareDatabaseFile(path, 'wal', 0);
    const service = await startServiceProcess({ target, path, busyTimeoutMs: settings.busyTimeoutMs });
    try {
      const background = await launch<BackgroundInput, BackgroundResult, never>({
        entry: backgroundEntry,
        kind: 'process',
        count: settings.writers + 2,
        input: (index): BackgroundInput => {
          if (index === settings.writers) {
            return { role: 'lock', path, atMs: settings.lockAtMs, holdMs: settings.lockHoldMs };
          }
          if (index === settings.writers + 1) {
            return {
              role: 'prober',
              url: service.url,
              intervalMs: settings.healthzIntervalMs,
              durationMs: settings.durationMs,
            };
          }
          return {
            role: 'writer',
            path,
            rowName: writerRowName,
            durationMs: settings.durationMs,
            pauseMs: settings.writerPauseMs,
          };
        },
      });
      if (background.setupFailures.length > 0) {
        await background.terminate();
        throw new Error(`service: ${background.setupFailures.length} background process(es) failed to start`);
      }

      await service.eventLoop(true);
      await new Promise((resolve) => setTimeout(resolve, settings.baselineMs));
      const idleStall = await service.eventLoop(true);
      const backgroundDone = background.run({ timeoutMs: settings.durationMs + settings.lockHoldMs + 60_000 });
      let post: Awaited<ReturnType<typeof drivePosts>>;
      try {
        post = await drivePosts(service.url, service.authorization, tag, settings);
      } catch (error) {
        // Ends run() too: its outcomes are of no use now.
        for (let index = 0; index < background.count; index++) background.kill(index);
        await backgroundDone.catch(() => {});
        throw error;
      }
      // The prober's last probes are answered by now: it stops with the load.
      const outcomes = await backgroundDone;
      const stall = await service.eventLoop();
      const shutdown = await service.stop();

      const writers = { acked: 0, failed: 0, stored: 0, errors: {} as Record<string, number> };
      let lock: ForeignLockResult | undefined;
      let healthz: PollResult = { latenciesMs: [], failed: 0 };
      for (const outcome of outcomes) {
        if (!outcome.ok) throw new Error(`service: a background process failed: ${outcome.error.message}`);
        const result = outcome.result;
        if (result.role === 'lock') {
          lock = result;
          continue;
        }
        if (result.role === 'prober') {
          healthz = result;
          continue;
        }
        writers.acked += result.acked;
        writers.failed += result.failed;
        for (const [code, n] of Object.entries(result.errors)) writers.errors[code] = (writers.errors[code] ?? 0) + n;
      }
      // Every process that had the file open has exited: count with a connection of our own.
      const { ackedEventIds, ...postFigures } = post;
      const inspection = inspectDatabaseFile(path, tag, ackedEventIds);
      writers.stored = inspectDatabaseFile(path, writerRowName).stored;
      return {
        target,
        post: postFigures,
        healthz: { ...latencyFigures(healthz.latenciesMs), failed: healthz.failed },
        acked: ackedEventIds.length,
        stored: inspection.stored,
        lost: inspection.missingAcked ?? ackedEventIds.length,
        writers,
        stall,
        idleStall,
        lock,
        shutdown: { exitCode: shutdown.exitCode, shutdownMs: shutdown.shutdownMs },
        integrity: inspection.integrity,
      };
    } finally {
      service.kill();
    }
  } finally {
    rmSync(directory, { recursive: true, force: true });
  }
}

/** autocannon (as a library) POSTing one metric per request, bounded in time and in requests. */
function drivePosts(url: string, authorization: string, rowName: string, settings: ServiceScenarioSettings) {
  const latenciesMs: number[] = [];
  const ackedEventIds: string[] = [];
  const statuses: Record<string, number> = {};
  return new Promise<ServiceRunResult['post'] & { ackedEventIds: string[] }>((resolve, reject) => {
    const instance = autocannon(
      {
        url: `${url}/metrics`,
        // A fresh eventId per request (autocannon puts a unique id in place of `[<id>]`), read back
        // from each 201's body: every acknowledged row can then be looked up in the file.
        idReplacement: true,
        requests: [
          {
            method: 'POST',
            path: '/metrics',
            headers: { 'content-type': 'application/json', authorization },
            body: JSON.stringify({ name: rowName, value: 1, labels: { source: 'autocannon' }, eventId: '[<id>]' }),
            onResponse: (status, body) => {
              if (status === 201) ackedEventIds.push((JSON.parse(body) as { eventId: string }).eventId);
            },
          },
        ],
        connections: settings.connections,
        duration: settings.durationMs / 1000,
        // Longer than any lock wait: a request the raw service answers late still counts as answered.
        timeout: 30,
      },
      (error, result) => {
        if (error) {
          reject(error);
          return;
        }
        const requests = latenciesMs.length;
        const non2xx = Object.entries(statuses)
          .filter(([status]) => !status.startsWith('2'))
          .reduce((sum, [, n]) => sum + n, 0);
        resolve({
          ...latencyFigures(latenciesMs),
          perSec: Math.round(requests / result.duration),
          statuses,
          non2xx,
          errors: result.errors,
          ackedEventIds,
        });
      },
    );
    instance.on('response', (_client, statusCode, _bytes, responseTimeMs) => {
      latenciesMs.push(responseTimeMs);
      statuses[statusCode] = (statuses[statusCode] ?? 0) + 1;
      if (latenciesMs.length >= settings.maxRequests) instance.stop();
    });
  });
}

function latencyFigures(samples: readonly number[]): LatencyFigures {
  if (samples.length === 0) return { requests: 0, p50Ms: null, p99Ms: null, p999Ms: null, maxMs: null };
  const sorted = Float64Array.from(samples).sort();
  return {
    requests: samples.length,
    p50Ms: round2(percentile(sorted, 50)),
    p99Ms: round2(percentile(sorted, 99)),
    p999Ms: round2(percentile(sorted, 99.9)),
    maxMs: round2(sorted[sorted.length - 1] as number),
  };
}
