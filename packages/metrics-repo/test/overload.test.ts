import { type ChildProcess, spawn } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { afterEach, describe, expect, it } from 'vitest';
import { machineOverloaded, overloaded } from '../src/sqlite/overload.ts';

/** When a silent turn holder is taken for one short of a CPU rather than hung (see overload.ts). */
describe('an overloaded machine', () => {
  const burners: ChildProcess[] = [];
  afterEach(() => {
    for (const burner of burners.splice(0)) burner.kill('SIGKILL');
  });

  it('is one with more than four runnable threads per CPU, read from /proc/loadavg', () => {
    expect(overloaded('0.52 0.58 0.59 3/312 2880\n', 2)).toBe(false);
    expect(overloaded('0.52 0.58 0.59 8/312 2880\n', 2)).toBe(false);
    expect(overloaded('97.91 39.96 18.12 9/1312 2880\n', 2)).toBe(true);
    expect(overloaded('97.91 39.96 18.12 9/1312 2880\n', 4)).toBe(false);
    expect(overloaded('not what Linux writes', 2)).toBe(false);
  });

  it.runIf(process.platform === 'linux')(
    'is seen while real processes keep every CPU busy five times over',
    async () => {
      const count = availableParallelism() * 5;
      for (let i = 0; i < count; i++) {
        burners.push(spawn(process.execPath, ['-e', 'for (;;) {}'], { stdio: 'ignore' }));
      }
      // The count is of this instant: sampled until seen, bounded.
      let seen = false;
      for (let tries = 0; tries < 100 && !seen; tries++) {
        await new Promise((resolve) => setTimeout(resolve, 50));
        seen = machineOverloaded();
      }
      expect(seen).toBe(true);
    },
    20_000,
  );
});
