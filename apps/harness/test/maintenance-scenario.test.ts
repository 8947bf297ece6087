import { describe, expect, it } from 'vitest';
import { parseHarnessArgs } from '../src/args.ts';
import { maintenanceProblems, maintenanceVerdict } from '../src/maintenance/main.ts';
import { type MaintenanceSettings, runMaintenanceComparison } from '../src/maintenance/run-maintenance.ts';

describe('--scenario maintenance: flags', () => {
  it('runs alone, with --prefill and --json only', () => {
    expect(parseHarnessArgs(['--scenario', 'maintenance']).scenario).toBe('maintenance');
    expect(parseHarnessArgs(['--scenario', 'maintenance', '--prefill', '5000']).prefill).toBe(5000);
    expect(() => parseHarnessArgs(['--scenario', 'maintenance,insert'])).toThrow(/runs alone/);
    expect(() => parseHarnessArgs(['--scenario', 'maintenance', '--writers', '5'])).toThrow(
      /takes only --json and --prefill/,
    );
  });
});

// A short run of the real thing: writer processes and async writers, then the same while prune,
// summarize and export run. Checks what must hold whatever the machine's speed (no error, no lost
// row, every prefilled row pruned); the p99 ratio is the harness's to judge, not this test's.
describe('--scenario maintenance: a short run', () => {
  const settings: MaintenanceSettings = {
    prefillRows: 20_000,
    processWriters: 4,
    asyncWriters: 50,
    waves: 1,
    wavePauseMs: 0,
    maxP99Ratio: 2,
    summaryEveryMs: 50,
  };

  it('no writer fails, no row is lost, every prefilled row is pruned', async () => {
    const result = await runMaintenanceComparison(settings);
    expect(result.baseline.acked).toBe(2 * 54); // before and after the maintenance
    expect(result.withMaintenance.acked).toBeGreaterThanOrEqual(54);
    expect(result.lost).toBe(0);
    expect(result.prune).toMatchObject({ deleted: 20_000 });
    expect(result.prefillLeft).toBe(0);
    expect(result.integrity).toBe('ok');
    expect(result.summarize.runs).toBeGreaterThan(0);
    expect(maintenanceProblems(result, settings).filter((p) => !p.startsWith("writers' p99"))).toEqual([]);
    expect(maintenanceVerdict(result, settings)).toMatch(/^maintenance: 0 errors, 0 lost; writers' p99 .+ ms alone, /);
  }, 120_000);
});
