import { execFile, execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { launch } from '@repo/launcher';
import BetterSqlite3 from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { openMetricsRepo } from '../src/index.ts';
import type { HostInput, HostProgress } from './fixtures/coexist-host.ts';
import { type ForeignClient, type ForeignResult, startForeign } from './foreign.ts';
import { useTempDatabase } from './helpers.ts';

/**
 * Real life shares files: dashboards read them, scripts write without the
 * repository, backups copy them, operators run `sqlite3`. Each of those here is
 * a program of its own (its own process). While they run, repositories write;
 * then the repositories' process is killed with SIGKILL. Every acknowledged row
 * must be in the file, every foreign row too, the file must pass
 * `integrity_check`, and `count()` must have seen the others' rows while they ran.
 *
 * (A repository that opened and closed a descriptor of its own on the file once
 * per transaction lost 1,360 acknowledged rows in such a mix, and all 3,200 with
 * two repositories in one process: see the guard in @repo/db.)
 */

const mixMs = 2500;
const hostEntry = join(import.meta.dirname, 'fixtures', 'coexist-host.ts');
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function hasSqliteCli(): boolean {
  try {
    execFileSync('sqlite3', ['-version'], { stdio: 'pipe' });
    return true;
  } catch {
    return false;
  }
}

/** The `sqlite3` command line inserting one row per call (with its own busy timeout), until `ms` have passed. */
async function sqliteCliWriter(path: string, ms: number): Promise<ForeignResult> {
  const result: ForeignResult = { operations: 0, errors: 0, errorCodes: {}, ids: [] };
  const until = Date.now() + ms;
  while (Date.now() < until) {
    const output = await new Promise<string>((resolve, reject) =>
      execFile(
        'sqlite3',
        [
          '-cmd',
          '.timeout 5000',
          path,
          "INSERT INTO metrics (name, value, recorded_at) VALUES ('foreign.row', 2, 0); SELECT last_insert_rowid(); SELECT count(*) FROM metrics;",
        ],
        (error, stdout) => (error ? reject(error) : resolve(stdout)),
      ),
    ).catch((error: Error) => {
      result.errors += 1;
      result.errorCodes[error.message] = (result.errorCodes[error.message] ?? 0) + 1;
      return undefined;
    });
    if (output !== undefined) {
      result.operations += 1;
      result.ids.push(Number(output.split('\n')[0]));
    }
    await sleep(20);
  }
  return result;
}

const configurations: [string, HostInput['repositories'], HostInput['threads']][] = [
  ['one repository in a process', 1, 0],
  ['two repositories in one process', 2, 0],
  ['repositories in two worker threads', 1, 2],
];

describe('coexistence with other programs on the same file', () => {
  const tempDatabase = useTempDatabase();
  const copyDirs: string[] = [];
  afterEach(() => {
    for (const dir of copyDirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  });

  it.each(configurations)(
    '%s, with readers, a raw writer, online backups, VACUUM INTO, TRUNCATE checkpoints and the sqlite3 CLI; then SIGKILL',
    async (_, repositories, threads) => {
      const path = tempDatabase();
      await (await openMetricsRepo({ path })).close();
      const copies = mkdtempSync(join(tmpdir(), 'coexist-copies-'));
      copyDirs.push(copies);

      const acked = new Set<number>();
      let foreignSeen = 0;
      const host = await launch<HostInput, never, HostProgress>({
        entry: hostEntry,
        kind: 'process',
        count: 1,
        input: () => ({ path, repositories, threads }),
        onProgress: (_, progress) => {
          for (const id of progress.acked) acked.add(id);
          foreignSeen = Math.max(foreignSeen, progress.foreignSeen);
        },
      });
      expect(host.setupFailures).toEqual([]);
      const hosting = host.run({ timeoutMs: 60_000 });

      const foreign: ForeignClient[] = [
        startForeign('readers', path, mixMs),
        startForeign('readers', path, mixMs),
        startForeign('raw-writer', path, mixMs, { name: 'foreign.row' }),
        startForeign('backup', path, mixMs, { copiesDir: copies }),
        startForeign('vacuum-into', path, mixMs, { copiesDir: copies }),
        startForeign('checkpoint', path, mixMs),
      ];
      const cli = hasSqliteCli() ? sqliteCliWriter(path, mixMs) : Promise.resolve(undefined);
      const results = await Promise.all(foreign.map((client) => client.done));
      const cliResult = await cli;

      // The repositories' process dies the hard way, mid-write.
      host.kill(0);
      const [outcome] = await hosting;
      expect(outcome).toMatchObject({ ok: false, error: { message: expect.stringContaining('SIGKILL') } });

      const sqlite = new BetterSqlite3(path);
      try {
        expect(sqlite.pragma('integrity_check', { simple: true })).toBe('ok');
        const stored = new Set(sqlite.prepare('SELECT id FROM metrics').pluck().all() as number[]);
        expect(acked.size).toBeGreaterThan(100);
        expect([...acked].filter((id) => !stored.has(id))).toEqual([]);
        const foreignIds = [...results.flatMap((result) => result.ids), ...(cliResult?.ids ?? [])];
        expect(foreignIds.length).toBeGreaterThan(10);
        expect(foreignIds.filter((id) => !stored.has(id))).toEqual([]);
        // Rows of all writers are counted by everyone: nobody writes into a file of its own.
        const foreignStored = sqlite.prepare("SELECT count(*) FROM metrics WHERE name = 'foreign.row'").pluck().get();
        expect(foreignStored).toBe(foreignIds.length);
      } finally {
        sqlite.close();
      }
      expect(foreignSeen).toBeGreaterThan(0);
      for (const result of results) expect(result.errorCodes).toEqual({});
      expect(cliResult?.errorCodes ?? {}).toEqual({});
      // The copies are whole databases too.
      const copiesMade = readdirSync(copies);
      expect(copiesMade.some((name) => name.startsWith('backup-'))).toBe(true);
      expect(copiesMade.some((name) => name.startsWith('vacuum-'))).toBe(true);
      const lastBackup = join(
        copies,
        copiesMade
          .filter((name) => name.startsWith('backup-'))
          .sort()
          .at(-1) as string,
      );
      const backup = new BetterSqlite3(lastBackup, { readonly: true });
      expect(backup.pragma('integrity_check', { simple: true })).toBe('ok');
      backup.close();
    },
    60_000,
  );
});
