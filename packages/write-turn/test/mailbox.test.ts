import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { maxAnswerBytes, maxPayloadBytes, openWriteTurn, type Ticket, type WriteTurn } from '../src/index.ts';

const peerScript = new URL('./fixtures/mailbox-peer.mjs', import.meta.url).pathname;
const dirs: string[] = [];
const children: ChildProcess[] = [];
const turns: WriteTurn[] = [];
afterEach(() => {
  for (const turn of turns.splice(0)) turn.close();
  for (const child of children.splice(0)) child.kill('SIGKILL');
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

/** A fresh file to take turns on (its turn file is this path and `-turn`). */
function turnPath(): string {
  const dir = mkdtempSync(join(tmpdir(), 'write-turn-mailbox-'));
  dirs.push(dir);
  const guarded = join(dir, 'metrics.db');
  writeFileSync(guarded, ''); // fd-safe: a stand-in for a database, never opened by SQLite
  return guarded;
}
/** `count` handles on one turn file (a fresh one unless given), closed after the test. */
function openHandles(count: number, path = turnPath()): WriteTurn[] {
  const opened = Array.from({ length: count }, () => openWriteTurn(path));
  turns.push(...opened);
  return opened;
}

function startPeer(path: string, ...args: string[]): ChildProcess {
  const child = spawn(process.execPath, ['--import', 'tsx', peerScript, path, ...args], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  children.push(child);
  return child;
}
/** The rest of the first whole line the child prints that starts with `word` (rejects if it exits first). */
const said = (child: ChildProcess, word: string) =>
  new Promise<string>((resolve, reject) => {
    let out = '';
    child.stdout?.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      const line = out
        .split('\n')
        .slice(0, -1)
        .find((l) => l.startsWith(word));
      if (line !== undefined) resolve(line.slice(word.length).trim());
    });
    child.on('exit', (code, signal) => reject(new Error(`peer exited with ${code ?? signal} before "${word}"`)));
  });
/** Resolves once the child is gone and reaped (a zombie would still answer kill(pid, 0)). */
const exited = (child: ChildProcess) =>
  new Promise<NodeJS.Signals | number | null>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve(child.signalCode ?? child.exitCode);
    else child.on('exit', (code, signal) => resolve(signal ?? code));
  });

/** Measures the event loop's longest pause while it runs (a 5 ms interval). */
function watchLoop() {
  let last = performance.now();
  let longest = 0;
  let ticks = 0;
  const timer = setInterval(() => {
    const now = performance.now();
    longest = Math.max(longest, now - last);
    last = now;
    ticks++;
  }, 5);
  return () => {
    clearInterval(timer);
    return { longest: Math.max(longest, performance.now() - last), ticks };
  };
}
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const bytes = (text: string) => Buffer.from(text);
/** Whether a promise has settled yet (after a turn of the event loop). */
async function settled(promise: Promise<unknown>): Promise<boolean> {
  let done = false;
  void promise.then(
    () => {
      done = true;
    },
    () => {
      done = true;
    },
  );
  await sleep(0);
  return done;
}

