import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { afterEach, describe, expect, it } from 'vitest';
import { fileIdentity, loadWriteTurn, openWriteTurn, setThreadSlice } from '../src/index.ts';

const holderScript = new URL('./fixtures/holder.mjs', import.meta.url).pathname;
const workerOnlyScript = new URL('./fixtures/worker-only.mjs', import.meta.url).pathname;
const terminatedWaitingScript = new URL('./fixtures/worker-terminated-waiting.mjs', import.meta.url).pathname;
const loadAtImportScript = new URL('./fixtures/load-at-import.mjs', import.meta.url).pathname;
const sliceResetOnForkScript = new URL('./fixtures/slice-reset-on-fork.mjs', import.meta.url).pathname;
const dirs: string[] = [];
const children: ChildProcess[] = [];
afterEach(() => {
  for (const child of children.splice(0)) child.kill('SIGKILL');
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});
/** A fresh file to take turns on (its turn file is this path and `-turn`). */
function turnPath(): string {
  const dir = mkdtempSync(join(tmpdir(), 'write-turn-'));
  dirs.push(dir);
  const guarded = join(dir, 'metrics.db');
  writeFileSync(guarded, ''); // fd-safe: a stand-in for a database, never opened by SQLite
  return guarded;
}

function startHolder(path: string, ...args: string[]): ChildProcess {
  const child = spawn(process.execPath, ['--import', 'tsx', holderScript, path, ...args], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  children.push(child);
  return child;
}
const heldBy = (child: ChildProcess) =>
  new Promise<void>((resolve, reject) => {
    child.stdout?.on('data', (chunk: Buffer) => chunk.toString().includes('held') && resolve());
    child.on('exit', (code) => reject(new Error(`holder exited with ${code}`)));
  });
const exited = (child: ChildProcess) =>
  new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));

