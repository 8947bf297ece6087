import type { ReadersSummary, ScenarioResult } from '../types.ts';

/**
 * One line per scenario in plain words, raw and repo side by side, e.g.
 * `500 processes (WAL): repo 0 errors, p99 0.8× raw, CPU 0.9× raw; raw 0 errors`.
 * Results that differ only by target are one scenario; a scenario run for one
 * target only gets that target's own facts (p99, CPU) instead of ratios.
 */
export function headlines(results: readonly ScenarioResult[]): string[] {
  const groups = new Map<string, ScenarioResult[]>();
  for (const result of results) {
    const key = subjectOf(result);
    groups.set(key, [...(groups.get(key) ?? []), result]);
  }
  return [...groups.entries()].map(([subject, group]) => `${subject}: ${factsOf(group)}`);
}

/**
 * What ran, in words: `100 processes × 5 rows (rollback journal)`. The journal
 * mode is SQLite's: a PostgreSQL scenario names its backend instead
 * (`50 processes (PostgreSQL)`).
 */
export function subjectOf(result: ScenarioResult): string {
  const writers =
    result.scenario === 'mixed'
      ? `mixed, ${result.writers} repo + ${result.writers} raw writer ${modeNoun(result.mode, 2)}`
      : `${result.writers} ${modeNoun(result.mode, result.writers)}`;
  const parts = [writers + (result.rowsPerWriter === 1 ? '' : ` × ${result.rowsPerWriter} rows`)];
  if (result.prefill > 0) parts.push(`after ${count(result.prefill)} rows`);
  if (result.chaos === 'kill') parts.push('half of them SIGKILLed');
  if (result.readers > 0) parts.push(`${result.readers} readers`);
  return `${parts.join(', ')} (${storageOf(result)})`;
}

function storageOf(result: ScenarioResult): string {
  if (result.backend === 'postgres') return 'PostgreSQL';
  return result.journal === 'wal' ? 'WAL' : 'rollback journal';
}

function modeNoun(mode: ScenarioResult['mode'], n: number): string {
  const names: Record<ScenarioResult['mode'], [string, string]> = {
    process: ['process', 'processes'],
    thread: ['thread', 'threads'],
    async: ['async task', 'async tasks'],
  };
  const [one, many] = names[mode];
  return n === 1 ? one : many;
}

function factsOf(group: readonly ScenarioResult[]): string {
  const repo = group.find((r) => r.target === 'repo');
  const raw = group.find((r) => r.target === 'raw');
  const parts: string[] = [];
  if (repo !== undefined && raw !== undefined && group[0]?.scenario === 'insert' && group[0].chaos === 'none') {
    // Same scenario, same run: how the repository compares with naive code.
    const ratios = [ratio('p99', repo.p99Ms, raw.p99Ms), ratio('CPU', repo.cpuMs, raw.cpuMs)].filter(Boolean);
    parts.push([outcomeOf(repo), ...ratios].join(', '), outcomeOf(raw));
  } else {
    // One target alone, or a scenario where ratios would mislead (kills, both kinds of writers on one file).
    const own = group.length === 1 && group[0]?.chaos === 'none';
    const shared = group[0]?.scenario === 'mixed';
    for (const result of [...group].sort((a, b) => (a.target === 'repo' ? -1 : b.target === 'repo' ? 1 : 0))) {
      const facts = [outcomeOf(result)];
      if (own) facts.push(`p99 ${duration(result.p99Ms)}`, `CPU ${duration(result.cpuMs)}`);
      // Each run has its own readers, but a mixed scenario's writers of both kinds share theirs.
      if (!shared && result.reads !== undefined) facts.push(readsOf(result.reads));
      parts.push(facts.join(', '));
    }
    const reads = group[0]?.reads;
    if (shared && reads !== undefined) parts.push(readsOf(reads));
  }
  const integrity = group.filter((r) => r.integrity !== 'ok');
  if (integrity.length > 0) parts.push(`integrity_check: ${integrity[0]?.integrity}`);
  return parts.join('; ');
}

/** `repo 0 errors`, `raw 92 errors (SQLITE_BUSY)`, and what was lost when anything was, or whenever acks are the point. */
function outcomeOf(result: ScenarioResult): string {
  const parts = [errorsOf(result.failed, result.errors)];
  // Lost rows are named whenever there are any; with kills or other clients on the file, 0 lost is the headline.
  if (result.lost !== 0 || result.chaos !== 'none' || result.scenario === 'mixed') {
    parts.push(
      result.lost < 0
        ? `${-result.lost} stored but never acknowledged`
        : `${count(result.lost)} lost of ${count(result.acked)} acknowledged`,
    );
  }
  if (result.note !== undefined) parts.push('did not complete');
  return `${result.target} ${parts.join(', ')}`;
}

function readsOf(reads: ReadersSummary): string {
  const by = Object.entries(reads.readsBy).map(([client, n]) => `${count(n)} ${client}`);
  const split = by.length > 1 ? ` (${by.join(', ')})` : '';
  return `readers ${count(reads.reads)} reads${split}, ${errorsOf(reads.failed, reads.errors)}`;
}

function errorsOf(failed: number, errors: Record<string, number>): string {
  const codes = Object.entries(errors).filter(([, n]) => n > 0);
  const words = `${count(failed)} error${failed === 1 ? '' : 's'}`;
  if (codes.length === 0) return words;
  if (codes.length === 1) return `${words} (${codes[0]?.[0]})`;
  return `${words} (${codes.map(([code, n]) => `${code} ${count(n)}`).join(', ')})`;
}

/** `p99 0.8× raw`; nothing when raw's figure is missing or zero. */
function ratio(label: string, repo: number | null, raw: number | null): string {
  if (repo === null || raw === null || raw <= 0) return '';
  const value = repo / raw;
  const text = value >= 10 ? value.toFixed(0) : value >= 0.1 ? value.toFixed(1) : value.toFixed(2);
  return `${label} ${text}× raw`;
}

function duration(ms: number | null): string {
  if (ms === null) return '-';
  return ms < 1000 ? `${ms < 10 ? ms.toFixed(1) : Math.round(ms)} ms` : `${(ms / 1000).toFixed(1)} s`;
}

const count = (n: number) => n.toLocaleString('en-US');
