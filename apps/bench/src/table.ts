import type { BenchReport, ScenarioResult } from './bench.ts';
import { formatMaintenance } from './maintenance.ts';

const integer = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });
const decimal = (digits: number) =>
  new Intl.NumberFormat('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });

/** 1,234 below ten thousand, 12.3k above: short enough to list every run in one cell. */
const compact = (value: number) =>
  value < 10_000 ? integer.format(value) : `${decimal(value < 100_000 ? 1 : 0).format(value / 1000)}k`;

const ms = (value: number) => (value >= 100 ? integer.format(value) : decimal(value >= 10 ? 1 : 2).format(value));

interface Column {
  header: string;
  cell(result: ScenarioResult): string;
  alignRight?: boolean;
}

const columns: Column[] = [
  { header: 'scenario', cell: (r) => r.name },
  { header: 'rows', cell: (r) => integer.format(r.rows), alignRight: true },
  { header: 'stored', cell: (r) => integer.format(r.stored), alignRight: true },
  { header: 'wall ms', cell: (r) => ms(r.wallMs), alignRight: true },
  { header: 'rows/s', cell: (r) => integer.format(r.rowsPerSec), alignRight: true },
  {
    header: 'rows/s of each run',
    cell: (r) => r.runs.map((run) => compact(run.rowsPerSec)).join(' '),
    alignRight: true,
  },
  { header: 'p50 ms', cell: (r) => ms(r.p50Ms), alignRight: true },
  { header: 'p99 ms', cell: (r) => ms(r.p99Ms), alignRight: true },
  { header: 'cpu ms/row', cell: (r) => (r.cpuMsPerRow === undefined ? '' : ms(r.cpuMsPerRow)), alignRight: true },
  { header: 'max loop delay ms', cell: (r) => ms(r.maxEventLoopDelayMs), alignRight: true },
  { header: 'p99 loop delay ms', cell: (r) => ms(r.p99EventLoopDelayMs), alignRight: true },
  {
    header: 'p99 loop delay over time ms',
    cell: (r) => ms(r.timeWeightedP99EventLoopDelayMs),
    alignRight: true,
  },
];

/** A Markdown table (readable as is in a terminal, pasted as is into BENCHMARKS.md). */
export function formatResultsTable(results: readonly ScenarioResult[]): string {
  const cells = results.map((result) => columns.map((column) => column.cell(result)));
  const widths = columns.map((column, i) => Math.max(column.header.length, ...cells.map((row) => row[i]?.length ?? 0)));
  const line = (values: string[]) =>
    `| ${values.map((value, i) => (columns[i]?.alignRight ? value.padStart(widths[i] ?? 0) : value.padEnd(widths[i] ?? 0))).join(' | ')} |`;
  const rule = `|${widths.map((width, i) => (columns[i]?.alignRight ? `${'-'.repeat(width + 1)}:` : '-'.repeat(width + 2))).join('|')}|`;
  return [line(columns.map((column) => column.header)), rule, ...cells.map(line)].join('\n');
}

/** The whole report for a terminal: table, what each scenario did, ratios, targets, machine. */
export function formatReport(report: BenchReport): string {
  const { machine, sizes } = report;
  const lines = [
    formatResultsTable(report.results),
    '',
    `Each row is the median of ${sizes.runs} run(s), each on a fresh file (by rows/s; the one-shot ones by p99 latency; lock-wait-repo by p99 loop delay, lock-wait-raw by max loop delay).`,
    ...report.results.map((result) => `- ${result.name}: ${result.description}`),
    ...(report.maintenance === undefined ? [] : ['', formatMaintenance(report.maintenance)]),
    '',
    'Ratios (from the figures above):',
    ...Object.entries(report.ratios).map(([name, value]) => {
      const rounds = report.ratiosPerRound[name];
      return `- ${name}: ${value}${rounds && rounds.length > 1 ? ` (each round alone: ${rounds.join(' ')})` : ''}`;
    }),
    '',
    'Targets (issues 5 and 12):',
    ...report.targets.map(
      (check) =>
        `- ${check.figure} = ${check.value}, target ${check.target}: ${check.met ? 'met' : 'MISSED'}` +
        (check.roundsMet && report.sizes.runs > 1 ? `, met in ${check.roundsMet} rounds alone` : '') +
        (check.stretch ? ` (stretch ${check.stretch.target}: ${check.stretch.met ? 'met' : 'not met'})` : ''),
    ),
    '',
    `Machine: ${machine.cores} cores (${machine.cpu}), ${machine.memoryGiB} GiB, ${machine.os}, Node ${machine.node}, ` +
      `SQLite ${machine.sqlite} (better-sqlite3 ${machine.betterSqlite3}), load average at start ${machine.loadAverageAtStart}`,
    ...report.notes,
    `Date: ${report.date}; code at ${report.revision}; whole run ${integer.format(report.totalMs / 1000)} s`,
    report.correct
      ? 'Correctness: every run stored exactly the rows it acknowledged; no write was refused.'
      : `CORRECTNESS PROBLEMS:\n${report.problems.map((problem) => `- ${problem}`).join('\n')}`,
  ];
  return lines.join('\n');
}
