import { realpathSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { type HarnessOptions, parseHarnessArgs, UsageError } from './args.ts';
import { findLimits, formatFinding } from './find-limit.ts';
import { helpText } from './help.ts';
import { runMaintenanceScenario } from './maintenance/main.ts';
import { startHarnessPostgres } from './postgres/server.ts';
import { failIfEndedEarly } from './program.ts';
import { createProgressReporter, type ProgressReporter } from './progress.ts';
import { headlines } from './report/headline.ts';
import { renderHtmlReport } from './report/html.ts';
import { describeRun } from './report/run-info.ts';
import { shareableResult } from './report/shareable.ts';
import { formatTable } from './report/table.ts';
import { removeTemporaryFiles, runScenario } from './run-scenario.ts';
import { describeScenario, planScenarios, writerCount } from './scenarios.ts';
import { runServiceScenario } from './service/main.ts';
import { problemsOf } from './summarize.ts';
import type { RunSettings, ScenarioResult, ScenarioSpec } from './types.ts';

/** Runs the harness for a command line; resolves with the exit code. */
export async function main(argv: readonly string[]): Promise<number> {
  let options: HarnessOptions;
  try {
    options = parseHarnessArgs(argv);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    process.stderr.write(`harness: ${error.message}\nRun \`pnpm harness --help\` for every option.\n`);
    return 2;
  }
  if (options.help) {
    process.stdout.write(helpText);
    return 0;
  }
  // `pnpm harness` runs in apps/harness; file names on the command line mean the caller's directory.
  const callerDirectory = process.env.INIT_CWD ?? process.cwd();
  const fromCaller = (path: string | undefined) => (path === undefined ? undefined : resolve(callerDirectory, path));
  options = {
    ...options,
    dbPath: fromCaller(options.dbPath),
    jsonPath: fromCaller(options.jsonPath),
    reportPath: fromCaller(options.reportPath),
  };
  if (options.scenario === 'service') return runServiceScenario(argv, options.jsonPath);
  if (options.scenario === 'maintenance') {
    return runMaintenanceScenario(argv, options.jsonPath, options.prefill > 0 ? { prefillRows: options.prefill } : {});
  }

  const info = describeRun(argv);
  const postgres =
    options.backend === 'postgres'
      ? await startHarnessPostgres(Math.max(options.findLimit ? options.limitCap : 0, ...options.writers, 500))
      : undefined;
  const database = postgres === undefined ? `SQLite ${info.sqliteVersion}` : postgres.description;
  process.stdout.write(
    `${info.command}\n${info.date} · ${info.machine} · ${database}${postgres === undefined ? `\n${info.writePath}` : ''}\n\n`,
  );
  try {
    return await runAll(options, info, postgres === undefined ? {} : { postgres: postgres.server });
  } finally {
    await postgres?.server.stop();
  }
}

async function runAll(
  options: HarnessOptions,
  info: ReturnType<typeof describeRun>,
  backend: Pick<RunSettings, 'postgres'>,
): Promise<number> {
  const settings: RunSettings = {
    ...backend,
    busyTimeoutMs: options.busyTimeoutMs,
    lockTimeoutMs: options.lockTimeoutMs,
    dbPath: options.dbPath,
    keep: options.keep,
    scenarioTimeoutMs: options.timeoutMs,
  };
  const progress = createProgressReporter();
  let position = 0;
  const planned = options.findLimit ? undefined : planScenarios(options);
  const runOne = (spec: ScenarioSpec) => {
    position += 1;
    const label = `[${position}${planned ? `/${planned.length}` : ''}] ${describeScenario(spec, { planned: true })}`;
    return runWithProgress(spec, settings, progress, label);
  };

  let results: ScenarioResult[];
  const limitLines: string[] = [];
  if (planned === undefined) {
    const found = await findLimits(options, runOne);
    results = found.results;
    limitLines.push(...found.findings.map(formatFinding));
  } else {
    results = [];
    for (const spec of planned) results.push(...(await runOne(spec)));
  }

  process.stdout.write(`${formatTable(results)}\n`);
  if (limitLines.length > 0) process.stdout.write(`\n${limitLines.join('\n')}\n`);
  process.stdout.write(`\n${headlines(results).join('\n')}\n`);
  const kept = results.filter((r) => r.dbPath !== undefined && options.dbPath === undefined);
  if (kept.length > 0) process.stdout.write(`\nkept files:\n${kept.map((r) => `  ${r.dbPath}`).join('\n')}\n`);
  if (options.jsonPath !== undefined) {
    // fd-safe: the JSON and HTML reports the user asked for
    writeFileSync(options.jsonPath, `${JSON.stringify(results.map(shareableResult), null, 2)}\n`);
    process.stdout.write(`\nwrote ${options.jsonPath}\n`);
  }
  if (options.reportPath !== undefined) {
    // fd-safe: the HTML report the user asked for
    writeFileSync(options.reportPath, renderHtmlReport(results, info));
    process.stdout.write(`wrote ${options.reportPath}\n`);
  }

  const problems = results.flatMap((result) =>
    problemsOf(result).map((problem) => `${describeScenario(result)}: ${problem}`),
  );
  const repoScenarios = results.filter((r) => r.target === 'repo').length;
  if (problems.length > 0) {
    process.stdout.write(`\nFAIL: the repository failed or lost rows:\n${problems.map((p) => `  ${p}`).join('\n')}\n`);
    return 1;
  }
  if (repoScenarios > 0) {
    process.stdout.write(`\nOK: repo target: 0 failed, 0 lost in ${repoScenarios} scenario(s)\n`);
  }
  return 0;
}

async function runWithProgress(
  spec: ScenarioSpec,
  settings: RunSettings,
  progress: ProgressReporter,
  label: string,
): Promise<ScenarioResult[]> {
  const scenario = progress(label, writerCount(spec));
  const results = await runScenario(spec, settings, scenario);
  scenario.end(results);
  return results;
}

/**
 * Runs the harness as a program: `process.argv`, signals, exit code. Called by
 * `bin/harness.mjs` (what `pnpm harness` starts) and when this file is started
 * directly (`tsx src/cli.ts`).
 */
export function runAsProgram(): void {
  // Ctrl-C reaches the writer processes too (same process group); what is left to remove is our temporary files.
  for (const [signal, code] of [
    ['SIGINT', 130],
    ['SIGTERM', 143],
  ] as const) {
    process.once(signal, () => {
      removeTemporaryFiles();
      process.exit(code);
    });
  }
  // `pnpm harness | head`: a closed pipe ends the output, not with a stack trace.
  process.stdout.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code === 'EPIPE') process.exit(0);
    throw error;
  });
  failIfEndedEarly('harness');
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (error: unknown) => {
      process.stderr.write(`harness: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
      process.exitCode = 1;
    },
  );
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(realpathSync(process.argv[1])).href) {
  runAsProgram();
}
