import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findPostgresBinaries } from '@repo/testkit/postgres';
import { afterAll, describe, expect, it } from 'vitest';
import type { BenchReport } from '../src/bench.ts';
import { quickSizes } from '../src/config.ts';

const appDirectory = join(import.meta.dirname, '..');
const outputDirectory = mkdtempSync(join(tmpdir(), 'bench-test-'));
afterAll(() => rmSync(outputDirectory, { recursive: true, force: true }));

/** Runs the CLI as `pnpm bench` does (tsx, --expose-gc), in a separate process. */
function runCli(args: string[]) {
  const result = spawnSync(process.execPath, ['--import', 'tsx', '--expose-gc', 'src/cli.ts', ...args], {
    cwd: appDirectory,
    encoding: 'utf8',
    timeout: 120_000,
  });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

/** The PostgreSQL scenarios run when a server can be had (DATABASE_URL, or PostgreSQL's binaries here); else they are skipped. */
const postgresAvailable = Boolean(process.env.DATABASE_URL) || findPostgresBinaries() !== undefined;

/** The rows each scenario is asked to write in a --quick run. */
const expectedRows: Record<string, number> = {
  limit: quickSizes.rows,
  naive: quickSizes.naiveRows,
  'naive-defaults': quickSizes.naiveDefaultsRows,
  'repo-async': quickSizes.rows,
  'repo-many': quickSizes.rows,
  'repo-processes': quickSizes.processes * quickSizes.rowsPerProcess,
  'raw-oneshot': quickSizes.oneshotWriters,
  'repo-oneshot': quickSizes.oneshotWriters,
  'lock-wait-repo': quickSizes.lockWaitRows,
  'lock-wait-raw': quickSizes.lockWaitRows,
  ...(postgresAvailable
    ? { 'pg-limit': quickSizes.pgRows, 'pg-naive': quickSizes.pgNaiveRows, 'pg-repo-async': quickSizes.pgRows }
    : {}),
};

// A smoke run of the whole benchmark: structure and correctness only. Speed is never checked here.
describe('pnpm bench --quick', () => {
  const jsonFile = join(outputDirectory, 'report.json');
  let run: ReturnType<typeof runCli>;
  let report: BenchReport;

  it('runs every scenario, prints the table and writes the JSON report', () => {
    run = runCli(['--quick', '--json', jsonFile]);
    expect(run.stderr).not.toContain('bench: failed');
    expect(run.status).toBe(0);
    expect(run.stdout).toContain('| scenario');
    // fd-safe: the JSON report of the run
    report = JSON.parse(readFileSync(jsonFile, 'utf8')) as BenchReport;
    expect(report.results.map((result) => result.name)).toEqual(Object.keys(expectedRows));
  });

  it('reports every figure of every scenario as a finite, non-negative number', () => {
    for (const result of report.results) {
      for (const field of [
        'rows',
        'wallMs',
        'rowsPerSec',
        'p50Ms',
        'p99Ms',
        'maxEventLoopDelayMs',
        'p99EventLoopDelayMs',
        'timeWeightedP99EventLoopDelayMs',
      ] as const) {
        expect(Number.isFinite(result[field]), `${result.name}.${field}`).toBe(true);
        expect(result[field], `${result.name}.${field}`).toBeGreaterThanOrEqual(0);
      }
      expect(result.p99Ms).toBeGreaterThanOrEqual(result.p50Ms);
      if (result.name.endsWith('-oneshot')) expect(result.cpuMsPerRow).toBeGreaterThan(0);
      expect(result.runs).toHaveLength(1);
    }
  });

  it('stored exactly the rows each scenario acknowledged, and every row was acknowledged', () => {
    for (const result of report.results) {
      expect({ name: result.name, stored: result.stored }).toEqual({ name: result.name, stored: result.rows });
      expect({ name: result.name, rows: result.rows, failed: result.failedRows }).toEqual({
        name: result.name,
        rows: expectedRows[result.name],
        failed: 0,
      });
    }
    expect(report.correct).toBe(true);
    expect(report.problems).toEqual([]);
  });

  it('computes the ratios the issue asks for, and checks the targets', () => {
    for (const ratio of [
      'repo-async/limit',
      'repo-async/naive',
      'repo-processes/limit',
      'lock-wait-raw/lock-wait-repo maxEventLoopDelayMs',
      'lock-wait-raw/lock-wait-repo p99EventLoopDelayMs',
      'lock-wait-raw/lock-wait-repo timeWeightedP99EventLoopDelayMs',
      'repo-oneshot/raw-oneshot p99',
      'repo-oneshot/raw-oneshot p99 to close',
      'repo-oneshot/raw-oneshot cpu per row',
    ]) {
      expect(Number.isFinite(report.ratios[ratio]), ratio).toBe(true);
      expect(report.ratios[ratio], ratio).toBeGreaterThan(0);
    }
    // One run: each round's ratio is the ratio.
    expect(report.ratiosPerRound['repo-async/limit']).toEqual([report.ratios['repo-async/limit']]);
    expect(report.targets.map((target) => target.figure)).toEqual([
      'repo-async/limit',
      'repo-async/naive',
      'repo-processes/limit',
      'repo-oneshot/raw-oneshot p99',
      'repo-oneshot/raw-oneshot p99 to close',
      'repo-oneshot/raw-oneshot cpu per row',
      ...(postgresAvailable ? ['pg-repo-async/pg-naive', 'pg-repo-async/pg-limit'] : []),
      'lock-wait-repo p99EventLoopDelayMs',
      'lock-wait-repo timeWeightedP99EventLoopDelayMs',
    ]);
    expect(report.notes).toEqual([
      postgresAvailable
        ? expect.stringMatching(/^PostgreSQL \d+/)
        : expect.stringContaining('PostgreSQL scenarios skipped'),
    ]);
    expect(report.machine.cores).toBeGreaterThan(0);
    expect(report.machine.sqlite).toMatch(/^\d+\.\d+\.\d+$/);
  });
});

describe('bench options', () => {
  it('prints the help', () => {
    const run = runCli(['--help']);
    expect(run.status).toBe(0);
    expect(run.stdout).toContain('--json FILE');
  });

  it.each([['--nope'], ['--runs', '0'], ['--only', 'limit,unknown'], ['extra']].map((args) => [args.join(' '), args]))(
    'refuses "%s" with a message and exit status 2',
    (_label, args) => {
      const run = runCli(args);
      expect(run.status).toBe(2);
      expect(run.stderr).toMatch(/^bench: /);
      expect(run.stderr).toContain('Usage:');
    },
  );
});
