import { Agent, get } from 'node:http';

export interface PollResult {
  latenciesMs: number[];
  /** Answers other than 200, and requests that got no answer. */
  failed: number;
}

/**
 * GET /healthz on a fixed schedule, whether or not the previous probe has been
 * answered (as a load balancer's probes, or independent users, arrive). A
 * closed-loop client would send nothing while the service is stuck and so
 * record a 2 s freeze as one slow request; here every probe sent during the
 * freeze waits it out and counts.
 */
export function pollHealthz(url: string, intervalMs: number): { stop(): Promise<PollResult> } {
  const agent = new Agent({ keepAlive: true, maxSockets: 512 });
  const latenciesMs: number[] = [];
  let failed = 0;
  const pending = new Set<Promise<void>>();
  const probe = () => {
    const sent = performance.now();
    const done = new Promise<void>((resolve) => {
      const request = get(`${url}/healthz`, { agent, timeout: 30_000 }, (response) => {
        response.resume();
        response.on('end', () => {
          if (response.statusCode === 200) latenciesMs.push(performance.now() - sent);
          else failed += 1;
          resolve();
        });
      });
      request.on('timeout', () => request.destroy(new Error('timeout')));
      request.on('error', () => {
        failed += 1;
        resolve();
      });
    });
    pending.add(done);
    void done.then(() => pending.delete(done));
  };
  const timer = setInterval(probe, intervalMs);
  return {
    async stop() {
      clearInterval(timer);
      await Promise.all(pending);
      agent.destroy();
      return { latenciesMs, failed };
    },
  };
}
