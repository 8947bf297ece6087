import { describe, expect, it } from 'vitest';
import { parseHarnessArgs, UsageError } from '../src/args.ts';
import { runServiceComparison, type ServiceScenarioSettings } from '../src/service/run-service.ts';
import { formatServiceTable, serviceProblems, serviceVerdict } from '../src/service/service-report.ts';

describe('--scenario service: flags', () => {
  it('is accepted alone or with output options, and refused with writer-scenario options', () => {
    expect(parseHarnessArgs(['--scenario', 'service']).scenario).toBe('service');
    expect(parseHarnessArgs(['--scenario', 'service', '--json', 'x.json']).jsonPath).toBe('x.json');
    expect(parseHarnessArgs([]).scenario).toBeUndefined();
    expect(() => parseHarnessArgs(['--scenario', 'web'])).toThrow(UsageError);
    expect(() => parseHarnessArgs(['--scenario', 'service', '--writers', '5'])).toThrow(/takes only --json/);
    expect(() => parseHarnessArgs(['--scenario', 'service', '--db', 'x.db'])).toThrow(/takes only --json/);
  });
});

// A short run of the real thing: two service processes, writer processes, a foreign lock, autocannon.
// Checks what must hold whatever the machine's speed: every 201 is a stored row, and a synchronous
// busy wait stops the raw service for as long as the lock is held.
describe('--scenario service: a short run', () => {
  const settings: ServiceScenarioSettings = {
    durationMs: 2_000,
    connections: 2,
    maxRequests: 50_000,
    healthzIntervalMs: 20,
    writers: 1,
    writerPauseMs: 10,
    lockAtMs: 400,
    lockHoldMs: 800,
    busyTimeoutMs: 5_000,
    baselineMs: 200,
  };

  it('runs raw and repo side by side; nothing acknowledged is lost; the raw service stalls through the lock', async () => {
    const results = await runServiceComparison(settings);
    expect(results.map((result) => result.target)).toEqual(['raw', 'repo']);
    for (const result of results) {
      expect(result.acked, result.target).toBeGreaterThan(0);
      expect(result.lost, result.target).toBe(0);
      // Requests in flight when the load stopped may be stored without their 201 having been read.
      expect(result.stored - result.acked, result.target).toBeGreaterThanOrEqual(0);
      expect(result.stored - result.acked, result.target).toBeLessThanOrEqual(settings.connections);
      expect(result.writers.stored, result.target).toBe(result.writers.acked);
      expect(result.integrity, result.target).toBe('ok');
      expect(result.lock?.heldMs, result.target).toBeGreaterThanOrEqual(settings.lockHoldMs - 5);
      expect(result.shutdown.exitCode, result.target).toBe(0);
      expect(result.healthz.requests, result.target).toBeGreaterThan(0);
      expect(result.idleStall.windowMs, result.target).toBeGreaterThanOrEqual(150);
    }
    const [raw, repo] = results as [(typeof results)[0], (typeof results)[0]];
    expect(repo.post.non2xx + repo.post.errors).toBe(0);
    expect(repo.writers.failed).toBe(0);
    // SQLite's busy wait inside the handler holds the raw service's thread for the rest of the hold.
    expect(raw.stall.maxMs).toBeGreaterThanOrEqual(settings.lockHoldMs * 0.7);
    expect(repo.stall.maxMs).toBeLessThan(raw.stall.maxMs);

    const table = formatServiceTable(results, settings);
    for (const label of ['POST /metrics requests/s', 'GET /healthz p50 / p99 / p99.9 ms', 'longest event-loop stall']) {
      expect(table).toContain(label);
    }
    expect(serviceVerdict(results)).toMatch(/^service: repo 0 failed, 0 lost, \/healthz p99 .+; raw /);
    // The /healthz p99 target (serviceTargetMisses) is a speed figure: the harness's to judge, not this test's.
    expect(serviceProblems(results, settings)).toEqual([]);
  });
});
