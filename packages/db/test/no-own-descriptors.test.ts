import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';

/**
 * The guard behind a rule every package follows: never open (and so never close)
 * a descriptor of our own on a file a SQLite connection of the same process may
 * have open: the database, its -wal, -shm or -journal.
 *
 * Why: SQLite's locks are POSIX `fcntl` locks, which belong to the process, and
 * closing *any* descriptor of a file releases all of them, including those SQLite
 * holds through its own descriptors. Another connection that closes later then
 * believes it is the last one, checkpoints and deletes the -wal and -shm files,
 * and from then on the two sides write to different files: acknowledged rows
 * vanish and the file can end malformed (sqlite.org, "How To Corrupt An SQLite
 * Database File", 2.2). `stat` and `access` take no descriptor and are safe.
 *
 * So every call of a node:fs function that opens a file must say, in a comment
 * `fd-safe: <why>` on its line or the line above, why its file cannot be a
 * database file open in this process (a chart library, a JSON report, /proc). To
 * damage or read a database file in a test, use `elsewhere` from @repo/testkit,
 * which does it from another process.
 */

const descriptorOpeners = new Set([
  'open',
  'openSync',
  'openAsBlob',
  'readFile',
  'readFileSync',
  'writeFile',
  'writeFileSync',
  'appendFile',
  'appendFileSync',
  'copyFile',
  'copyFileSync',
  'cp',
  'cpSync',
  'createReadStream',
  'createWriteStream',
]);
const fsModules = /^(node:)?fs(\/promises)?$/;
const annotation = /fd-safe:\s*\S/;

interface Violation {
  file: string;
  line: number;
  call: string;
}

/** The calls of descriptor-opening node:fs functions in `source` that carry no `fd-safe:` reason. */
function findUnannotatedOpens(file: string, source: string): Violation[] {
  const lines = source.split('\n');
  const callees: RegExp[] = [];
  for (const match of source.matchAll(/import\s+([\s\S]*?)\s+from\s+['"]([^'"]+)['"]/g)) {
    const [, clause = '', module = ''] = match;
    if (!fsModules.test(module)) continue;
    const named = /\{([\s\S]*)\}/.exec(clause)?.[1];
    for (const part of named?.split(',') ?? []) {
      const [imported, local = imported] = part
        .replace(/^\s*type\s+/, '')
        .trim()
        .split(/\s+as\s+/);
      if (imported !== undefined && descriptorOpeners.has(imported)) {
        callees.push(new RegExp(`(?<![.\\w$])${escapeRegExp(local as string)}\\s*\\(`));
      }
    }
    const namespace = /(?:\*\s+as\s+)?([A-Za-z_$][\w$]*)\s*(?:,|$)/.exec(clause.replace(/\{[\s\S]*\}/, ''))?.[1];
    if (namespace !== undefined) {
      callees.push(
        new RegExp(`\\b${escapeRegExp(namespace)}(?:\\.promises)?\\.(${[...descriptorOpeners].join('|')})\\s*\\(`),
      );
    }
  }
  const violations: Violation[] = [];
  lines.forEach((text, index) => {
    if (/^\s*(import|export)\b/.test(text) || /^\s*(\/\/|\*)/.test(text)) return;
    for (const callee of callees) {
      const call = callee.exec(text);
      if (call === null) continue;
      if (annotation.test(text) || annotation.test(lines[index - 1] ?? '')) continue;
      violations.push({ file, line: index + 1, call: call[0].replace(/\s*\($/, '') });
    }
  });
  return violations;
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

const repositoryRoot = join(import.meta.dirname, '..', '..', '..');
const skippedFolders = new Set(['node_modules', '.vitest-results', '.turbo', 'dist', 'coverage', '.git']);

function sourceFiles(folder: string): string[] {
  return readdirSync(folder, { withFileTypes: true }).flatMap((entry) => {
    const path = join(folder, entry.name);
    if (entry.isDirectory()) return skippedFolders.has(entry.name) ? [] : sourceFiles(path);
    return /\.(c|m)?[jt]s$/.test(entry.name) ? [path] : [];
  });
}

describe('no descriptor of our own on a file SQLite may have open', () => {
  it('every descriptor-opening node:fs call in packages/ and apps/ says why its file is not a database', () => {
    // This file's own examples (in strings) are checked by the next test instead.
    const files = ['packages', 'apps']
      .flatMap((top) => sourceFiles(join(repositoryRoot, top)))
      .filter((file) => file !== import.meta.filename);
    expect(files.length).toBeGreaterThan(50);
    const violations = files.flatMap((file) =>
      // fd-safe: reads our own source files, never a database
      findUnannotatedOpens(relative(repositoryRoot, file), readFileSync(file, 'utf8')),
    );
    expect(violations).toEqual([]);
  });

  it('catches named, renamed, namespace and promise imports, and accepts annotated calls', () => {
    const source = [
      "import { openSync, closeSync, readFileSync as slurp } from 'node:fs';",
      "import * as fs from 'fs';",
      "import fsp from 'node:fs/promises';",
      "import { open } from 'node:fs/promises';",
      'closeSync(openSync(path, "r+"));',
      'const text = slurp(file);',
      'fs.writeFileSync(path, "x");',
      'await fsp.open(path);',
      'await open(path);',
      'fs.promises.readFile(path);',
      'socket.open(path); repo.open(x);',
      '// fd-safe: a report file the harness writes',
      'fs.writeFileSync(report, html);',
      'slurp(chart); // fd-safe: the chart library',
      'fs.statSync(path); fs.accessSync(path);',
    ].join('\n');
    expect(findUnannotatedOpens('sample.ts', source).map(({ line, call }) => `${line}:${call}`)).toEqual([
      '5:openSync',
      '6:slurp',
      '7:fs.writeFileSync',
      '8:fsp.open',
      '9:open',
      '10:fs.promises.readFile',
    ]);
  });
});
