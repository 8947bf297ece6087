// The turn file as input from outside: what may be adopted, what is left alone, and what no
// content (nor a truncation) of it can do to a process.
import { spawnSync } from 'node:child_process';
import {
  chmodSync,
  chownSync,
  closeSync,
  existsSync,
  mkdtempSync,
  openSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  unlinkSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { maxPayloadBytes, openWriteTurn, type Ticket, type WriteTurn, WriteTurnError } from '../src/index.ts';

// The file's layout (native/turn.h): the header's fields, then 1,024 slots of 1 KiB after 32 KiB.
const layout = {
  lock: 48,
  lockNs: 56,
  state: 80,
  slot: (index: number) => 32 * 1024 + index * 1024,
  size: 32 * 1024 + 1024 * 1024,
};
const truncatedScript = new URL('./fixtures/truncated.mjs', import.meta.url).pathname;

const dirs: string[] = [];
const turns: WriteTurn[] = [];
afterEach(() => {
  for (const turn of turns.splice(0)) turn.close();
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

/** A fresh guarded file (a stand-in for a database) with `mode`. */
function guardedFile(mode = 0o644): string {
  const dir = mkdtempSync(join(tmpdir(), 'write-turn-file-'));
  dirs.push(dir);
  const path = join(dir, 'metrics.db');
  writeFileSync(path, ''); // fd-safe: a stand-in for a database, never opened by SQLite
  chmodSync(path, mode);
  return path;
}

function open(path: string): WriteTurn {
  const turn = openWriteTurn(path);
  turns.push(turn);
  return turn;
}

/** Writes `bytes` at `offset` of the turn file (fd-safe: the turn file, never a database). */
function poke(path: string, offset: number, bytes: Buffer): void {
  const fd = openSync(`${path}-turn`, 'r+'); // fd-safe: the turn file, never a database
  try {
    writeSync(fd, bytes, 0, bytes.length, offset);
  } finally {
    closeSync(fd);
  }
}

function refusal(path: string): { code: string; message: string } | undefined {
  try {
    open(path);
    return undefined;
  } catch (error) {
    expect(error).toBeInstanceOf(WriteTurnError);
    return { code: (error as WriteTurnError).code, message: (error as WriteTurnError).message };
  }
}

const isRoot = process.getuid?.() === 0;

describe('the turn file', () => {
  it("is created with the guarded file's permission bits, whatever the umask, and removed by discard() when this open created it", () => {
    for (const mode of [0o600, 0o640, 0o664]) {
      const path = guardedFile(mode);
      const previous = process.umask(0o000);
      try {
        const turn = openWriteTurn(path);
        expect(turn.created).toBe(true);
        expect(statSync(turn.path).mode & 0o7777).toBe(mode);
        expect(openWriteTurn(path).created).toBe(false); // adopted, not created
        expect(turn.discard()).toBe(true);
        expect(existsSync(turn.path)).toBe(false);
      } finally {
        process.umask(previous);
      }
    }
  });

  it('a file that is not a turn file is refused and left exactly as it was (another database, bytes, a symlink)', () => {
    const path = guardedFile();
    const turnPath = `${path}-turn`;
    // Another SQLite database happens to have the name: the header of one, and a few pages.
    const other = Buffer.concat([Buffer.from('SQLite format 3\0'), Buffer.alloc(8192 - 16, 7)]);
    writeFileSync(turnPath, other); // fd-safe: a file at the turn's path, never opened by SQLite here
    expect(refusal(path)).toMatchObject({ code: 'NOT_A_TURN_FILE', message: /not a write-turn file/ });
    expect(readFileSync(turnPath).equals(other)).toBe(true); // fd-safe: no connection has it open
    // The right size, the wrong header.
    writeFileSync(turnPath, Buffer.alloc(layout.size, 0xff)); // fd-safe: as above
    expect(refusal(path)).toMatchObject({ code: 'NOT_A_TURN_FILE', message: /header/ });
    expect(statSync(turnPath).size).toBe(layout.size);
    // A symbolic link there: never followed, its target untouched.
    unlinkSync(turnPath);
    const target = join(path, '..', 'elsewhere');
    writeFileSync(target, 'keep me'); // fd-safe: a plain file
    symlinkSync(target, turnPath);
    expect(refusal(path)).toMatchObject({ code: 'NOT_A_TURN_FILE', message: /symbolic link/ });
    expect(readFileSync(target, 'utf8')).toBe('keep me'); // fd-safe: a plain file
  });

  it('a turn file that someone who cannot write the guarded file could have written is not adopted', () => {
    const path = guardedFile(0o644);
    const turn = open(path);
    turn.close();
    chmodSync(turn.path, 0o666); // writable by everyone, where the guarded file is not
    expect(refusal(path)).toMatchObject({ code: 'UNTRUSTED', message: /mode 0666/ });
    chmodSync(turn.path, 0o644);
    expect(refusal(path)).toBeUndefined();
  });

  it.skipIf(!isRoot)('a turn file owned by another user is not adopted (as root: chown to nobody)', () => {
    const path = guardedFile(0o644);
    open(path).close();
    chownSync(`${path}-turn`, 65534, 65534);
    expect(refusal(path)).toMatchObject({ code: 'UNTRUSTED', message: /uid 65534/ });
    // Root creates the turn file with the guarded file's owner, as SQLite does its -shm.
    const owned = guardedFile(0o640);
    chownSync(owned, 65534, 65534);
    const turn = open(owned);
    expect(statSync(turn.path)).toMatchObject({ uid: 65534, gid: 65534 });
  });

  it('lengths past their fields make an entry damaged, never a copy past the slot', () => {
    const path = guardedFile();
    const [follower, holder] = [open(path), open(path)];
    const ticket = follower.post(Buffer.from('payload')) as Ticket;
    const index = Math.floor(ticket / 2 ** 32);
    // payload_length: 4 GiB - 1.
    poke(path, layout.slot(index), Buffer.from([0xff, 0xff, 0xff, 0xff]));
    expect(holder.tryAcquire()).toBe(true);
    const taken = holder.take();
    expect(taken).toEqual([{ ticket, payload: null, takenBefore: false }]);
    expect(holder.answer(ticket, Buffer.from('{"i":1}'), true)).toBe(true);
    // answer_length: far past the 256 bytes of an answer.
    poke(path, layout.slot(index) + 4, Buffer.from([0x00, 0x00, 0x10, 0x00]));
    expect(follower.collect(ticket)).toEqual(Buffer.alloc(0));
    expect(follower.posted()).toBe(0);
    // Every slot's state set to a value no state has: nothing is taken, nothing crashes, slots come back.
    poke(path, layout.state, Buffer.alloc(4096, 0xee));
    expect(holder.take()).toEqual([]);
    expect(follower.post(Buffer.alloc(maxPayloadBytes, 1))).toBeDefined();
  });

  it('a lock word naming a thread that is gone is taken over; one that cannot be checked only costs a wait', async () => {
    const path = guardedFile();
    const turn = open(path);
    turn.close();
    const word = Buffer.alloc(8);
    // This process, with a thread id no thread has (pid_max is at most 2^22).
    word.writeUInt32LE(0x3ffffff0, 0);
    word.writeUInt32LE(process.pid, 4);
    poke(path, layout.lock, word);
    const namespace = Buffer.alloc(8);
    namespace.writeBigUInt64LE(BigInt(statSync('/proc/self/ns/pid').ino));
    poke(path, layout.lockNs, namespace);
    const again = open(path);
    expect(again.tryAcquire()).toBe(true);
    again.release();
    // Held "in another PID namespace": nobody here can tell whether it lives, so the wait runs out.
    poke(path, layout.lock, word);
    poke(path, layout.lockNs, Buffer.from('0123456789abcdef', 'hex'));
    expect(again.tryAcquire()).toBe(false);
    expect(await again.acquire(150)).toBe(false);
    poke(path, layout.lock, Buffer.alloc(8));
    expect(await again.acquire(1000)).toBe(true);
  });

  it('a turn file deleted or replaced while in use reads as stale', () => {
    const path = guardedFile();
    const turn = open(path);
    expect(turn.state()).toBe('usable');
    unlinkSync(turn.path);
    expect(turn.state()).toBe('stale');
    const fresh = open(path);
    expect(fresh.created).toBe(true);
    expect(turn.state()).toBe('stale');
    expect(fresh.state()).toBe('usable');
    // The stale handle's discard() leaves the new file alone.
    expect(turn.discard()).toBe(false);
    expect(existsSync(fresh.path)).toBe(true);
  });

  it('truncated while mapped (cp over it): no SIGBUS; the turn reads as broken and every wait ends', () => {
    const path = guardedFile();
    const run = spawnSync(process.execPath, ['--import', 'tsx', truncatedScript, path], {
      encoding: 'utf8',
      timeout: 20_000,
    });
    expect({ status: run.status, signal: run.signal, stderr: run.stderr }).toEqual({
      status: 0,
      signal: null,
      stderr: '',
    });
    expect(JSON.parse(run.stdout)).toEqual({
      posted: 0,
      state: 'broken',
      waited: 'broken',
      acquired: false,
      post: null,
      // The fault of an address that is not a turn's still kills the process as it would have.
      foreignFault: 'SIGBUS',
    });
  });
});
