import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const appDirectory = join(import.meta.dirname, '..');

/** Runs `pnpm --filter @repo/bench run phases` as the script does (tsx), in a separate process. */
function runPhases(args: string[]) {
  const result = spawnSync(process.execPath, ['--import', 'tsx', 'src/oneshot/phases-cli.ts', ...args], {
    cwd: appDirectory,
    encoding: 'utf8',
    timeout: 60_000,
  });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

// Structure and correctness only: speed is never checked here.
describe('phases', () => {
  it('prints its usage for --help, and runs nothing', () => {
    const run = runPhases(['--help']);
    expect(run.status).toBe(0);
    expect(run.stdout).toMatch(/^usage: phases \[--writers/);
    expect(run.stdout).not.toContain('acked');
  });

  it('refuses an unknown option or a missing value, naming it, instead of running the default writers', () => {
    const unknown = runPhases(['--writer', '50']);
    expect(unknown.status).toBe(2);
    expect(unknown.stderr).toContain('unknown option --writer');
    const missing = runPhases(['--mode', 'thread', '--writers']);
    expect(missing.status).toBe(2);
    expect(missing.stderr).toContain('--writers needs a value');
    expect(`${unknown.stdout}${missing.stdout}`).toBe('');
  });

  it('measures both sides and says how many rows each acknowledged and stored', () => {
    const run = runPhases(['--writers', '2', '--mode', 'thread', '--settle-ms', '0', '--timeline', '1']);
    expect(run.status).toBe(0);
    expect(run.stdout).toContain('raw: acked 2/2, stored 2');
    expect(run.stdout).toContain('repo: acked 2/2, stored 2');
    expect(run.stdout).toMatch(
      /repo\/raw: p99 [\d.]+x to the acknowledgement, [\d.]+x to the end of close\(\), CPU per row [\d.]+x/,
    );
    // Somebody opened the file and committed: the two rows are stored.
    const opened = /repo: (\d+) of 2 writers opened the file \(.*\), (\d+) transaction\(s\)/.exec(run.stdout);
    expect(opened, run.stdout).not.toBeNull();
    const [writersThatOpened, transactions] = (opened as RegExpExecArray).slice(1).map(Number);
    expect(writersThatOpened).toBeGreaterThanOrEqual(1);
    expect(transactions).toBeGreaterThanOrEqual(1);
    // --timeline 1: raw's slowest writer; the repository's slowest, and every writer that opened the file.
    const lines = run.stdout.split('\n');
    const timelineOf = (target: string) => {
      const at = lines.findIndex((line) => line.startsWith(`${target}: timeline of the 1 writer(s) slowest`));
      expect(at, run.stdout).toBeGreaterThanOrEqual(0);
      const entries: string[] = [];
      for (let next = at + 1; lines[next]?.startsWith('  ') === true; next++) entries.push(lines[next] as string);
      return entries;
    };
    const raw = timelineOf('raw');
    expect(raw).toHaveLength(1);
    expect(raw[0]).toMatch(/^ {2}\+[\d.]+ {2}ack [\d.]+ {2}closed [\d.]+ {2}\| {2}raw:connection [\d.]+ \([\d.]+\), /);
    const repo = timelineOf('repo');
    const openers = repo.filter((line) => line.startsWith('  opened  '));
    expect(openers).toHaveLength(writersThatOpened as number);
    for (const line of openers) expect(line).toMatch(/open:connection [\d.]+ \([\d.]+\).*write:lock-held /);
    expect(repo.length).toBeLessThanOrEqual((writersThatOpened as number) + 1);
  });

  it('refuses a timeline that is not a whole number of writers', () => {
    const run = runPhases(['--writers', '2', '--timeline', '-1']);
    expect(run.status).toBe(2);
    expect(run.stdout).toBe('');
  });

  it('counts each writer process from the release to its exit, its report and exit included', () => {
    const writers = 3;
    const run = runPhases(['--writers', String(writers), '--settle-ms', '0']);
    expect(run.status).toBe(0);
    for (const target of ['raw', 'repo']) {
      const line = new RegExp(
        `^${target}: release to the last exit ([\\d.]+) ms; CPU per writer meanwhile: each writer (-?[\\d.]+) ms ±([\\d.]+) \\(([\\d.]+) of it until its close\\), the launching process ([\\d.]+) ms$`,
        'm',
      ).exec(run.stdout);
      expect(line, `${target}'s line in:\n${run.stdout}`).not.toBeNull();
      const [wallMs, toExitMs, resolutionMs, toCloseMs, launcherMs] = (line as RegExpExecArray).slice(1).map(Number);
      expect(wallMs).toBeGreaterThan(0);
      // The children's CPU comes in 10 ms ticks, summed over the writers: at most that much short.
      expect(resolutionMs).toBeCloseTo(10 / writers, 2);
      expect(toExitMs).toBeGreaterThan((toCloseMs as number) - (resolutionMs as number));
      expect(launcherMs).toBeGreaterThanOrEqual(0);
    }
  });
});
