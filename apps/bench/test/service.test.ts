import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { ServiceBenchReport } from '../src/service.ts';

const appDirectory = join(import.meta.dirname, '..');
const outputDirectory = mkdtempSync(join(tmpdir(), 'bench-service-test-'));
afterAll(() => rmSync(outputDirectory, { recursive: true, force: true }));

// A smoke run of `pnpm bench --service`: structure and correctness only, never speed.
describe('pnpm bench --service --quick', () => {
  it('runs the service comparison, prints the ratios and writes the JSON report', () => {
    const jsonFile = join(outputDirectory, 'service.json');
    const run = spawnSync(
      process.execPath,
      ['--import', 'tsx', 'src/cli.ts', '--service', '--quick', '--json', jsonFile],
      { cwd: appDirectory, encoding: 'utf8', timeout: 120_000 },
    );
    expect(run.stderr).not.toContain('bench: failed');
    expect(run.status).toBe(0);
    expect(run.stdout).toContain('service raw/repo longest event-loop stall');
    expect(run.stdout).toContain('Correctness: every 201 is a stored row');
    // fd-safe: the JSON report of the run
    const report = JSON.parse(readFileSync(jsonFile, 'utf8')) as ServiceBenchReport;
    expect(report.results.map((result) => result.target)).toEqual(['raw', 'repo']);
    expect(report.problems).toEqual([]);
    for (const value of Object.values(report.ratios)) expect(Number.isFinite(value)).toBe(true);
  });
});
