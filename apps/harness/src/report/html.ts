import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { describeScenario } from '../scenarios.ts';
import type { ScenarioResult } from '../types.ts';
import { chartsScript } from './charts-script.ts';
import { headlines } from './headline.ts';
import type { RunInfo } from './run-info.ts';
import { shareableResult, shareableRunInfo } from './shareable.ts';
import { tableCells, tableColumns } from './table.ts';

/** One line on the charts: a target, mode, journal (and prefill or chaos) across numbers of writers. */
interface Series {
  label: string;
  target: string;
  points: ScenarioResult[];
}

/**
 * One self-contained page: Chart.js's UMD build is inlined, the data is
 * embedded, nothing is fetched. The summary in plain words first (the same
 * lines the CLI prints), then the charts (stored and acknowledged rows, failed
 * rows, p99 latency against the number of writers), the table under them. No
 * absolute path of this machine appears in it (see shareable.ts): reports get
 * committed and shared.
 */
export function renderHtmlReport(allResults: readonly ScenarioResult[], runInfo: RunInfo): string {
  const results = allResults.map(shareableResult);
  const info = shareableRunInfo(runInfo);
  const summary = headlines(results)
    .map((line) => `<li>${escapeHtml(line)}</li>`)
    .join('\n');
  const series = groupSeries(results);
  const columns = tableColumns(results);
  const cells = tableCells(results, columns);
  const headerRow = columns
    .map((column) => `<th${column.alignLeft ? ' class="left"' : ''}>${escapeHtml(column.header)}</th>`)
    .join('');
  const bodyRows = cells
    .map((row, i) => {
      const result = results[i] as ScenarioResult;
      const bad = result.failed > 0 || result.lost !== 0 ? ' class="bad"' : '';
      return `<tr${bad}>${row.map((cell, j) => `<td${columns[j]?.alignLeft ? ' class="left"' : ''}>${escapeHtml(cell)}</td>`).join('')}</tr>`;
    })
    .join('\n');
  const colors = seriesColors(series);
  const legend = series
    .map(
      (line, i) =>
        `<span class="key"><i class="${line.target}" style="background:${colors[i]}"></i>${escapeHtml(line.label)}</span>`,
    )
    .join('\n');
  const chartData = series.map((line, i) => ({
    label: line.label,
    target: line.target,
    color: colors[i],
    points: line.points.map((r) => ({
      writers: r.writers,
      ackedPct: pct(r.acked, r.attempted),
      storedPct: pct(r.stored, r.attempted),
      failed: r.failed,
      p99Ms: r.p99Ms,
    })),
  }));
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>SQLite concurrent writes: harness report</title>
<style>
  body { font: 16px/1.45 system-ui, sans-serif; margin: 16px 24px; color: #222; background: #fff; }
  h1 { font-size: 22px; margin: 0 0 4px; }
  .meta { color: #555; margin: 0 0 12px; font-size: 14px; }
  .summary { margin: 0 0 16px; padding: 8px 12px 8px 28px; background: #f6f8fa; border-left: 4px solid #1f77b4; }
  .summary li { margin: 2px 0; }
  .charts { display: grid; grid-template-columns: repeat(auto-fit, minmax(360px, 1fr)); gap: 16px; }
  .chart { position: relative; height: 320px; }
  .legend { margin: 0 0 8px; font-size: 14px; }
  .key { display: inline-block; margin-right: 16px; }
  .key i { display: inline-block; width: 12px; height: 12px; margin-right: 4px; vertical-align: -1px; }
  .key i.raw { clip-path: polygon(50% 0, 100% 100%, 0 100%); }
  .key i.repo { border-radius: 50%; }
  .wide { overflow-x: auto; }
  table { border-collapse: collapse; margin-top: 16px; font: 13px/1.35 ui-monospace, monospace; }
  th, td { padding: 3px 6px; border-bottom: 1px solid #ddd; text-align: right; white-space: nowrap; }
  th { background: #f3f3f3; }
  th.left, td.left { text-align: left; }
  tr.bad td { background: #fdecea; }
</style>
</head>
<body>
<h1>How many simultaneous writers can record into one SQLite file?</h1>
<p class="meta">${escapeHtml(info.command)} · ${escapeHtml(info.date)} · ${escapeHtml(info.machine)} · SQLite ${escapeHtml(info.sqliteVersion)}</p>
<ul class="summary">
${summary}
</ul>
<div class="legend">${legend}<br>raw: triangles, repo: circles; stored rows: hollow diamonds (raw, large) and crosses (repo). Each series is shifted a little sideways so that none hides another; the ticks are the numbers of writers.</div>
<div class="charts">
  <div class="chart"><canvas id="rows"></canvas></div>
  <div class="chart"><canvas id="failed"></canvas></div>
  <div class="chart"><canvas id="latency"></canvas></div>
</div>
<div class="wide"><table>
<thead><tr>${headerRow}</tr></thead>
<tbody>
${bodyRows}
</tbody>
</table></div>
<script>${inlineScript(chartJsSource())}</script>
<script>
const series = ${jsonForScript(chartData)};
${inlineScript(chartsScript)}
</script>
</body>
</html>
`;
}

function groupSeries(results: readonly ScenarioResult[]): Series[] {
  const byLabel = new Map<string, Series>();
  for (const result of results) {
    const label = describeScenario(result, { withWriters: false });
    const line = byLabel.get(label) ?? { label, target: result.target, points: [] };
    line.points.push(result);
    byLabel.set(label, line);
  }
  for (const line of byLabel.values()) line.points.sort((a, b) => a.writers - b.writers);
  return [...byLabel.values()];
}

/** Raw in warm colours, repo in cool ones, so the two targets read apart at a glance. */
function seriesColors(series: readonly Series[]): string[] {
  const palettes: Record<string, string[]> = {
    raw: ['#d62728', '#ff7f0e', '#8c564b', '#e377c2', '#bcbd22', '#7f3b08'],
    repo: ['#1f77b4', '#2ca02c', '#17becf', '#9467bd', '#7f7f7f', '#08306b'],
  };
  const used: Record<string, number> = {};
  return series.map((line) => {
    const palette = palettes[line.target] ?? (palettes.repo as string[]);
    const index = used[line.target] ?? 0;
    used[line.target] = index + 1;
    return palette[index % palette.length] as string;
  });
}

function chartJsSource(): string {
  // The package's exports hide dist/; its main entry sits next to the UMD build.
  const main = createRequire(import.meta.url).resolve('chart.js');
  // fd-safe: the chart library inlined into the report
  return readFileSync(join(dirname(main), 'chart.umd.min.js'), 'utf8');
}

/** Nothing in a script may close the script element. */
function inlineScript(source: string): string {
  return source.replace(/<\/(script)/gi, '<\\/$1');
}

function jsonForScript(value: unknown): string {
  return JSON.stringify(value).replace(/</g, '\\u003c');
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

const pct = (part: number, whole: number) => (whole === 0 ? 0 : Math.round((part / whole) * 1000) / 10);
