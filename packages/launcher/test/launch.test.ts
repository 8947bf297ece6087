import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { useTempDir } from '@repo/testkit';
import { describe, expect, it } from 'vitest';
import { launch, type WorkerKind } from '../src/index.ts';
import type { EchoInput, EchoResult } from './fixtures/echo-worker.ts';

const entry = join(import.meta.dirname, 'fixtures', 'echo-worker.ts');

describe.each<WorkerKind>(['process', 'thread'])('launch (%s)', (kind) => {
  const tempDir = useTempDir('launch-');
  it('starts every worker, holds them at the barrier, and collects their results and progress', async () => {
    const progress: [number, number][] = [];
    const fleet = await launch<EchoInput, EchoResult, number>({
      entry,
      kind,
      count: 6,
      input: () => ({}),
      onProgress: (index, data) => progress.push([index, data]),
    });
    expect(fleet.setupFailures).toEqual([]);
    const releasedAfter = Date.now();
    const outcomes = await fleet.run();
    expect(outcomes.map((outcome) => outcome.ok && outcome.result.index)).toEqual([0, 1, 2, 3, 4, 5]);
    for (const outcome of outcomes) {
      if (!outcome.ok) throw new Error('unexpected failure');
      expect(outcome.result.releasedAt).toBeGreaterThanOrEqual(releasedAfter);
      expect(outcome.result.execArgv).toEqual([]);
      if (kind === 'process') expect(outcome.result.pid).not.toBe(process.pid);
      else expect(outcome.result.threadId).toBeGreaterThan(0);
    }
    expect(progress.sort(([a], [b]) => a - b)).toEqual([0, 1, 2, 3, 4, 5].map((i) => [i, i * 10]));
  });

  it('reports setup and run failures per worker, with the error', async () => {
    const fleet = await launch<EchoInput, EchoResult>({
      entry,
      kind,
      count: 3,
      input: (index) => (index === 0 ? { failAt: 'setup' } : index === 1 ? { failAt: 'run' } : {}),
    });
    expect(fleet.setupFailures).toEqual([
      {
        index: 0,
        ok: false,
        phase: 'setup',
        error: expect.objectContaining({ message: 'setup of 0 failed', code: 'E_SETUP' }),
      },
    ]);
    const outcomes = await fleet.run();
    expect(outcomes[1]).toEqual({
      index: 1,
      ok: false,
      phase: 'run',
      error: expect.objectContaining({ message: 'run of 1 failed' }),
    });
    expect(outcomes[2]?.ok).toBe(true);
  });

  it('kills a worker as a crash would, and says so', async () => {
    const fleet = await launch<EchoInput, EchoResult>({
      entry,
      kind,
      count: 2,
      input: (i) => ({ hangInRun: i === 0 }),
    });
    const running = fleet.run();
    setTimeout(() => fleet.kill(0), 200);
    const outcomes = await running;
    expect(outcomes[0]).toMatchObject({ ok: false, phase: 'run', error: { name: 'WorkerExited' } });
    expect(outcomes[1]?.ok).toBe(true);
  });

  it('exited() waits for every worker to be gone, after its result', async () => {
    const dir = tempDir();
    const marks = [0, 1].map((index) => join(dir, `mark-${index}`));
    const fleet = await launch<EchoInput, EchoResult>({
      entry,
      kind,
      count: 2,
      input: (index) => ({ markAfterResult: marks[index] }),
    });
    const outcomes = await fleet.run();
    expect(outcomes.map((outcome) => outcome.ok)).toEqual([true, true]);
    expect(await fleet.exited()).toBe(true);
    // Each worker wrote its mark after its result, then ended: both are written once it is gone.
    expect(marks.map((mark) => existsSync(mark))).toEqual([true, true]);
  });

  it('terminate() while run() is pending settles both', async () => {
    const fleet = await launch<EchoInput, EchoResult>({ entry, kind, count: 2, input: () => ({ hangInRun: true }) });
    const running = fleet.run();
    expect(await fleet.exited({ timeoutMs: 100 })).toBe(false); // both hang
    await fleet.terminate();
    const outcomes = await running;
    expect(outcomes.map((outcome) => outcome.ok)).toEqual([false, false]);
    expect(await fleet.exited()).toBe(true);
  });
});

describe('launch (thread) under a TypeScript loader', () => {
  it("gives threads none of the launching process's Node flags: the bundle needs no loader", () => {
    // A Worker inherits its parent's flags by default: under tsx, the loader again in every thread.
    const printed = execFileSync(
      process.execPath,
      ['--import', 'tsx', join(import.meta.dirname, 'fixtures', 'launches-one-thread.ts')],
      {
        cwd: import.meta.dirname,
        encoding: 'utf8',
        timeout: 60_000,
      },
    );
    expect(JSON.parse(printed)).toEqual([]);
  });
});
