import { channel } from 'node:diagnostics_channel';

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
  /** CPU time of the whole process (user + system) during the phase. */
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
  let cpu = process.cpuUsage();
  let switches = process.resourceUsage().involuntaryContextSwitches;
  return {
    mark(phase, counts) {
      const used = process.cpuUsage(cpu);
      // A count, not a duration: one sample serves as this phase's end and the next one's start.
      const switchesNow = process.resourceUsage().involuntaryContextSwitches;
      const message: Phase = {
        scope,
        phase,
        wallMs: performance.now() - wall,
        cpuMs: (used.user + used.system) / 1000,
        preempted: switchesNow - switches,
        ...counts,
      };
      phaseChannel.publish(message);
      wall = performance.now();
      cpu = process.cpuUsage();
      switches = switchesNow;
    },
  };
}
