import type { ScenarioResult } from '../types.ts';

export interface Column {
  header: string;
  value(result: ScenarioResult): string | number | null;
  alignLeft?: boolean;
}

const columns: Column[] = [
  { header: 'target', value: (r) => r.target, alignLeft: true },
  { header: 'mode', value: (r) => r.mode, alignLeft: true },
  { header: 'journal', value: (r) => (r.backend === 'postgres' ? 'pg' : r.journal), alignLeft: true },
  { header: 'writers', value: (r) => r.writers },
  { header: 'rows/w', value: (r) => r.rowsPerWriter },
  { header: 'prefill', value: (r) => r.prefill },
  { header: 'attempted', value: (r) => r.attempted },
  { header: 'acked', value: (r) => r.acked },
  { header: 'failed', value: (r) => r.failed },
  { header: 'stored', value: (r) => r.stored },
  { header: 'lost', value: (r) => r.lost },
  { header: 'wall ms', value: (r) => r.wallMs },
  { header: 'rows/s', value: (r) => r.rowsPerSec },
  { header: 'p50 ms', value: (r) => formatMs(r.p50Ms) },
  { header: 'p95 ms', value: (r) => formatMs(r.p95Ms) },
  { header: 'p99 ms', value: (r) => formatMs(r.p99Ms) },
  { header: 'max ms', value: (r) => formatMs(r.maxMs) },
  { header: 'cpu ms', value: (r) => r.cpuMs },
  { header: 'peak MB', value: (r) => r.peakMemoryMb },
  { header: 'journal after', value: (r) => r.journalAfter, alignLeft: true },
  { header: 'errors', value: (r) => formatErrors(r.errors), alignLeft: true },
];

const scenarioColumn: Column = { header: 'scenario', value: (r) => r.scenario, alignLeft: true };
const killedColumn: Column = { header: 'killed', value: (r) => r.killed };
const readerColumns: Column[] = [
  { header: 'readers', value: (r) => r.readers },
  { header: 'reads', value: (r) => r.reads?.reads ?? null },
  {
    header: 'read errors',
    value: (r) => (r.reads === undefined ? null : formatErrors(r.reads.errors)),
    alignLeft: true,
  },
];

/**
 * The table's columns for these results: `scenario` only when some scenario is
 * not a plain insert, `killed` only when some scenario killed writers, the
 * readers' columns only when some scenario had readers.
 */
export function tableColumns(results: readonly ScenarioResult[]): Column[] {
  return [
    ...(results.some((r) => r.scenario !== 'insert') ? [scenarioColumn] : []),
    ...columns.slice(0, 11),
    ...(results.some((r) => r.chaos !== 'none') ? [killedColumn] : []),
    ...columns.slice(11),
    ...(results.some((r) => r.readers > 0) ? readerColumns : []),
  ];
}

/** The results as rows of formatted cells, one per scenario. */
export function tableCells(results: readonly ScenarioResult[], shown = tableColumns(results)): string[][] {
  return results.map((result) => shown.map((column) => formatCell(column.value(result))));
}

/** The results as an aligned plain-text table, one line per scenario. */
export function formatTable(results: readonly ScenarioResult[]): string {
  const shown = tableColumns(results);
  const cells = tableCells(results, shown);
  const widths = shown.map((column, i) =>
    Math.max(column.header.length, ...cells.map((row) => (row[i] as string).length)),
  );
  const line = (row: string[]) =>
    row
      .map((cell, i) => (shown[i]?.alignLeft ? cell.padEnd(widths[i] as number) : cell.padStart(widths[i] as number)))
      .join('  ')
      .trimEnd();
  const header = line(shown.map((column) => column.header));
  const rule = widths.map((width) => '-'.repeat(width)).join('  ');
  const notes = results
    .filter((r) => r.integrity !== 'ok' || r.note !== undefined)
    .map(
      (r) =>
        `note: ${r.target} ${r.mode} ${r.writers} writers: ${[r.note, r.integrity !== 'ok' ? `integrity_check ${r.integrity}` : undefined].filter(Boolean).join('; ')}`,
    );
  return [header, rule, ...cells.map(line), ...notes].join('\n');
}

export function formatErrors(errors: Record<string, number>): string {
  const entries = Object.entries(errors);
  return entries.length === 0 ? '-' : entries.map(([code, count]) => `${code}:${count}`).join(' ');
}

function formatCell(value: string | number | null): string {
  return value === null ? '-' : String(value);
}

/** Latencies: two decimals below 10 ms, one above, so a column reads evenly. */
function formatMs(ms: number | null): string | null {
  return ms === null ? null : ms.toFixed(ms < 10 ? 2 : 1);
}
