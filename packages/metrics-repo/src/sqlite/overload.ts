import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';

/** Runnable threads per CPU beyond which a silent holder is taken for one waiting for a CPU. */
const overloadedPerCpu = 4;

const cpus = availableParallelism();

/**
 * Whether far more threads want a CPU right now than there are CPUs (Linux's instant count of
 * runnable threads, the fourth field of /proc/loadavg; false where there is none). A turn's
 * holder that answered nobody for seconds is then most likely waiting for a CPU like everyone
 * else, not hung: giving up on it makes each waiter open the database and fight for its lock,
 * which costs the CPU that is short (`phases --writers 1000`, see BENCHMARKS.md).
 */
// biome-ignore format: the parentheses make V8 compile it when its module loads (metrics-repo README, "Compiled when loaded")
export const machineOverloaded = (function machineOverloaded(): boolean {
  let loadavg: string;
  try {
    // fd-safe: a file of /proc, never the database.
    loadavg = readFileSync('/proc/loadavg', 'latin1');
  } catch {
    return false;
  }
  return overloaded(loadavg, cpus);
});

/** The rule, on the text of /proc/loadavg (`0.52 0.58 0.59 3/312 2880`: 3 runnable of 312). */
// biome-ignore format: the parentheses make V8 compile it when its module loads (metrics-repo README, "Compiled when loaded")
export const overloaded = (function overloaded(loadavg: string, cpuCount: number): boolean {
  const runnable = Number.parseInt(loadavg.split(' ')[3] ?? '', 10);
  return Number.isFinite(runnable) && runnable > overloadedPerCpu * cpuCount;
});
