import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { main } from '../src/cli.ts';
import { renderHtmlReport } from '../src/report/html.ts';
import { describeRun } from '../src/report/run-info.ts';
import { formatTable } from '../src/report/table.ts';
import type { ScenarioResult } from '../src/types.ts';
import { result, useTempDir } from './helpers.ts';

describe('table', () => {
  it('one aligned line per scenario, errors by code, a killed column only with chaos', () => {
    const table = formatTable([result({}), result({ target: 'repo', failed: 0, errors: {}, acked: 50, stored: 50 })]);
    const lines = table.split('\n');
    expect(lines).toHaveLength(4);
    expect(lines[0]).toMatch(/^target\s+mode\s+journal\s+writers\s+rows\/w\s+prefill\s+attempted\s+acked\s+failed/);
    expect(lines[0]).not.toMatch(/killed/);
    expect(lines[2]).toMatch(/^raw\s+process\s+wal\s+50\s+1\s+0\s+50\s+40\s+10\s+40\s+0\s.*SQLITE_BUSY:10$/);
    expect(lines[3]).toMatch(/^repo .* -$/);
    // Right-aligned numbers: each column ends where its header ends.
    expect(lines[2]?.indexOf(' 40 ')).toBe((lines[0] as string).indexOf('acked') + 'acked'.length - 3);
    expect(formatTable([result({ chaos: 'kill', killed: 3 })]).split('\n')[0]).toMatch(/\blost\s+killed\b/);
  });
});

