/**
 * What `pnpm --filter @repo/bench run profile` runs under `node --cpu-prof`:
 * one in-process scenario (repo-async by default, or limit for comparison),
 * several times, on fresh files. Bundled first (so the profile's line numbers
 * point into plain JavaScript), without the launcher.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fullSizes } from '../config.ts';
import { limit } from '../scenarios/limit.ts';
import { repoAsync } from '../scenarios/repo-async.ts';

const runs = Number(process.argv[2] ?? 3);
const scenario = process.argv[3] === 'limit' ? limit : repoAsync;
const directory = mkdtempSync(join(tmpdir(), 'repo-bench-profile-'));
try {
  for (let run = 1; run <= runs; run++) {
    const measurement = await scenario.run({ sizes: fullSizes, file: join(directory, `run-${run}.db`) });
    const rowsPerSec = Math.round((measurement.rows / measurement.wallMs) * 1000);
    process.stderr.write(
      `profile ${scenario.name} run ${run}/${runs}: ${measurement.rows} rows, ${rowsPerSec} rows/s\n`,
    );
  }
} finally {
  rmSync(directory, { recursive: true, force: true });
}
