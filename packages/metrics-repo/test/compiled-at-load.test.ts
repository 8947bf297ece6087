import { spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bundleEntry } from '@repo/launcher';
import { describe, expect, it } from 'vitest';
import { fileWithHeldTurn, storedRows, useTempDatabase } from './helpers.ts';

const packages = join(import.meta.dirname, '..', '..');
const marker = '// biome-ignore format: the parentheses make V8 compile it when its module loads';

/** The functions of the write path's packages written as parenthesized expressions (see the README). */
function markedFunctions(): string[] {
  const names: string[] = [];
  // Every source file of the write path's three packages, sub-folders included (sqlite/, pg/).
  for (const folder of ['metrics-repo/src', 'db/src', 'write-turn/src']) {
    const files = readdirSync(join(packages, folder), { recursive: true, encoding: 'utf8' });
    for (const file of files.filter((name) => name.endsWith('.ts'))) {
      // fd-safe: source files, never a database
      const lines = readFileSync(join(packages, folder, file), 'utf8').split('\n');
      lines.forEach((line, index) => {
        if (!line.startsWith(marker)) return;
        const name = /^(?:export )?const (\w+) = \((?:async )?function \1\b/.exec(lines[index + 1] ?? '')?.[1];
        if (name === undefined) throw new Error(`${folder}/${file}:${index + 2}: the marker is not followed by one`);
        names.push(name);
      });
    }
  }
  return names;
}

/** Function events of V8's log (`--log-function-events`): the kinds of event seen per function name. */
function functionEvents(log: string): Map<string, Set<string>> {
  const events = new Map<string, Set<string>>();
  for (const line of log.split('\n')) {
    const fields = line.split(',');
    if (fields[0] !== 'function' || fields.length < 8) continue;
    // A bundle may rename a function (esbuild adds a digit when two modules use one name).
    const name = (fields.at(-1) as string).replace(/\d+$/, '');
    const kinds = events.get(name) ?? new Set<string>();
    kinds.add(fields[1] as string);
    events.set(name, kinds);
  }
  return events;
}

/**
 * A process that records one row runs each function of the write path once, and V8 compiles a
 * function at its first call unless it was compiled with its module (BENCHMARKS.md, "Compiled
 * when loaded"). The write path's functions are parenthesized function expressions, which V8
 * compiles when the module loads: this checks, in V8's own log, that none of them is compiled
 * lazily, on both paths (a follower's post, then the turn and the holder's open and commit).
 */
describe('the write path, compiled when its modules load', () => {
  const tempDatabase = useTempDatabase();

  it('no marked function that a one-row process runs is compiled at its first call', async () => {
    const path = tempDatabase();
    const holder = await fileWithHeldTurn(path);
    const logFile = join(tmpdir(), `compiled-at-load-${process.pid}-${Date.now()}.log`);
    try {
      const bundle = await bundleEntry(join(import.meta.dirname, 'fixtures', 'mailbox-follower.ts'));
      const child = spawn(
        process.execPath,
        ['--log-function-events', `--logfile=${logFile}`, '--no-logfile-per-isolate', bundle, path, '1'],
        { stdio: ['pipe', 'pipe', 'inherit'] },
      );
      let stdout = '';
      child.stdout.on('data', (chunk) => {
        stdout += String(chunk);
      });
      const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
      while (!stdout.includes('"open"')) {
        if (child.exitCode !== null) throw new Error(`the writer ended first: ${stdout}`);
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      expect(JSON.parse(stdout.split('\n')[0] as string)).toMatchObject({ follower: true });
      child.stdin.write('go\n');
      while (holder.posted() === 0) await new Promise((resolve) => setTimeout(resolve, 5));
      // The turn comes to the follower: it opens the file and commits its own row as the holder.
      holder.release();
      expect(await exited).toBe(0);
      expect(stdout).toContain('"connection":true');
      expect(storedRows(path)).toBe(1);

      // fd-safe: V8's log, not a database
      const events = functionEvents(readFileSync(logFile, 'utf8'));
      const marked = markedFunctions();
      const ran = marked.filter((name) => events.get(name)?.has('first-execution'));
      const compiledLazily = ran.filter((name) => events.get(name)?.has('parse-function'));
      expect(compiledLazily).toEqual([]);
      // Both paths ran (not a vacuous pass): the follower's post and the holder's open.
      expect(ran).toEqual(expect.arrayContaining(['validateMetric', 'postAndWait', 'openDatabase', 'retryWhileBusy']));
      // The log does show lazy compiles: a class method on the same path, which cannot be marked.
      expect(events.get('drain')).toContain('parse-function');
    } finally {
      holder.close();
    }
  }, 30_000);
});
