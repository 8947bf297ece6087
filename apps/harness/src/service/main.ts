import { writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { describeRun } from '../report/run-info.ts';
import { runServiceComparison, serviceScenarioDefaults } from './run-service.ts';
import { formatServiceTable, serviceProblems, serviceTargetMisses, serviceVerdict } from './service-report.ts';

/** `pnpm harness --scenario service`: runs the comparison, prints the table and the verdict; resolves with the exit code. */
export async function runServiceScenario(argv: readonly string[], jsonPath: string | undefined): Promise<number> {
  const info = describeRun(argv);
  const load = loadavg()
    .map((value) => value.toFixed(2))
    .join(' ');
  process.stdout.write(
    `${info.command}\n${info.date} · ${info.machine} · SQLite ${info.sqliteVersion} · load average ${load}\n${info.writePath}\n\n`,
  );
  const settings = serviceScenarioDefaults;
  const results = await runServiceComparison(settings, (line) => process.stderr.write(`${line}\n`));
  process.stdout.write(`${formatServiceTable(results, settings)}\n\n${serviceVerdict(results)}\n`);
  if (jsonPath !== undefined) {
    // fd-safe: the JSON report the user asked for
    writeFileSync(jsonPath, `${JSON.stringify({ info, settings, results }, null, 2)}\n`);
    process.stdout.write(`wrote ${jsonPath}\n`);
  }
  const problems = [...serviceProblems(results, settings), ...serviceTargetMisses(results)];
  if (problems.length > 0) {
    process.stdout.write(`\nFAIL:\n${problems.map((problem) => `  ${problem}`).join('\n')}\n`);
    return 1;
  }
  process.stdout.write(
    "\nOK: the repository's service failed no request, lost no row, kept /healthz p99 within 20 ms\n",
  );
  return 0;
}
