import { basename } from 'node:path';
import type { ReadersSummary, ScenarioResult } from '../types.ts';
import type { RunInfo } from './run-info.ts';

/**
 * An absolute file path (`/tmp/harness-x1/metrics.db`, `/home/me/r.json`),
 * anywhere in a text; the last part is captured. Not a relative one: those
 * say nothing about the machine.
 */
const absolutePath = /(?<![\w.~-])\/(?:[^\s/'"`:;,()<>]+\/)+([^\s/'"`:;,()<>]+)/g;

/** A text with each absolute path replaced by its last part (a file name). */
export function withoutAbsolutePaths(text: string): string {
  return text.replace(absolutePath, '$1');
}

/**
 * A result as it may be written to a report that gets shared or committed: no
 * home or temporary directory of this machine in it. The kept database is
 * named by its file name; messages keep their words but lose their paths.
 */
export function shareableResult(result: ScenarioResult): ScenarioResult {
  const shared: ScenarioResult = {
    ...result,
    errorExamples: mapValues(result.errorExamples, withoutAbsolutePaths),
    integrity: withoutAbsolutePaths(result.integrity),
  };
  if (result.reads !== undefined) shared.reads = shareableReads(result.reads);
  if (result.dbPath !== undefined) shared.dbPath = basename(result.dbPath);
  if (result.note !== undefined) shared.note = withoutAbsolutePaths(result.note);
  return shared;
}

/** The run's description without absolute paths (the command line may name report files by theirs). */
export function shareableRunInfo(info: RunInfo): RunInfo {
  return { ...info, command: withoutAbsolutePaths(info.command) };
}

function shareableReads(reads: ReadersSummary): ReadersSummary {
  return { ...reads, errorExamples: mapValues(reads.errorExamples, withoutAbsolutePaths) };
}

function mapValues(record: Record<string, string>, map: (value: string) => string): Record<string, string> {
  return Object.fromEntries(Object.entries(record).map(([key, value]) => [key, map(value)]));
}
