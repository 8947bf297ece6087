import { execFileSync } from 'node:child_process';

/**
 * File operations run in a short-lived child process, for tests that damage or
 * inspect a database file while a SQLite connection of the test's own process has
 * it open.
 *
 * Why another process: POSIX locks belong to the process, and closing *any*
 * descriptor of a file releases all of them, SQLite's included. A test that
 * opened and closed the file itself would break the very connection it tests
 * (sqlite.org, "How To Corrupt An SQLite Database File", 2.2).
 */
export const elsewhere = {
  /** Replaces the file's content in place (same inode), as `cat data > path` would. */
  overwrite(path: string, data: string | Buffer): void {
    runNode('require("node:fs").writeFileSync(process.argv[1], Buffer.from(process.argv[2], "base64"))', [
      path,
      Buffer.from(data).toString('base64'),
    ]);
  },
  /** Cuts the file to `size` bytes (same inode), as `truncate -s SIZE path` would. */
  truncate(path: string, size = 0): void {
    runNode('require("node:fs").truncateSync(process.argv[1], Number(process.argv[2]))', [path, String(size)]);
  },
  /** The file's first `length` bytes. */
  readHead(path: string, length: number): Buffer {
    const base64 = runNode(
      'const fs = require("node:fs"); const fd = fs.openSync(process.argv[1], "r"); const b = Buffer.alloc(Number(process.argv[2])); const n = fs.readSync(fd, b, 0, b.length, 0); process.stdout.write(b.subarray(0, n).toString("base64"))',
      [path, String(length)],
    );
    return Buffer.from(base64, 'base64');
  },
};

function runNode(script: string, args: string[]): string {
  return execFileSync(process.execPath, ['-e', script, ...args], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}
