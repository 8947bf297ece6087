import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import {
  chmodSync,
  closeSync,
  existsSync,
  linkSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  rmSync,
  statSync,
  symlinkSync,
  truncateSync,
  unlinkSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { OpenDatabaseError, openMetricsRepo } from '../src/index.ts';
import { fileWithHeldTurn, storedRows, turnAvailable, useTempDatabase } from './helpers.ts';

/**
 * The turn file and the path a user gives are input from outside (issue: "The write turn is a
 * trust boundary"): every acknowledged row is stored exactly once, and nothing else, whatever the
 * path, the `synchronous` settings, a holder's death, or what anyone does to the turn file.
 */
const fixtures = join(import.meta.dirname, 'fixtures');
const packageRoot = join(import.meta.dirname, '..');
const started = new Set<ChildProcess>();
afterEach(() => {
  for (const child of started) child.kill('SIGKILL');
  started.clear();
});

interface Child {
  process: ChildProcess;
  lines: string[];
  /** The next line matching `test`; rejects if the child exits first or after `timeoutMs`. */
  line(test: (line: string) => boolean, timeoutMs: number): Promise<string>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  stderr(): string;
}

function startFixture(name: string, args: string[], asUser?: string): Child {
  const command = [process.execPath, '--import', 'tsx', join(fixtures, name), ...args];
  const child =
    asUser === undefined
      ? spawn(command[0] as string, command.slice(1), { cwd: packageRoot, stdio: ['ignore', 'pipe', 'pipe'] })
      : spawn('runuser', ['-u', asUser, '--', ...command], { cwd: packageRoot, stdio: ['ignore', 'pipe', 'pipe'] });
  started.add(child);
  const lines: string[] = [];
  let partial = '';
  let stderr = '';
  child.stderr?.on('data', (chunk) => {
    stderr += String(chunk);
  });
  child.stdout?.on('data', (chunk) => {
    partial += String(chunk);
    const complete = partial.split('\n');
    partial = complete.pop() ?? '';
    lines.push(...complete);
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => {
      started.delete(child);
      resolve({ code, signal });
    }),
  );
  const line = async (test: (line: string) => boolean, timeoutMs: number) => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = lines.find(test);
      if (found !== undefined) return found;
      if (child.exitCode !== null || child.signalCode !== null || Date.now() > deadline) {
        throw new Error(`${name}: no such line (${lines.join(' | ')}); stderr: ${stderr.slice(0, 2000)}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  };
  return { process: child, lines, line, exited, stderr: () => stderr };
}

/** Rows by value, through an independent connection: values stored more than once, and how many rows. */
function storedValues(path: string, name: string): { count: number; doubled: number[] } {
  const sqlite = new BetterSqlite3(path, { readonly: true });
  try {
    const rows = sqlite.prepare('SELECT value, count(*) AS n FROM metrics WHERE name = ? GROUP BY value').all(name) as {
      value: number;
      n: number;
    }[];
    return {
      count: rows.reduce((sum, row) => sum + row.n, 0),
      doubled: rows.filter((row) => row.n > 1).map((row) => row.value),
    };
  } finally {
    sqlite.close();
  }
}

/** What the repository says on `metrics-repo:turn` while `run` runs. */
async function turnMessages(run: () => Promise<void>): Promise<{ code: string; path: string }[]> {
  const heard: { code: string; path: string }[] = [];
  const listener = (message: unknown) => heard.push(message as { code: string; path: string });
  subscribe('metrics-repo:turn', listener);
  try {
    await run();
  } finally {
    unsubscribe('metrics-repo:turn', listener);
  }
  return heard;
}

describe('the write turn as a trust boundary', () => {
  const tempDatabase = useTempDatabase();

  /** A created file; a child that holds its turn and dies `when`; a follower (through `followerPath`) with one insert. */
  async function followerBehindDyingHolder(path: string, followerPath: string, when: 'after-commit') {
    await (await openMetricsRepo({ path })).close();
    const holder = startFixture('dying-holder.ts', [path, when]);
    await holder.line((line) => line === 'holding', 10_000);
    const repo = await openMetricsRepo({ path: followerPath });
    const inserting = repo.insert({ name: 'doubt', value: 1 });
    const said = await holder.line((line) => line.startsWith('committed '), 10_000);
    expect(await holder.exited).toEqual({ code: null, signal: 'SIGKILL' });
    return { repo, inserting, committedId: Number(said.split(' ')[1]) };
  }

  it.skipIf(!turnAvailable)(
    '1. a holder dies between COMMIT and its answers and the next holder has the other synchronous setting: stored once',
    async () => {
      const path = tempDatabase();
      const { repo, inserting, committedId } = await followerBehindDyingHolder(path, path, 'after-commit');
      // At once, before the follower notices the death: a repository with `full` takes the turn
      // and hands the follower's job back (another setting); the follower then writes it itself.
      const other = await openMetricsRepo({ path, synchronous: 'full' });
      await other.insert({ name: 'other', value: 1 });
      await expect(inserting).resolves.toMatchObject({ id: committedId });
      await Promise.all([repo.close(), other.close()]);
      expect(storedValues(path, 'doubt')).toEqual({ count: 1, doubled: [] });
    },
    30_000,
  );

  it.skipIf(!turnAvailable)(
    '2. one database through a symlink and its real path: one turn file, one mailbox; a dying holder stores the row once',
    async () => {
      const path = tempDatabase();
      const link = join(path, '..', 'link.db');
      symlinkSync(path, link);
      // The holder uses the real path, the follower the link: it posts in the holder's mailbox.
      const { repo, inserting, committedId } = await followerBehindDyingHolder(path, link, 'after-commit');
      await expect(inserting).resolves.toMatchObject({ id: committedId });
      expect(repo.path).toBe(path);
      await repo.close();
      expect(storedValues(path, 'doubt')).toEqual({ count: 1, doubled: [] });
      expect(existsSync(`${link}-turn`)).toBe(false);
      expect(existsSync(`${link}-wal`)).toBe(false);
    },
    30_000,
  );

  it.skipIf(!turnAvailable)(
    '3. the turn file deleted while in use, then a holder dies after COMMIT: stored once, and the writers meet in a new turn file',
    async () => {
      const path = tempDatabase();
      const { repo, inserting, committedId } = await followerBehindDyingHolder(path, path, 'after-commit');
      unlinkSync(`${path}-turn`);
      // A newcomer makes a new turn file while the follower still waits in the old one.
      const newcomer = await openMetricsRepo({ path });
      await newcomer.insert({ name: 'newcomer', value: 1 });
      await expect(inserting).resolves.toMatchObject({ id: committedId });
      await repo.insert({ name: 'after', value: 1 });
      await Promise.all([repo.close(), newcomer.close()]);
      expect(storedValues(path, 'doubt')).toEqual({ count: 1, doubled: [] });
      expect(storedRows(path)).toBe(3);
      expect(existsSync(`${path}-turn`)).toBe(true);
    },
    30_000,
  );

  it('4. a symlinked database path writes like the real one: its WAL is found where SQLite puts it', async () => {
    const path = tempDatabase();
    await (await openMetricsRepo({ path })).close();
    const link = join(path, '..', 'metrics-link.db');
    symlinkSync(path, link);
    const repo = await openMetricsRepo({ path: link });
    // One transaction each, so that pages pile up in the WAL past the file's own size.
    for (let i = 0; i < 600; i++) await repo.insert({ name: 'linked', value: i, labels: { pad: 'x'.repeat(200) } });
    await repo.close();
    expect(storedRows(path, "name = 'linked'")).toBe(600);
  }, 60_000);

  it('5. a database file with two names (hard links) is refused at open, and a second name made later fails the next write', async () => {
    const path = tempDatabase();
    const repo = await openMetricsRepo({ path });
    await repo.insert({ name: 'before', value: 1 });
    linkSync(path, `${path}.second-name`);
    await expect(repo.insert({ name: 'after', value: 1 })).rejects.toMatchObject({
      code: 'DATABASE_ERROR',
      sqliteCode: 'HARD_LINKED',
    });
    await repo.close();
    for (const name of [path, `${path}.second-name`]) {
      const error = await openMetricsRepo({ path: name }).catch((caught: unknown) => caught);
      expect(error).toBeInstanceOf(OpenDatabaseError);
      expect(error).toMatchObject({ code: 'HARD_LINKED' });
    }
    expect(storedRows(path)).toBe(1);
  });

  it.skipIf(!turnAvailable)(
    '6. another database named like the turn file is left as it is; the repository works without the turn',
    async () => {
      const path = tempDatabase();
      const other = new BetterSqlite3(`${path}-turn`);
      other.exec(
        'CREATE TABLE t (x); WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 50) INSERT INTO t SELECT i FROM n',
      );
      other.close();
      const heard = await turnMessages(async () => {
        const repos = await Promise.all([openMetricsRepo({ path }), openMetricsRepo({ path })]);
        await Promise.all(repos.map((repo, i) => repo.insert({ name: 'beside', value: i })));
        await Promise.all(repos.map((repo) => repo.close()));
      });
      expect(storedRows(path, "name = 'beside'")).toBe(2);
      const check = new BetterSqlite3(`${path}-turn`, { readonly: true });
      expect(check.prepare('SELECT count(*) FROM t').pluck().get()).toBe(50);
      check.close();
      expect(heard.map((message) => message.code)).toContain('NOT_A_TURN_FILE');
      // An existing file: its turn path is tried once per open, not again after the connection opened.
      const again = await turnMessages(async () => {
        const repo = await openMetricsRepo({ path });
        await repo.insert({ name: 'beside', value: 2 });
        await repo.close();
      });
      expect(again.map((message) => message.code)).toEqual(['NOT_A_TURN_FILE']);
    },
  );

  it.skipIf(!turnAvailable)(
    '7. random and adversarial bytes written into a live turn file: no process dies, every acknowledged row is stored once',
    async () => {
      const path = tempDatabase();
      await (await openMetricsRepo({ path })).close();
      const writers = [0, 1, 2, 3].map((w) =>
        startFixture('steady-writer.ts', [path, 'fuzz', String(w * 10_000), '150']),
      );
      const turnPath = `${path}-turn`;
      // Until the writers are done: bytes at random places, lengths and states set past their bounds.
      const adversarial = [
        Buffer.from([0xff, 0xff, 0xff, 0xff]), // a length or a state far out of range
        Buffer.from([0x02, 0x00, 0x00, 0x00]), // SLOT_POSTED
        Buffer.from([0x03, 0x00, 0x00, 0x00]), // SLOT_TAKEN
      ];
      let pokes = 0;
      const done = Promise.all(writers.map((writer) => writer.exited));
      let finished = false;
      void done.then(() => {
        finished = true;
      });
      while (!finished) {
        let fd: number;
        try {
          fd = openSync(turnPath, 'r+'); // fd-safe: the turn file, never a database
        } catch {
          await new Promise((resolve) => setTimeout(resolve, 5));
          continue; // replaced right now by a writer that found it broken
        }
        try {
          for (let i = 0; i < 20; i++) {
            const bytes =
              Math.random() < 0.5
                ? (adversarial[Math.floor(Math.random() * adversarial.length)] as Buffer)
                : Buffer.from(
                    Array.from({ length: 1 + Math.floor(Math.random() * 16) }, () => Math.floor(Math.random() * 256)),
                  );
            // Mostly the header (lock, states) and the slots' length fields, sometimes anywhere.
            const offset =
              Math.random() < 0.7
                ? Math.floor(Math.random() * 8192)
                : 32 * 1024 + Math.floor(Math.random() * 1024) * 1024 + (Math.random() < 0.5 ? 0 : 4);
            writeSync(fd, bytes, 0, bytes.length, offset);
            pokes++;
          }
        } finally {
          closeSync(fd);
        }
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
      const exits = await done;
      expect(exits.map((exit, i) => ({ ...exit, stderr: writers[i]?.stderr().slice(0, 1500) }))).toEqual(
        writers.map(() => ({ code: 0, signal: null, stderr: '' })),
      );
      const acked = writers.flatMap((writer) => writer.lines.filter((line) => line.startsWith('acked ')));
      const failed = writers.flatMap((writer) => writer.lines.filter((line) => line.startsWith('failed ')));
      const stored = storedValues(path, 'fuzz');
      expect(pokes).toBeGreaterThan(100);
      expect(stored.doubled).toEqual([]);
      // Every acknowledged row is stored; a failure says so (a damaged answer may leave one in doubt).
      expect(acked.length + failed.length).toBe(600);
      expect(stored.count).toBeGreaterThanOrEqual(acked.length);
      expect(stored.count).toBeLessThanOrEqual(
        acked.length + failed.filter((line) => line.includes('DATABASE')).length,
      );
    },
    120_000,
  );

  // Acting as a second local user needs the turn, root, runuser, and a checkout the user nobody can
  // read (a clone inside a 0700 directory is not).
  const canSwitchUser =
    turnAvailable &&
    process.getuid?.() === 0 &&
    spawnSync('runuser', ['-u', 'nobody', '--', process.execPath, '--import', 'tsx', '-e', ''], {
      cwd: packageRoot,
      stdio: 'ignore',
    }).status === 0;
  it('8. another local user plants the turn file in a shared directory: not adopted, no forged answer, every row really stored', async (context) => {
    if (!canSwitchUser) {
      context.skip('needs the turn, root, runuser, and a checkout the user nobody can read');
    }
    // A shared directory (as /tmp is): anyone may create files, each owns their own.
    const shared = mkdtempSync(join(tmpdir(), 'metrics-shared-'));
    chmodSync(shared, 0o1777);
    try {
      const path = join(shared, 'metrics.db');
      await (await openMetricsRepo({ path })).close();
      chmodSync(path, 0o644);
      unlinkSync(`${path}-turn`); // as before the owner's first open of the file
      const planter = startFixture('planter.ts', [path], 'nobody');
      await planter.line((line) => line === 'planted', 20_000);
      expect(statSync(`${path}-turn`)).toMatchObject({ uid: 65534, mode: 0o100666 });
      const heard = await turnMessages(async () => {
        const repo = await openMetricsRepo({ path });
        const rows = await Promise.all(Array.from({ length: 10 }, (_, i) => repo.insert({ name: 'owner', value: i })));
        expect(rows.map((row) => row.id)).not.toContain(999999);
        await repo.close();
      });
      expect(heard.map((message) => message.code)).toContain('UNTRUSTED');
      expect(storedRows(path, "name = 'owner'")).toBe(10);
    } finally {
      rmSync(shared, { recursive: true, force: true });
    }
  }, 60_000);

  it.skipIf(!turnAvailable)(
    '9. the turn file truncated while writers use it (cp over it): no SIGBUS, every acknowledged row stored once',
    async () => {
      const path = tempDatabase();
      await (await openMetricsRepo({ path })).close();
      const writers = [0, 1, 2].map((w) => startFixture('steady-writer.ts', [path, 'cut', String(w * 10_000), '60']));
      await writers[0]?.line((line) => line.startsWith('acked '), 20_000);
      for (let i = 0; i < 5; i++) {
        if (existsSync(`${path}-turn`)) truncateSync(`${path}-turn`, 0); // fd-safe: the turn file, never a database
        await new Promise((resolve) => setTimeout(resolve, 50));
        if (existsSync(`${path}-turn`)) unlinkSync(`${path}-turn`);
        await new Promise((resolve) => setTimeout(resolve, 150));
      }
      const exits = await Promise.all(writers.map((writer) => writer.exited));
      expect(exits.map((exit, i) => ({ ...exit, stderr: writers[i]?.stderr().slice(0, 1500) }))).toEqual(
        writers.map(() => ({ code: 0, signal: null, stderr: '' })),
      );
      const acked = writers.flatMap((writer) => writer.lines.filter((line) => line.startsWith('acked ')));
      const stored = storedValues(path, 'cut');
      expect(stored.doubled).toEqual([]);
      expect(acked.length).toBe(180);
      expect(stored.count).toBe(180);
    },
    120_000,
  );

  it.skipIf(!turnAvailable)(
    '10. a lock-timeout message says what held the turn or the lock',
    async () => {
      const path = tempDatabase();
      const holder = await fileWithHeldTurn(path);
      const repo = await openMetricsRepo({ path, lockTimeoutMs: 300 });
      const failure = await repo.insert({ name: 'late', value: 1 }).catch((error: unknown) => error);
      expect(failure).toMatchObject({ code: 'LOCK_TIMEOUT' });
      expect(String((failure as Error).message)).toMatch(/write turn|mailbox/);
      await repo.close();
      holder.close();
      const sqlite = new BetterSqlite3(path);
      sqlite.exec('BEGIN IMMEDIATE');
      const direct = await openMetricsRepo({ path, lockTimeoutMs: 300 });
      const locked = await direct.insert({ name: 'late', value: 2 }).catch((error: unknown) => error);
      sqlite.exec('ROLLBACK');
      sqlite.close();
      expect(String((locked as Error).message)).toMatch(/SQLite's write lock/);
      await direct.close();
    },
    30_000,
  );

  it('a failed open leaves nothing behind: no turn file beside a directory or a file that is not a database', async () => {
    const root = mkdtempSync(join(tmpdir(), 'metrics-failed-open-'));
    try {
      const directory = join(root, 'a-directory.db');
      mkdirSync(directory);
      const notes = join(root, 'notes.db');
      writeFileSync(notes, 'my notes, not a database\n'.repeat(100)); // fd-safe: no connection is open on it
      for (const path of [directory, notes]) {
        await expect(openMetricsRepo({ path })).rejects.toBeInstanceOf(OpenDatabaseError);
        expect(existsSync(`${path}-turn`)).toBe(false);
      }
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});
