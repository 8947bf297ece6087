import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { formatMaintenance, runMaintenanceBench } from '../src/maintenance.ts';

const directory = mkdtempSync(join(tmpdir(), 'bench-maintenance-test-'));
afterAll(() => rmSync(directory, { recursive: true, force: true }));

// Structure and correctness of the reading-back and retention rows; speed is never checked here.
describe('the maintenance rows of pnpm bench', () => {
  it('measures summarize, export and prune against one SELECT / one DELETE, with no problem', async () => {
    const bench = await runMaintenanceBench(3000, directory);
    expect(bench.problems).toEqual([]);
    expect(bench.results.map((row) => row.name)).toEqual([
      'summarize-1h',
      'export',
      'prune (writer running)',
      "prune: writer's p99 during",
    ]);
    for (const row of bench.results) {
      for (const figure of [row.repo, row.naive, row.ratio]) {
        expect(Number.isFinite(figure), row.name).toBe(true);
        expect(figure, row.name).toBeGreaterThanOrEqual(0);
      }
    }
    expect(formatMaintenance(bench)).toContain('| summarize-1h |');
  }, 60_000);
});
