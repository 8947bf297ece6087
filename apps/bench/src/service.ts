import {
  formatServiceTable,
  runServiceComparison,
  type ServiceRunResult,
  type ServiceScenarioSettings,
  serviceProblems,
  serviceScenarioDefaults,
  serviceTargetMisses,
  serviceVerdict,
} from '@repo/harness/service';

/** `pnpm bench --service`: the harness's service comparison, shorter, and its same-run ratios. */
export const serviceBenchSizes: ServiceScenarioSettings = {
  ...serviceScenarioDefaults,
  durationMs: 6_000,
  lockAtMs: 2_000,
};
/** `--service --quick`: a smoke run, its figures mean nothing. */
export const quickServiceBenchSizes: ServiceScenarioSettings = {
  ...serviceScenarioDefaults,
  durationMs: 1_500,
  connections: 2,
  writers: 1,
  lockAtMs: 300,
  lockHoldMs: 500,
  baselineMs: 200,
};

export interface ServiceBenchReport {
  settings: ServiceScenarioSettings;
  results: ServiceRunResult[];
  /** raw over repo: how much longer the raw service kept /healthz waiting and its event loop stuck; repo over raw: throughput. */
  ratios: Record<string, number>;
  /** Rows acknowledged and not stored, requests the repository's service failed: the exit code is 1. */
  problems: string[];
  /** The /healthz p99 target, when missed (a speed figure: reported, not an error). */
  targetMisses: string[];
}

export async function runServiceBench(
  settings: ServiceScenarioSettings,
  onProgress: (line: string) => void,
): Promise<ServiceBenchReport> {
  const results = await runServiceComparison(settings, onProgress);
  const raw = results.find((result) => result.target === 'raw');
  const repo = results.find((result) => result.target === 'repo');
  const ratios: Record<string, number> = {};
  if (raw && repo) {
    const ratio = (a: number | null, b: number | null) =>
      a === null || b === null || b === 0 ? Number.NaN : Math.round((a / b) * 10) / 10;
    ratios['service raw/repo /healthz p99'] = ratio(raw.healthz.p99Ms, repo.healthz.p99Ms);
    ratios['service raw/repo longest event-loop stall'] = ratio(raw.stall.maxMs, repo.stall.maxMs);
    ratios['service repo/raw POST requests/s'] = ratio(repo.post.perSec, raw.post.perSec);
  }
  return {
    settings,
    results,
    ratios,
    problems: serviceProblems(results, settings),
    targetMisses: serviceTargetMisses(results),
  };
}

export function formatServiceBench(report: ServiceBenchReport): string {
  return [
    formatServiceTable(report.results, report.settings),
    '',
    'Ratios (same run):',
    ...Object.entries(report.ratios).map(([name, value]) => `- ${name}: ${value}`),
    '',
    serviceVerdict(report.results),
    report.targetMisses.length === 0
      ? 'Target: repo /healthz p99 <= 20 ms: met'
      : `Target MISSED: ${report.targetMisses.join('; ')}`,
    report.problems.length === 0
      ? 'Correctness: every 201 is a stored row; the repository service failed no request.'
      : `CORRECTNESS PROBLEMS:\n${report.problems.map((problem) => `- ${problem}`).join('\n')}`,
  ].join('\n');
}
