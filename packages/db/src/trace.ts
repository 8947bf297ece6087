import { channel } from 'node:diagnostics_channel';
import { readFileSync } from 'node:fs';
import { isMainThread } from 'node:worker_threads';

/**
 * Where the time of opening and writing goes, for profilers: each finished phase
 * is published on the `metrics-db:phase` diagnostics channel as a {@link Phase}.
 * Nothing is measured, and nothing allocated, unless someone subscribed.
 */
export const phaseChannel = channel('metrics-db:phase');

export interface Phase {
  /** What the phase belongs to: `open`, `write`, `close`. */
  scope: string;
  /** The phase that just ended (`connection`, `pragmas`, `lock-wait`, `commit`...). */
  phase: string;
  wallMs: number;
  /**
   * CPU time (user + system) during the phase: of the whole process, or in a worker thread on
   * Linux, of that thread alone (the process's figure there mixes in every other thread's work).
   */
  cpuMs: number;
  /**
   * How many times the kernel took the CPU away from the process during the phase
   * (involuntary context switches, process-wide). A phase that holds the file's
   * write lock and is preempted keeps every other writer waiting until the
   * scheduler comes back to it.
   */
  preempted: number;
  /** For `lock-wait`: attempts at the lock, the successful one included. */
  attempts?: number;
}

export interface PhaseTrace {
  /** Publishes the phase that ends now (it began at the previous mark, or when the trace started). */
  mark(phase: string, counts?: { attempts?: number }): void;
}

const silent: PhaseTrace = { mark() {} };

export function tracePhases(scope: string): PhaseTrace {
  if (!phaseChannel.hasSubscribers) return silent;
  let wall = performance.now();
  // The switches before the CPU: a thread preempted on leaving the clock's system call waits
  // inside this phase's wall time, and that switch must count in this phase too, not before it.
  let switches = process.resourceUsage().involuntaryContextSwitches;
  let cpu = cpuClockMs();
  return {
    mark(phase, counts) {
      const cpuNow = cpuClockMs();
      // A count, not a duration: one sample serves as this phase's end and the next one's start.
      const switchesNow = process.resourceUsage().involuntaryContextSwitches;
      const message: Phase = {
        scope,
        phase,
        wallMs: performance.now() - wall,
        cpuMs: cpuNow - cpu,
        preempted: switchesNow - switches,
        ...counts,
      };
      phaseChannel.publish(message);
      wall = performance.now();
      cpu = cpuClockMs();
      switches = switchesNow;
    },
  };
}

/** The calling thread's time on a CPU (Linux's schedstat, ns), or undefined where there is none. */
function threadCpuMs(): number | undefined {
  try {
    // fd-safe: a file of /proc, never the database; read on the calling thread, so it is this thread's.
    const schedstat = readFileSync('/proc/thread-self/schedstat', 'latin1');
    return Number(schedstat.slice(0, schedstat.indexOf(' '))) / 1e6;
  } catch {
    return undefined;
  }
}

/** Whether the thread's own CPU is read: never in the main thread; in a worker, known after the first call. */
let perThread: boolean | undefined = isMainThread ? false : undefined;

/**
 * CPU used so far, ms: by this thread in a worker thread (where Linux tells), by the process otherwise.
 * Exported for profilers that time a whole call the same way as the phases.
 */
export function cpuClockMs(): number {
  if (perThread !== false) {
    const thread = threadCpuMs();
    // Looked for once, at the first call: a worker thread on a system without the file uses the process's.
    perThread = thread !== undefined;
    if (thread !== undefined) return thread;
  }
  const { user, system } = process.cpuUsage();
  return (user + system) / 1000;
}
