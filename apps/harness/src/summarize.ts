import type { FileInspection } from './inspect-file.ts';
import { summarizeLatencies } from './stats.ts';
import type { ReadersSummary, ScenarioResult, ScenarioSpec } from './types.ts';
import type { WritersRun } from './writers/writers-run.ts';

export interface RunContext {
  busyTimeoutMs: number;
  lockTimeoutMs: number;
  /** How much the harness process's RSS grew during the scenario, at its peak (kB). */
  harnessGrowthKb: number;
  dbPath?: string | undefined;
  /** What the readers running alongside did, if there were any. */
  reads?: ReadersSummary | undefined;
}

/** Turns what the writers reported and what the file holds into one scenario's result. */
export function summarizeScenario(
  spec: ScenarioSpec,
  run: WritersRun,
  inspection: FileInspection,
  context: RunContext,
): ScenarioResult {
  let acked = 0;
  let failed = 0;
  let writerMemoryKb = 0;
  let cpuMs = run.harnessCpuMs;
  const errors: Record<string, number> = {};
  const errorExamples: Record<string, string> = {};
  const latencies: number[] = [];
  for (const writer of run.writers) {
    acked += writer.acked;
    failed += writer.failed;
    writerMemoryKb += writer.memoryKb ?? 0;
    cpuMs += writer.cpuMs ?? 0;
    for (const [code, count] of Object.entries(writer.errors)) errors[code] = (errors[code] ?? 0) + count;
    for (const [code, message] of Object.entries(writer.errorExamples)) errorExamples[code] ??= message;
    for (const latency of writer.latenciesMs) latencies.push(latency);
  }
  // With kills, a writer can commit a row and die before acknowledging it, which would hide a loss
  // in a count: then each acknowledged row is looked up by its event id instead.
  const lost = inspection.missingAcked ?? acked - inspection.stored;
  const result: ScenarioResult = {
    ...spec,
    attempted: spec.writers * spec.rowsPerWriter,
    acked,
    failed,
    errors: sortedByCount(errors),
    stored: inspection.stored,
    lost,
    wallMs: Math.round(run.wallMs),
    rowsPerSec: run.wallMs > 0 ? Math.round(acked / (run.wallMs / 1000)) : 0,
    ...summarizeLatencies(latencies),
    peakMemoryMb: Math.round((context.harnessGrowthKb + writerMemoryKb) / 1024),
    cpuMs: Math.round(cpuMs),
    journalAfter: inspection.journalMode,
    integrity: inspection.integrity,
    killed: run.killed,
    busyTimeoutMs: context.busyTimeoutMs,
    lockTimeoutMs: context.lockTimeoutMs,
    readyMs: Math.round(run.readyMs),
    errorExamples,
  };
  if (context.reads !== undefined) result.reads = context.reads;
  if (context.dbPath !== undefined) result.dbPath = context.dbPath;
  if (run.note !== undefined) result.note = run.note;
  return result;
}

function sortedByCount(counts: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.entries(counts).sort(([, a], [, b]) => b - a));
}

/** Why a result makes the harness exit non-zero (the repository must neither fail nor lose a row), or nothing. */
export function problemsOf(result: ScenarioResult): string[] {
  if (result.target !== 'repo') return [];
  const problems: string[] = [];
  if (result.failed > 0) problems.push(`${result.failed} failed`);
  if (result.lost > 0) problems.push(`${result.lost} lost`);
  // Outside --chaos kill every row is acknowledged or failed: more stored than acknowledged means a caller was told wrong.
  if (result.lost < 0) problems.push(`${-result.lost} stored but never acknowledged`);
  if (result.integrity !== 'ok') problems.push(`integrity_check: ${result.integrity}`);
  if (result.note !== undefined) problems.push(result.note);
  return problems;
}