describe('write turn', () => {
  it('loads here (the addon was built by pnpm install)', () => {
    expect(loadWriteTurn()).toEqual({ ok: true });
  });

  it("setThreadSlice sets the calling thread's CPU slice and returns the one it had (0: the default); refuses nonsense", () => {
    // This thread has the kernel's default slice: 0, whatever number the kernel reports for it.
    expect(setThreadSlice(30_000_000)).toBe(0);
    const during = setThreadSlice(0);
    // Linux 6.12 and later report the slice just set; a kernel before ignores it (and reports 0).
    if (during !== 0) {
      expect(during).toBe(30_000_000);
      // Back to the default, not pinned to its number; a slice of its own is returned as it is.
      expect(setThreadSlice(5_000_000)).toBe(0);
      expect(setThreadSlice(5_000_000)).toBe(5_000_000);
    }
    setThreadSlice(0);
    expect(setThreadSlice(0)).toBe(0);
    for (const bad of [-1, Number.NaN, Number.POSITIVE_INFINITY]) expect(() => setThreadSlice(bad)).toThrow(RangeError);
  });

  it("the waiting thread is named write-turn and runs on the shortest slice (it only hands each wake-up to JavaScript's thread)", async (context) => {
    const path = turnPath();
    const holder = openWriteTurn(path);
    const follower = openWriteTurn(path);
    try {
      expect(holder.tryAcquire()).toBe(true);
      const ticket = follower.post(new Uint8Array([1])) as number;
      const waiting = follower.awaitAnswer(ticket, 5_000);
      holder.release();
      expect(await waiting).toBe('turn');
      follower.withdraw(ticket);
      // Read once the wait is over: the thread has surely started (named itself, set its slice) by then.
      // The kernel's scheduler statistics of this process's threads (a kernel with them, 6.12 or later for slices).
      // fd-safe: /proc files, not a database
      const taskFile = (tid: string, name: string) => readFileSync(`/proc/self/task/${tid}/${name}`, 'utf8');
      const threads = readdirSync('/proc/self/task').map((tid) => ({
        name: taskFile(tid, 'comm').trim(),
        slice: /^se\.slice\s*:\s*(\d+)/m.exec(taskFile(tid, 'sched'))?.[1],
      }));
      // This handle's, and any an earlier test's closed handle left asleep (see close in turn.c).
      const waiters = threads.filter((thread) => thread.name === 'write-turn');
      expect(waiters.length).toBeGreaterThanOrEqual(1);
      // Reported as skipped where the kernel shows no slice or ignores one, not passed.
      const before = setThreadSlice(5_000_000) as number;
      if (waiters[0]?.slice === undefined || setThreadSlice(before) !== 5_000_000) context.skip();
      expect(new Set(waiters.map((thread) => thread.slice))).toEqual(new Set(['100000']));
    } finally {
      follower.close();
      holder.close();
    }
  });

  it('setThreadSlice keeps SCHED_RESET_ON_FORK (a thread without privileges may not clear it)', (context) => {
    if (spawnSync('chrt', ['--help']).status !== 0) context.skip();
    const run = spawnSync(
      'chrt',
      ['--reset-on-fork', '--other', '0', process.execPath, '--import', 'tsx', sliceResetOnForkScript],
      { encoding: 'utf8', timeout: 20_000 },
    );
    expect({ status: run.status, stderr: run.stderr }).toEqual({ status: 0, stderr: '' });
    const { before, resetOnFork } = JSON.parse(run.stdout);
    expect({ before, resetOnFork }).toEqual({ before: 0, resetOnFork: true });
  });

  it('a worker thread loads the addon when it imports the module; a main thread at its first use', () => {
    // Threads released at once would otherwise queue for Node's one addon-load lock at their first write.
    const run = spawnSync(process.execPath, [loadAtImportScript], { encoding: 'utf8', timeout: 20_000 });
    expect({ status: run.status, stderr: run.stderr }).toEqual({ status: 0, stderr: '' });
    expect(JSON.parse(run.stdout)).toEqual({ main: [], worker: ['write_turn.node'] });
  });

  it("fileIdentity: statSync's dev and ino; another file after a replace; undefined where there is none", () => {
    const path = turnPath();
    // fd-safe: a plain file of the test's own, not a database
    writeFileSync(path, 'x');
    const { dev, ino } = statSync(path);
    expect(fileIdentity(path)).toEqual({ dev, ino });
    const other = `${path}.new`;
    // fd-safe: a plain file of the test's own, not a database
    writeFileSync(other, 'y');
    renameSync(other, path);
    expect(fileIdentity(path)).toEqual({ dev, ino: statSync(path).ino });
    expect(fileIdentity(path)?.ino).not.toBe(ino);
    expect(fileIdentity(`${path}.missing`)).toBeUndefined();
    expect(fileIdentity(`${path}/below-a-file`)).toBeUndefined();
    expect(() => fileIdentity('x'.repeat(5000))).toThrow(/needs a path/);
  });

  it('one holder at a time; a release hands the turn to a waiter', async () => {
    const path = turnPath();
    const first = openWriteTurn(path);
    const second = openWriteTurn(path);
    expect(first.tryAcquire()).toBe(true);
    expect(second.tryAcquire()).toBe(false);
    const waiting = second.acquire(10_000);
    let settled = false;
    void waiting.then(() => {
      settled = true;
    });
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(settled).toBe(false);
    first.release();
    expect(await waiting).toBe(true);
    expect(second.held).toBe(true);
    expect(first.tryAcquire()).toBe(false);
    second.release();
    expect(first.tryAcquire()).toBe(true);
    first.close();
    second.close();
  });

  it('a wait that runs out resolves false, and the event loop runs meanwhile', async () => {
    const path = turnPath();
    const holder = openWriteTurn(path);
    const waiter = openWriteTurn(path);
    expect(holder.tryAcquire()).toBe(true);
    let ticks = 0;
    const ticker = setInterval(() => ticks++, 10);
    expect(await waiter.acquire(300)).toBe(false);
    clearInterval(ticker);
    expect(ticks).toBeGreaterThan(3);
    expect(waiter.held).toBe(false);
    holder.close();
    waiter.close();
  });

  it('closing a handle while it waits settles the wait as false; its release-on-close frees the turn', async () => {
    const path = turnPath();
    const holder = openWriteTurn(path);
    const waiter = openWriteTurn(path);
    holder.tryAcquire();
    const waiting = waiter.acquire(60_000);
    waiter.close();
    expect(await waiting).toBe(false);
    holder.close(); // releases
    const next = openWriteTurn(path);
    expect(next.tryAcquire()).toBe(true);
    next.close();
  });

  it('a holder killed with SIGKILL hands the turn on', async () => {
    const path = turnPath();
    const child = startHolder(path, 'hold');
    await heldBy(child);
    const turn = openWriteTurn(path);
    expect(turn.tryAcquire()).toBe(false);
    const waiting = turn.acquire(15_000);
    child.kill('SIGKILL');
    expect(await waiting).toBe(true);
    turn.close();
  });

  it('a worker thread terminated while it holds the turn hands it on', async () => {
    const path = turnPath();
    const worker = new Worker(new URL('./fixtures/thread-holder.mjs', import.meta.url), { workerData: path });
    const held = await new Promise((resolve) => worker.once('message', resolve));
    expect(held).toBe(true);
    const turn = openWriteTurn(path);
    expect(turn.tryAcquire()).toBe(false);
    const waiting = turn.acquire(15_000);
    await worker.terminate();
    expect(await waiting).toBe(true);
    turn.close();
  });

  it('a worker thread terminated while it waits (acquire, awaitAnswer, awaitPost) does not abort the process', () => {
    // The pending promise was settled from the environment's cleanup hook without a handle scope:
    // FATAL ERROR, SIGABRT, for the whole process.
    const path = turnPath();
    const turn = openWriteTurn(path);
    expect(turn.tryAcquire()).toBe(true);
    for (const mode of ['acquire', 'await', 'await-post']) {
      const run = spawnSync(process.execPath, [terminatedWaitingScript, path, mode, turnPath()], {
        encoding: 'utf8',
        timeout: 20_000,
      });
      expect({ mode, status: run.status, signal: run.signal, stdout: run.stdout }).toEqual({
        mode,
        status: 0,
        signal: null,
        stdout: 'terminated\n',
      });
    }
    turn.close();
  });

  it('a waiting thread left behind by the last worker that loaded the addon does not crash the process', () => {
    // Node unloads an addon when the last environment that loaded it ends; a waiting thread that
    // close() left asleep in the kernel (detached) then woke up in unmapped code: SIGSEGV, seen with
    // 100 worker threads of the bench's runOneshot (its main thread never loads the addon).
    const path = turnPath();
    const turn = openWriteTurn(path);
    expect(turn.tryAcquire()).toBe(true);
    // Synchronous: the child's worker waits for the turn this process holds, and needs nothing else of it.
    const run = spawnSync(process.execPath, [workerOnlyScript, path, '300'], { encoding: 'utf8', timeout: 20_000 });
    turn.close();
    expect({ status: run.status, signal: run.signal }).toEqual({ status: 0, signal: null });
    expect(run.stdout).toContain('worker exited, addon still mapped: true');
    expect(run.stdout).toContain('done');
  });

  it('20 processes opening a fresh turn file at once share one turn: their holds never overlap', async () => {
    const path = turnPath();
    const log = `${path}.log`;
    writeFileSync(log, ''); // fd-safe: the holders' log file, never a database
    const runs = Array.from({ length: 20 }, () => exited(startHolder(path, 'log', log)));
    expect(await Promise.all(runs)).toEqual(Array(20).fill(0));
    // fd-safe: the holders' log file, never a database
    const lines = readFileSync(log, 'utf8').trim().split('\n');
    expect(lines).toHaveLength(40);
    for (let i = 0; i < lines.length; i += 2) {
      const [start, end] = [lines[i]?.split(' '), lines[i + 1]?.split(' ')];
      expect(start?.[0]).toBe('start');
      expect(end).toEqual(['end', start?.[1]]);
    }
  });

  it('refuses misuse with a clear error', async () => {
    const path = turnPath();
    const turn = openWriteTurn(path);
    expect(turn.tryAcquire()).toBe(true);
    expect(() => turn.tryAcquire()).toThrow(/already held/);
    turn.close();
    expect(() => turn.tryAcquire()).toThrow(/closed/);
    expect(() => openWriteTurn(join(path, 'not-a-dir', 'x'))).toThrow(/cannot examine/);
  });
});
