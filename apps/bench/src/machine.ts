import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { availableParallelism, cpus, loadavg, release, totalmem, type } from 'node:os';
import BetterSqlite3 from 'better-sqlite3';

export interface Machine {
  /** CPUs this process may use (what `nproc` prints). */
  cores: number;
  cpu: string;
  memoryGiB: number;
  os: string;
  node: string;
  /** The SQLite library better-sqlite3 is built with: `select sqlite_version()`. */
  sqlite: string;
  betterSqlite3: string;
  /** One-minute load average when the run started: other work on a shared machine moves every figure. */
  loadAverageAtStart: number;
}

export function describeMachine(): Machine {
  const connection = new BetterSqlite3(':memory:');
  const { version } = connection.prepare('select sqlite_version() as version').get() as { version: string };
  connection.close();
  const driverPackage = createRequire(import.meta.url)('better-sqlite3/package.json') as { version: string };
  return {
    cores: availableParallelism(),
    cpu: cpus()[0]?.model ?? 'unknown',
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    os: `${type()} ${release()}`,
    node: process.version,
    sqlite: version,
    betterSqlite3: driverPackage.version,
    loadAverageAtStart: Math.round((loadavg()[0] ?? 0) * 100) / 100,
  };
}

/**
 * The commit the code under test comes from, with "+changes" when packages/ or
 * apps/ differ from it: a figure belongs to a version of the code.
 */
export function describeRevision(): string {
  const git = (...args: string[]) =>
    execFileSync('git', args, {
      cwd: new URL('.', import.meta.url),
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    }).trim();
  try {
    const commit = git('rev-parse', '--short', 'HEAD');
    const root = git('rev-parse', '--show-toplevel');
    const changed = execFileSync('git', ['status', '--porcelain', '--', 'packages', 'apps'], {
      cwd: root,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    }).trim();
    return changed === '' ? commit : `${commit}+changes`;
  } catch {
    return 'unknown (not a git checkout)';
  }
}

/** Linux's USER_HZ, the unit of /proc's CPU counters on every architecture Node runs on. */
const procTicksPerSecond = 100;

/** How coarse endedChildrenCpuMs is: the sum over every ended child is rounded to one tick. */
export const endedChildrenCpuResolutionMs = 1000 / procTicksPerSecond;

/**
 * CPU time of this process's children that have ended and been waited for, in ms (cutime +
 * cstime of /proc/self/stat); undefined where there is none (not Linux).
 */
export function endedChildrenCpuMs(): number | undefined {
  let stat: string;
  try {
    // fd-safe: /proc/self/stat, not a database file.
    stat = readFileSync('/proc/self/stat', 'utf8');
  } catch {
    return undefined;
  }
  // The fields after the command's closing parenthesis start with the state (field 3); cutime is field 16.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(fields[13]) + Number(fields[14]);
  return Number.isFinite(ticks) ? (ticks * 1000) / procTicksPerSecond : undefined;
}