describe('HTML report', () => {
  it('is self-contained: Chart.js inlined, data embedded, nothing fetched', () => {
    const html = renderHtmlReport(
      [result({}), result({ writers: 500, target: 'repo' }), result({ note: '</script><b>x</b>' })],
      describeRun(['--writers', '50,500']),
    );
    expect(html).toMatch(/^<!doctype html>/);
    expect(html).not.toMatch(/<script[^>]+src=/i);
    expect(html).not.toMatch(/<link\b/i);
    expect(html).not.toMatch(/\b(fetch|XMLHttpRequest|import\()\s*\(/);
    expect(html).toContain('Chart.js v4');
    expect(html).toContain('<canvas id="rows">');
    expect(html).toContain('const series = [{"label":"raw process wal"');
    expect(html).toContain('pnpm harness --writers 50,500');
    // Exactly the script elements we wrote: nothing in the data or Chart.js closes one early.
    expect(html.match(/<\/script>/g)).toHaveLength(2);
  });
});

describe('HTML report: readable and shareable', () => {
  const tmp = join(tmpdir(), 'harness-x1y2z3');
  const html = renderHtmlReport(
    [
      result({
        dbPath: join(tmp, 'metrics.db'),
        errorExamples: { SQLITE_BUSY: `database ${tmp}/metrics.db is locked` },
      }),
      result({ target: 'repo', failed: 0, errors: {}, acked: 50, stored: 50, note: `stopped; see ${homedir()}/x.log` }),
    ],
    describeRun(['--report', join(homedir(), 'reports', 'r.html'), '--db', join(tmp, 'metrics.db')]),
  );

  it('leads with the summary in plain words, the same lines as the CLI, before the charts and the table', () => {
    const summary = html.indexOf('<ul class="summary">');
    expect(summary).toBeGreaterThan(0);
    expect(summary).toBeLessThan(html.indexOf('<canvas'));
    expect(summary).toBeLessThan(html.indexOf('<table>'));
    expect(html).toContain(
      '<li>50 processes (WAL): repo 0 errors, did not complete, p99 1.0× raw, CPU 1.0× raw; raw 10 errors (SQLITE_BUSY)</li>',
    );
  });

  it('table text is at least 13 px, and no text of the page is smaller', () => {
    expect(html).toMatch(/table \{[^}]*font: 13px/);
    const sizes = [...html.matchAll(/font(?:-size)?:\s*(\d+)px/g)].map((match) => Number(match[1]));
    expect(sizes.length).toBeGreaterThan(3);
    expect(Math.min(...sizes)).toBeGreaterThanOrEqual(13);
  });

  it('raw and repo markers differ in shape and size, and series are shifted apart', () => {
    expect(html).toContain(`pointStyle: isRaw(s) ? 'triangle' : 'circle'`);
    expect(html).toContain(`pointStyle: isRaw(s) ? 'rectRot' : 'crossRot'`);
    expect(html).toContain('x: p.writers * shift(i)');
  });

  it('names no absolute path of this machine: no home, no temporary directory, the database by its file name', () => {
    for (const path of [homedir(), tmpdir(), tmp, process.cwd()]) expect(html).not.toContain(path);
    expect(html).toContain('--db metrics.db');
    expect(html).toContain('--report r.html');
  });
});

describe('cli main', () => {
  const tempDir = useTempDir();
  afterEach(() => vi.restoreAllMocks());

  const captureOutput = () => {
    let stdout = '';
    let stderr = '';
    vi.spyOn(process.stdout, 'write').mockImplementation((chunk) => {
      stdout += String(chunk);
      return true;
    });
    vi.spyOn(process.stderr, 'write').mockImplementation((chunk) => {
      stderr += String(chunk);
      return true;
    });
    return { stdout: () => stdout, stderr: () => stderr };
  };

  it('bad flags: a clear message and exit code 2', async () => {
    const output = captureOutput();
    expect(await main(['--writers', 'many'])).toBe(2);
    expect(output.stderr()).toMatch(/--writers must be an integer.*\n.*--help/);
    expect(output.stdout()).toBe('');
  });

  it("a bad flag through the root `pnpm harness` prints only the harness's message (no pnpm noise) and exits 2", () => {
    const root = join(import.meta.dirname, '..', '..', '..');
    const run = spawnSync('pnpm', ['harness', '--nope'], { cwd: root, encoding: 'utf8', timeout: 60_000 });
    expect(run.status).toBe(2);
    expect(run.stdout).toBe('');
    expect(run.stderr).toBe("harness: Unknown option '--nope'\nRun `pnpm harness --help` for every option.\n");
  });

  it('--help documents every flag', async () => {
    const output = captureOutput();
    expect(await main(['--help'])).toBe(0);
    for (const flag of [
      '--scenario',
      '--readers',
      '--target',
      '--mode',
      '--writers',
      '--rows-per-writer',
      '--journal',
      '--prefill',
      '--busy-timeout',
      '--lock-timeout',
      '--db',
      '--keep',
      '--json',
      '--report',
      '--find-limit',
      '--limit-cap',
      '--chaos',
      '--timeout',
    ]) {
      expect(output.stdout()).toContain(`  ${flag}`);
    }
  });

  it('runs scenarios, prints the table, writes --json and --report, exits 0 when the repo lost nothing', async () => {
    const dir = tempDir();
    const output = captureOutput();
    const code = await main([
      '--mode',
      'async',
      '--writers',
      '2,4',
      '--json',
      join(dir, 'r.json'),
      '--report',
      join(dir, 'r.html'),
    ]);
    expect(code).toBe(0);
    // fd-safe: the reports the harness wrote
    const results = JSON.parse(readFileSync(join(dir, 'r.json'), 'utf8')) as ScenarioResult[];
    expect(results.map((r) => `${r.target} ${r.writers} ${r.stored} ${r.lost}`)).toEqual([
      'raw 2 2 0',
      'repo 2 2 0',
      'raw 4 4 0',
      'repo 4 4 0',
    ]);
    expect(output.stdout()).toMatch(/target\s+mode/);
    expect(output.stdout()).toMatch(/OK: repo target: 0 failed, 0 lost in 2 scenario/);
    // The headlines follow the table.
    expect(output.stdout()).toMatch(
      /lost\b[\s\S]*\n\n2 async tasks \(WAL\): repo 0 errors, p99 [\d.]+× raw, CPU [\d.]+× raw; raw 0 errors\n/,
    );
    // fd-safe: the report the harness wrote
    expect(readFileSync(join(dir, 'r.html'), 'utf8')).toContain('<table>');
  });

  it('--find-limit doubles the writers up to the cap and reports the largest size with no failure', async () => {
    const output = captureOutput();
    expect(await main(['--find-limit', '--mode', 'async', '--writers', '2', '--limit-cap', '5'])).toBe(0);
    expect(output.stdout()).toMatch(
      /raw async wal: no failure up to the cap; largest number of writers with no failure: 5/,
    );
    expect(output.stdout().match(/^raw\s+async\s+wal\s+\d/gm)).toHaveLength(3); // 2, 4, then the cap 5
  });
});
