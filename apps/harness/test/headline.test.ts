import { describe, expect, it } from 'vitest';
import { headlines } from '../src/report/headline.ts';
import { result } from './helpers.ts';

const ok = { acked: 500, failed: 0, errors: {}, stored: 500, lost: 0, writers: 500, attempted: 500 };

describe('headlines: one line per scenario, in plain words', () => {
  it('raw and repo side by side: repo first, with its p99 and CPU as ratios of raw', () => {
    const lines = headlines([
      result({ ...ok, target: 'raw', p99Ms: 1000, cpuMs: 3000 }),
      result({ ...ok, target: 'repo', p99Ms: 800, cpuMs: 2700 }),
    ]);
    expect(lines).toEqual(['500 processes (WAL): repo 0 errors, p99 0.8× raw, CPU 0.9× raw; raw 0 errors']);
  });

  it('raw that failed says how many and why; scenarios keep their order', () => {
    const lines = headlines([
      result({ ...ok, writers: 5, attempted: 5, acked: 5, stored: 5, target: 'raw', p99Ms: 10, cpuMs: 30 }),
      result({ ...ok, writers: 5, attempted: 5, acked: 5, stored: 5, target: 'repo', p99Ms: 25, cpuMs: 30 }),
      result({
        ...ok,
        writers: 100,
        rowsPerWriter: 5,
        journal: 'delete',
        target: 'raw',
        failed: 92,
        errors: { SQLITE_BUSY: 92 },
        p99Ms: 6000,
        cpuMs: 2000,
      }),
      result({ ...ok, writers: 100, rowsPerWriter: 5, journal: 'delete', target: 'repo', p99Ms: 1200, cpuMs: 1500 }),
    ]);
    expect(lines).toEqual([
      '5 processes (WAL): repo 0 errors, p99 2.5× raw, CPU 1.0× raw; raw 0 errors',
      '100 processes × 5 rows (rollback journal): repo 0 errors, p99 0.2× raw, CPU 0.8× raw; raw 92 errors (SQLITE_BUSY)',
    ]);
  });

  it('several error codes are listed with their counts; a loss is always named', () => {
    const [line] = headlines([
      result({ target: 'raw', mode: 'thread', writers: 1, failed: 3, errors: { SQLITE_BUSY: 2, OPEN_BUSY: 1 } }),
      result({ target: 'repo', mode: 'thread', writers: 1, failed: 0, errors: {}, acked: 50, stored: 47, lost: 3 }),
    ]);
    expect(line).toMatch(
      /^1 thread \(WAL\): repo 0 errors, 3 lost of 50 acknowledged, p99 .*; raw 3 errors \(SQLITE_BUSY 2, OPEN_BUSY 1\)$/,
    );
  });

  it('PostgreSQL: the backend is named, not a journal mode (it has none)', () => {
    const pg = { ...ok, backend: 'postgres' as const, writers: 50, attempted: 50, acked: 50, stored: 50 };
    expect(
      headlines([
        result({ ...pg, target: 'raw', p99Ms: 100, cpuMs: 1000 }),
        result({ ...pg, target: 'repo', p99Ms: 90, cpuMs: 800 }),
        result({ ...pg, target: 'repo', mode: 'thread', writers: 1, p99Ms: 5, cpuMs: 20 }),
      ]),
    ).toEqual([
      '50 processes (PostgreSQL): repo 0 errors, p99 0.9× raw, CPU 0.8× raw; raw 0 errors',
      '1 thread (PostgreSQL): repo 0 errors, p99 5.0 ms, CPU 20 ms',
    ]);
  });

  it('one target alone: its own p99 and CPU, no ratio', () => {
    expect(headlines([result({ ...ok, target: 'repo', mode: 'async', p99Ms: 40.3, cpuMs: 1462 })])).toEqual([
      '500 async tasks (WAL): repo 0 errors, p99 40 ms, CPU 1.5 s',
    ]);
  });

  it('mixed: both kinds of writers with what each lost, and the readers they shared', () => {
    const reads = {
      reads: 700,
      readsBy: { 'better-sqlite3': 500, 'sqlite3 CLI 3.40.1': 200 },
      failed: 0,
      errors: {},
      errorExamples: {},
    };
    const mixed = { ...ok, scenario: 'mixed' as const, writers: 20, rowsPerWriter: 20, readers: 4, reads };
    expect(
      headlines([
        result({ ...mixed, target: 'repo', acked: 400, stored: 388, lost: 12 }),
        result({ ...mixed, target: 'raw', acked: 400, stored: 400 }),
      ]),
    ).toEqual([
      'mixed, 20 repo + 20 raw writer processes × 20 rows, 4 readers (WAL): repo 0 errors, 12 lost of 400 acknowledged; ' +
        'raw 0 errors, 0 lost of 400 acknowledged; readers 700 reads (500 better-sqlite3, 200 sqlite3 CLI 3.40.1), 0 errors',
    ]);
  });

  it('--chaos kill: what each target lost of what it acknowledged, each with its own readers; integrity named when not ok', () => {
    const chaos = { chaos: 'kill' as const, writers: 20, rowsPerWriter: 50, readers: 2 };
    const reads = (n: number) => ({
      reads: n,
      readsBy: { 'better-sqlite3': n },
      failed: 0,
      errors: {},
      errorExamples: {},
    });
    const [line] = headlines([
      result({ ...chaos, target: 'raw', failed: 0, errors: {}, acked: 817, lost: 0, reads: reads(60) }),
      result({
        ...chaos,
        target: 'repo',
        failed: 0,
        errors: {},
        acked: 708,
        lost: 0,
        reads: reads(70),
        integrity: 'bad page',
      }),
    ]);
    expect(line).toBe(
      '20 processes × 50 rows, half of them SIGKILLed, 2 readers (WAL): repo 0 errors, 0 lost of 708 acknowledged, ' +
        'readers 70 reads, 0 errors; raw 0 errors, 0 lost of 817 acknowledged, readers 60 reads, 0 errors; integrity_check: bad page',
    );
  });
});
