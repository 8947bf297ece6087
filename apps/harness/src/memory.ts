import { readFileSync } from 'node:fs';

/**
 * Samples this process's RSS while a scenario runs. Threads and async writers
 * live in this process, so this is their memory too; writer processes report
 * their own peak.
 */
export function startMemorySampler(intervalMs = 100): { stop(): number } {
  const startBytes = process.memoryUsage.rss();
  let peakBytes = startBytes;
  const timer = setInterval(() => {
    peakBytes = Math.max(peakBytes, process.memoryUsage.rss());
  }, intervalMs);
  timer.unref();
  return {
    /**
     * Stops sampling; returns how much the RSS grew at its peak, in kB. Growth,
     * not the total: the harness's own baseline is not the scenario's.
     */
    stop() {
      clearInterval(timer);
      peakBytes = Math.max(peakBytes, process.memoryUsage.rss());
      return Math.round((peakBytes - startBytes) / 1024);
    },
  };
}

/** CPU time (user + system, ms) this process has spent since `start`. */
export function cpuMsSince(start: NodeJS.CpuUsage): number {
  const { user, system } = process.cpuUsage(start);
  return (user + system) / 1000;
}

/**
 * This process's peak memory in kB, not counting twice what it shares with
 * others: peak RSS less (RSS − PSS) now, from /proc/self/smaps_rollup. Where
 * that file does not exist (not Linux), the peak RSS.
 */
export function processPeakMemoryKb(): number {
  const peakRssKb = process.resourceUsage().maxRSS;
  let rollup: string;
  try {
    // fd-safe: a /proc file
    rollup = readFileSync('/proc/self/smaps_rollup', 'utf8');
  } catch {
    return peakRssKb;
  }
  const field = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(rollup)?.[1] ?? Number.NaN);
  const overCounted = field('Rss') - field('Pss');
  return Number.isFinite(overCounted) ? Math.max(0, peakRssKb - overCounted) : peakRssKb;
}
