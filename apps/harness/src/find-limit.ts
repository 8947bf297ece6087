import { defaults, type HarnessOptions } from './args.ts';
import { formatErrors } from './report/table.ts';
import type { Journal, Mode, ScenarioResult, ScenarioSpec, Target } from './types.ts';

/** The answer of `--find-limit` for one target, mode and journal. */
export interface LimitFinding {
  target: Target;
  mode: Mode;
  journal: Journal;
  /** The largest number of writers tried with no failed and no lost row (null: even the first size failed). */
  largestOk: number | null;
  /** The first number of writers with a failed or lost row (null: none up to the cap). */
  firstFailure: number | null;
  cap: number;
  /** What went wrong at `firstFailure`. */
  failure: string | undefined;
}

const failedOrLost = (result: ScenarioResult) => result.failed > 0 || result.lost > 0;

/**
 * Doubles the number of writers, from the smallest `--writers` (else 5), until
 * a scenario fails or loses a row or the cap is reached; the last size is the
 * cap itself, so "none up to the cap" means the cap was tried.
 */
export async function findLimits(
  options: HarnessOptions,
  runOne: (spec: ScenarioSpec) => Promise<ScenarioResult[]>,
): Promise<{ results: ScenarioResult[]; findings: LimitFinding[] }> {
  const results: ScenarioResult[] = [];
  const findings: LimitFinding[] = [];
  const start = Math.min(
    options.writersGiven ? (options.writers[0] as number) : defaults.findLimitStart,
    options.limitCap,
  );
  for (const journal of options.journals) {
    for (const mode of options.modes) {
      for (const target of options.targets) {
        const finding: LimitFinding = {
          target,
          mode,
          journal,
          largestOk: null,
          firstFailure: null,
          cap: options.limitCap,
          failure: undefined,
        };
        for (let writers = start; ; writers = Math.min(writers * 2, options.limitCap)) {
          const [result] = (await runOne({
            scenario: 'insert',
            target,
            mode,
            journal,
            writers,
            rowsPerWriter: options.rowsPerWriter,
            prefill: options.prefill,
            chaos: 'none',
            readers: options.readers ?? 0,
          })) as [ScenarioResult];
          results.push(result);
          if (failedOrLost(result)) {
            finding.firstFailure = writers;
            finding.failure = `${result.failed} failed (${formatErrors(result.errors)}), ${result.lost} lost`;
            break;
          }
          finding.largestOk = writers;
          if (writers >= options.limitCap) break;
        }
        findings.push(finding);
      }
    }
  }
  return { results, findings };
}

export function formatFinding(finding: LimitFinding): string {
  const what = `${finding.target} ${finding.mode} ${finding.journal}`;
  const largest = finding.largestOk === null ? 'none' : String(finding.largestOk);
  if (finding.firstFailure === null) {
    return `${what}: no failure up to the cap; largest number of writers with no failure: ${largest}`;
  }
  return `${what}: largest number of writers with no failure: ${largest}; first failure at ${finding.firstFailure} writers: ${finding.failure}`;
}
