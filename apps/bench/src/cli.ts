import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { failIfEndedEarly } from '@repo/harness/program';
import { runBench, scenarios } from './bench.ts';
import { type BenchSizes, fullSizes, quickSizes } from './config.ts';
import { formatServiceBench, quickServiceBenchSizes, runServiceBench, serviceBenchSizes } from './service.ts';
import { formatReport } from './table.ts';

const usage = `Usage: pnpm bench [options]

Measures the metrics repository against this machine's own limit, side by side
in one run, on fresh temp files, and prints a Markdown table with the ratios.

Options:
  --json FILE     also write the report as JSON to FILE
  --quick         a tiny smoke run (seconds): checks that everything works, measures nothing useful
  --runs N        run every scenario N times, interleaved, and report the median run (default ${fullSizes.runs}; 1 with --quick)
  --only A,B      run only these scenarios: ${scenarios.map((scenario) => scenario.name).join(', ')}, maintenance
                  (maintenance: summarize, export and prune over ${fullSizes.maintenanceRows.toLocaleString('en-US')} rows against one SELECT / one DELETE)
  --service       instead: the HTTP service under load, raw vs repository (the harness's --scenario service,
                  6 s per target), with same-run ratios of /healthz p99 and the longest event-loop stall
  --help          print this help

Exit status: 0 when every run stored exactly the rows it acknowledged, 1 when not, 2 for bad options.`;

class UsageError extends Error {}

interface CliOptions {
  sizes: BenchSizes;
  /** `--service`: the HTTP service comparison instead of the scenarios; `quick` shortens it. */
  service: boolean;
  quick: boolean;
  jsonFile: string | undefined;
  only: string[] | undefined;
}

function parseCli(args: string[]): CliOptions | 'help' {
  let parsed: ReturnType<typeof parseFlags>;
  try {
    parsed = parseFlags(args);
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  const { values } = parsed;
  if (values.help) return 'help';
  const base = values.quick ? quickSizes : fullSizes;
  let runs = base.runs;
  if (values.runs !== undefined) {
    runs = Number(values.runs);
    if (!Number.isInteger(runs) || runs < 1 || runs > 20) {
      throw new UsageError(`--runs must be an integer from 1 to 20, got ${JSON.stringify(values.runs)}`);
    }
  }
  if (values.json !== undefined && values.json.trim() === '') throw new UsageError('--json needs a file name');
  let only: string[] | undefined;
  if (values.only !== undefined) {
    only = values.only.split(',').map((name) => name.trim());
    // `maintenance`: the reading-back and retention rows (maintenance.ts).
    const known = new Set([...scenarios.map((scenario) => scenario.name), 'maintenance']);
    const unknown = only.filter((name) => !known.has(name));
    if (unknown.length > 0 || only.length === 0) {
      throw new UsageError(`--only: unknown scenario ${unknown.join(', ') || '(none given)'}`);
    }
  }
  return {
    sizes: { ...base, runs },
    jsonFile: values.json,
    only,
    service: values.service ?? false,
    quick: values.quick ?? false,
  };
}

function parseFlags(args: string[]) {
  return parseArgs({
    // `pnpm bench -- --quick` hands the separator on: it means nothing here.
    args: args[0] === '--' ? args.slice(1) : args,
    strict: true,
    allowPositionals: false,
    options: {
      json: { type: 'string' },
      quick: { type: 'boolean' },
      runs: { type: 'string' },
      only: { type: 'string' },
      service: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
}

async function main(args: string[]): Promise<number> {
  let options: CliOptions | 'help';
  try {
    options = parseCli(args);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    process.stderr.write(`bench: ${error.message}\n\n${usage}\n`);
    return 2;
  }
  if (options === 'help') {
    process.stdout.write(`${usage}\n`);
    return 0;
  }
  if (options.service) {
    const sizes = options.quick ? quickServiceBenchSizes : serviceBenchSizes;
    const serviceReport = await runServiceBench(sizes, (line) => process.stderr.write(`${line}\n`));
    process.stdout.write(`\n${formatServiceBench(serviceReport)}\n`);
    writeJsonReport(options.jsonFile, serviceReport);
    return serviceReport.problems.length === 0 ? 0 : 1;
  }
  const report = await runBench({
    sizes: options.sizes,
    args,
    ...(options.only === undefined ? {} : { only: options.only }),
    onProgress: (line) => process.stderr.write(`${line}\n`),
  });
  process.stdout.write(`\n${formatReport(report)}\n`);
  writeJsonReport(options.jsonFile, report);
  return report.correct ? 0 : 1;
}

function writeJsonReport(jsonFile: string | undefined, report: unknown): void {
  if (jsonFile === undefined) return;
  // Relative to where the user typed the command: pnpm runs this script from apps/bench.
  const file = resolve(process.env.INIT_CWD ?? process.cwd(), jsonFile);
  mkdirSync(dirname(file), { recursive: true });
  // fd-safe: the JSON report the user asked for
  writeFileSync(file, `${JSON.stringify(report, null, 2)}\n`);
  process.stderr.write(`bench: wrote ${file}\n`);
}

// A repository's close() once left the bench's loop empty half-way: it exited 0 without a word.
failIfEndedEarly('bench');
main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    process.stderr.write(`bench: failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exitCode = 1;
  },
);
