import { writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { describeRun } from '../report/run-info.ts';
import {
  type MaintenanceResult,
  type MaintenanceSettings,
  maintenanceDefaults,
  runMaintenanceComparison,
} from './run-maintenance.ts';

/** `pnpm harness --scenario maintenance`: runs it, prints the table and the verdict; resolves with the exit code. */
export async function runMaintenanceScenario(
  argv: readonly string[],
  jsonPath: string | undefined,
  overrides: Partial<MaintenanceSettings> = {},
): Promise<number> {
  const info = describeRun(argv);
  const load = loadavg()
    .map((value) => value.toFixed(2))
    .join(' ');
  process.stdout.write(
    `${info.command}\n${info.date} · ${info.machine} · SQLite ${info.sqliteVersion} · load average ${load}\n\n`,
  );
  const settings = { ...maintenanceDefaults, ...overrides };
  const result = await runMaintenanceComparison(settings, (line) => process.stderr.write(`${line}\n`));
  process.stdout.write(`${formatMaintenance(result, settings)}\n\n${maintenanceVerdict(result, settings)}\n`);
  if (jsonPath !== undefined) {
    // fd-safe: the JSON report the user asked for
    writeFileSync(jsonPath, `${JSON.stringify({ info, settings, result }, null, 2)}\n`);
    process.stdout.write(`wrote ${jsonPath}\n`);
  }
  const problems = maintenanceProblems(result, settings);
  if (problems.length > 0) {
    process.stdout.write(`\nFAIL:\n${problems.map((problem) => `  ${problem}`).join('\n')}\n`);
    return 1;
  }
  process.stdout.write(
    `\nOK: no writer failed, no row lost, writers' p99 within ${settings.maxP99Ratio}x of the baseline while prune, summarize and export ran\n`,
  );
  return 0;
}

/** The figures, one line each. */
export function formatMaintenance(result: MaintenanceResult, settings: MaintenanceSettings): string {
  const phase = (label: string, p: MaintenanceResult['baseline']) =>
    `${label}: ${p.waves} waves of ${settings.processWriters} one-row processes + ${settings.asyncWriters} async writers; ` +
    `${p.acked} acked, ${p.failed} failed; p50 ${p.p50Ms} ms, p99 ${p.p99Ms} ms, max ${p.maxMs} ms; ` +
    `p99 of each wave ${p.waveP99sMs.join(' ')}`;
  return [
    phase('writers alone          ', result.baseline),
    phase('writers with maintenance', result.withMaintenance),
    `prune: ${result.prune.deleted} of ${result.prefillRows} prefilled rows in ${result.prune.ms} ms (${result.prune.rowsPerSec} rows/s)` +
      (result.prune.error === undefined ? '' : `; failed: ${result.prune.error}`),
    `summarize (1 h by minute over the prefilled rows): ${result.summarize.runs} runs, p50 ${result.summarize.p50Ms} ms, max ${result.summarize.maxMs} ms, ${result.summarize.errors} errors`,
    `export: ${result.export.runs} runs, ${result.export.rows} rows at ${result.export.rowsPerSec} rows/s, ${result.export.errors} errors`,
    `largest -wal seen: ${(result.maxWalBytes / 2 ** 20).toFixed(1)} MiB; prefilled rows left ${result.prefillLeft}; quick_check ${result.integrity}`,
  ].join('\n');
}

/** The verdict line: errors, lost, writers' p99 with and without the maintenance work. */
export function maintenanceVerdict(result: MaintenanceResult, settings: MaintenanceSettings): string {
  const errors =
    result.baseline.failed +
    result.withMaintenance.failed +
    result.summarize.errors +
    result.export.errors +
    (result.prune.error === undefined ? 0 : 1);
  return (
    `maintenance: ${errors} errors, ${result.lost} lost; writers' p99 ${result.baseline.p99Ms} ms alone, ` +
    `${result.withMaintenance.p99Ms} ms with prune + summarize + export (${result.p99Ratio}x, target <= ${settings.maxP99Ratio}x); ` +
    `prune ${result.prune.rowsPerSec} rows/s`
  );
}

export function maintenanceProblems(result: MaintenanceResult, settings: MaintenanceSettings): string[] {
  const problems: string[] = [];
  for (const [label, phase] of [
    ['alone', result.baseline],
    ['with maintenance', result.withMaintenance],
  ] as const) {
    if (phase.failed > 0) problems.push(`writers ${label}: ${phase.failed} failed (${JSON.stringify(phase.errors)})`);
  }
  if (result.lost !== 0) problems.push(`${result.lost} acknowledged rows are not in the file`);
  if (result.prune.error !== undefined) problems.push(`prune failed: ${result.prune.error}`);
  if (result.prefillLeft !== 0) problems.push(`${result.prefillLeft} prefilled rows were not pruned`);
  if (result.summarize.errors > 0) problems.push(`${result.summarize.errors} summaries failed`);
  if (result.export.errors > 0) problems.push(`${result.export.errors} exports failed`);
  if (result.integrity !== 'ok') problems.push(`quick_check: ${result.integrity}`);
  if (result.p99Ratio > settings.maxP99Ratio) {
    problems.push(`writers' p99 grew ${result.p99Ratio}x with maintenance (target <= ${settings.maxP99Ratio}x)`);
  }
  return problems;
}
