import { type ChildProcess, spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { bundleEntry } from '@repo/launcher';
import { openWriteTurn } from '@repo/write-turn';
import BetterSqlite3 from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { DatabaseError, MetricsRepoError } from '../src/errors.ts';
import { openMetricsRepo } from '../src/index.ts';
import { fileWithHeldTurn, storedRows, turnAvailable, usePhases, useTempDatabase } from './helpers.ts';

const fixtures = join(import.meta.dirname, 'fixtures');
const packageRoot = join(import.meta.dirname, '..');

interface Fixture {
  process: ChildProcess;
  /** The next line of stdout matching `test` (lines already read are not seen again); rejects after `timeoutMs`. */
  line(test: (line: string) => boolean, timeoutMs: number): Promise<string>;
  /** How it ended. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  stderr(): string;
}

const started = new Set<ChildProcess>();

/**
 * Starts `fixtures/<name>` with `node --import tsx` (or, given `bundle`, that fixture bundled
 * by @repo/launcher's bundleEntry, with plain `node`), its stdout read line by line.
 */
function startFixture(name: string, args: string[], bundle?: string): Fixture {
  const command = bundle === undefined ? ['--import', 'tsx', join(fixtures, name)] : [bundle];
  const child = spawn(process.execPath, [...command, ...args], {
    cwd: packageRoot,
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  started.add(child);
  let stderr = '';
  child.stderr?.on('data', (chunk) => {
    stderr += String(chunk);
  });
  const lines: string[] = [];
  const waiters = new Set<() => void>();
  let partial = '';
  child.stdout?.on('data', (chunk) => {
    partial += String(chunk);
    const complete = partial.split('\n');
    partial = complete.pop() ?? '';
    lines.push(...complete);
    for (const wake of waiters) wake();
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => {
      started.delete(child);
      resolve({ code, signal });
      for (const wake of waiters) wake();
    }),
  );
  const line = (test: (line: string) => boolean, timeoutMs: number) =>
    new Promise<string>((resolve, reject) => {
      const look = () => {
        const index = lines.findIndex(test);
        if (index !== -1) {
          done();
          resolve(lines.splice(0, index + 1)[index] as string);
        } else if (child.exitCode !== null || child.signalCode !== null) {
          done();
          reject(
            new Error(`${name} ended (${child.exitCode ?? child.signalCode}) first; stderr: ${stderr.slice(0, 2000)}`),
          );
        }
      };
      const timer = setTimeout(() => {
        done();
        reject(
          new Error(
            `${name}: no such line within ${timeoutMs} ms; stdout: ${lines.join(' | ')}; stderr: ${stderr.slice(0, 2000)}`,
          ),
        );
      }, timeoutMs);
      const done = () => {
        clearTimeout(timer);
        waiters.delete(look);
      };
      waiters.add(look);
      look();
    });
  return { process: child, line, exited, stderr: () => stderr };
}

afterEach(() => {
  // Only the processes these tests started, by their own handle.
  for (const child of started) child.kill('SIGKILL');
  started.clear();
});

async function until(condition: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

function postedInTurn(path: string): number {
  const turn = openWriteTurn(path);
  try {
    return turn.posted();
  } finally {
    turn.close();
  }
}

function storedIds(path: string, name: string): number[] {
  const sqlite = new BetterSqlite3(path, { readonly: true });
  try {
    return sqlite.prepare('SELECT id FROM metrics WHERE name = ? ORDER BY id').pluck().all(name) as number[];
  } finally {
    sqlite.close();
  }
}

/**
 * The turn's mailbox (see src/sqlite/follower.ts and mailbox.ts): a repository opened while
 * another holds the file's write turn posts its rows for the holder, which answers before its
 * commit (non-final) and after it (final). A holder that dies in between leaves the next holder
 * to find out from the file whether the rows are in.
 */
describe.skipIf(!turnAvailable)('the mailbox', () => {
  const tempDatabase = useTempDatabase();
  const { heard, listen } = usePhases();
  const heardPhase = (scope: string, phase: string) => heard.some((p) => p.scope === scope && p.phase === phase);

  /** A created, migrated file; a child holding its turn; a follower repository with one insert in the mailbox. */
  async function followerBehindDyingHolder(when: 'after-commit' | 'before-commit' | 'foreign-twin') {
    const path = tempDatabase();
    await (await openMetricsRepo({ path })).close();
    const holder = startFixture('dying-holder.ts', [path, when]);
    await holder.line((line) => line === 'holding', 10_000);
    listen();
    const repo = await openMetricsRepo({ path });
    // The turn was held: the repository left the file to its holder.
    expect(heardPhase('open', 'follower')).toBe(true);
    expect(heardPhase('open', 'connection')).toBe(false);
    const inserting = repo.insert({ name: 'doubt', value: 1 });
    const said = await holder.line(
      (line) => line.startsWith(`${when === 'after-commit' ? 'committed' : 'answered'} `),
      10_000,
    );
    const answeredId = Number(said.split(' ')[1]);
    expect(await holder.exited).toEqual({ code: null, signal: 'SIGKILL' });
    return { path, repo, inserting, answeredId };
  }

  it("a holder killed after COMMIT but before its final answers: the follower's row is answered with its id and stored once", async () => {
    const { path, repo, inserting, answeredId } = await followerBehindDyingHolder('after-commit');
    expect(Number.isInteger(answeredId) && answeredId > 0).toBe(true);
    await expect(inserting).resolves.toMatchObject({ name: 'doubt', value: 1, id: answeredId });
    await repo.close();
    // The next holder (the follower itself) found the row at the answered id: not written again.
    expect(storedIds(path, 'doubt')).toEqual([answeredId]);
    expect(storedRows(path)).toBe(1);
    expect(postedInTurn(path)).toBe(0);
  }, 20_000);

  it("a holder killed after its non-final answer but before COMMIT: the follower's row is written again, once", async () => {
    const { path, repo, inserting, answeredId } = await followerBehindDyingHolder('before-commit');
    expect(Number.isInteger(answeredId) && answeredId > 0).toBe(true);
    const row = await inserting;
    expect(row).toMatchObject({ name: 'doubt', value: 1 });
    await repo.close();
    // Rolled back with the holder: the row at the answered id was not there, so it was inserted again.
    expect(storedIds(path, 'doubt')).toEqual([row.id]);
    expect(storedRows(path)).toBe(1);
    expect(postedInTurn(path)).toBe(0);
  }, 20_000);

  it("a holder rolled back, then another program's identical row took the answered id: the follower's row is still written", async () => {
    const { path, repo, inserting, answeredId } = await followerBehindDyingHolder('foreign-twin');
    const row = await inserting;
    expect(row).toMatchObject({ name: 'doubt', value: 1 });
    await repo.close();
    // The twin holds the answered id; the follower's own row was written again beside it (not mistaken for it).
    expect(row.id).not.toBe(answeredId);
    expect(storedIds(path, 'doubt')).toEqual([answeredId, row.id]);
    expect(postedInTurn(path)).toBe(0);
  }, 20_000);

  it('a follower closed while waiting: close settles, the insert settles, and nothing stays posted', async () => {
    const path = tempDatabase();
    // A holder that never answers (a stopped process), in this process.
    const holder = await fileWithHeldTurn(path);
    try {
      listen();
      const repo = await openMetricsRepo({ path });
      expect(heardPhase('open', 'follower')).toBe(true);
      const outcome = repo.insert({ name: 'closing', value: 1 }).then(
        (row) => ({ row }),
        (error: unknown) => ({ error }),
      );
      await until(() => holder.posted() === 1, 5_000, 'the follower to post');
      const closing = repo.close();
      let timer: NodeJS.Timeout | undefined;
      const closed = await Promise.race([
        closing.then(() => 'closed' as const),
        new Promise<'hung'>((resolve) => {
          timer = setTimeout(() => resolve('hung'), 10_000);
        }),
      ]);
      clearTimeout(timer);
      expect(closed).toBe('closed');
      const settled = await outcome;
      if ('error' in settled) {
        expect(settled.error).toBeInstanceOf(MetricsRepoError);
        expect(storedRows(path, "name = 'closing'")).toBe(0);
      } else {
        expect(settled.row).toMatchObject({ name: 'closing', value: 1 });
        expect(storedIds(path, 'closing')).toEqual([settled.row.id]);
      }
      expect(holder.posted()).toBe(0);
      expect(postedInTurn(path)).toBe(0);
      await expect(repo.insert({ name: 'closing', value: 2 })).rejects.toBeInstanceOf(MetricsRepoError);
    } finally {
      holder.close();
    }
  }, 20_000);

  it('a worker thread terminated while its insert waits in the mailbox: the process goes on, nothing is stored or left posted', async () => {
    // Its turn handle's pending wait was settled from the thread's cleanup hook without a handle
    // scope: FATAL ERROR, SIGABRT, for the whole process.
    const path = tempDatabase();
    const holder = await fileWithHeldTurn(path);
    try {
      const bundle = await bundleEntry(join(fixtures, 'terminated-follower.ts'));
      const fixture = startFixture('terminated-follower.ts', [path], bundle);
      await fixture.line((line) => line.includes('"terminated"'), 20_000);
      expect(await fixture.exited).toEqual({ code: 0, signal: null });
      expect(holder.posted()).toBe(0);
      expect(postedInTurn(path)).toBe(0);
      holder.release();
      const repo = await openMetricsRepo({ path });
      await repo.insert({ name: 'after', value: 1 });
      await repo.close();
      expect(storedRows(path, "name = 'terminated'")).toBe(0); // never acknowledged, never taken
      expect(storedRows(path, "name = 'after'")).toBe(1);
    } finally {
      holder.close();
    }
  }, 30_000);

  it('many followers, one holder: 20 processes post behind a held turn, one opens the file and commits for all', async () => {
    const path = tempDatabase();
    const holder = await fileWithHeldTurn(path);
    try {
      // Bundled once and started with plain node: 20 TypeScript loaders cost 15 to 20 s of two cores.
      const bundle = await bundleEntry(join(fixtures, 'mailbox-follower.ts'));
      const writers = Array.from({ length: 20 }, (_, i) =>
        startFixture('mailbox-follower.ts', [path, String(i)], bundle),
      );
      // Each opens its repository (a follower: the turn is held) and waits; they insert together, so
      // that none runs out of patience (mailboxPatienceMs, post.ts) while the others are still starting.
      const opened = await Promise.all(writers.map((writer) => writer.line((line) => line.includes('"open"'), 20_000)));
      expect(opened.map((line) => JSON.parse(line).follower)).toEqual(writers.map(() => true));
      for (const writer of writers) writer.process.stdin?.write('go\n');
      await until(() => holder.posted() === writers.length, 5_000, 'every follower to post');
      holder.release();
      const done = await Promise.all(
        writers.map((writer) =>
          writer.line((line) => line.includes('"done"'), 15_000).then((line) => JSON.parse(line) as DoneLine),
        ),
      );
      const exits = await Promise.all(writers.map((writer) => writer.exited));
      expect(exits).toEqual(writers.map(() => ({ code: 0, signal: null })));
      const ids = done.map((line) => line.id);
      expect(new Set(ids).size).toBe(20);
      expect(storedIds(path, 'crowd')).toEqual([...ids].sort((a, b) => a - b));
      expect(storedRows(path)).toBe(20);
      const connected = done.filter((line) => line.connection).length;
      expect(connected).toBeGreaterThanOrEqual(1);
      expect(connected).toBeLessThan(20);
      expect(holder.posted()).toBe(0);
    } finally {
      holder.close();
    }
  }, 30_000);

  it('a follower that finds the file damaged when the turn comes to it: the insert fails with DatabaseError, close resolves, a later open reports it', async () => {
    const path = tempDatabase();
    const holder = await fileWithHeldTurn(path);
    const repo = await openMetricsRepo({ path });
    // No connection in this process has the file open (the repository is a follower): safe to overwrite.
    // fd-safe: the test damages a file nothing in this process has open
    writeFileSync(path, Buffer.alloc(8192, 'x'));
    const inserting = repo.insert({ name: 'damaged', value: 1 }).then(
      () => undefined,
      (error: unknown) => error,
    );
    while (holder.posted() === 0) await new Promise((resolve) => setTimeout(resolve, 5));
    holder.release();
    expect(await inserting).toBeInstanceOf(DatabaseError);
    await expect(repo.close()).resolves.toBeUndefined();
    holder.close();
    await expect(openMetricsRepo({ path })).rejects.toMatchObject({ name: 'OpenDatabaseError' });
  }, 20_000);
});

interface DoneLine {
  event: 'done';
  id: number;
  connection: boolean;
}
