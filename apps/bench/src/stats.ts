import { percentile } from '@repo/harness/stats';

/** Sorts a copy ascending (numerically, unlike Array#sort's default). */
export function sortedCopy(values: ArrayLike<number>): Float64Array {
  return Float64Array.from(values).sort();
}

/** The median of values (the lower middle one for an even count), by nearest rank. */
export function median(values: readonly number[]): number {
  return values.length === 0 ? 0 : percentile(sortedCopy(values), 50);
}

/** Concatenates latency samples gathered in several places (processes) into one array. */
export function concatSamples(parts: readonly ArrayLike<number>[]): Float64Array {
  const total = parts.reduce((sum, part) => sum + part.length, 0);
  const all = new Float64Array(total);
  let offset = 0;
  for (const part of parts) {
    all.set(part, offset);
    offset += part.length;
  }
  return all;
}

/**
 * The p-th percentile of durations weighted by their own length: the smallest
 * duration d such that durations no longer than d add up to p% of the total.
 * For event-loop ticks: the loop spent p% of the time in ticks no longer than d.
 */
export function timeWeightedPercentile(durations: ArrayLike<number>, p: number): number {
  if (!(p > 0 && p <= 100)) throw new RangeError(`timeWeightedPercentile: p must be in (0, 100], got ${p}`);
  const sorted = sortedCopy(durations);
  let total = 0;
  for (const duration of sorted) total += duration;
  let covered = 0;
  for (const duration of sorted) {
    covered += duration;
    if (covered >= (p / 100) * total) return duration;
  }
  return sorted[sorted.length - 1] ?? 0;
}
