import { describe, expect, it } from 'vitest';
import { percentile, summarizeLatencies } from '../src/stats.ts';
import { problemsOf, summarizeScenario } from '../src/summarize.ts';
import type { WriterResult } from '../src/types.ts';
import type { WritersRun } from '../src/writers/writers-run.ts';
import { spec } from './helpers.ts';

const writer = (overrides: Partial<WriterResult>): WriterResult => ({
  acked: 0,
  failed: 0,
  errors: {},
  errorExamples: {},
  latenciesMs: [],
  memoryKb: undefined,
  cpuMs: undefined,
  ...overrides,
});

const run = (writers: WriterResult[], overrides: Partial<WritersRun> = {}): WritersRun => ({
  writers,
  readyMs: 1234.4,
  wallMs: 500,
  harnessCpuMs: 10,
  killed: 0,
  ackedEventIds: undefined,
  note: undefined,
  ...overrides,
});

const inspection = { stored: 5, journalMode: 'wal', integrity: 'ok', missingAcked: undefined };

describe('summarizeScenario', () => {
  it('adds up the writers, merges error codes, and computes lost = acked - stored', () => {
    const result = summarizeScenario(
      spec({ target: 'raw', mode: 'process', writers: 3, rowsPerWriter: 3 }),
      run([
        writer({ acked: 3, latenciesMs: [1, 2, 3], memoryKb: 10_240, cpuMs: 100 }),
        writer({
          acked: 1,
          failed: 2,
          errors: { SQLITE_BUSY: 2 },
          errorExamples: { SQLITE_BUSY: 'database is locked' },
          latenciesMs: [4, 5000, 5001],
          memoryKb: 10_240,
        }),
        writer({
          failed: 3,
          errors: { OPEN_BUSY: 3, SQLITE_BUSY: 0 },
          errorExamples: { OPEN_BUSY: 'cannot open' },
          memoryKb: 10_240,
        }),
      ]),
      { ...inspection, stored: 3 },
      { busyTimeoutMs: 5000, lockTimeoutMs: 30_000, harnessGrowthKb: 2048 },
    );
    expect(result).toMatchObject({
      target: 'raw',
      writers: 3,
      attempted: 9,
      acked: 4,
      failed: 5,
      stored: 3,
      lost: 1,
      wallMs: 500,
      rowsPerSec: 8,
      readyMs: 1234,
      peakMemoryMb: 32,
      cpuMs: 110,
      journalAfter: 'wal',
      integrity: 'ok',
      busyTimeoutMs: 5000,
      errorExamples: { SQLITE_BUSY: 'database is locked', OPEN_BUSY: 'cannot open' },
      p50Ms: 3,
      maxMs: 5001,
    });
    // Most frequent code first.
    expect(Object.entries(result.errors)).toEqual([
      ['OPEN_BUSY', 3],
      ['SQLITE_BUSY', 2],
    ]);
    expect(result.note).toBeUndefined();
    expect(result.dbPath).toBeUndefined();
  });

  it('with acknowledged ids looked up one by one (chaos), lost is the number missing, not a count difference', () => {
    const result = summarizeScenario(
      spec({ chaos: 'kill', mode: 'process', writers: 2, rowsPerWriter: 10 }),
      run([writer({ acked: 7 }), writer({ acked: 4 })], { killed: 1, ackedEventIds: [] }),
      // A killed writer committed two rows it never acknowledged: the count alone would hide a missing one.
      { ...inspection, stored: 12, missingAcked: 1 },
      { busyTimeoutMs: 5000, lockTimeoutMs: 30_000, harnessGrowthKb: 0 },
    );
    expect(result).toMatchObject({ acked: 11, stored: 12, lost: 1, killed: 1, attempted: 20 });
    expect(problemsOf(result)).toEqual([]);
    expect(problemsOf({ ...result, target: 'repo' })).toEqual(['1 lost']);
  });

  it('no samples: null latencies, and no division by zero', () => {
    const result = summarizeScenario(
      spec({ writers: 1, rowsPerWriter: 1 }),
      run([writer({ failed: 1, errors: { TIMEOUT: 1 } })], { wallMs: 0, note: 'timed out' }),
      { ...inspection, stored: 0 },
      { busyTimeoutMs: 0, lockTimeoutMs: 30_000, harnessGrowthKb: 0, dbPath: '/tmp/kept.db' },
    );
    expect(result).toMatchObject({ p50Ms: null, p99Ms: null, maxMs: null, rowsPerSec: 0, lost: 0, note: 'timed out' });
    expect(result.dbPath).toBe('/tmp/kept.db');
  });
});

describe('problemsOf: what makes the harness exit non-zero', () => {
  const base = summarizeScenario(
    spec({ target: 'repo', writers: 2, rowsPerWriter: 1 }),
    run([writer({ acked: 1 }), writer({ acked: 1 })]),
    { ...inspection, stored: 2 },
    { busyTimeoutMs: 5000, lockTimeoutMs: 30_000, harnessGrowthKb: 0 },
  );
  it('a clean repo result has none', () => expect(problemsOf(base)).toEqual([]));
  it('repo: failed, lost, stored-but-not-acknowledged, a damaged file, a note', () => {
    expect(problemsOf({ ...base, failed: 2 })).toEqual(['2 failed']);
    expect(problemsOf({ ...base, lost: 3 })).toEqual(['3 lost']);
    expect(problemsOf({ ...base, lost: -1 })).toEqual(['1 stored but never acknowledged']);
    expect(problemsOf({ ...base, integrity: 'page 3 is never used' })).toEqual([
      'integrity_check: page 3 is never used',
    ]);
    expect(problemsOf({ ...base, note: 'timed out' })).toEqual(['timed out']);
  });
  it('raw failing is what the harness is there to show, not a problem', () => {
    expect(problemsOf({ ...base, target: 'raw', failed: 10, lost: 2 })).toEqual([]);
  });
});

describe('latency statistics', () => {
  it('nearest-rank percentiles', () => {
    const sorted = Array.from({ length: 100 }, (_, i) => i + 1);
    expect(percentile(sorted, 50)).toBe(50);
    expect(percentile(sorted, 95)).toBe(95);
    expect(percentile(sorted, 99)).toBe(99);
    expect(percentile(sorted, 100)).toBe(100);
    expect(percentile([7], 50)).toBe(7);
    expect(() => percentile([], 50)).toThrow(RangeError);
  });
  it('summarizes unsorted samples, rounded to 0.01 ms', () => {
    expect(summarizeLatencies([2.256, 1, 2])).toEqual({ p50Ms: 2, p95Ms: 2.26, p99Ms: 2.26, maxMs: 2.26 });
    expect(summarizeLatencies([])).toEqual({ p50Ms: null, p95Ms: null, p99Ms: null, maxMs: null });
  });
});