describe('write turn mailbox', () => {
  it('round trip: a post is taken by the holder, answered, announced, collected once', {
    timeout: 10_000,
  }, async () => {
    const [follower, holder] = openHandles(2) as [WriteTurn, WriteTurn];
    const ticket = follower.post(bytes('rows of the follower')) as Ticket;
    expect(Number.isSafeInteger(ticket)).toBe(true);
    expect(follower.posted()).toBe(1);
    expect(follower.collect(ticket)).toBeNull();

    expect(holder.tryAcquire()).toBe(true);
    const waiting = follower.awaitAnswer(ticket, 5_000);
    await sleep(50); // the follower is asleep in the kernel by now
    expect(await settled(waiting)).toBe(false);

    const taken = holder.take();
    expect(taken).toHaveLength(1);
    expect(taken[0]?.ticket).toBe(ticket);
    expect(taken[0]?.payload?.toString()).toBe('rows of the follower');
    expect(taken[0]?.takenBefore).toBe(false);
    expect(holder.posted()).toBe(0);

    holder.answer(ticket, bytes('before commit'), false);
    expect(follower.collect(ticket)).toBeNull(); // not final yet
    holder.answer(ticket, bytes('stored 3 rows'), true);
    const announcedAt = performance.now();
    holder.announce();
    expect(await waiting).toBe('answer');
    // Woken by announce(), not by the follower's 200 ms re-check.
    expect(performance.now() - announcedAt).toBeLessThan(100);
    expect(follower.held).toBe(false);
    expect(holder.held).toBe(true);

    expect(follower.collect(ticket)?.toString()).toBe('stored 3 rows');
    expect(follower.collect(ticket)).toBeNull(); // the slot is free again
    holder.release();
    expect(holder.tryAcquire()).toBe(true);
    expect(holder.take()).toEqual([]);
  });

  it('awaitPost: a post from another process wakes the holder (long before its 60 s timeout), the event loop free meanwhile', {
    timeout: 15_000,
  }, async () => {
    const path = turnPath();
    const [holder] = openHandles(1, path) as [WriteTurn];
    expect(holder.tryAcquire()).toBe(true);
    const stopWatching = watchLoop();
    const waiting = holder.awaitPost(60_000);
    await sleep(100);
    expect(await settled(waiting)).toBe(false);
    const peer = startPeer(path, 'post', 'from afar');
    const ticket = Number(await said(peer, 'ticket'));
    expect(await waiting).toBe(true);
    const { longest, ticks } = stopWatching();
    expect(ticks).toBeGreaterThan(10);
    expect(longest).toBeLessThan(1_000);
    expect(holder.take().map((entry) => entry.ticket)).toEqual([ticket]);
    // Something already posted: true at once; the turn is still held throughout.
    const [poster] = openHandles(1, path) as [WriteTurn];
    poster.post(bytes('here already'));
    expect(await holder.awaitPost(60_000)).toBe(true);
    expect(holder.held).toBe(true);
  });

  it('awaitPost: false when the time runs out; refused without the turn or beside another wait', async () => {
    const [holder, other] = openHandles(2) as [WriteTurn, WriteTurn];
    expect(() => other.awaitPost(10)).toThrow(/needs the turn held/);
    expect(holder.tryAcquire()).toBe(true);
    expect(await holder.awaitPost(50)).toBe(false);
    const first = holder.awaitPost(5_000);
    expect(() => holder.awaitPost(10)).toThrow(/no other wait pending/);
    other.post(bytes('x'));
    expect(await first).toBe(true);
    holder.take();
    expect(await holder.awaitPost(-1)).toBe(false); // clamped to 0, like the other waits
    const cut = holder.awaitPost(60_000);
    await sleep(50);
    holder.stopAwaitingPost(); // the holder has rows of its own to commit
    expect(await cut).toBe(false);
    expect(holder.held).toBe(true);
    holder.stopAwaitingPost(); // nothing pending: nothing happens
  });

  for (const how of ['tryAcquire', 'acquire'] as const) {
    it(`awaitPost cut short by release() and by close() (turn taken with ${how}): false, and the turn is free at once`, {
      timeout: 15_000,
    }, async () => {
      const [holder, other] = openHandles(2) as [WriteTurn, WriteTurn];
      const take = () => (how === 'tryAcquire' ? holder.tryAcquire() : holder.acquire(1_000));
      expect(await take()).toBe(true);
      let waiting = holder.awaitPost(60_000);
      await sleep(50);
      holder.release();
      expect(other.tryAcquire()).toBe(true);
      expect(await waiting).toBe(false);
      other.release();

      expect(await take()).toBe(true);
      waiting = holder.awaitPost(60_000);
      await sleep(50);
      holder.close();
      expect(other.tryAcquire()).toBe(true);
      expect(await waiting).toBe(false);
    });
  }

  it("awaitAnswer resolves 'turn' when nobody holds the turn, and the handle then holds it", {
    timeout: 10_000,
  }, async () => {
    const [follower, other] = openHandles(2) as [WriteTurn, WriteTurn];
    const ticket = follower.post(bytes('p')) as Ticket;
    const startedAt = performance.now();
    expect(await follower.awaitAnswer(ticket, 5_000)).toBe('turn');
    expect(performance.now() - startedAt).toBeLessThan(1_000);
    expect(follower.held).toBe(true);
    expect(other.tryAcquire()).toBe(false);
    // The new holder takes its own post.
    expect(follower.take().map((entry) => entry.ticket)).toEqual([ticket]);
    follower.untake(ticket);
    expect(follower.withdraw(ticket)).toBe(true);
    follower.release();
    expect(follower.held).toBe(false);
    expect(other.tryAcquire()).toBe(true);
  });

  it("awaitAnswer resolves 'timeout' when the holder never answers, with the event loop free", {
    timeout: 10_000,
  }, async () => {
    const [follower, holder] = openHandles(2) as [WriteTurn, WriteTurn];
    expect(holder.tryAcquire()).toBe(true);
    const ticket = follower.post(bytes('p')) as Ticket;
    const timeoutMs = 500;
    const stop = watchLoop();
    const startedAt = performance.now();
    const outcome = await follower.awaitAnswer(ticket, timeoutMs);
    const elapsed = performance.now() - startedAt;
    const loop = stop();
    expect(outcome).toBe('timeout');
    expect(elapsed).toBeGreaterThanOrEqual(timeoutMs - 20);
    expect(elapsed).toBeLessThan(timeoutMs + 500);
    expect(loop.longest).toBeLessThan(100);
    expect(loop.ticks).toBeGreaterThan(20);
    expect(follower.held).toBe(false);
    expect(holder.held).toBe(true);
    // Still posted: the follower takes it back.
    expect(follower.withdraw(ticket)).toBe(true);
  });

  it('closing a handle while it awaits an answer settles the wait as timeout', { timeout: 10_000 }, async () => {
    const [follower, holder] = openHandles(2) as [WriteTurn, WriteTurn];
    expect(holder.tryAcquire()).toBe(true);
    const ticket = follower.post(bytes('p')) as Ticket;
    const waiting = follower.awaitAnswer(ticket, 10_000);
    const startedAt = performance.now();
    follower.close();
    expect(await waiting).toBe('timeout');
    expect(performance.now() - startedAt).toBeLessThan(500);
    expect(follower.held).toBe(false);
  });

  it('withdraw takes back a posted ticket, not a taken one; untake posts it again', () => {
    const [follower, holder] = openHandles(2) as [WriteTurn, WriteTurn];
    const first = follower.post(bytes('first')) as Ticket;
    expect(follower.withdraw(first)).toBe(true);
    expect(follower.withdraw(first)).toBe(false); // already gone
    expect(follower.posted()).toBe(0);
    expect(holder.tryAcquire()).toBe(true);
    expect(holder.take()).toEqual([]);

    const second = follower.post(bytes('second')) as Ticket;
    expect(holder.take().map((entry) => entry.ticket)).toEqual([second]);
    expect(follower.withdraw(second)).toBe(false); // taken by the holder

    holder.untake(second);
    expect(follower.posted()).toBe(1);
    const again = holder.take();
    expect(again).toHaveLength(1);
    expect(again[0]?.ticket).toBe(second);
    expect(again[0]?.payload?.toString()).toBe('second');
    expect(again[0]?.takenBefore).toBe(false);

    // Untaken after a non-final answer (a failed commit): posted again, the answer forgotten.
    holder.answer(second, bytes('not committed'), false);
    holder.untake(second);
    expect(follower.collect(second)).toBeNull();
    expect(follower.withdraw(second)).toBe(true);
    expect(holder.take()).toEqual([]);
    // A stale ticket does not withdraw the slot's next use.
    const third = follower.post(bytes('third')) as Ticket;
    expect(follower.withdraw(second)).toBe(false);
    expect(follower.withdraw(first)).toBe(false);
    expect(follower.posted()).toBe(1);
    expect(follower.withdraw(third)).toBe(true);
  });

  it('payloads up to maxPayloadBytes are posted, larger ones refused; answers are cut at maxAnswerBytes', () => {
    const [follower, holder] = openHandles(2) as [WriteTurn, WriteTurn];
    expect(follower.post(Buffer.alloc(maxPayloadBytes + 1, 1))).toBeUndefined();
    expect(follower.posted()).toBe(0);
    const largest = Buffer.from(Array.from({ length: maxPayloadBytes }, (_, i) => (i * 7 + 3) % 256));
    const ticket = follower.post(largest) as Ticket;
    expect(ticket).toBeDefined();
    // An empty payload is a payload too.
    const empty = follower.post(new Uint8Array(0)) as Ticket;
    expect(empty).toBeDefined();

    expect(holder.tryAcquire()).toBe(true);
    const taken = new Map(holder.take().map((entry) => [entry.ticket, entry.payload]));
    expect(taken.get(ticket)?.equals(largest)).toBe(true);
    expect(taken.get(empty)?.length).toBe(0);

    const long = Buffer.from(Array.from({ length: maxAnswerBytes + 44 }, (_, i) => i % 251));
    holder.answer(ticket, long, true);
    holder.answer(empty, new Uint8Array(0), true);
    holder.announce();
    const answer = follower.collect(ticket);
    expect(answer?.length).toBe(maxAnswerBytes);
    expect(answer?.equals(long.subarray(0, maxAnswerBytes))).toBe(true);
    expect(follower.collect(empty)?.length).toBe(0); // an empty final answer is an answer, not null
  });

  it('finish() makes the answers written before the commit final and wakes their posters; it passes over tickets not taken, unanswered or repeated', async () => {
    const [holder, ...followers] = openHandles(4) as [WriteTurn, ...WriteTurn[]];
    expect(holder.tryAcquire()).toBe(true);
    const tickets = followers.map((follower, i) => follower.post(bytes(`row ${i}`)) as Ticket);
    const unanswered = followers[0]?.post(bytes('not answered yet')) as Ticket;
    const waits = followers.map((follower, i) => follower.awaitAnswer(tickets[i] as Ticket, 5_000));
    await sleep(50); // asleep in the kernel by now
    expect(new Set(holder.take().map((entry) => entry.ticket))).toEqual(new Set([...tickets, unanswered]));
    tickets.forEach((ticket, i) => {
      holder.answer(ticket, bytes(`stored row ${i}`), false);
    });

    // A ticket without an answer, or not taken at all, is passed over: nothing is made final.
    expect(holder.finish([unanswered, 987_654])).toBe(0);
    expect(await Promise.all(waits.map(settled))).toEqual([false, false, false]);
    expect(followers.map((follower, i) => follower.collect(tickets[i] as Ticket))).toEqual([null, null, null]);

    // The same ticket twice is finished once (a second settle would free the slot under its poster).
    expect(holder.finish([...tickets, tickets[0] as Ticket, unanswered])).toBe(3); // counts the round too
    expect(await Promise.all(waits)).toEqual(['answer', 'answer', 'answer']);
    expect(followers.map((follower, i) => follower.collect(tickets[i] as Ticket)?.toString())).toEqual([
      'stored row 0',
      'stored row 1',
      'stored row 2',
    ]);
    expect(holder.finish(tickets)).toBe(0); // collected: free again
    expect(holder.finish([])).toBe(0);
  });

  it('refuses take() without the turn; answer()/untake() of a ticket that is not taken change nothing', async () => {
    const [follower, holder] = openHandles(2) as [WriteTurn, WriteTurn];
    const ticket = follower.post(bytes('p')) as Ticket;
    expect(() => holder.take()).toThrow(/needs the turn/);
    expect(holder.tryAcquire()).toBe(true);
    expect(() => follower.take()).toThrow(/needs the turn/); // another handle holds it
    expect(holder.answer(ticket, bytes('a'), true)).toBe(false); // posted, not taken
    holder.untake(ticket);
    expect(holder.posted()).toBe(1);
    expect(holder.take()).toHaveLength(1);
    expect(holder.answer(ticket, bytes('a'), true)).toBe(true);
    holder.untake(ticket); // answered: stays answered
    expect(holder.answer(ticket, bytes('b'), true)).toBe(false);
    expect(follower.collect(ticket)?.toString()).toBe('a');
    expect(holder.answer(ticket, bytes('c'), true)).toBe(false); // collected: free
    holder.untake(ticket);
    expect(holder.posted()).toBe(0);
    holder.release();
    expect(() => holder.take()).toThrow(/needs the turn/);
    // awaitAnswer while holding the turn is a misuse too.
    expect(holder.tryAcquire()).toBe(true);
    const mine = holder.post(bytes('mine')) as Ticket;
    await expect(holder.awaitAnswer(mine, 100)).rejects.toThrow(/already held/);
    expect(holder.held).toBe(true);
  });

  it('a holder killed after its non-final answer: the next holder gets the ticket back as taken before', {
    timeout: 15_000,
  }, async () => {
    const path = turnPath();
    const [follower] = openHandles(1, path) as [WriteTurn];
    const ticket = follower.post(bytes('rows in doubt')) as Ticket;
    const peer = startPeer(path, 'answer', String(ticket), 'answer before commit');
    await said(peer, 'answered');
    expect(follower.tryAcquire()).toBe(false); // the peer holds the turn
    const waiting = follower.awaitAnswer(ticket, 10_000);
    await sleep(100); // asleep in the kernel by now
    expect(await settled(waiting)).toBe(false);
    const killedAt = performance.now();
    peer.kill('SIGKILL');
    expect(await waiting).toBe('turn'); // noticed by the follower's re-check
    expect(performance.now() - killedAt).toBeLessThan(1_000);
    expect(await exited(peer)).toBe('SIGKILL');
    expect(follower.held).toBe(true);
    expect(follower.collect(ticket)).toBeNull();

    const taken = follower.take();
    expect(taken).toHaveLength(1);
    expect(taken[0]?.ticket).toBe(ticket);
    expect(taken[0]?.payload?.toString()).toBe('rows in doubt');
    expect(taken[0]?.takenBefore).toBe(true);
    // The new holder decides (its receipts say: committed after all), and the owner collects.
    follower.answer(ticket, bytes('answer before commit'), true);
    expect(follower.collect(ticket)?.toString()).toBe('answer before commit');
    expect(follower.posted()).toBe(0);
  });

  it('a holder that SIGKILLs itself after its non-final answer hands on the turn and the ticket', {
    timeout: 15_000,
  }, async () => {
    const path = turnPath();
    const [follower, other] = openHandles(2, path) as [WriteTurn, WriteTurn];
    const ticket = follower.post(bytes('in doubt')) as Ticket;
    const peer = startPeer(path, 'answer', String(ticket), 'maybe', 'die');
    expect(await exited(peer)).toBe('SIGKILL');
    expect(other.tryAcquire()).toBe(true);
    const taken = other.take();
    expect(taken.map((entry) => [entry.ticket, entry.payload?.toString(), entry.takenBefore])).toEqual([
      [ticket, 'in doubt', true],
    ]);
    // Not committed after all: posted again, as never taken.
    other.untake(ticket);
    expect(other.take().map((entry) => entry.takenBefore)).toEqual([false]);
  });

  it('the post of a process that died is freed by take(), not returned', { timeout: 15_000 }, async () => {
    const path = turnPath();
    const [holder, follower] = openHandles(2, path) as [WriteTurn, WriteTurn];
    const mine = follower.post(bytes('alive')) as Ticket;
    const peer = startPeer(path, 'post', 'orphan');
    const ticket = Number(await said(peer, 'ticket'));
    expect(Number.isSafeInteger(ticket)).toBe(true);
    expect(holder.posted()).toBe(2);
    peer.kill('SIGKILL');
    expect(await exited(peer)).toBe('SIGKILL');
    expect(holder.posted()).toBe(2); // only take() reaps

    expect(holder.tryAcquire()).toBe(true);
    const taken = holder.take();
    expect(taken.map((entry) => entry.ticket)).toEqual([mine]);
    expect(taken.map((entry) => entry.payload?.toString())).not.toContain('orphan');
    expect(holder.posted()).toBe(0);
    expect(holder.take().map((entry) => entry.ticket)).not.toContain(ticket);
    expect(follower.withdraw(ticket)).toBe(false); // its slot is free
  });

  it('1,024 slots: the 1,025th post is refused until slots are collected', { timeout: 15_000 }, () => {
    const [follower, holder] = openHandles(2) as [WriteTurn, WriteTurn];
    const tickets: Ticket[] = [];
    for (let i = 0; i < 1024; i++) {
      const ticket = follower.post(bytes(`payload ${i}`));
      expect(ticket).toBeDefined();
      tickets.push(ticket as Ticket);
    }
    expect(new Set(tickets).size).toBe(1024);
    expect(follower.post(bytes('one too many'))).toBeUndefined();
    expect(follower.posted()).toBe(1024);

    expect(holder.tryAcquire()).toBe(true);
    const taken = holder.take();
    expect(taken).toHaveLength(1024);
    const byTicket = new Map(taken.map((entry) => [entry.ticket, entry.payload?.toString()]));
    tickets.forEach((ticket, i) => {
      expect(byTicket.get(ticket)).toBe(`payload ${i}`);
    });
    expect(follower.post(bytes('still full'))).toBeUndefined(); // taken slots are still in use
    for (const entry of taken) holder.answer(entry.ticket, bytes(`answer to ${entry.payload}`), true);
    holder.announce();
    expect(follower.post(bytes('full until collected'))).toBeUndefined();
    tickets.forEach((ticket, i) => {
      expect(follower.collect(ticket)?.toString()).toBe(`answer to payload ${i}`);
    });
    expect(follower.posted()).toBe(0);

    const next = follower.post(bytes('room again'));
    expect(next).toBeDefined();
    expect(holder.take().map((entry) => entry.payload?.toString())).toEqual(['room again']);
  });

  it('closing a handle frees what it posted: waiting posts at once, posts being committed once answered', () => {
    const [holder] = openHandles(1);
    const path = turnPath();
    const [owner] = openHandles(1, path);
    const [other] = openHandles(1, path);
    const waiting = (owner as WriteTurn).post(new Uint8Array([1])) as Ticket;
    expect(waiting).toBeDefined();
    (owner as WriteTurn).close();
    expect((other as WriteTurn).posted()).toBe(0);
    // A post taken by the holder when its poster closes is freed by the final answer, not kept for nobody.
    const [poster] = openHandles(1, path);
    const ticket = (poster as WriteTurn).post(new Uint8Array([2])) as Ticket;
    expect((other as WriteTurn).tryAcquire()).toBe(true);
    expect((other as WriteTurn).take().map((entry) => entry.ticket)).toEqual([ticket]);
    (poster as WriteTurn).close();
    (other as WriteTurn).answer(ticket, new Uint8Array([3]), true);
    expect((other as WriteTurn).answer(ticket, new Uint8Array([3]), true)).toBe(false); // freed: nobody's
    // Every slot can be posted again: none leaked.
    const [filler] = openHandles(1, path);
    let posted = 0;
    while ((filler as WriteTurn).post(new Uint8Array([4])) !== undefined) posted += 1;
    expect(posted).toBe(1024);
    (holder as WriteTurn).close();
  });

  it('a timeout too long for the clock (Infinity) waits, it does not fail at once', async () => {
    const [holder, waiter] = openHandles(2) as [WriteTurn, WriteTurn];
    expect(holder.tryAcquire()).toBe(true);
    let settled: boolean | undefined;
    const waiting = waiter.acquire(Number.POSITIVE_INFINITY).then((held) => {
      settled = held;
      return held;
    });
    await new Promise((resolve) => setTimeout(resolve, 150));
    expect(settled).toBeUndefined();
    holder.release();
    expect(await waiting).toBe(true);
  });
});
