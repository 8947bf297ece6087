import { execFile, execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chownSync, existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';

const run = promisify(execFile);

export interface StartPostgresOptions {
  /**
   * `fsync = off` (default true): tests and benchmarks of the client do not wait
   * for the disk. A killed client still loses nothing the server acknowledged;
   * only an OS crash could lose data, and these servers are thrown away.
   */
  noFsync?: boolean;
  /** `max_connections` (default 200; the harness raises it for hundreds of writer processes). */
  maxConnections?: number;
}

export interface PostgresServer {
  /** `postgres://postgres:PASSWORD@127.0.0.1:PORT/DB`: password authentication, as in production. */
  readonly url: string;
  /** Where it came from: a server this call started (`local`), or `DATABASE_URL`'s (`external`). */
  readonly kind: 'local' | 'external';
  /** A fresh, empty database on the same server; resolves with its URL. Dropped by `stop()`. */
  createDatabase(): Promise<string>;
  /** Stops a local server abruptly but cleanly (`pg_ctl stop -m fast`: sessions end with 57P01); data kept. */
  shutdown(): Promise<void>;
  /** Starts a local server again after `shutdown()`, on the same port and data. */
  start(): Promise<void>;
  /** Stops the server and removes its data (local), or drops the databases it created (external). */
  stop(): Promise<void>;
}

/**
 * A real PostgreSQL server for tests and benchmarks.
 *
 * With `DATABASE_URL` set, uses that server: a fresh database per call (so each
 * test file starts empty), dropped by `stop()`. Otherwise starts one from the
 * PostgreSQL binaries of this machine (Debian's `postgresql` package: found under
 * /usr/lib/postgresql/VERSION/bin, or via `pg_config`, or `PG_BIN`) in a temporary
 * directory, on a free port of 127.0.0.1, with password authentication on TCP;
 * `stop()` removes it. As root, the server runs as the `postgres` user.
 *
 * Rejects with a message saying how to get PostgreSQL when no binaries are found.
 */
export async function startPostgres(options: StartPostgresOptions = {}): Promise<PostgresServer> {
  const external = process.env.DATABASE_URL;
  if (external !== undefined && external !== '') return useExternal(external);
  return startLocal(options);
}

/** The directory holding `initdb` and `pg_ctl`, or undefined when PostgreSQL is not installed. */
export function findPostgresBinaries(): string | undefined {
  const candidates: string[] = [];
  if (process.env.PG_BIN) candidates.push(process.env.PG_BIN);
  const debianRoot = '/usr/lib/postgresql';
  if (existsSync(debianRoot)) {
    const versions = readdirSync(debianRoot)
      .filter((name) => /^\d+$/.test(name))
      .sort((a, b) => Number(b) - Number(a));
    candidates.push(...versions.map((version) => join(debianRoot, version, 'bin')));
  }
  for (const dir of (process.env.PATH ?? '').split(':')) if (dir !== '') candidates.push(dir);
  return candidates.find((dir) => existsSync(join(dir, 'initdb')) && existsSync(join(dir, 'pg_ctl')));
}

async function startLocal({ noFsync = true, maxConnections = 200 }: StartPostgresOptions): Promise<PostgresServer> {
  const bin = findPostgresBinaries();
  if (bin === undefined) {
    throw new Error(
      'startPostgres: no PostgreSQL binaries (initdb, pg_ctl) found. Install them (Debian: `apt-get install -y postgresql`), set PG_BIN to their directory, or set DATABASE_URL to an existing server.',
    );
  }
  const asRoot = process.getuid?.() === 0;
  const dir = mkdtempSync(join(tmpdir(), 'repo-pg-'));
  const dataDir = join(dir, 'data');
  const password = randomBytes(12).toString('hex');
  const passwordFile = join(dir, 'password');
  // fd-safe: the server's password file, not a database of ours
  writeFileSync(passwordFile, `${password}\n`, { mode: 0o600 });
  // As root: initdb and the server refuse to run as root; the postgres user must own everything.
  const asServerUser = async (command: string, args: string[]) => {
    const file = join(bin, command);
    return asRoot ? run('runuser', ['-u', 'postgres', '--', file, ...args]) : run(file, args);
  };
  if (asRoot) {
    for (const path of [dir, passwordFile]) chownSync(path, ...postgresUserIds());
  }
  const settings = [
    '-c listen_addresses=127.0.0.1',
    `-k ${dir}`,
    `-c max_connections=${maxConnections}`,
    ...(noFsync ? ['-c fsync=off', '-c full_page_writes=off'] : []),
  ];
  let port = 0;
  const startServer = async () => {
    await asServerUser('pg_ctl', [
      '-D',
      dataDir,
      '-w',
      '-t',
      '60',
      '-l',
      join(dir, 'server.log'),
      '-o',
      `-p ${port} ${settings.join(' ')}`,
      'start',
    ]);
  };
  try {
    await asServerUser('initdb', [
      '-D',
      dataDir,
      '-U',
      'postgres',
      `--pwfile=${passwordFile}`,
      '--auth-local=trust',
      '--auth-host=scram-sha-256',
      '--no-sync',
      '--no-instructions',
      '-E',
      'UTF8',
      '--locale=C',
    ]);
    // A free port can be taken by someone else between the check and the start: try a few.
    for (let attempt = 1; ; attempt++) {
      port = await freePort();
      try {
        await startServer();
        break;
      } catch (error) {
        if (attempt >= 3) throw error;
      }
    }
  } catch (error) {
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`startPostgres: the server did not start: ${describeFailure(error)}`, { cause: error });
  }
  const url = `postgres://postgres:${password}@127.0.0.1:${port}/postgres`;
  const databases = new Databases(url);
  let running = true;
  // The server must not outlive this process, however it ends (even SIGKILL): a detached
  // watcher stops it and removes its directory once this process is gone.
  watchOwner(dir, asRoot ? ['runuser', '-u', 'postgres', '--', join(bin, 'pg_ctl')] : [join(bin, 'pg_ctl')], dataDir);
  return {
    url,
    kind: 'local',
    createDatabase: () => databases.create(),
    async shutdown() {
      if (!running) return;
      await asServerUser('pg_ctl', ['-D', dataDir, '-w', '-m', 'fast', 'stop']);
      running = false;
    },
    async start() {
      if (running) return;
      await startServer();
      running = true;
    },
    async stop() {
      try {
        if (running) await asServerUser('pg_ctl', ['-D', dataDir, '-w', '-m', 'immediate', 'stop']);
        running = false;
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  };
}

function useExternal(serverUrl: string): PostgresServer {
  const databases = new Databases(serverUrl);
  const notLocal = () =>
    Promise.reject(new Error('startPostgres: DATABASE_URL names a server this process cannot stop or start'));
  // `url` is shared with whoever else uses that server: write only into databases from createDatabase().
  return {
    url: serverUrl,
    kind: 'external',
    createDatabase: () => databases.create(),
    shutdown: notLocal,
    start: notLocal,
    stop: () => databases.dropAll(),
  };
}

/** Runs `work` on one new connection (a session of its own), then closes it. */
export async function withPgClient<T>(url: string, work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

/** Fresh databases on one server, dropped together. */
class Databases {
  private readonly created: string[] = [];
  constructor(private readonly serverUrl: string) {}

  async create(): Promise<string> {
    const name = `test_${process.pid}_${randomBytes(4).toString('hex')}`;
    await withPgClient(this.serverUrl, (client) => client.query(`CREATE DATABASE "${name}"`));
    this.created.push(name);
    const url = new URL(this.serverUrl);
    url.pathname = `/${name}`;
    return url.toString();
  }

  async dropAll(): Promise<void> {
    const names = this.created.splice(0);
    if (names.length === 0) return;
    await withPgClient(this.serverUrl, async (client) => {
      // FORCE: connections a test left open (a killed writer's) must not keep a database alive.
      for (const name of names) await client.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
    });
  }
}

/**
 * Starts a small shell loop, detached from this process, that waits for this
 * process to end (or for the server's directory to be removed by `stop()`), then
 * stops the server at once and removes its directory.
 */
function watchOwner(dir: string, pgCtl: string[], dataDir: string): void {
  const script =
    'while kill -0 "$1" 2>/dev/null && [ -d "$2" ]; do sleep 1; done; ' +
    'if [ -d "$2" ]; then shift 3; "$@" -D "$DATA" -m immediate stop >/dev/null 2>&1; rm -rf "$DIR"; fi';
  const watcher = spawn('sh', ['-c', script, 'watch', String(process.pid), dir, 'unused', ...pgCtl], {
    detached: true,
    stdio: 'ignore',
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', DATA: dataDir, DIR: dir },
  });
  watcher.unref();
}

function postgresUserIds(): [number, number] {
  // `id` rather than parsing /etc/passwd by hand.
  const output = execFileSync('id', ['postgres'], { encoding: 'utf8' });
  const uid = /uid=(\d+)/.exec(output)?.[1];
  const gid = /gid=(\d+)/.exec(output)?.[1];
  if (uid === undefined || gid === undefined)
    throw new Error('startPostgres: running as root, but there is no postgres user');
  return [Number(uid), Number(gid)];
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

function describeFailure(error: unknown): string {
  const { stderr, message } = error as { stderr?: string; message?: string };
  return (stderr?.trim() || message || String(error)).slice(0, 2000);
}
